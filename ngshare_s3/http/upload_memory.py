"""A count of bytes that uploads may hold in memory at once.

A body is read off the socket only once its bytes fit in the count; until then aiohttp stops
reading from that connection, so the client waits (TCP backpressure) instead of the process
growing. Waiters are served in arrival order, so a stream of small reads cannot starve a
larger one. Used on the event loop only: a worker thread hands its releases over with
`loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    def __init__(self, limit: int):
        if limit <= 0:
            raise ValueError("a byte budget must be positive")
        self.limit = limit
        self.held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def grant(self, size: int) -> int:
        """What acquiring `size` bytes actually takes: never more than the whole budget."""
        return min(size, self.limit)

    async def acquire(self, size: int) -> int:
        """Wait until `size` bytes (at most the whole budget) fit; returns what was taken."""
        size = self.grant(size)
        if not self._waiters and self.held + size <= self.limit:
            self.held += size
            return size
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as the wait was cancelled
            else:
                self._waiters.remove((size, waiter))
                self._wake()
            raise
        return size

    def release(self, size: int) -> None:
        self.held -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.held + self._waiters[0][0] <= self.limit:
            size, waiter = self._waiters.popleft()
            if not waiter.done():
                self.held += size
                waiter.set_result(None)
