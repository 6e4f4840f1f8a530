"""The `files` field of uploads: a JSON list of {path, content} (spec §1.9, §1.10).

The list is read from a stream one element at a time, each parsed by the standard json
module, and each body is decoded into a spooled temporary file, so an upload costs a few times
its largest file in memory however large the request, and time linear in its size. The whole list is validated before anything is stored, so a bad upload changes
nothing. Decoding is as lenient as ngshare's (base64.decodebytes); the checksum is ours.
"""

from __future__ import annotations

import asyncio
import binascii
import codecs
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import IO

from ..stores.objects.base import CHUNK_SIZE
from .errors import BadRequest
from .json_fields import UNDECODABLE
from .limits import check_path

IN_MEMORY_BODY = 1 << 20
NOT_JSON = "Files cannot be JSON decoded"
NOT_UTF8 = "Invalid unicode in files"
ILLEGAL_PATH = "Illegal path"
BAD_CONTENT = "Content cannot be base64 decoded"
JSON_SPACE = re.compile(r"[^ \t\n\r]")


@dataclass(frozen=True)
class UploadedFile:
    path: str
    md5: str
    size: int
    body: IO[bytes] = field(repr=False)

    @classmethod
    def of_bytes(cls, path: str, data: bytes) -> UploadedFile:
        return cls(path, hashlib.md5(data).hexdigest(), len(data), io.BytesIO(data))

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, read off the event loop, for an object store's put()."""
        self.body.seek(0)
        while chunk := await asyncio.to_thread(self.body.read, CHUNK_SIZE):
            yield chunk


@dataclass
class DecodedFiles:
    """The outcome of decoding a `files` field: its files, or the 400 it deserves. The error
    waits until the exchange asks, so that checks ngshare makes first still come first."""

    files: list[UploadedFile]
    error: BadRequest | None = None

    def result(self) -> list[UploadedFile]:
        if self.error is not None:
            raise self.error
        return self.files


def is_legal_path(path: object) -> bool:
    """Relative, no trailing slash, no '.' or '..' component; 'a//b' is allowed as in ngshare."""
    if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
        return False
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape cannot name a file
        return False
    return not any(part in {".", ".."} for part in path.split("/"))


def _lenient_base64(content: str) -> bytes:
    """base64.decodebytes' rules: characters outside the alphabet are dropped."""
    try:
        return binascii.a2b_base64(content)  # no copy while the text is ASCII, as clients send
    except binascii.Error:
        raise
    except ValueError:
        return binascii.a2b_base64(content.encode("ascii", "ignore"))


def _decode_element(element: object) -> UploadedFile:
    path = element.get("path") if isinstance(element, dict) else None
    if not is_legal_path(path):
        raise BadRequest(ILLEGAL_PATH)
    check_path(path)
    content = element.get("content")
    if not isinstance(content, str):
        raise BadRequest(BAD_CONTENT)
    try:
        data = _lenient_base64(content)
    except binascii.Error as error:
        raise BadRequest(BAD_CONTENT) from error
    body = SpooledTemporaryFile(max_size=IN_MEMORY_BODY)
    body.write(data)
    body.seek(0)
    return UploadedFile(path, hashlib.md5(data).hexdigest(), len(data), body)


class _JsonText:
    """A byte stream as text, read only as far as the parser needs. What is held is at least
    doubled on each read, so retrying a value that did not fit yet stays linear overall."""

    decoder = json.JSONDecoder()

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._at = 0
        self._ended = False

    def _more(self) -> bool:
        if self._ended:
            return False
        pieces = [self._text[self._at :]]
        wanted = max(CHUNK_SIZE, len(pieces[0]))
        while wanted > 0:
            chunk = self._stream.read(CHUNK_SIZE)
            self._ended = not chunk
            pieces.append(self._utf8.decode(chunk, final=self._ended))
            if self._ended:
                break
            wanted -= len(chunk)
        self._text, self._at = "".join(pieces), 0
        return True

    def next_character(self) -> str:
        """The next character that is not JSON white space ('' at the end), not consumed."""
        while (found := JSON_SPACE.search(self._text, self._at)) is None:
            self._at = len(self._text)
            if not self._more():
                return ""
        self._at = found.start()
        return self._text[self._at]

    def take(self, character: str) -> None:
        if self.next_character() != character:
            raise ValueError(f"expected {character!r}")
        self._at += 1

    def value(self) -> object:
        self.next_character()
        while True:
            try:
                value, end = self.decoder.raw_decode(self._text, self._at)
            except ValueError:
                if not self._more():
                    raise
                continue
            if end == len(self._text) and self._more():
                continue  # a number may go on in the next read
            self._at = end
            if end > len(self._text) - end:  # let go of a large value's text (linear overall)
                self._text, self._at = self._text[end:], 0
            return value


def _array_elements(text: _JsonText) -> Iterator[object]:
    """Each element of the JSON array the text holds; ValueError if it holds anything else."""
    text.take("[")
    if text.next_character() == "]":
        text.take("]")
    else:
        while True:
            yield text.value()
            if text.next_character() == "]":
                text.take("]")
                break
            text.take(",")
    if text.next_character():
        raise ValueError("data after the array")


def decode_files_from(stream: IO[bytes]) -> DecodedFiles:
    """Decode a `files` JSON document read from a stream. Blocking and CPU-bound: run it in a
    thread. As with ngshare's json.loads, a syntax error anywhere wins over a bad element."""
    decoded = DecodedFiles([])
    try:
        for element in _array_elements(_JsonText(stream)):
            if decoded.error is None:
                try:
                    decoded.files.append(_decode_element(element))
                except BadRequest as error:
                    decoded.error = error
    except UnicodeDecodeError:  # before JSON, as tornado decodes the field first
        return DecodedFiles([], BadRequest(NOT_UTF8))
    except UNDECODABLE:
        return DecodedFiles([], BadRequest(NOT_JSON))
    return decoded


# The `files` field as it reaches the exchange: decoded while a form body streamed in, or text
# (from a query string or a multipart body), or absent.
FilesField = DecodedFiles | str | None


def decode_files(field: FilesField) -> list[UploadedFile]:
    """The uploaded files, or the first problem with them as a 400 (spec §1.9 order)."""
    if field is None:
        raise BadRequest("Please supply files")
    if isinstance(field, str):
        field = decode_files_from(io.BytesIO(field.encode("utf-8")))
    return field.result()
