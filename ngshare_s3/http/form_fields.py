"""The fields of a form as a parser finds them, whatever the encoding.

Text fields become tornado's argument values, which ngshare's clients rely on (spec §1.3):
UTF-8 text with control characters turned into spaces and stripped, or NotUtf8. Together they
may hold at most `max_size` bytes, so a body of a million tiny fields costs no more than one of
a few large ones. The `files` field is not held: its bytes go to the exchange's streaming
decoder as they come, and only its last occurrence is kept, as only the last one is read.

Runs in the thread that parses the body.
"""

from __future__ import annotations

import re

from multidict import MultiDict

from ..exchange.errors import ExchangeError
from ..exchange.files import DecodedFiles, FilesDecoder

STREAMED_FIELDS = frozenset({"files"})
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")
# What a held field costs beyond its bytes (the objects that hold it), so that many empty
# fields count too.
FIELD_OVERHEAD = 64


class FieldsTooLarge(ExchangeError):
    status = 413


class NotUtf8:
    """A field value whose bytes are not UTF-8. Like tornado's get_argument, the request is
    refused only if it asks for the field, so an ignored field (`user`) may hold anything."""


def argument_text(raw: bytes) -> str | NotUtf8:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return NotUtf8()
    return CONTROL_CHARACTERS.sub(" ", text).strip()


class TextField:
    def __init__(self, form: FormFields, name: str):
        self._form = form
        self._name = name
        self._value = bytearray()

    def write(self, data: bytes) -> None:
        self._form.spend(len(data))
        self._value += data

    def close(self) -> None:
        self._form.fields.add(self._name, argument_text(bytes(self._value)))


class StreamedFiles:
    def __init__(self, form: FormFields, name: str):
        self._form = form
        self._name = name
        self.decoder = FilesDecoder()
        form.decoding = self

    def write(self, data: bytes) -> None:
        self.decoder.feed(data)

    def close(self) -> None:
        self._form.decoding = None
        for earlier in self._form.fields.popall(self._name, []):
            earlier.close()
        self._form.fields[self._name] = self.decoder.finish()


class IgnoredField:
    """A part the API never reads (a multipart file part, as tornado keeps those apart)."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class FormFields:
    def __init__(self, max_size: int, streamed: frozenset[str] = STREAMED_FIELDS):
        self.fields: MultiDict = MultiDict()
        self.max_size = max_size
        self._held = 0
        self._streamed = streamed
        self.decoding: StreamedFiles | None = None

    def abandon(self) -> None:
        """Let go of decoded files (their disk space) when the body is refused or cut short."""
        if self.decoding is not None:
            self.decoding.decoder.close()
        for value in self.fields.values():
            if isinstance(value, DecodedFiles):
                value.close()

    def spend(self, size: int) -> None:
        """Count `size` more bytes held for text fields (and their names); 413 past the cap."""
        self._held += size
        if self._held > self.max_size:
            raise self.too_large()

    def too_large(self) -> FieldsTooLarge:
        return FieldsTooLarge(f"Form fields too large (at most {self.max_size} bytes besides files)")

    def field(self, name: str) -> TextField | StreamedFiles:
        """A field begins; write its value's bytes to what this returns, then close it."""
        self.spend(FIELD_OVERHEAD + len(name))
        if name in self._streamed:
            return StreamedFiles(self, name)
        return TextField(self, name)
