"""JSON fields (`students`, `instructors`) read off the event loop when they are large.

Decoding and checking a roster takes milliseconds per megabyte, time in which the event loop
would serve nobody else; a small field is read in place, where a thread would cost more than
the work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SMALL_FIELD = 64 << 10


async def read_field(read: Callable[[str | None], T], field: str | None) -> T:
    if field is not None and len(field) > SMALL_FIELD:
        return await asyncio.to_thread(read, field)
    return read(field)
