"""While a large upload of either form encoding is read, parsed and decoded, the server's event
loop keeps answering small requests quickly: the parsing happens in a thread of its own.

The target is a p99 under 50 ms on a quiet machine (benchmarks/ measures it). On two cores
shared with other tests this test asserts a generous bound, and prints what it measured: a
body parsed on the event loop would hold it for seconds (a 70 MB field once blocked it for
2.3 s), far above the bound, while on a machine loaded six times over the p99 measured here
stayed under 200 ms."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time

import aiohttp
import pytest
import requests

from .large_bodies import BODIES, CONTENT_TYPES, MB, GeneratedFile
from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, STUDENT

P99_BOUND_MS = 400
UPLOAD = [GeneratedFile("data/large.bin", 200 * MB)]
MIN_SAMPLES = 50


class Prober:
    """Asks for the course list again and again from a thread of its own, timing each answer."""

    def __init__(self, url: str, token: str):
        self._url, self._token = url, token
        self.latencies_ms: list[float] = []
        self.statuses: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"token {self._token}"
            while not self._stopping.wait(0.01):
                started = time.perf_counter()
                reply = session.get(self._url, timeout=30)
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                self.statuses.add(reply.status_code)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(30)

    def p99(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[98]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_small_requests_stay_quick_during_a_large_upload(backend, fake_hub, tmp_path, encoding):
    port = free_port()
    tokens = {user: fake_hub.token_for(user) for user in (ADMIN, INSTRUCTOR, STUDENT)}
    with open(tmp_path / "server.log", "wb") as log:
        # one process, the one measured, serves the requests
        process = start_server(backend, fake_hub.url, port, log, "--workers", "1")
    base = base_url(port)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            await wait_until_healthy(http, base, process)

            async def ok(user: str, route: str, **options) -> dict:
                headers = {"Authorization": f"token {tokens[user]}", **options.pop("headers", {})}
                async with http.post(f"{base}/{route}", headers=headers, **options) as reply:
                    body = await reply.json()
                    assert (reply.status, body["success"]) == (200, True), body
                    return body

            await ok(ADMIN, "course/c1", data={"instructors": json.dumps([INSTRUCTOR])})
            await ok(INSTRUCTOR, f"student/c1/{STUDENT}", data={"first_name": "", "last_name": "", "email": ""})
            await ok(INSTRUCTOR, "assignment/c1/a1", data={"files": "[]"})
            # the prober's token is known to the server before timing starts
            await asyncio.to_thread(requests.get, f"{base}/courses", headers={"Authorization": f"token {tokens[STUDENT]}"})
            with Prober(f"{base}/courses", tokens[STUDENT]) as prober:
                sent: dict[str, str] = {}
                started = time.perf_counter()
                await ok(STUDENT, "submission/c1/a1", data=BODIES[encoding](UPLOAD, sent),
                         headers={"Content-Type": CONTENT_TYPES[encoding]})
                took = time.perf_counter() - started
    finally:
        stop(process)
    p99 = prober.p99()
    print(f"\n{encoding} upload of {UPLOAD[0].size // MB} MB took {took:.1f} s; {len(prober.latencies_ms)} course "
          f"lists meanwhile: p50 {statistics.median(prober.latencies_ms):.1f} ms, p99 {p99:.1f} ms, "
          f"max {max(prober.latencies_ms):.1f} ms")
    assert prober.statuses == {200}
    assert len(prober.latencies_ms) >= MIN_SAMPLES, "the upload ended before the loop could be measured"
    assert p99 < P99_BOUND_MS
