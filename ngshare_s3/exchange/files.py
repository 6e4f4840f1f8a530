"""The `files` field of uploads: a JSON list of {path, content} (spec §1.9, §1.10).

The list is read from a stream one element at a time, each parsed by the standard json
module, and each body is decoded into a spooled temporary file, so an upload costs a few times
its largest file in memory however large the request, and time linear in its size. The whole
list is validated before anything is stored, so a bad upload changes nothing. Decoding is as lenient as ngshare's (base64.decodebytes); the checksum is ours.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile
from typing import IO

from ..stores.objects.base import CHUNK_SIZE
from .errors import BadRequest
from .json_fields import UNDECODABLE, json_array_elements
from .limits import check_path

IN_MEMORY_BODY = 1 << 20
NOT_JSON = "Files cannot be JSON decoded"
NOT_UTF8 = "Invalid unicode in files"
ILLEGAL_PATH = "Illegal path"
BAD_CONTENT = "Content cannot be base64 decoded"


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

    def close(self) -> None:
        """Release the decoded bodies' disk space once the upload is stored or refused."""
        for file in self.files:
            file.body.close()


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


def decode_files_from(stream: IO[bytes]) -> DecodedFiles:
    """Decode a `files` JSON document read from a stream. Blocking and CPU-bound: run it in a
    thread. As with ngshare's json.loads, a syntax error anywhere wins over a bad element."""
    decoded = DecodedFiles([])
    try:
        for element in json_array_elements(stream):
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


class FilesDecoder:
    """A `files` JSON document pushed in pieces as it arrives: feed() each piece (split
    anywhere), then finish() for the outcome. Blocking and CPU-bound: call it from a thread."""

    def __init__(self) -> None:
        self._text: IO[bytes] = SpooledTemporaryFile(max_size=IN_MEMORY_BODY)

    def feed(self, data: bytes) -> None:
        self._text.write(data)

    def finish(self) -> DecodedFiles:
        self._text.seek(0)
        try:
            return decode_files_from(self._text)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of what was held, for an upload abandoned before finish()."""
        self._text.close()


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
