"""The encoding of downloaded trees: exactly what base64.encodebytes writes, with each newline
escaped for JSON, whatever the sizes of the chunks the store hands over."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random

import pytest

from ngshare_s3.exchange.stored import FileTree, StoredFile
from ngshare_s3.http import trees

BLOCK = trees.BLOCK_BYTES
SIZES = [0, 1, 2, 3, 56, 57, 58, 75, 76, 77, 1000, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5, 1 << 20, 2_000_003]


async def chunks_of(data: bytes, sizes: list[int]):
    start = 0
    for size in sizes:
        yield data[start : start + size]
        start += size
    if start < len(data):
        yield data[start:]


def chunkings(rng: random.Random) -> list[list[int]]:
    return [[], [1 << 20] * 3, [rng.randint(1, 100_000) for _ in range(40)], [7] * 30, [BLOCK - 3, 3, BLOCK]]


@pytest.mark.parametrize("size", SIZES)
async def test_blocks_are_encodebytes_with_escaped_newlines(size):
    data = random.Random(size).randbytes(size)
    expected = base64.encodebytes(data).replace(b"\n", b"\\n")
    for sizes in chunkings(random.Random(size + 1)):
        encoded = b"".join([block async for block in trees.escaped_base64_blocks(chunks_of(data, sizes))])
        assert encoded == expected, sizes[:3]
    assert trees.escaped_base64_size(size) == len(expected)


class Bodies:
    """Stands in for the exchange's read(): the bodies of a tree, in odd chunk sizes."""

    def __init__(self, bodies: dict[str, bytes]):
        self.bodies = bodies

    async def read(self, tree, file):
        async for chunk in chunks_of(self.bodies[file.key], [1000, 70_000]):
            yield chunk


async def test_the_answer_is_the_json_its_size_announces():
    bodies = {"k/0": os.urandom(300_000), "k/1": b"", "k/2": "ü \"q\"\n".encode()}
    files = tuple(StoredFile(f"p{i} ü\"/x", "0" * 32, len(body), key) for i, (key, body) in enumerate(bodies.items()))
    tree = FileTree(files, gone="Assignment not found")
    fields = {"timestamp": "2026-01-01 00:00:00.000000"}
    answer = b"".join([piece async for piece in trees.answer_pieces(Bodies(bodies), tree, fields)])
    assert len(answer) == trees.answer_size(tree, fields)
    assert json.loads(answer) == {
        "success": True,
        **fields,
        "files": [
            {"path": f.path, "checksum": f.md5, "content": base64.encodebytes(bodies[f.key]).decode()}
            for f in files
        ],
    }


class LoggedBodies:
    """Bodies that say when each read starts and ends, and wait for the loop between chunks,
    as a store's reads do."""

    def __init__(self, count: int, size: int = 3 * BLOCK):
        self.bodies = {f"k/{i}": random.Random(i).randbytes(size) for i in range(count)}
        self.log: list[str] = []

    async def read(self, tree, file):
        self.log.append(f"start {file.key}")
        try:
            async for chunk in chunks_of(self.bodies[file.key], [BLOCK] * 3):
                await asyncio.sleep(0)
                yield chunk
        finally:
            self.log.append(f"end {file.key}")

    def tree(self) -> FileTree:
        files = tuple(StoredFile(key, "0" * 32, len(body), key) for key, body in self.bodies.items())
        return FileTree(files, gone="Submission not found")


async def test_the_next_body_is_read_while_one_is_sent_and_no_further():
    store = LoggedBodies(4)
    seen_while_sending: dict[str, list[str]] = {}
    pieces = trees.answer_pieces(store, store.tree(), {})
    current = None
    async for piece in pieces:
        if piece.startswith((b'{"path": "k/', b', {"path": "k/')):
            current = piece.split(b'"')[3].decode()
        elif piece == trees.FILE_END:
            seen_while_sending[current] = [entry for entry in store.log if entry.startswith("start")]
    assert seen_while_sending["k/0"] == ["start k/0", "start k/1"]
    assert seen_while_sending["k/2"] == ["start k/0", "start k/1", "start k/2", "start k/3"]
    assert len(seen_while_sending) == 4


async def test_an_answer_abandoned_midway_stops_its_read_ahead_and_closes_every_body():
    store = LoggedBodies(3)
    pieces = trees.answer_pieces(store, store.tree(), {})
    for _ in range(4):  # head, first opening, first two blocks
        await anext(pieces)
    await asyncio.sleep(0.01)  # the read ahead has begun
    assert "start k/1" in store.log
    await pieces.aclose()
    assert sorted(entry for entry in store.log if entry.startswith("end")) == ["end k/0", "end k/1"]
    assert not [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]


async def test_a_body_gone_before_its_turn_fails_the_answer_when_its_turn_comes():
    store = LoggedBodies(3)
    gone = store.bodies.pop("k/1")
    files = (*store.tree().files[:1], StoredFile("k/1", "0" * 32, len(gone), "k/1"), *store.tree().files[1:])
    tree = FileTree(files, gone="Submission not found")
    received = []
    with pytest.raises(KeyError):
        async for piece in trees.answer_pieces(store, tree, {}):
            received.append(piece)
    assert b"".join(received).count(trees.FILE_END) == 1  # the first file was sent whole
