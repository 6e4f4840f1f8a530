"""Form bodies parsed as they arrive, off the event loop, in bounded memory.

The event loop only moves bytes: it reads a chunk from the socket once the chunk fits in both
the upload's own allowance and the process-wide one (ByteBudget), and queues it for the one
thread that parses this body. The thread splits fields, percent-decodes and streams `files`
into the exchange's decoder, and hands each chunk's bytes back as it is done with them. So an
upload holds at most UPLOAD_QUEUE bytes of body in memory, all uploads together at most
--upload-memory, and a client that sends faster than the server parses simply waits.

Bodies of other types (or none) carry no fields, as in tornado.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from multidict import MultiDict

from .form_fields import FormFields, STREAMED_FIELDS
from .multipart import MultipartFormParser, boundary_of
from .upload_memory import ByteBudget
from .urlencoded import UrlencodedParser, parse_urlencoded

log = logging.getLogger(__name__)

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
CHUNK_SIZE = 256 << 10  # the most read off the socket at a time
UPLOAD_QUEUE = 1 << 20  # the most one upload holds queued for its parser
UNCAPPED = 1 << 62


class BodyParser(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> FormFields: ...

    def abandon(self) -> None: ...


def parse_query(request: web.BaseRequest) -> MultiDict:
    """The query string by the form's rules (aiohttp would turn bytes that are not UTF-8 into
    U+FFFD). It is short (aiohttp caps the request line), so it is parsed in place."""
    raw = request.rel_url.raw_query_string.encode("utf-8", "surrogateescape")
    return parse_urlencoded(raw, FormFields(UNCAPPED, streamed=frozenset())).fields


def body_parser(request: web.Request, max_field_size: int) -> BodyParser | None:
    form = FormFields(max_field_size, STREAMED_FIELDS)
    if request.content_type == URLENCODED:
        return UrlencodedParser(form)
    if request.content_type == MULTIPART:
        return MultipartFormParser(boundary_of(request.headers.get("Content-Type", "")), form)
    return None


class ParserThread:
    """One body's parser in a thread of its own, fed through a queue. A thread per upload
    (not a shared pool) so that no upload's queued bytes wait for a parser to be free."""

    _END, _CANCEL = object(), object()

    def __init__(self, parser: BodyParser, consumed: Callable[[int], None]):
        self._parser = parser
        self._consumed = consumed
        self._loop = asyncio.get_running_loop()
        self._outcome: asyncio.Future[MultiDict] = self._loop.create_future()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.failed = False
        self._cancelled = False
        threading.Thread(target=self._run, name="ngshare-s3-form-parser", daemon=True).start()

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    async def outcome(self) -> MultiDict:
        self._queue.put(self._END)
        return await self._outcome

    def cancel(self) -> None:
        """Stop parsing; bytes still queued are handed back as the thread drains them."""
        self._cancelled = True
        self._queue.put(self._CANCEL)

    def _hand_over(self, callback: Callable, *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop has closed: nothing is waiting any more
            pass

    def _settle(self, fields: MultiDict | None, error: BaseException | None) -> None:
        if self._cancelled or self._outcome.done():  # nobody waits for it any more
            return
        if error is not None:
            self._outcome.set_exception(error)
        else:
            self._outcome.set_result(fields)

    def _run(self) -> None:
        error: BaseException | None = None
        fields = None
        try:
            while (chunk := self._queue.get()) is not self._END and chunk is not self._CANCEL:
                if error is None:
                    try:
                        self._parser.write(chunk)
                    except Exception as failure:
                        error, self.failed = failure, True
                self._hand_over(self._consumed, len(chunk))
            if chunk is not self._CANCEL and error is None:
                fields = self._parser.finish().fields
        except Exception as failure:
            error = failure
        finally:
            if fields is None:
                try:
                    self._parser.abandon()
                except Exception:
                    log.exception("Could not let go of an abandoned upload's files")
            self._hand_over(self._settle, fields, error)


class Allowance:
    """An upload's own queue limit and the process-wide budget, taken and given back together."""

    def __init__(self, shared: ByteBudget):
        self._own = ByteBudget(UPLOAD_QUEUE)
        self._shared = shared

    async def take(self, size: int) -> int:
        size = self._shared.grant(self._own.grant(size))
        await self._own.acquire(size)
        try:
            await self._shared.acquire(size)
        except BaseException:
            self._own.release(size)
            raise
        return size

    def give_back(self, size: int) -> None:
        self._own.release(size)
        self._shared.release(size)


async def read_form(request: web.Request, max_body_size: int, max_field_size: int, memory: ByteBudget) -> MultiDict:
    if request.method not in request.POST_METHODS or not request.body_exists:
        return MultiDict()
    parser = body_parser(request, max_field_size)
    if parser is None:
        return MultiDict()
    if request.content_length is not None and request.content_length > max_body_size:
        raise web.HTTPRequestEntityTooLarge(max_size=max_body_size, actual_size=request.content_length)
    allowance = Allowance(memory)
    thread = ParserThread(parser, allowance.give_back)
    size = 0
    try:
        while not thread.failed:
            taken = await allowance.take(CHUNK_SIZE)
            try:
                chunk = await request.content.read(taken)
            except BaseException:
                allowance.give_back(taken)
                raise
            allowance.give_back(taken - len(chunk))
            if not chunk:
                break
            size += len(chunk)
            if size > max_body_size:
                allowance.give_back(len(chunk))
                raise web.HTTPRequestEntityTooLarge(max_size=max_body_size, actual_size=size)
            thread.put(chunk)
        return await thread.outcome()
    except BaseException:
        thread.cancel()
        raise
