"""A client that goes away mid-upload or mid-download is the client's doing: one line at info,
a count of its own, and no 500 in the request metrics (nor an error with a traceback).

The client is a real socket that sends half a body, or reads part of a download, and closes."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from .support import INSTRUCTOR, PREFIX, STUDENT, Api, encode_files

RELEASE_ROUTE = PREFIX + "assignment/{course}/{assignment}"
# Far more than the connection takes at once, so the client can leave mid-answer.
LARGE = b"x" * (12 << 20)
WAIT = 10.0


@dataclass
class Service:
    api: Api
    port: int


@pytest.fixture
async def service(fake_hub, base_settings) -> AsyncIterator[Service]:
    """The service run as `ngshare-s3` runs it, on a loopback port: its own runner, whose access
    logger records the request metrics and which lets a handler finish when its client leaves
    (aiohttp's test server would cancel it)."""
    from ngshare_s3.app import make_app, make_runner

    runner = make_runner(make_app(base_settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
            yield Service(Api(session, fake_hub, base_settings), port)
    finally:
        await runner.cleanup()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def route_metrics(api: Api, route: str) -> tuple[dict[str, float], float]:
    """Requests recorded for the route, by status, and its count of clients gone."""
    text = (await api.raw("GET", "/metrics")).text
    counts = {
        labels["status"]: value
        for labels, value in samples(text, "ngshare_s3_request_duration_seconds_count")
        if labels["route"] == route
    }
    gone = sum(v for labels, v in samples(text, "ngshare_s3_client_disconnects_total") if labels["route"] == route)
    return counts, gone


async def once_recorded(api: Api, route: str, before: dict[str, float]) -> tuple[dict[str, float], float]:
    """The route's metrics once one more request is recorded: the access log, which records it,
    comes last, once the service has finished with the request."""
    deadline = time.monotonic() + WAIT
    while True:
        counts, gone = await route_metrics(api, route)
        if sum(counts.values()) > sum(before.values()) or time.monotonic() > deadline:
            return {status: n - before.get(status, 0) for status, n in counts.items() if n - before.get(status, 0)}, gone
        await asyncio.sleep(0.05)


def request_head(api: Api, method: str, route: str, caller: str, extra: str = "") -> bytes:
    token = api.hub.token_for(caller)
    return (
        f"{method} {PREFIX}{route} HTTP/1.1\r\nHost: test\r\nAuthorization: token {token}\r\n{extra}\r\n"
    ).encode()


async def connect(service: Service) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", service.port)


def abort(writer: asyncio.StreamWriter) -> None:
    """Close at once with a reset, as a killed client does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


def assert_logged_as_a_disconnect(caplog: pytest.LogCaptureFixture) -> None:
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.INFO], caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert gone[0].exc_info is None


async def test_client_gone_mid_upload(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    api = service.api
    await api.create_course("c", instructors=[INSTRUCTOR])
    body = urlencode({"files": encode_files([("big.ipynb", LARGE)])}).encode()
    head = request_head(
        api, "POST", "assignment/c/a", INSTRUCTOR,
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n",
    )
    before, _ = await route_metrics(api, RELEASE_ROUTE)
    _, writer = await connect(service)
    writer.write(head + body[: len(body) // 2])
    await writer.drain()
    await asyncio.sleep(0.2)
    abort(writer)

    assert await once_recorded(api, RELEASE_ROUTE, before) == ({"499": 1}, 1)
    assert_logged_as_a_disconnect(caplog)
    assert await api.assignments("c") == []  # nothing half-released


async def test_client_gone_mid_download(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    api = service.api
    await api.create_course("c", instructors=[INSTRUCTOR], students=[STUDENT])
    await api.release("c", "a", [("big.ipynb", LARGE)], caller=INSTRUCTOR)
    before, _ = await route_metrics(api, RELEASE_ROUTE)
    reader, writer = await connect(service)
    writer.write(request_head(api, "GET", "assignment/c/a", STUDENT))
    await writer.drain()
    assert (await reader.readexactly(64 << 10)).startswith(b"HTTP/1.1 200")
    abort(writer)

    assert await once_recorded(api, RELEASE_ROUTE, before) == ({"499": 1}, 1)
    assert_logged_as_a_disconnect(caplog)
