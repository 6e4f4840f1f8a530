"""The object interface: immutable file bodies addressed by '/'-separated keys.

Bodies stream in and out as async iterators of bytes, so a large file never has to sit whole
in memory. Every put carries the MD5 the caller computed; the store refuses a body that does
not match it, so a corrupted upload never becomes visible.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


async def chunks_of(data: bytes, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Feed an in-memory body to put()."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


async def read_all(chunks: AsyncIterable[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class ObjectStore(ABC):
    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def put(self, key: str, body: AsyncIterable[bytes], md5: str) -> None:
        """Store a whole object, atomically: readers see all of it or none of it."""

    @abstractmethod
    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object's body; raises ObjectNotFound (on first iteration) if absent."""

    @abstractmethod
    async def delete(self, keys: Iterable[str]) -> None:
        """Remove these objects; keys that do not exist are ignored."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with prefix, in key order."""
