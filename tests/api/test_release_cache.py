"""The release cache: a full fetch of a release is answered from the encoded answer kept in
memory, byte for byte what the store would give, never the bytes of an earlier release or of
a deleted one, within its size bound, built once however many students ask at once."""

from __future__ import annotations

import asyncio
import os

import pytest

from ngshare_s3.exchange.errors import NotFound
from ngshare_s3.http.app_keys import EXCHANGE, METRICS
from ngshare_s3.settings import DEFAULT_RELEASE_CACHE_SIZE, SettingsError, parse_settings

from .support import INSTRUCTOR, STUDENT, expected_tree, failure, set_up_classroom

ROUTE = "assignment/c1/hw"
RELEASE = [("hw.ipynb", b'{"cells": [1, 2, 3]}\n' * 500), ("data.bin", os.urandom(300_000)), ("empty", b"")]


def sample(api, name: str, **labels: str) -> float:
    value = api.client.server.app[METRICS].registry.get_sample_value(f"ngshare_s3_{name}", labels)
    return value or 0.0


def cache_counts(api) -> tuple[float, float]:
    return sample(api, "release_cache_hits_total"), sample(api, "release_cache_misses_total")


def store_reads(api) -> float:
    return sample(api, "store_call_duration_seconds_count", store="storage", operation="get")


async def fetch(api, route: str = ROUTE, caller: str = STUDENT):
    return await api.raw("GET", api.prefix + route, caller=caller)


@pytest.fixture
async def cached(make_api):
    api = await make_api()
    await set_up_classroom(api)
    await api.release("c1", "hw", RELEASE, caller=INSTRUCTOR)
    return api


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_hits_answer_the_same_bytes_without_reading_the_store(cached):
    first = await fetch(cached)
    assert first.status == 200 and first.json["files"] == expected_tree(RELEASE)
    reads = store_reads(cached)
    assert reads == len(RELEASE)
    again = [await fetch(cached) for _ in range(3)]
    assert [reply.body for reply in again] == [first.body] * 3
    assert int(again[0].headers["Content-Length"]) == len(first.body)
    assert store_reads(cached) == reads
    assert cache_counts(cached) == (3, 1)
    assert sample(cached, "release_cache_bytes") == len(first.body)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_a_re_release_is_never_answered_with_the_old_bytes(cached):
    assert (await fetch(cached)).json["files"] == expected_tree(RELEASE)
    await cached.ok("DELETE", INSTRUCTOR, ROUTE)
    gone = await fetch(cached)
    assert (gone.status, gone.json) == (404, failure("Assignment not found"))
    changed = [(path, data + b"!") for path, data in RELEASE]
    await cached.release("c1", "hw", changed, caller=INSTRUCTOR)
    assert (await fetch(cached)).json["files"] == expected_tree(changed)
    # The same files again are a new release with objects of their own, read afresh.
    await cached.ok("DELETE", INSTRUCTOR, ROUTE)
    await cached.release("c1", "hw", changed, caller=INSTRUCTOR)
    assert (await fetch(cached)).json["files"] == expected_tree(changed)
    assert cache_counts(cached) == (0, 3)


async def test_permissions_are_checked_on_every_hit(cached):
    assert (await fetch(cached)).status == 200
    status, body = await cached.get("other", ROUTE)
    assert (status, body["success"]) == (403, False)
    await cached.ok("DELETE", INSTRUCTOR, f"student/c1/{STUDENT}")
    assert (await fetch(cached)).status == 403
    assert cache_counts(cached) == (0, 1)


async def test_list_only_is_not_cached(cached):
    files = await cached.assignment_files("c1", "hw", caller=STUDENT, list_only="true")
    assert files == expected_tree(RELEASE, list_only=True)
    assert cache_counts(cached) == (0, 0) and store_reads(cached) == 0


async def test_the_cache_keeps_the_least_recently_used_answers_within_its_size(make_api):
    entries = {name: [(f"{name}.bin", os.urandom(10_000))] for name in ("x", "y", "z")}
    capacity = 30_000  # two answers of about 13.7 KB, not three
    api = await make_api(release_cache_size=capacity)
    await set_up_classroom(api)
    for name, files in entries.items():
        await api.release("c1", name, files, caller=INSTRUCTOR)

    held = []
    for name, expect in [("x", (0, 1)), ("y", (0, 2)), ("x", (1, 2)), ("z", (1, 3)), ("x", (2, 3)), ("y", (2, 4))]:
        reply = await fetch(api, f"assignment/c1/{name}")
        assert reply.json["files"] == expected_tree(entries[name])
        assert cache_counts(api) == expect, name
        held.append(sample(api, "release_cache_bytes"))
    assert 0 < max(held) <= capacity
    assert store_reads(api) == 4


async def test_a_release_larger_than_the_cache_streams_and_is_not_kept(make_api):
    api = await make_api(release_cache_size=50_000)
    await set_up_classroom(api)
    await api.release("c1", "hw", RELEASE, caller=INSTRUCTOR)
    for _ in range(2):
        reply = await fetch(api)
        assert reply.json["files"] == expected_tree(RELEASE)
        assert "Content-Length" not in reply.headers
    assert sample(api, "release_cache_bytes") == 0
    assert store_reads(api) == 2 * len(RELEASE)


async def test_a_size_of_zero_turns_the_cache_off(make_api):
    api = await make_api(release_cache_size=0)
    await set_up_classroom(api)
    await api.release("c1", "hw", RELEASE, caller=INSTRUCTOR)
    replies = [await fetch(api) for _ in range(3)]
    assert all(reply.json["files"] == expected_tree(RELEASE) for reply in replies)
    assert store_reads(api) == 3 * len(RELEASE)
    assert cache_counts(api) == (0, 0) and sample(api, "release_cache_bytes") == 0


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_students_fetching_a_cold_release_at_once_read_the_store_once(cached, monkeypatch):
    """Every fetch arrives while the first is still reading: all of them wait for that one."""
    exchange = cached.client.server.app[EXCHANGE]
    read = exchange.read
    opened = asyncio.Event()
    go_on = asyncio.Event()

    async def held_read(tree, file):
        opened.set()
        await go_on.wait()
        async for chunk in read(tree, file):
            yield chunk

    monkeypatch.setattr(exchange, "read", held_read)
    fetches = [asyncio.create_task(fetch(cached)) for _ in range(8)]
    await asyncio.wait_for(opened.wait(), 30)
    for _ in range(600):  # until the seven others have joined the first's build
        if cache_counts(cached) == (7, 1):
            break
        await asyncio.sleep(0.05)
    go_on.set()
    replies = await asyncio.gather(*fetches)
    assert {reply.status for reply in replies} == {200}
    assert len({reply.body for reply in replies}) == 1
    assert replies[0].json["files"] == expected_tree(RELEASE)
    assert cache_counts(cached) == (7, 1)
    assert store_reads(cached) == len(RELEASE)


async def test_a_failed_build_is_not_kept(cached, monkeypatch):
    """A body missing from the storage (a damaged bucket) fails the fetch; once the bodies are
    back the next fetch builds the answer anew."""
    exchange = cached.client.server.app[EXCHANGE]

    async def missing(tree, file):
        raise NotFound(tree.gone)
        yield b""

    monkeypatch.setattr(exchange, "read", missing)
    gone = await fetch(cached)
    assert (gone.status, gone.json) == (404, failure("Assignment not found"))
    monkeypatch.undo()
    assert (await fetch(cached)).json["files"] == expected_tree(RELEASE)
    assert cache_counts(cached) == (0, 2)


def test_the_size_is_a_flag_and_an_environment_variable(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    monkeypatch.delenv("NGSHARE_S3_RELEASE_CACHE_SIZE", raising=False)
    assert parse_settings([]).release_cache_size == DEFAULT_RELEASE_CACHE_SIZE
    monkeypatch.setenv("NGSHARE_S3_RELEASE_CACHE_SIZE", "0")
    assert parse_settings([]).release_cache_size == 0
    assert parse_settings(["--release-cache-size", "1000"]).release_cache_size == 1000
    with pytest.raises(SettingsError, match="--release-cache-size must be zero or a positive"):
        parse_settings(["--release-cache-size", "-1"])
