"""Uploads and downloads of hundreds of megabytes that the test process never holds whole:
request bodies generated as they are sent, answers checked as they are read, and a thread that
samples a server process's resident memory meanwhile."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote_plus

import aiohttp
import psutil
import pybase64

MB = 1 << 20
BLOCK = 3 << 18  # bytes generated at a time; a multiple of 3, so each block's base64 stands alone
BOUNDARY = "----ngshare-test-boundary"


# Generated content: each block is a prefix unique to its file and place, then the same random
# tail; the tail's length is a multiple of 3, so its base64 is computed once.
PREFIX = 9
TAIL = random.Random(0).randbytes(BLOCK - PREFIX)
TAIL_BASE64 = pybase64.b64encode(TAIL)


@dataclass(frozen=True)
class GeneratedFile:
    """`size` bytes that depend only on `path`, generated a block at a time."""

    path: str
    size: int

    def blocks(self) -> Iterator[tuple[bytes, list[bytes]]]:
        """Each block and its base64, in pieces."""
        for index, start in enumerate(range(0, self.size, BLOCK)):
            prefix = hashlib.sha256(f"{self.path}:{index}".encode()).digest()[:PREFIX]
            length = min(BLOCK, self.size - start)
            if length == BLOCK:
                yield prefix + TAIL, [pybase64.b64encode(prefix), TAIL_BASE64]
            else:
                block = (prefix + TAIL)[:length]
                yield block, [pybase64.b64encode(block)]


def _files_json(files: list[GeneratedFile], sent: dict[str, str]) -> Iterator[tuple[bytes, bool]]:
    """The `files` field's JSON as (piece, is_base64) pairs; `sent` gets each file's MD5."""
    for index, file in enumerate(files):
        opening = json.dumps({"path": file.path, "content": ""})[:-2]
        yield ((", " if index else "[") + opening).encode(), False
        digest = hashlib.md5()
        for block, encoded in file.blocks():
            digest.update(block)
            for piece in encoded:
                yield piece, True
        sent[file.path] = digest.hexdigest()
        yield b'"}', False
    yield (b"]" if files else b"[]"), False


def _percent_encoded(piece: bytes, is_base64: bool) -> bytes:
    if piece is TAIL_BASE64:
        return TAIL_PERCENT_ENCODED
    if is_base64:  # only these three base64 characters need escapes; bulk replaces are fast
        return piece.replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")
    return quote_plus(piece).encode()


async def urlencoded_body(files: list[GeneratedFile], sent: dict[str, str]) -> AsyncIterator[bytes]:
    """What ngshare_exchange sends: a form-urlencoded body whose `files` holds the JSON."""
    yield b"files="
    for piece, is_base64 in _files_json(files, sent):
        yield _percent_encoded(piece, is_base64)


async def multipart_body(files: list[GeneratedFile], sent: dict[str, str]) -> AsyncIterator[bytes]:
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"\r\n\r\n'.encode()
    for piece, _ in _files_json(files, sent):
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


TAIL_PERCENT_ENCODED = _percent_encoded(TAIL_BASE64[:-1], True) + _percent_encoded(TAIL_BASE64[-1:], True)

CONTENT_TYPES = {
    "urlencoded": "application/x-www-form-urlencoded",
    "multipart": f"multipart/form-data; boundary={BOUNDARY}",
}
BODIES = {"urlencoded": urlencoded_body, "multipart": multipart_body}


@dataclass
class ReceivedFile:
    path: str
    checksum: str  # what the server says
    md5: str  # what the bytes that came are
    size: int


@dataclass
class TreeReader:
    """Reads a streamed file tree (spec §1.9) as it arrives, base64-decoding and hashing each
    file's content, so that the test process holds a few blocks, never the tree."""

    files: list[ReceivedFile] = field(default_factory=list)
    _buffer: bytes = b""
    _in_content: bool = False
    _pending: bytes = b""  # base64 characters short of a group of four
    _head: tuple[str, str] = ("", "")
    _digest: object = None
    _size: int = 0

    HEAD = re.compile(rb'\{"path": "((?:[^"\\]|\\.)*)", "checksum": "([0-9a-f]{32})", "content": "')

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._buffer:
            if not self._in_content:
                found = self.HEAD.search(self._buffer)
                if found is None:
                    self._buffer = self._buffer[-200:]
                    return
                self._head = (json.loads(b'"' + found.group(1) + b'"'), found.group(2).decode())
                self._digest, self._size, self._pending = hashlib.md5(), 0, b""
                self._buffer = self._buffer[found.end():]
                self._in_content = True
            end = self._buffer.find(b'"')
            text = self._buffer if end == -1 else self._buffer[:end]
            if end == -1 and text.endswith(b"\\"):  # an escape cut by the read
                text, self._buffer = text[:-1], b"\\"
            else:
                self._buffer = b"" if end == -1 else self._buffer[end + 1:]
            self._decode(text.replace(b"\\n", b""))
            if end == -1:
                return
            self._decode(b"", final=True)
            self.files.append(ReceivedFile(*self._head, self._digest.hexdigest(), self._size))
            self._in_content = False

    def _decode(self, text: bytes, final: bool = False) -> None:
        text = self._pending + text
        whole = len(text) if final else len(text) - len(text) % 4
        data = pybase64.b64decode(text[:whole])
        self._pending = text[whole:]
        self._digest.update(data)
        self._size += len(data)


async def read_tree(response: aiohttp.ClientResponse) -> list[ReceivedFile]:
    reader = TreeReader()
    async for chunk in response.content.iter_chunked(1 << 18):
        reader.feed(chunk)
    return reader.files


class RssSampler:
    """The peak resident memory of a process above what it held when sampling began."""

    def __init__(self, pid: int, interval: float = 0.01):
        self._process = psutil.Process(pid)
        self._interval = interval
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / MB

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        try:
            self.peak = max(self.peak, self._process.memory_info().rss)
        except psutil.Error:
            pass
