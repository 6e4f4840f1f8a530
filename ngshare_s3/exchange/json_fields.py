"""Form fields whose value is a JSON document (`instructors`, `students`; spec §1.3).

A document the parser cannot read is the client's error, whatever the reason: bad syntax, or
nesting deeper than the parser's recursion limit, which it reports as RecursionError. The large
one, `files`, is parsed as it arrives instead (exchange/streamed_json.py)."""

from __future__ import annotations

import json

from .errors import BadRequest

UNDECODABLE = (ValueError, RecursionError)


def json_field(text: str, message: str) -> object:
    """The document `text` holds, or a 400 with `message` if it cannot be decoded."""
    try:
        return json.loads(text)
    except UNDECODABLE as error:
        raise BadRequest(message) from error
