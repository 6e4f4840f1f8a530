"""Upload bodies and download answers too large to hold in the load generator's memory.

A 1 GB submission is a 1.4 GB form body and comes back as a 1.4 GB JSON answer. The benchmark
writes such a body to a file once, before its phase (so the clock measures the server), and
checks such an answer as it arrives, keeping only the MD5 of every file's decoded bytes: the
client's own memory then stays flat whatever size is measured.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Union
from urllib.parse import quote

CHUNK = 3 * 1024 * 1024  # a multiple of 3, so each chunk's base64 has no padding

# What application/x-www-form-urlencoded must escape in base64 text (as `requests` does).
_FORM_BASE64 = ((b"+", b"%2B"), (b"/", b"%2F"), (b"=", b"%3D"))


def random_chunks(size: int, seed: str) -> Iterable[bytes]:
    """`size` bytes that do not compress, in chunks; the same for the same seed."""
    import random

    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield rng.randbytes(n)
        left -= n


@dataclass
class BodyFile:
    """A POST body on disk, and what the server must give back for it."""

    path: Path
    content_type: str
    expected: list[tuple[str, str]]  # (path, MD5 hex) of every file in the submission, in order
    total_bytes: int = 0  # decoded bytes of all files

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _quote_form(text: bytes) -> bytes:
    return quote(text, safe="").encode()


def write_files_form(out: BinaryIO, user: str, files: list[tuple[str, Union[bytes, int]]], *,
                     encoding: str = "urlencoded", seed: str = "big") -> tuple[str, list[tuple[str, str]], int]:
    """Writes the body of `POST submission` as ngshare_exchange would send it (fields `files`, a
    JSON list of `{path, content}` in base64, and `user`), form-urlencoded or as
    multipart/form-data, to `out`. A file given as an int is that many random bytes. Returns the
    content type, the (path, MD5) of every file and their total size."""
    boundary = f"benchmark-{uuid.uuid4().hex}"
    expected: list[tuple[str, str]] = []
    total = 0

    def text(piece: str) -> None:
        raw = piece.encode()
        out.write(_quote_form(raw) if encoding == "urlencoded" else raw)

    def b64(chunk: bytes) -> None:
        encoded = binascii.b2a_base64(chunk, newline=False)
        if encoding == "urlencoded":
            for plain, escaped in _FORM_BASE64:
                encoded = encoded.replace(plain, escaped)
        out.write(encoded)

    if encoding == "urlencoded":
        out.write(b"files=")
    elif encoding == "multipart":
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="files"\r\n\r\n'.encode())
    else:
        raise ValueError(f"unknown encoding {encoding!r}")
    text("[")
    for index, (path, content) in enumerate(files):
        text((", " if index else "") + '{"path": ' + json.dumps(path) + ', "content": "')
        md5 = hashlib.md5()
        chunks = [content] if isinstance(content, bytes) else random_chunks(content, f"{seed}/{path}")
        pending = b""
        for chunk in chunks:
            md5.update(chunk)
            total += len(chunk)
            pending += chunk
            cut = len(pending) - len(pending) % 3
            if cut:
                b64(pending[:cut])
                pending = pending[cut:]
        if pending:
            b64(pending)
        expected.append((path, md5.hexdigest()))
        text('"}')
    text("]")
    if encoding == "urlencoded":
        out.write(b"&user=" + _quote_form(user.encode()))
        return "application/x-www-form-urlencoded", expected, total
    out.write(f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\n{user}'
              f"\r\n--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", expected, total


def write_submission_body(target: Path, user: str, files: list[tuple[str, Union[bytes, int]]], *,
                          encoding: str = "urlencoded", seed: str = "big") -> BodyFile:
    with open(target, "wb") as out:
        content_type, expected, total = write_files_form(out, user, files, encoding=encoding, seed=seed)
    return BodyFile(target, content_type, expected, total)


def submission_form(user: str, files: list[tuple[str, bytes]], cache: dict | None = None) -> bytes:
    """A small submission's form body in memory: the same bytes as `prepare_form` makes, made
    without a Python call per escaped character. `cache` keeps the encoded entries of files
    every student sends alike (the released data file)."""
    parts = [b"files=", _quote_form(b"[")]
    for index, (path, content) in enumerate(files):
        key = (path, hashlib.md5(content).digest())
        entry = None if cache is None else cache.get(key)
        if entry is None:
            out = io.BytesIO()
            out.write(_quote_form(('{"path": ' + json.dumps(path) + ', "content": "').encode()))
            encoded = binascii.b2a_base64(content, newline=False)
            for plain, escaped in _FORM_BASE64:
                encoded = encoded.replace(plain, escaped)
            out.write(encoded)
            out.write(_quote_form(b'"}'))
            entry = out.getvalue()
            if cache is not None:
                cache[key] = entry
        if index:
            parts.append(_quote_form(b", "))
        parts.append(entry)
    parts += [_quote_form(b"]"), b"&user=", _quote_form(user.encode())]
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Answers, checked as they arrive


@dataclass
class StreamedContent:
    """A base64 `content` string seen only in passing: the MD5 and length of its bytes."""

    md5: Any = field(default_factory=hashlib.md5)
    length: int = 0
    _tail: bytes = b""
    bad: bool = False

    def feed(self, text: bytes) -> None:
        data = self._tail + text if self._tail else text
        cut = len(data) - len(data) % 4
        self._tail = data[cut:]
        if cut:
            self._decode(data[:cut])

    def finish(self) -> str:
        if self._tail:
            self.bad = True  # base64 text whose length is not a multiple of 4
            self._decode(self._tail + b"=" * (-len(self._tail) % 4))
            self._tail = b""
        return self.md5.hexdigest()

    def _decode(self, data: bytes) -> None:
        try:
            raw = binascii.a2b_base64(data)
        except binascii.Error:
            self.bad = True
            return
        self.md5.update(raw)
        self.length += len(raw)


_SPECIAL = re.compile(rb'["\\]')
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("/"): b"/", ord("\\"): b"\\", ord('"'): b'"'}


class JsonStream:
    """An incremental JSON reader that builds the answer as Python values, except that every
    string under a key `content` is decoded from base64 and hashed as it arrives
    (StreamedContent) instead of being kept. Structure outside those strings is small."""

    def __init__(self) -> None:
        self.buffer = b""
        self.stack: list[list] = []  # [container, pending key or None]
        self.result: Any = None
        self.done = False
        self.string: bytearray | StreamedContent | None = None  # the string being read
        self.scalar = b""

    # -- values --------------------------------------------------------------------------------

    def _value(self, value: Any) -> None:
        if not self.stack:
            self.result, self.done = value, True
            return
        frame = self.stack[-1]
        if isinstance(frame[0], list):
            frame[0].append(value)
        elif frame[1] is None:
            frame[1] = value  # a key
        else:
            frame[0][frame[1]] = value
            frame[1] = None

    def _string_is_content(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1][0], dict) and self.stack[-1][1] == "content"

    def _end_scalar(self) -> None:
        if self.scalar:
            self._value(json.loads(self.scalar))
            self.scalar = b""

    # -- bytes ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.buffer += data
        buffer, at = self.buffer, 0
        while at < len(buffer):
            if isinstance(self.string, StreamedContent):
                quote_at = buffer.find(b'"', at)
                end = len(buffer) if quote_at < 0 else quote_at
                # Base64 text, maybe with escaped newlines (encodebytes): in bulk, not per escape.
                segment = buffer[at:end]
                held = 0
                if quote_at < 0 and segment.endswith(b"\\"):
                    segment, held = segment[:-1], 1  # an escape cut in two: wait for its end
                if b"\\" in segment:
                    segment = segment.replace(b"\\n", b"")
                    if b"\\/" in segment:
                        segment = segment.replace(b"\\/", b"/")
                if b"\\" not in segment:
                    self.string.feed(segment)
                    if quote_at < 0:
                        at = len(buffer) - held
                        break
                    self._end_string()
                    at = quote_at + 1
                    continue
            if self.string is not None:
                match = _SPECIAL.search(buffer, at)
                end = match.start() if match else len(buffer)
                self._string_bytes(buffer[at:end])
                if match is None:
                    at = len(buffer)
                    break
                if buffer[end] == ord('"'):
                    self._end_string()
                    at = end + 1
                    continue
                # a backslash escape: wait for all of it
                if end + 1 >= len(buffer):
                    at = end
                    break
                kind = buffer[end + 1]
                if kind == ord("u"):
                    if end + 6 > len(buffer):
                        at = end
                        break
                    self._string_bytes(chr(int(buffer[end + 2:end + 6], 16)).encode("utf-8", "surrogatepass"))
                    at = end + 6
                else:
                    self._string_bytes(_ESCAPES.get(kind, bytes([kind])))
                    at = end + 2
                continue
            byte = buffer[at]
            if byte in b" \t\r\n":
                self._end_scalar()
            elif byte == ord('"'):
                self._end_scalar()
                self.string = StreamedContent() if self._string_is_content() else bytearray()
            elif byte in b"{[":
                self._end_scalar()
                self.stack.append([{} if byte == ord("{") else [], None])
            elif byte in b"}]":
                self._end_scalar()
                container = self.stack.pop()[0]
                self._value(container)
            elif byte in b":,":
                self._end_scalar()
            else:
                self.scalar += bytes([byte])
            at += 1
        self.buffer = buffer[at:]

    def _string_bytes(self, piece: bytes) -> None:
        if isinstance(self.string, StreamedContent):
            self.string.feed(piece.translate(None, b" \n\r\t"))
        else:
            self.string += piece

    def _end_string(self) -> None:
        value = self.string
        self.string = None
        if isinstance(value, StreamedContent):
            value.finish()
            self._value(value)
        else:
            self._value(value.decode("utf-8", "surrogatepass"))

    def close(self) -> Any:
        self._end_scalar()
        if not self.done or self.stack or self.string is not None:
            raise ValueError("the answer ended before its JSON did")
        return self.result


def content_md5(content: Any) -> str | None:
    """The MD5 of a file's decoded bytes, whether the answer was read whole or streamed."""
    if isinstance(content, StreamedContent):
        return None if content.bad else content.md5.hexdigest()
    import pybase64  # the server's own dependency: a third of base64's time for the client

    try:
        return hashlib.md5(pybase64.b64decode(content or "")).hexdigest()
    except (binascii.Error, ValueError):
        return None


def scratch_folder(parent: Path) -> Path:
    folder = parent / "bodies"
    folder.mkdir(exist_ok=True)
    return folder


def remove(body: BodyFile | None) -> None:
    if body is not None:
        try:
            os.unlink(body.path)
        except OSError:
            pass
