"""A download of a tree of hundreds of megabytes streams from the storage into the answer: the
server process, measured from outside while it sends, holds no more than a few blocks of it."""

from __future__ import annotations

import asyncio
import hashlib
import json

import aiohttp
import psutil
import pytest

from ngshare_s3.exchange import keys, timestamps
from ngshare_s3.exchange.stored import FileTree, release_files
from ngshare_s3.http import trees
from ngshare_s3.stores import open_metadata_store, open_object_store
from ngshare_s3.stores.metadata.base import Assignment, FileRecord

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, STUDENT

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

MIB = 1 << 20
SIZES = {"big.bin": 200 * MIB, "data.bin": 56 * MIB, "small.txt": 1000}
RSS_GROWTH_LIMIT = 50 * MIB


def pattern(size: int):
    """`size` bytes of a repeated random MiB, a MiB at a time."""
    block = hashlib.sha512(str(size).encode()).digest() * (MIB // 64)
    for start in range(0, size, MIB):
        yield block[: min(MIB, size - start)]


async def chunks(size: int):
    for chunk in pattern(size):
        yield chunk


def md5_of(size: int) -> str:
    digest = hashlib.md5()
    for chunk in pattern(size):
        digest.update(chunk)
    return digest.hexdigest()


async def store_release(backend: tuple[str, str], course: str, assignment: str) -> Assignment:
    """The release written straight into the stores, as a release upload leaves it: the
    download alone is under test."""
    database, storage = backend
    metadata, objects = await open_metadata_store(database), await open_object_store(storage)
    try:
        records = tuple(FileRecord(path, md5_of(size), size) for path, size in SIZES.items())
        released = Assignment(course, assignment, keys.new_id(), timestamps.now(), records)
        for stored in release_files(released):
            await objects.put(stored.key, chunks(stored.size), stored.md5)
        await metadata.create_assignment(released)
        return released
    finally:
        await objects.close()
        await metadata.close()


async def expected_digest(released: Assignment) -> tuple[str, int]:
    """The SHA-256 and length of the answer the server must send."""

    class Bodies:
        async def read(self, tree, file):
            async for chunk in chunks(file.size):
                yield chunk

    tree = FileTree(release_files(released), gone="Assignment not found")
    digest, length = hashlib.sha256(), 0
    async for piece in trees.answer_pieces(Bodies(), tree, {}):
        digest.update(piece)
        length += len(piece)
    return digest.hexdigest(), length


async def test_a_tree_of_hundreds_of_megabytes_downloads_in_bounded_memory(backend, fake_hub, tmp_path):
    port = free_port()
    base = base_url(port)
    with open(tmp_path / "server.log", "wb") as log:
        # A release cache smaller than the tree: the tree is streamed, as any submission is.
        server = start_server(backend, fake_hub.url, port, log, "--release-cache-size", str(MIB))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
            await wait_until_healthy(http, base, server)

            def as_user(user: str) -> dict[str, str]:
                return {"Authorization": f"token {fake_hub.token_for(user)}"}

            async with http.post(f"{base}/course/c1", headers=as_user(ADMIN), data={"instructors": json.dumps([INSTRUCTOR])}) as r:
                assert r.status == 200
            student = {"first_name": "", "last_name": "", "email": ""}
            async with http.post(f"{base}/student/c1/{STUDENT}", headers=as_user(INSTRUCTOR), data=student) as r:
                assert r.status == 200
            released = await store_release(backend, "c1", "big")
            expected = await expected_digest(released)
            async with http.get(f"{base}/assignment/c1/big", headers=as_user(STUDENT), params={"list_only": "true"}) as r:
                assert r.status == 200  # warms the route up before the baseline is taken

            process = psutil.Process(server.pid)
            baseline = peak = process.memory_info().rss
            done = asyncio.Event()

            async def watch() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, process.memory_info().rss)
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            digest, length = hashlib.sha256(), 0
            async with http.get(f"{base}/assignment/c1/big", headers=as_user(STUDENT)) as response:
                assert response.status == 200
                async for piece in response.content.iter_chunked(MIB):
                    digest.update(piece)
                    length += len(piece)
            done.set()
            await watcher
    finally:
        stop(server)
    print(f"server RSS {baseline / MIB:.0f} MiB, grew by {(peak - baseline) / MIB:.1f} MiB sending {length / MIB:.0f} MiB")
    assert (digest.hexdigest(), length) == expected
    assert peak - baseline < RSS_GROWTH_LIMIT, f"server RSS grew by {(peak - baseline) / MIB:.0f} MiB"
