"""Encoded answers of release fetches, kept in memory and reused.

A release never changes: a re-release gets a new release id, hence new object keys, hence a
new cache key; a deleted assignment is refused by the metadata lookup before the cache is
asked. So an answer needs no invalidation, only a bound: the least recently used answers go
once the bytes held would exceed the capacity. Each process fills its own cache; nothing is
shared between replicas, so nothing there can go stale.

Concurrent misses of one answer build it once: the first starts the build in a task of its
own (a client that goes away does not cancel it for the others) and everyone awaits it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from ..metrics import CacheMetrics


class ReleaseCache:
    def __init__(self, capacity: int, metrics: CacheMetrics):
        self.capacity = capacity
        self._metrics = metrics
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._building: dict[Hashable, asyncio.Task[bytes]] = {}
        self.bytes_held = 0

    def fits(self, size: int) -> bool:
        """Whether an answer of this size may be kept (never, with a capacity of 0)."""
        return size <= self.capacity

    async def get(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        """The answer kept under `key`, built by `build` if missing. A failed build is kept by
        nobody: every request awaiting it gets its error, and the next request tries again."""
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
            self._metrics.hits.inc()
            return answer
        task = self._building.get(key)
        if task is None:
            self._metrics.misses.inc()
            task = asyncio.create_task(self._build(key, build))
            self._building[key] = task
            task.add_done_callback(_retrieve_error)
        else:
            self._metrics.hits.inc()
        return await asyncio.shield(task)

    async def _build(self, key: Hashable, build: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            answer = await build()
        finally:
            del self._building[key]
        self._keep(key, answer)
        return answer

    def _keep(self, key: Hashable, answer: bytes) -> None:
        if not self.fits(len(answer)):
            return
        while self._answers and self.bytes_held + len(answer) > self.capacity:
            _, evicted = self._answers.popitem(last=False)
            self.bytes_held -= len(evicted)
        self._answers[key] = answer
        self.bytes_held += len(answer)
        self._metrics.bytes_held.set(self.bytes_held)


def _retrieve_error(task: asyncio.Task[bytes]) -> None:
    """A build whose every requester went away must not log 'exception never retrieved'."""
    if not task.cancelled():
        task.exception()
