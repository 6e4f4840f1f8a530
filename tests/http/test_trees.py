"""The encoding of downloaded trees: exactly what base64.encodebytes writes, with each newline
escaped for JSON, whatever the sizes of the chunks the store hands over."""

from __future__ import annotations

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
