"""Sending file trees (spec §1.9): each file's path, MD5 and body in base64 the way Python's
base64.encodebytes writes it (76-character lines, each ending in a newline).

Small trees are built in memory, so a delete that races the download still gets a clean 404.
Large ones stream, body by body, so a big submission never sits whole in memory.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..exchange.exchange import Exchange
from ..exchange.stored import FileTree, StoredFile
from ..exchange.errors import NotFound

log = logging.getLogger(__name__)

BUFFERED_TREE_LIMIT = 8 << 20
LINE_BYTES = 57  # encodebytes puts 57 input bytes on each 76-character line


async def base64_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    pending = b""
    async for chunk in chunks:
        pending += chunk
        whole = len(pending) - len(pending) % LINE_BYTES
        if whole:
            yield base64.encodebytes(pending[:whole]).decode("ascii")
            pending = pending[whole:]
    if pending:
        yield base64.encodebytes(pending).decode("ascii")


def listing(files: tuple[StoredFile, ...]) -> list[dict[str, str]]:
    return [{"path": f.path, "checksum": f.md5} for f in files]


async def send_tree(
    request: web.Request, exchange: Exchange, tree: FileTree, list_only: bool, **fields: object
) -> web.StreamResponse:
    if list_only:
        return web.json_response({"success": True, "files": listing(tree.files), **fields})
    if sum(f.size for f in tree.files) <= BUFFERED_TREE_LIMIT:
        return await _buffered(exchange, tree, fields)
    return await _streamed(request, exchange, tree, fields)


async def _buffered(exchange: Exchange, tree: FileTree, fields: dict) -> web.Response:
    files = []
    for f in tree.files:
        content = "".join([piece async for piece in base64_lines(exchange.read(tree, f))])
        files.append({"path": f.path, "checksum": f.md5, "content": content})
    return web.json_response({"success": True, "files": files, **fields})


async def _streamed(request: web.Request, exchange: Exchange, tree: FileTree, fields: dict) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    await response.prepare(request)
    try:
        await _write_tree(response, exchange, tree, fields)
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


async def _write_tree(response: web.StreamResponse, exchange: Exchange, tree: FileTree, fields: dict) -> None:
    head = json.dumps({"success": True, **fields})[:-1]
    await response.write(f'{head}, "files": ['.encode())
    for index, f in enumerate(tree.files):
        opening = json.dumps({"path": f.path, "checksum": f.md5})[:-1]
        await response.write(f'{", " if index else ""}{opening}, "content": "'.encode())
        async for piece in base64_lines(exchange.read(tree, f)):
            await response.write(piece.replace("\n", "\\n").encode("ascii"))
        await response.write(b'"}')
    await response.write(b"]}")


def _log_cut_short(request: web.Request, error: Exception) -> None:
    route = request.match_info.route.resource.canonical
    if isinstance(error, NotFound):
        log.warning("%s %s: a file was deleted while it was being sent; connection closed", request.method, route)
    else:
        log.warning("%s %s failed while sending files; connection closed", request.method, route, exc_info=error)
