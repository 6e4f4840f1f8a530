"""Form bodies without holding them in memory.

A form-encoded body is spooled to a temporary file as it arrives (refusing it past the size
limit), then split into fields in a worker thread. The `files` field is percent-decoded on the
fly straight into the exchange's streaming decoder, so even a large upload costs about one
file's size in memory and the event loop keeps serving other requests meanwhile. Other
encodings (multipart) are left to aiohttp.
"""

from __future__ import annotations

import asyncio
import io
from tempfile import SpooledTemporaryFile
from typing import IO
from urllib.parse import unquote_plus, unquote_to_bytes

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from ..exchange.errors import BadRequest
from ..exchange.files import IN_MEMORY_BODY, decode_files_from

FORM = "application/x-www-form-urlencoded"
CHUNK_SIZE = 1 << 20  # how much of a spooled body is read or written at a time
STREAMED_FIELDS = frozenset({"files"})


class FieldValue:
    """One field's value in a spooled body, read percent-decoded (and '+' as space)."""

    def __init__(self, body: IO[bytes], start: int, end: int):
        self._body = body
        self._position = start
        self._end = end
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        size = CHUNK_SIZE if size is None or size < 0 else max(size, 3)
        self._body.seek(self._position)
        raw = self._body.read(min(size, self._end - self._position))
        self._position += len(raw)
        data = self._pending + raw
        self._pending = b""
        cut = data.rfind(b"%", max(len(data) - 2, 0))
        if cut != -1 and self._position < self._end:  # an escape split by the read: finish it next time
            data, self._pending = data[:cut], data[cut:]
        return unquote_to_bytes(data.replace(b"+", b" "))

    def read_all(self) -> bytes:
        parts = []
        while part := self.read(CHUNK_SIZE):
            parts.append(part)
        return b"".join(parts)


def _field_bounds(body: IO[bytes]) -> list[tuple[int, int]]:
    """Where each '&'-separated field starts and ends."""
    bounds, start, offset = [], 0, 0
    body.seek(0)
    while chunk := body.read(CHUNK_SIZE):
        index = chunk.find(b"&")
        while index != -1:
            bounds.append((start, offset + index))
            start = offset + index + 1
            index = chunk.find(b"&", index + 1)
        offset += len(chunk)
    bounds.append((start, offset))
    return [(s, e) for s, e in bounds if e > s]


class NotUtf8:
    """A field value whose bytes are not UTF-8. Like tornado's get_argument, the request is
    refused only if it asks for the field, so an ignored field (`user`) may hold anything."""


def _text(raw: bytes) -> str | NotUtf8:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return NotUtf8()


def parse_form(body: IO[bytes], streamed: frozenset[str] = STREAMED_FIELDS) -> MultiDict:
    """Blocking: run in a thread. Values are text (or NotUtf8), except `streamed` fields:
    DecodedFiles."""
    fields: MultiDict = MultiDict()
    for start, end in _field_bounds(body):
        body.seek(start)
        head = body.read(min(end - start, 4096))
        equals = head.find(b"=")
        name_end = start + equals if equals != -1 else end
        body.seek(start)
        name = unquote_plus(body.read(name_end - start).decode("utf-8", "replace"))
        value = FieldValue(body, min(name_end + 1, end), end)
        if name in streamed:
            fields.add(name, decode_files_from(value))
        else:
            fields.add(name, _text(value.read_all()))
    return fields


def parse_query(request: web.BaseRequest) -> MultiDict:
    """The query string by the form's rules (aiohttp would turn bytes that are not UTF-8 into
    U+FFFD). It is short (aiohttp caps the request line), so it is parsed in place."""
    raw = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
    return parse_form(io.BytesIO(raw), streamed=frozenset())


async def spool_body(request: web.Request, limit: int) -> IO[bytes]:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    body = SpooledTemporaryFile(max_size=IN_MEMORY_BODY)
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK_SIZE):
        size += len(chunk)
        if size > limit:
            body.close()
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        body.write(chunk)
    return body


async def read_form(request: web.Request, limit: int) -> MultiDictProxy | MultiDict:
    if request.content_type != FORM or not request.body_exists:
        try:
            return await request.post()
        except UnicodeDecodeError as error:  # a multipart text field
            raise BadRequest("Invalid unicode in the form body") from error
    body = await spool_body(request, limit)
    try:
        return await asyncio.to_thread(parse_form, body)
    finally:
        body.close()
