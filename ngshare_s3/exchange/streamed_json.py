"""A JSON array of objects parsed as it is pushed in pieces, in memory bounded by a constant.

The parser follows JSON's structure (brackets, keys, scalars) on the UTF-8 bytes; the text of
strings is found with bytes.find and handed, piece by piece and never split inside an escape,
to a sink that checks and decodes it in bulk (json's own C string scanner, or faster paths of
its own), so a string of any length costs no more memory than a piece. The string values of
the members of the array's objects go to sinks the handler chooses; everything else is checked
and dropped.

It accepts what json.loads accepts (NaN and Infinity too, and every escape), but for extremes
no client sends: objects or arrays nested deeper than MAX_DEPTH, a number longer than
MAX_SCALAR characters. Integers longer than Python's int digit limit are refused, as json.loads
refuses them. Which value a duplicate key keeps (json.loads: the last) is the handler's rule.
"""

from __future__ import annotations

import re
import sys
from json.decoder import JSONDecoder, scanstring
from typing import Protocol

MAX_DEPTH = 900  # json.loads stops near Python's recursion limit (1,000 less the calls below it)
MAX_SCALAR = 1 << 16
KEY_CAP = 256  # the raw JSON text of a key longer than this is no key the handler asks about
WHOLE_ELEMENT = 1 << 16  # objects in the array up to this size are parsed by json's parser

NOT_SPACE = re.compile(rb"[^ \t\n\r]")
SCALAR = re.compile(
    rb"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?|true|false|null|NaN|Infinity|-Infinity"
)
NOT_CONTROL = bytes(range(0x20, 0x100))  # bytes.translate(None, NOT_CONTROL) keeps controls
LONGEST_LITERAL = len(b"-Infinity")
QUOTE, BACKSLASH, COMMA, COLON = b'"', b"\\", ord(","), ord(":")
OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT = ord("["), ord("]"), ord("{"), ord("}")
ESCAPE_LENGTH = len(b"\\u0000")

# what the parser expects next
START, VALUE, FIRST_VALUE, KEY, FIRST_KEY, AFTER_KEY, AFTER_VALUE, STRING, END = range(9)


class NotJson(ValueError):
    """The text is not JSON, or not the one array expected."""


class StringSink(Protocol):
    def piece(self, raw: bytes) -> None:
        """The next piece of the string's JSON text, never cut inside an escape (it may be cut
        inside a UTF-8 sequence). The sink checks it: ValueError if it is no JSON string text."""

    def end(self) -> None: ...


class ArrayHandler(Protocol):
    def element(self, value: object) -> None:
        """A whole element, parsed by json's own parser (an object found small enough)."""

    def element_start(self, is_object: bool) -> None: ...

    def member_string(self, key: str | None) -> StringSink | None:
        """A member of an element object has a string value: where its text goes (None:
        checked and dropped). `key` is None for a key longer than KEY_CAP."""

    def member_other(self, key: str | None) -> None:
        """A member of an element object has a value that is no string."""

    def element_end(self) -> None: ...


def has_control_characters(raw: bytes) -> bool:
    return bool(raw.translate(None, NOT_CONTROL))


def check_string_text(raw: bytes) -> None:
    """ValueError unless json.loads accepts `raw` inside a string."""
    if raw.find(BACKSLASH) != -1:
        json_string_text(raw)
    elif has_control_characters(raw):
        raise ValueError("control character in a string")


def json_string_text(raw: bytes) -> str:
    """What the JSON text of (part of) a string says, checked as json.loads checks it."""
    if raw.find(BACKSLASH) == -1:
        check_string_text(raw)
        return raw.decode("utf-8", "replace")
    return scanstring(raw.decode("utf-8", "replace") + '"', 0, True)[0]


class CheckedString:
    """A string nobody wants: only checked."""

    def piece(self, raw: bytes) -> None:
        check_string_text(raw)

    def end(self) -> None:
        pass


class KeptString:
    """A string kept whole while its JSON text is at most `cap` bytes; `text` is None beyond."""

    def __init__(self, cap: int):
        self._cap = cap
        self._pieces: list[bytes] = []
        self._held = 0
        self.text: str | None = None

    @classmethod
    def of(cls, text: str) -> KeptString:
        kept = cls(len(text))
        kept.text = text
        return kept

    def piece(self, raw: bytes) -> None:
        check_string_text(raw)
        self._held += len(raw)
        if self._held <= self._cap:
            self._pieces.append(raw)
        else:
            self._pieces.clear()

    def end(self) -> None:
        if self._held <= self._cap:
            self.text = json_string_text(b"".join(self._pieces))


def _backslashes_before(buffer: bytes, index: int, start: int) -> int:
    count = 0
    while index > start and buffer[index - 1] == 0x5C:
        count += 1
        index -= 1
    return count


def _closing_quote(buffer: bytes, start: int) -> int:
    quote = buffer.find(QUOTE, start)
    while quote != -1 and _backslashes_before(buffer, quote, start) % 2:
        quote = buffer.find(QUOTE, quote + 1)
    return quote


def _escape_boundary(buffer: bytes, start: int) -> int:
    """Where the text from `start` may be cut without splitting an escape."""
    end = len(buffer)
    last = buffer.rfind(BACKSLASH, max(start, end - ESCAPE_LENGTH), end)
    if last == -1 or _backslashes_before(buffer, last, start) % 2:
        return end  # no backslash near the end, or the last one is escaped itself
    if last + 1 < end and (buffer[last + 1] != ord("u") or last + ESCAPE_LENGTH <= end):
        return end
    return last


class PushedJsonArray:
    """feed() the document's bytes in pieces, then finish(); NotJson when it is not an array.
    After NotJson the parser ignores what it is fed."""

    _checked = CheckedString()
    _whole = JSONDecoder()

    def __init__(self, handler: ArrayHandler):
        self._handler = handler
        self._held = b""
        self._expect = START
        self._open: list[int] = []  # the brackets still open
        self._sink: StringSink = self._checked
        self._string_is_key = False
        self._key: str | None = None
        self._key_text: KeptString | None = None
        self.failed = False

    def feed(self, data: bytes) -> None:
        if self.failed or not data:
            return
        buffer = self._held + data if self._held else data
        self._held = b""
        self._run(buffer, final=False)

    def finish(self) -> None:
        if not self.failed:
            self._run(self._held, final=True)
            if self._expect != END:
                self.failed = True
        self._held = b""
        if self.failed:
            raise NotJson("not a JSON array")

    def _run(self, buffer: bytes, final: bool) -> None:
        try:
            used = self._parse(buffer, final)
        except ValueError:
            self.failed = True
            return
        self._held = buffer[used:]
        if len(self._held) > MAX_SCALAR:
            self.failed = True

    def _parse(self, buffer: bytes, final: bool) -> int:
        position, end = 0, len(buffer)
        while True:
            if self._expect == STRING:
                position = self._string(buffer, position, final)
                if self._expect == STRING:
                    return position
                continue
            found = NOT_SPACE.search(buffer, position)
            if found is None:
                return end
            position = found.start()
            character = buffer[position]
            expect = self._expect
            if expect == AFTER_VALUE:
                closing = CLOSE_OBJECT if self._open[-1] == OPEN_OBJECT else CLOSE_ARRAY
                if character == COMMA:
                    self._expect = KEY if closing == CLOSE_OBJECT else VALUE
                elif character == closing:
                    self._close()
                else:
                    raise NotJson("expected ',' or a closing bracket")
                position += 1
            elif expect == VALUE or expect == FIRST_VALUE:
                if character == CLOSE_ARRAY and expect == FIRST_VALUE:
                    self._close()
                    position += 1
                else:
                    after = self._value(buffer, position, character, final)
                    if after is None:
                        return position
                    position = after
            elif expect == KEY or expect == FIRST_KEY:
                if character == CLOSE_OBJECT and expect == FIRST_KEY:
                    self._close()
                elif character == QUOTE[0]:
                    self._start_string(key=True)
                else:
                    raise NotJson("expected a key")
                position += 1
            elif expect == AFTER_KEY:
                if character != COLON:
                    raise NotJson("expected ':'")
                self._expect = VALUE
                position += 1
            elif expect == START:
                if character != OPEN_ARRAY:
                    raise NotJson("expected '['")
                self._open.append(OPEN_ARRAY)
                self._expect = FIRST_VALUE
                position += 1
            else:
                raise NotJson("data after the array")

    def _in_element_object(self) -> bool:
        return len(self._open) == 2 and self._open[1] == OPEN_OBJECT

    def _value(self, buffer: bytes, position: int, character: int, final: bool) -> int | None:
        """Start (or read whole, for a scalar) the value at `position`; None if more is needed."""
        is_element, is_member = len(self._open) == 1, self._in_element_object()
        if is_element and character == OPEN_OBJECT:
            after = self._whole_element(buffer, position)
            if after is not None:
                return after
        if character == QUOTE[0]:
            if is_element:
                self._handler.element_start(False)
            self._start_string(key=False)
            return position + 1
        if character == OPEN_ARRAY or character == OPEN_OBJECT:
            if len(self._open) >= MAX_DEPTH:
                raise NotJson("nested too deep")
            if is_element:
                self._handler.element_start(character == OPEN_OBJECT)
            elif is_member:
                self._handler.member_other(self._key)
            self._open.append(character)
            self._expect = FIRST_KEY if character == OPEN_OBJECT else FIRST_VALUE
            return position + 1
        scalar = SCALAR.match(buffer, position)
        if scalar is None:
            if not final and len(buffer) - position < LONGEST_LITERAL:
                return None  # perhaps the start of a literal
            raise NotJson("expected a value")
        if not final and scalar.group(1) is not None and len(buffer) - scalar.end() < len(b"e+0"):
            return None  # the number may go on ("1" then "e+5")
        if scalar.group(1) is not None and scalar.group(2) is None and scalar.group(3) is None:
            digits = len(scalar.group(1)) - scalar.group(1).startswith(b"-")
            if 0 < sys.get_int_max_str_digits() < digits:
                raise NotJson("integer too long")  # as json.loads
        if is_element:
            self._handler.element_start(False)
        elif is_member:
            self._handler.member_other(self._key)
        self._value_done()
        return scalar.end()

    def _whole_element(self, buffer: bytes, position: int) -> int | None:
        """Small elements can be many, and their parts are tiny: json's parser, in C, reads
        them faster than they are followed here part by part. It is tried on text that ends
        with the first '}' if that comes soon enough; if it is not the element's end (one
        inside a string, or a nested object's) or the text is not JSON, nothing is done."""
        brace = buffer.find(b"}", position, position + WHOLE_ELEMENT)
        if brace == -1:
            return None
        try:
            value, _ = self._whole.raw_decode(buffer[position : brace + 1].decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError):
            return None
        self._handler.element(value)
        self._expect = AFTER_VALUE
        return brace + 1

    def _start_string(self, key: bool) -> None:
        self._string_is_key = key
        self._expect = STRING
        if key:
            if self._in_element_object():
                self._key_text = KeptString(KEY_CAP)
                self._sink = self._key_text
            else:
                self._sink = self._checked
        elif self._in_element_object():
            self._sink = self._handler.member_string(self._key) or self._checked
        else:
            self._sink = self._checked

    def _string(self, buffer: bytes, position: int, final: bool) -> int:
        quote = _closing_quote(buffer, position)
        if quote == -1:
            if final:
                raise NotJson("unterminated string")
            cut = _escape_boundary(buffer, position)
            if cut > position:
                self._sink.piece(buffer[position:cut])
            return cut
        if quote > position:
            self._sink.piece(buffer[position:quote])
        self._sink.end()
        self._sink = self._checked
        if self._string_is_key:
            if self._key_text is not None:
                self._key = self._key_text.text
                self._key_text = None
            self._expect = AFTER_KEY
        else:
            self._value_done()
        return quote + 1

    def _close(self) -> None:
        self._open.pop()
        if self._open:
            self._value_done()
        else:
            self._expect = END

    def _value_done(self) -> None:
        self._expect = AFTER_VALUE
        if len(self._open) == 1:
            self._handler.element_end()
