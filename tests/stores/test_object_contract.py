"""What every ObjectStore backend must do; runs once per backend registered in conftest."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import pytest

from ngshare_s3.stores.errors import ChecksumMismatch, ObjectNotFound
from ngshare_s3.stores.objects.base import CHUNK_SIZE, NewObject, ObjectStore, chunks_of, read_all

PREFIX = "courses/c/assignments/a/release/r1/"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def put(store: ObjectStore, key: str, data: bytes, chunk: int = CHUNK_SIZE) -> None:
    await store.put(key, chunks_of(data, chunk), md5(data))


async def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def test_ping(object_store: ObjectStore) -> None:
    await object_store.ping()


@pytest.mark.parametrize(
    "data",
    [b"hello", b"", bytes(range(256)) * 4, "é中文😀\n".encode()],
    ids=["text", "empty", "binary", "utf8"],
)
async def test_round_trip(object_store: ObjectStore, data: bytes) -> None:
    await put(object_store, PREFIX + "0001/file", data)
    assert await read_all(object_store.get(PREFIX + "0001/file")) == data


async def test_multi_chunk_round_trip(object_store: ObjectStore) -> None:
    data = hashlib.sha256(b"seed").digest() * ((2 * CHUNK_SIZE + 12345) // 32)
    # Odd-sized incoming chunks: the store must not depend on how the body was cut.
    await put(object_store, PREFIX + "big", data, chunk=CHUNK_SIZE // 3 + 7)
    assert await read_all(object_store.get(PREFIX + "big")) == data
    [info] = [i async for i in object_store.list(PREFIX + "big")]
    assert info.size == len(data)


async def test_checksum_mismatch_stores_nothing(object_store: ObjectStore) -> None:
    with pytest.raises(ChecksumMismatch):
        await object_store.put(PREFIX + "bad", chunks_of(b"body"), md5(b"other body"))
    with pytest.raises(ObjectNotFound):
        await read_all(object_store.get(PREFIX + "bad"))
    assert await keys(object_store) == []


async def test_checksum_mismatch_keeps_the_existing_object(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "f", b"good")
    with pytest.raises(ChecksumMismatch):
        await object_store.put(PREFIX + "f", chunks_of(b"evil"), md5(b"good"))
    assert await read_all(object_store.get(PREFIX + "f")) == b"good"


async def test_failing_body_stores_nothing(object_store: ObjectStore) -> None:
    async def broken():
        yield b"first part"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await object_store.put(PREFIX + "partial", broken(), md5(b"first part"))
    assert await keys(object_store) == []


async def test_get_missing(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await read_all(object_store.get(PREFIX + "missing"))
    await put(object_store, PREFIX + "sub/file", b"x")
    with pytest.raises(ObjectNotFound):  # a "folder" is not an object
        await read_all(object_store.get(PREFIX + "sub"))


async def test_delete_is_idempotent(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "a", b"1")
    await put(object_store, PREFIX + "b", b"2")
    await object_store.delete([PREFIX + "a", PREFIX + "never-existed"])
    await object_store.delete([PREFIX + "a"])
    await object_store.delete([])
    assert await keys(object_store) == [PREFIX + "b"]
    with pytest.raises(ObjectNotFound):
        await read_all(object_store.get(PREFIX + "a"))


async def test_delete_many(object_store: ObjectStore) -> None:
    names = [f"{PREFIX}{i:04d}/f" for i in range(30)]
    for name in names:
        await put(object_store, name, name.encode())
    await object_store.delete(names[:-1])
    assert await keys(object_store) == names[-1:]


async def test_put_after_delete_in_same_folder(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "0001/f", b"1")
    await object_store.delete([PREFIX + "0001/f"])
    await put(object_store, PREFIX + "0001/g", b"2")
    assert await read_all(object_store.get(PREFIX + "0001/g")) == b"2"


async def test_list_by_prefix_in_key_order(object_store: ObjectStore) -> None:
    names = [
        "courses/c1/x/2",
        "courses/c1/x/10",
        "courses/c1-b/y",
        "courses/c1/a",
        "courses/c2/z",
        "courses/d/z",
        "other/é",
        "other/z",
        "other/%2E%2E",
    ]
    for name in names:
        await put(object_store, name, name.encode())
    assert await keys(object_store) == sorted(names)
    # '-' sorts before '/': key order is not folder-by-folder order.
    assert await keys(object_store, "courses/c1") == [
        "courses/c1-b/y",
        "courses/c1/a",
        "courses/c1/x/10",
        "courses/c1/x/2",
    ]
    assert await keys(object_store, "courses/c1/") == [
        "courses/c1/a",
        "courses/c1/x/10",
        "courses/c1/x/2",
    ]
    assert await keys(object_store, "courses/c1/x/1") == ["courses/c1/x/10"]
    assert await keys(object_store, "courses/nothing/") == []
    assert await keys(object_store, "other/") == ["other/%2E%2E", "other/z", "other/é"]


async def test_list_sizes_and_times(object_store: ObjectStore) -> None:
    before = datetime.now(timezone.utc) - timedelta(minutes=5)
    await put(object_store, PREFIX + "empty", b"")
    await put(object_store, PREFIX + "five", b"12345")
    infos = [info async for info in object_store.list(PREFIX)]
    after = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert [(i.key, i.size) for i in infos] == [(PREFIX + "empty", 0), (PREFIX + "five", 5)]
    for info in infos:
        assert info.modified.utcoffset() == timedelta(0)
        assert before <= info.modified <= after


async def test_odd_but_escaped_keys(object_store: ObjectStore) -> None:
    names = [
        "courses/My Course+1/é/..foo/0001/a%2Fb",
        "courses/%2E%2E/%2E/x",
        "courses/中文/😀 file.txt",
        "courses/c/...",
        "courses/c/a\\b",
    ]
    for name in names:
        await put(object_store, name, name.encode())
    for name in names:
        assert await read_all(object_store.get(name)) == name.encode()
    assert await keys(object_store) == sorted(names)


async def test_overwrite_replaces_whole_body(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "f", b"a much longer first body")
    await put(object_store, PREFIX + "f", b"short")
    assert await read_all(object_store.get(PREFIX + "f")) == b"short"


async def test_concurrent_puts(object_store: ObjectStore) -> None:
    bodies = {f"{PREFIX}{i:04d}/f": str(i).encode() * 1000 for i in range(20)}
    await asyncio.gather(*(put(object_store, k, v) for k, v in bodies.items()))
    for key, body in bodies.items():
        assert await read_all(object_store.get(key)) == body


# Metadata: kept exactly by backends that keep it, checked and dropped by those that do not.

ODD_METADATA = {
    "kind": "submission",
    "path": "notes/résumé ü.txt",
    "percent": "100% done & a+b=c?.txt",
    "spaces": "  two  spaces at both ends  ",
    "wide": "中文/😀\ttab",
    "empty": "",
    "timestamp": "2026-12-02 19:43:23.123456",
    "md5": md5(b"x"),
}


def expected_metadata(store: ObjectStore, metadata: dict[str, str]) -> dict[str, str]:
    return metadata if store.keeps_metadata else {}


async def test_metadata_round_trip(object_store: ObjectStore) -> None:
    await object_store.put(PREFIX + "f", chunks_of(b"x"), md5(b"x"), ODD_METADATA)
    assert await object_store.metadata(PREFIX + "f") == expected_metadata(object_store, ODD_METADATA)
    assert await read_all(object_store.get(PREFIX + "f")) == b"x"


async def test_metadata_of_a_multi_chunk_body(object_store: ObjectStore) -> None:
    data = hashlib.sha256(b"seed").digest() * ((2 * CHUNK_SIZE + 12345) // 32)
    about = {"path": "big % ü.bin", "md5": md5(data)}
    await object_store.put(PREFIX + "big", chunks_of(data, CHUNK_SIZE // 3 + 7), md5(data), about)
    assert await object_store.metadata(PREFIX + "big") == expected_metadata(object_store, about)


async def test_no_metadata_reads_back_empty(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "f", b"x")
    assert await object_store.metadata(PREFIX + "f") == {}


async def test_overwrite_replaces_the_metadata(object_store: ObjectStore) -> None:
    await object_store.put(PREFIX + "f", chunks_of(b"1"), md5(b"1"), {"one": "1", "both": "a"})
    await object_store.put(PREFIX + "f", chunks_of(b"2"), md5(b"2"), {"both": "b"})
    assert await object_store.metadata(PREFIX + "f") == expected_metadata(object_store, {"both": "b"})


async def test_metadata_of_missing(object_store: ObjectStore) -> None:
    await put(object_store, PREFIX + "sub/file", b"x")
    for key in (PREFIX + "missing", PREFIX + "sub"):
        with pytest.raises(ObjectNotFound):
            await object_store.metadata(key)


@pytest.mark.parametrize("name", ["Kind", "x_y", "", "-x", "é"])
async def test_bad_metadata_name_stores_nothing(object_store: ObjectStore, name: str) -> None:
    with pytest.raises(ValueError, match="metadata name"):
        await object_store.put(PREFIX + "f", chunks_of(b"x"), md5(b"x"), {name: "v"})
    assert await keys(object_store) == []


# One rule for every backend (stores/objects/base.py): a key that could climb out of its place
# in a folder, or that a person browsing the bucket would misread, is refused.
BAD_KEYS = ["", "/etc/passwd", "../outside", "a/../../outside", "a/..", "..", ".", "a/./b", "a//b", "a/", "a/b\0c"]
BAD_PREFIXES = ["../", "a/../", "/", "/etc/", "a//", "a\0"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_refused(object_store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        await put(object_store, key, b"x")
    with pytest.raises(ValueError):
        await read_all(object_store.get(key))
    with pytest.raises(ValueError):
        await object_store.delete([key])
    assert await keys(object_store) == []


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
async def test_bad_listing_prefixes_are_refused(object_store: ObjectStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        await keys(object_store, prefix)


async def test_delete_with_a_bad_key_deletes_nothing(object_store: ObjectStore) -> None:
    await put(object_store, "a/b", b"x")
    with pytest.raises(ValueError):
        await object_store.delete(["a/b", "../a/b"])  # refused as a whole, before touching anything
    assert await keys(object_store) == ["a/b"]


async def test_put_many_stores_every_object_of_a_tree(object_store: ObjectStore) -> None:
    tree = {PREFIX + f"{n:04d}/file{n}": bytes([n]) * (1000 * n) for n in range(5)}
    tree[PREFIX + "0005/big"] = hashlib.sha256(b"big").digest() * ((CHUNK_SIZE + 99) // 32)
    await object_store.put_many([NewObject(key, chunks_of(data), md5(data)) for key, data in tree.items()])
    assert await keys(object_store) == sorted(tree)
    for key, data in tree.items():
        assert await read_all(object_store.get(key)) == data


async def test_put_many_raises_the_failure_once_no_put_is_left_in_flight(object_store: ObjectStore) -> None:
    good = b"good body"
    objects = [NewObject(PREFIX + f"{n:04d}/good", chunks_of(good), md5(good)) for n in range(3)]
    objects.insert(1, NewObject(PREFIX + "0009/bad", chunks_of(b"body"), md5(b"other body")))
    with pytest.raises(ChecksumMismatch):
        await object_store.put_many(objects)
    with pytest.raises(ObjectNotFound):
        await read_all(object_store.get(PREFIX + "0009/bad"))
    # Whatever else landed is whole, and can be removed at once: nothing is still being written.
    landed = await keys(object_store)
    assert set(landed) <= {o.key for o in objects if o.key.endswith("good")}
    for key in landed:
        assert await read_all(object_store.get(key)) == good
    await object_store.delete(landed)
    assert await keys(object_store) == []
