"""The object interface: immutable file bodies addressed by '/'-separated keys.

Bodies stream in and out as async iterators of bytes, so a large file never has to sit whole
in memory. Every put carries the MD5 the caller computed; the store refuses a body that does
not match it, so a corrupted upload never becomes visible.

A put may also carry user metadata (S3's `x-amz-meta-*`), which lets a person browsing the
bucket tell what an object is without the database. It travels in HTTP headers, so every value
is stored percent-encoded UTF-8; the encoding lives here, once, for every backend.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, unquote

CHUNK_SIZE = 1 << 20

# Left readable in a console's object details; everything else becomes %XX of its UTF-8 bytes.
METADATA_SAFE = " /:@-._~"

# Metadata names as every S3 server keeps them: S3 lower-cases them on the way in.
METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")

EDGE_SPACES = re.compile(r"^ +| +$")

NO_METADATA: Mapping[str, str] = {}

PARALLEL_PUTS = 8  # puts of one put_many in flight at once


@dataclass(frozen=True)
class NewObject:
    """One object of a put_many: what put() takes."""

    key: str
    body: AsyncIterable[bytes]
    md5: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


def key_segments(key: str) -> list[str]:
    """A key's segments, by the one rule every backend holds keys to: no empty, '.' or '..'
    segment and no NUL, so that no key climbs out of its folder or misleads a person browsing
    the bucket."""
    segments = key.split("/")
    if "\0" in key or any(s in ("", ".", "..") for s in segments):
        raise ValueError(f"invalid object key {key!r}")
    return segments


def prefix_segments(prefix: str) -> list[str]:
    """The complete folder segments of a listing prefix, held to the rule of keys."""
    if "\0" in prefix:
        raise ValueError(f"invalid listing prefix {prefix!r}")
    folder, _, _ = prefix.rpartition("/")
    return key_segments(folder) if folder or prefix.startswith("/") else []


async def chunks_of(data: bytes, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Feed an in-memory body to put()."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Header-safe values: percent-encoded UTF-8. A space at either end is encoded too, as
    HTTP would strip it."""
    encoded = {}
    for name, value in metadata.items():
        if not METADATA_NAME.fullmatch(name):
            raise ValueError(f"invalid metadata name {name!r}: lower-case letters, digits, hyphens")
        text = quote(value, safe=METADATA_SAFE)
        encoded[name] = EDGE_SPACES.sub(lambda spaces: "%20" * len(spaces[0]), text)
    return encoded


def decode_metadata(stored: Mapping[str, str]) -> dict[str, str]:
    """The values encode_metadata was given, from what a server gives back."""
    return {name.lower(): unquote(value) for name, value in stored.items()}


async def read_all(chunks: AsyncIterable[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class ObjectStore(ABC):
    keeps_metadata = True  # False: put() checks the metadata, metadata() answers {}

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def put(
        self, key: str, body: AsyncIterable[bytes], md5: str, metadata: Mapping[str, str] = NO_METADATA
    ) -> None:
        """Store a whole object with its metadata, atomically: readers see all of it or none.
        A backend that keeps no metadata ignores it."""

    async def put_many(self, objects: Sequence[NewObject]) -> None:
        """Store several objects, each as put() would, PARALLEL_PUTS at a time: a file tree,
        whose objects must all be durable before a record points at them. If one fails, the
        first failure is raised once no put is in flight any more; the others may have been
        stored, and it is the caller's to remove them. A backend may make the tree durable in
        fewer steps than one object at a time."""
        limit = asyncio.Semaphore(PARALLEL_PUTS)

        async def put(new: NewObject) -> None:
            async with limit:
                await self.put(new.key, new.body, new.md5, new.metadata)

        results = await asyncio.gather(*(put(new) for new in objects), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    @abstractmethod
    async def metadata(self, key: str) -> dict[str, str]:
        """The metadata the object was stored with (decoded), {} from a backend that keeps
        none; raises ObjectNotFound if absent."""

    @abstractmethod
    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object's body; raises ObjectNotFound (on first iteration) if absent."""

    @abstractmethod
    async def delete(self, keys: Iterable[str]) -> None:
        """Remove these objects; keys that do not exist are ignored."""

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with prefix, in key order."""

    def stale_leftovers(self, older_than: float) -> list[str]:
        """What puts that crashed left behind outside the objects (partial bodies), last
        written before `older_than` (a Unix time), for fsck. S3 keeps none: a put is atomic."""
        return []

    def remove_leftovers(self, leftovers: Iterable[str]) -> None:
        """Remove what stale_leftovers found; those gone already are ignored."""
