"""The `files` field of uploads: a JSON list of {path, content} (spec §1.9, §1.10).

The document is pushed in pieces as it arrives (FilesDecoder) and decoded on the fly: the JSON
(exchange/streamed_json.py), each `content` string's escapes, base64 (streamed_base64.py) and
MD5, the bodies going to one temporary file on disk (spool.py). Memory per upload is bounded by
a constant, whatever the size or number of files; time is linear in the size. The whole list is
checked before anything is stored, so a bad upload changes nothing. Decoding is as lenient as
ngshare's (base64.decodebytes), and the errors are ngshare's, in its order: text that is not
UTF-8 first, then text that is not JSON, then the first bad element (its path before its
content); the checksum is ours.

Values other than `content` are checked and dropped, except `path`, kept while its JSON text is
at most PATH_TEXT_CAP bytes: a longer one is refused as too long (it is, whatever it says, since
MAX_PATH_LENGTH characters take at most 12 bytes each in JSON), where ngshare might have called
it illegal first.
"""

from __future__ import annotations

import asyncio
import binascii
import codecs
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

import pybase64

from ..stores.objects.base import CHUNK_SIZE
from .errors import BadRequest
from .limits import PATH_TOO_LONG, check_path
from .spool import Spool
from .streamed_base64 import NOT_BASE64, IncompleteBase64, LenientBase64
from .streamed_json import KeptString, NotJson, PushedJsonArray, has_control_characters, json_string_text

PATH_TEXT_CAP = 1 << 16
FEED_SIZE = 1 << 20  # bytes decoded at a time
UTF8_SLICE = 1 << 18  # bytes checked at a time, bounding the text the check makes
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
    spool: Spool | None = field(default=None, repr=False)

    def result(self) -> list[UploadedFile]:
        if self.error is not None:
            raise self.error
        return self.files

    def close(self) -> None:
        """Release the decoded bodies' disk space once the upload is stored or refused (else it
        goes when the last file is let go)."""
        if self.spool is not None:
            self.spool.close()
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


class _Content:
    """The JSON text of one `content` string, base64-decoded into the spool and checksummed.

    Base64 text with no escapes but `\\n` (base64.encodebytes' lines) and `\\/` is decoded by
    bulk byte operations; any other escape goes through the json module's scanner. Characters
    outside the base64 alphabet are dropped (those that are not ASCII too)."""

    def __init__(self, spool: Spool):
        self._spool = spool
        self.start = spool.size
        self.size = 0
        self._md5 = hashlib.md5()
        self._base64 = LenientBase64(self._write)
        self.decoded = False

    def _write(self, data: bytes) -> None:
        self._md5.update(data)
        self._spool.write(data)
        self.size += len(data)

    def piece(self, raw: bytes) -> None:
        text = raw
        if raw.find(b"\\") != -1:
            # Line feeds are never base64: drop them. No backslash is left only if each one
            # began a \n escape (or, undone first, a \/ escape): the replacing makes none.
            text = raw.replace(b"\\n", b"")
            if text.find(b"\\") != -1:
                had_line_feeds = len(text) != len(raw)
                text = raw.replace(b"\\/", b"/")
                if had_line_feeds:
                    text = text.replace(b"\\n", b"")
            if text.find(b"\\") != -1:  # other escapes: the json module's scanner
                self.text(json_string_text(raw))
                return
        if self._base64.feed_data(text):  # base64 characters only: no control characters
            return
        characters = text.translate(None, NOT_BASE64)
        if len(characters) != len(text) and has_control_characters(text):
            raise ValueError("control character in a string")  # as json.loads
        self._base64.feed_filtered(characters)

    def text(self, text: str) -> None:
        """The whole string, decoded."""
        self._base64.feed(text.encode("ascii", "ignore"))

    def end(self) -> None:
        try:
            self._base64.finish()
        except IncompleteBase64:
            return
        self.decoded = True

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


class _Utf8Check:
    """Whether the bytes pushed so far are UTF-8 (tornado decodes the field before anything)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = False  # a sequence cut by the end of a piece
        self.valid = True

    def feed(self, data: bytes) -> None:
        if not self.valid or (not self._pending and data.isascii()):
            return
        view = memoryview(data)
        try:
            for start in range(0, len(data), UTF8_SLICE):
                self._decoder.decode(view[start : start + UTF8_SLICE])
        except UnicodeDecodeError:
            self.valid = False
            return
        self._pending = bool(self._decoder.getstate()[0])

    def finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self.valid = False


class FilesDecoder:
    """A `files` JSON document pushed in pieces as it arrives: feed() each piece (split
    anywhere), then finish() for the outcome. Blocking and CPU-bound: call it from a thread."""

    def __init__(self) -> None:
        self._spool = Spool()
        self._utf8 = _Utf8Check()
        self._json = PushedJsonArray(self)
        self._files: list[UploadedFile] = []
        self._error: BadRequest | None = None
        # the element being read; duplicate keys: the last one counts, as with json.loads
        self._is_object = False
        self._path: KeptString | None = None
        self._content: _Content | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Decode the next piece. What this holds meanwhile is a few times FEED_SIZE at most,
        however large the piece: a larger one is taken FEED_SIZE at a time."""
        if len(data) > FEED_SIZE:
            view = memoryview(data)
            for start in range(0, len(view), FEED_SIZE):
                self._feed(bytes(view[start : start + FEED_SIZE]))
        else:
            self._feed(data if isinstance(data, bytes) else bytes(data))

    def _feed(self, data: bytes) -> None:
        self._utf8.feed(data)
        if self._utf8.valid:
            self._json.feed(data)
        if (not self._utf8.valid or self._json.failed) and self._spool.size:
            self._spool.truncate(0)  # the upload is refused whatever follows

    def finish(self) -> DecodedFiles:
        self._utf8.finish()
        if not self._utf8.valid:
            return self._refused(NOT_UTF8)
        try:
            self._json.finish()
        except NotJson:
            return self._refused(NOT_JSON)
        if self._error is not None:
            self.close()
            return DecodedFiles([], self._error)
        self._spool.flush()
        return DecodedFiles(self._files, spool=self._spool)

    def close(self) -> None:
        """Let go of what was held, for an upload abandoned before finish()."""
        self._files = []
        self._spool.close()

    def _refused(self, message: str) -> DecodedFiles:
        self.close()
        return DecodedFiles([], BadRequest(message))

    # what the JSON parser reports (streamed_json.ArrayHandler)
    def element(self, value: object) -> None:
        if self._error is None:
            try:
                self._files.append(self._small_file(value))
            except BadRequest as error:
                self._refuse(error)

    def element_start(self, is_object: bool) -> None:
        self._is_object, self._path, self._content = is_object, None, None

    def member_string(self, key: str | None) -> KeptString | _Content | None:
        if key == "path":
            self._path = KeptString(PATH_TEXT_CAP)
            return self._path
        if key == "content":
            self._drop_content()
            if self._error is None:  # else the upload is refused anyway: only check the text
                self._content = _Content(self._spool)
            return self._content
        return None

    def member_other(self, key: str | None) -> None:
        if key == "path":
            self._path = None
        elif key == "content":
            self._drop_content()

    def element_end(self) -> None:
        if self._error is None:
            try:
                self._files.append(self._checked_element())
            except BadRequest as error:
                self._refuse(error)

    def _refuse(self, error: BadRequest) -> None:
        self._error = error
        self._files = []
        self._spool.truncate(0)

    def _small_file(self, value: object) -> UploadedFile:
        """The rules on an element parsed whole (as json.loads would have)."""
        path = value.get("path") if isinstance(value, dict) else None
        check_file_path(path)
        content = value.get("content")  # type: ignore[union-attr]
        if not isinstance(content, str):
            raise BadRequest(BAD_CONTENT)
        data = _lenient_base64(content)
        start = self._spool.size
        self._spool.write(data)
        return UploadedFile(path, hashlib.md5(data).hexdigest(), len(data), self._spool.window(start, len(data)))

    def _drop_content(self) -> None:
        if self._content is not None:
            self._spool.truncate(self._content.start)
            self._content = None

    def _checked_element(self) -> UploadedFile:
        if not self._is_object or self._path is None:
            raise BadRequest(ILLEGAL_PATH)
        path = self._path.text
        if path is None:
            raise BadRequest(PATH_TOO_LONG)
        check_file_path(path)
        content = self._content
        if content is None or not content.decoded:
            raise BadRequest(BAD_CONTENT)
        return UploadedFile(path, content.md5, content.size, self._spool.window(content.start, content.size))


def check_file_path(path: object) -> None:
    """The rules a file's path in a tree must meet, as a 400."""
    if not is_legal_path(path):
        raise BadRequest(ILLEGAL_PATH)
    check_path(path)


def _lenient_base64(content: str) -> bytes:
    """base64.decodebytes' rules: characters outside the alphabet are dropped. What clients
    send (the alphabet, padded) is decoded by pybase64, faster and to the same bytes."""
    text = content if content.isascii() else content.encode("ascii", "ignore")
    try:
        return pybase64.b64decode(text, validate=True)
    except binascii.Error:
        pass
    try:
        return binascii.a2b_base64(text)
    except binascii.Error as error:
        raise BadRequest(BAD_CONTENT) from error


def decode_files_from(stream: IO[bytes]) -> DecodedFiles:
    """Decode a `files` JSON document read from a stream. Blocking and CPU-bound: run it in a
    thread."""
    decoder = FilesDecoder()
    try:
        while chunk := stream.read(CHUNK_SIZE):
            decoder.feed(chunk)
    except BaseException:
        decoder.close()
        raise
    return decoder.finish()


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
