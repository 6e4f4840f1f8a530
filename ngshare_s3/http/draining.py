"""Requests in flight, so that a stopping server can wait for them to finish.

aiohttp's own shutdown closes every connection first and from then on drops whatever bytes still
arrive on it, which cuts off an upload whose body is still coming in. So on SIGTERM the service
only stops listening, waits here until the requests it is handling are done (their bodies still
being read), and only then lets aiohttp close the connections."""

from __future__ import annotations

import asyncio

from aiohttp import web


class RequestsInFlight:
    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        try:
            response = await handler(request)
            if self.draining:
                response.force_close()  # the client opens its next connection elsewhere
            return response
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """From now on close each connection after its response; wait up to `timeout` seconds
        for the requests in flight. False if some were still running."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True
