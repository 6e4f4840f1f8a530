"""Sending file trees (spec §1.9): each file's path, MD5 and body in base64 the way Python's
base64.encodebytes writes it (76-character lines, each ending in a newline).

Every tree streams from the object store into the response, block by block, so no request
holds a whole tree. The first block of the first body is read before the answer starts, so a
tree deleted before the download gets a clean 404; a body that vanishes later cuts the
connection short. Releases are the exception that proves the rule: their answer never changes,
so it is built once per process and kept in the release cache (release_cache.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

import pybase64
from aiohttp import web

from ..exchange.errors import NotFound
from ..exchange.exchange import Exchange
from ..exchange.stored import FileTree, StoredFile
from .release_cache import ReleaseCache

log = logging.getLogger(__name__)

LINE_BYTES = 57  # encodebytes puts 57 input bytes on each 76-character line
LINE_CHARS = 76
# Input encoded in one step: a few milliseconds at most, so it stays on the event loop.
BLOCK_LINES = 4096
BLOCK_BYTES = LINE_BYTES * BLOCK_LINES
_BLOCK_LINES = struct.Struct(f"{LINE_CHARS}s" * BLOCK_LINES)  # cuts a block's base64 into lines in C
ESCAPED_NEWLINE = b"\\n"  # a newline inside a JSON string

# Largest piece of a kept answer handed to the connection at once: the transport copies what
# the socket does not take, so this bounds the memory each download holds beyond the cache.
WRITE_BYTES = 256 << 10

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def escaped_base64(data: bytes | bytearray | memoryview) -> bytes:
    """base64.encodebytes(data) with every newline written as JSON's escape: one pass of
    pybase64 (SIMD, twenty times binascii's speed here) over the whole block, cut into lines
    by struct (encodebytes loops in Python)."""
    encoded = pybase64.b64encode(data)
    if not encoded:
        return b""
    if len(encoded) == _BLOCK_LINES.size:
        lines = _BLOCK_LINES.unpack(encoded)
    else:  # a body's last block
        whole, rest = divmod(len(encoded), LINE_CHARS)
        lines = struct.unpack_from(f"{LINE_CHARS}s" * whole, encoded)
        if rest:
            lines += (encoded[-rest:],)
    return ESCAPED_NEWLINE.join(lines) + ESCAPED_NEWLINE


def escaped_base64_size(size: int) -> int:
    """The length of escaped_base64 of `size` bytes."""
    return 4 * -(-size // 3) + len(ESCAPED_NEWLINE) * -(-size // LINE_BYTES)


async def escaped_base64_blocks(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """escaped_base64 of a stream, a block at a time: whatever size the chunks, lines break
    where encodebytes breaks them, and no byte is copied more than once on the way. The
    stream is closed when this is, so a body left unread lets go of its connection at once."""
    carry = bytearray()
    try:
        async for chunk in chunks:
            view = memoryview(chunk)
            if carry:
                taken = BLOCK_BYTES - len(carry)
                carry += view[:taken]
                view = view[taken:]
                if len(carry) < BLOCK_BYTES:
                    continue
                yield escaped_base64(carry)
                carry = bytearray()
            whole = len(view) - len(view) % BLOCK_BYTES
            for start in range(0, whole, BLOCK_BYTES):
                yield escaped_base64(view[start : start + BLOCK_BYTES])
            carry += view[whole:]
        if carry:
            yield escaped_base64(carry)
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()


def listing(files: tuple[StoredFile, ...]) -> list[dict[str, str]]:
    return [{"path": f.path, "checksum": f.md5} for f in files]


def _head(fields: dict) -> bytes:
    return json.dumps({"success": True, **fields})[:-1].encode() + b', "files": ['


def _opening(index: int, file: StoredFile) -> bytes:
    opening = json.dumps({"path": file.path, "checksum": file.md5})[:-1].encode()
    return (b", " if index else b"") + opening + b', "content": "'


FILE_END = b'"}'
TREE_END = b"]}"


def answer_size(tree: FileTree, fields: dict) -> int:
    """The length of the answer answer_pieces writes, known before reading any body."""
    size = len(_head(fields)) + len(TREE_END)
    for index, f in enumerate(tree.files):
        size += len(_opening(index, f)) + escaped_base64_size(f.size) + len(FILE_END)
    return size


async def _first_block(body: AsyncIterator[bytes]) -> bytes:
    return await anext(body, b"")


async def answer_pieces(exchange: Exchange, tree: FileTree, fields: dict) -> AsyncIterator[bytes]:
    """The JSON answer carrying the tree, piece by piece. The first block of the first body is
    read before the first piece, so a tree already gone raises NotFound before anything is
    sent. While one body is sent, the next one's first block is already being read: the store's
    answer time overlaps the sending instead of adding to it, and one block ahead keeps the
    memory a download holds bounded whatever the tree."""
    bodies = [escaped_base64_blocks(exchange.read(tree, f)) for f in tree.files]
    ahead: asyncio.Task[bytes] | None = None
    try:
        first = await anext(bodies[0], b"") if bodies else b""
        yield _head(fields)
        for index, (f, body) in enumerate(zip(tree.files, bodies)):
            if index + 1 < len(bodies):
                ahead = asyncio.ensure_future(_first_block(bodies[index + 1]))
            yield _opening(index, f)
            yield first
            async for block in body:
                yield block
            yield FILE_END
            if ahead is not None:
                first, ahead = await ahead, None
        yield TREE_END
    finally:
        if ahead is not None:
            await _abandon(ahead)
        for body in bodies:
            await body.aclose()


async def _abandon(task: asyncio.Task) -> None:
    """Stop a read ahead nobody will use, and wait until it has let go of its body (a body
    being read cannot be closed); its failure, if any, has no one left to hear of it."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


async def send_tree(
    request: web.Request, exchange: Exchange, tree: FileTree, list_only: bool, **fields: object
) -> web.StreamResponse:
    if list_only:
        return web.json_response({"success": True, "files": listing(tree.files), **fields})
    return await _streamed(request, answer_pieces(exchange, tree, fields))


async def send_release(
    request: web.Request, exchange: Exchange, tree: FileTree, cache: ReleaseCache
) -> web.StreamResponse:
    """A release's full answer from the cache, built on first use; a release too large for
    the cache streams like any other tree."""
    if not cache.fits(answer_size(tree, {})):
        return await _streamed(request, answer_pieces(exchange, tree, {}))

    async def build() -> bytes:
        async with contextlib.aclosing(answer_pieces(exchange, tree, {})) as pieces:
            return b"".join([piece async for piece in pieces])

    # The object keys carry the release id; with paths, MD5s and sizes they fix every byte.
    answer = await cache.get(tree.files, build)
    return await _send_kept(request, answer)


async def _send_kept(request: web.Request, answer: bytes) -> web.StreamResponse:
    response = web.StreamResponse(headers=JSON_HEADERS)
    response.content_length = len(answer)
    await response.prepare(request)
    view = memoryview(answer)
    for start in range(0, len(view), WRITE_BYTES):
        await response.write(view[start : start + WRITE_BYTES])
    await response.write_eof()
    return response


async def _streamed(request: web.Request, pieces: AsyncIterator[bytes]) -> web.StreamResponse:
    async with contextlib.aclosing(pieces):
        first = await anext(pieces)  # a tree gone already is a clean error answer
        response = web.StreamResponse(headers=JSON_HEADERS)
        await response.prepare(request)
        try:
            await response.write(first)
            async for piece in pieces:
                await response.write(piece)
        except Exception as error:
            if request.transport is None or request.transport.is_closing():
                raise  # the client went away: the error middleware counts it
            # Too late for an error answer: cut this one short, so the client sees a failed
            # transfer, never a corrupt file or a second answer inside the first.
            _log_cut_short(request, error)
            request.transport.close()
            return response
    await response.write_eof()
    return response


def _log_cut_short(request: web.Request, error: Exception) -> None:
    route = request.match_info.route.resource.canonical
    if isinstance(error, NotFound):
        log.warning("%s %s: a file was deleted while it was being sent; connection closed", request.method, route)
    else:
        log.warning("%s %s failed while sending files; connection closed", request.method, route, exc_info=error)
