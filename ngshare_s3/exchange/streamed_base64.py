"""Base64 decoded as it arrives, by base64.decodebytes' lenient rules, in constant memory.

binascii.a2b_base64 (what decodebytes runs) drops every character outside the alphabet, stops
at the first complete pad ('=' after three data characters of a group, or '==' after two) and
refuses a last group of one, two or three data characters with no pad. The same is done here
piece by piece: only the data characters of an unfinished group are held, and whole groups are
decoded by pybase64, many times faster than binascii; text made of data characters only (what
clients send) is checked and decoded by it in one pass.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable

import pybase64

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
PAD = b"="
NOT_BASE64 = bytes(sorted(set(range(256)) - set(ALPHABET + PAD)))  # for bytes.translate


class IncompleteBase64(ValueError):
    """The text ended in the middle of a group (binascii: incorrect padding)."""


class LenientBase64:
    """Feed text (bytes) in pieces; each decoded piece goes to `write` as soon as it is whole."""

    def __init__(self, write: Callable[[bytes], object]):
        self._write = write
        self._group = b""  # data characters of the group in progress (at most 3)
        self._padding = False  # a '=' came after two data characters, none since
        self._ended = False  # a complete pad was seen: the rest is ignored

    def feed(self, text: bytes) -> None:
        if not self.feed_data(text):
            self.feed_filtered(text.translate(None, NOT_BASE64))

    def feed_data(self, text: bytes) -> bool:
        """Decode `text` if it is data characters only, as clients send it, checked and decoded
        in one pass; False, having done nothing, if it holds anything else (or the data ended)."""
        if self._ended or text.find(PAD) != -1:
            return False
        data = self._group + text if self._group else text
        whole = len(data) - len(data) % 4
        group = data[whole:]
        if group.translate(None, NOT_BASE64) != group:
            return False
        try:
            decoded = pybase64.b64decode(memoryview(data)[:whole], validate=True)
        except binascii.Error:
            return False
        if text:
            self._padding = False
        self._group = group
        if decoded:
            self._write(decoded)
        return True

    def feed_filtered(self, characters: bytes) -> None:
        """Text already reduced to the alphabet and '='."""
        start = 0
        while not self._ended:
            pad = characters.find(PAD, start)
            if pad == -1:
                self._data(characters, start, len(characters))
                return
            self._data(characters, start, pad)
            self._pad()
            start = pad + 1

    def finish(self) -> None:
        if not self._ended and self._group:
            raise IncompleteBase64("Incorrect padding")

    def _data(self, characters: bytes, start: int, end: int) -> None:
        if start == end:
            return
        self._padding = False
        if self._group:
            taken = min(start + 4 - len(self._group), end)
            self._group += characters[start:taken]
            start = taken
            if len(self._group) < 4:
                return
            self._write(pybase64.b64decode(self._group, validate=True))
            self._group = b""
        whole = start + (end - start) // 4 * 4
        if whole > start:
            self._write(pybase64.b64decode(memoryview(characters)[start:whole], validate=True))
        self._group = characters[whole:end]

    def _pad(self) -> None:
        held = len(self._group)
        if held == 3 or (held == 2 and self._padding):
            # binascii decodes the group's data characters, ignoring any stray low bits
            self._write(binascii.a2b_base64(self._group + PAD * (4 - held)))
            self._group = b""
            self._ended = True
        elif held == 2:
            self._padding = True
