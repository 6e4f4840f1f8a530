"""Form fields whose value is a JSON document (`instructors`, `students`, `files`; spec §1.3).

A document the parser cannot read is the client's error, whatever the reason: bad syntax, or
nesting deeper than the parser's recursion limit, which it reports as RecursionError. A large
array (`files`) is read from a stream one element at a time."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO

from .errors import BadRequest

READ_SIZE = 1 << 20
JSON_SPACE = re.compile(r"[^ \t\n\r]")

UNDECODABLE = (ValueError, RecursionError)


def json_field(text: str, message: str) -> object:
    """The document `text` holds, or a 400 with `message` if it cannot be decoded."""
    try:
        return json.loads(text)
    except UNDECODABLE as error:
        raise BadRequest(message) from error


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
        wanted = max(READ_SIZE, len(pieces[0]))
        while wanted > 0:
            chunk = self._stream.read(READ_SIZE)
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


def json_array_elements(stream: IO[bytes]) -> Iterator[object]:
    """Each element of the JSON array the stream holds, parsed as it is read; ValueError (or
    RecursionError, UnicodeDecodeError) if it holds anything else."""
    text = _JsonText(stream)
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
