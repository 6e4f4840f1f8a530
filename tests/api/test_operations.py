"""What an operator sees of a running server process: one structured access line per request
with no token in it, Prometheus metrics on a port of their own, and a graceful stop on SIGTERM
that lets an upload in flight finish. The embedded backends suffice: none of this depends on
the store behind it (the outage test covers liveness with MongoDB and S3 down)."""

from __future__ import annotations

import asyncio
import json
import signal
import types
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, PREFIX, STUDENT, Api, encode_files

COURSE, ASSIGNMENT = "c1", "a1"
NOTEBOOK = ("a1.ipynb", b'{"cells": []}' * 100)
SUBMIT_ROUTE = f"{PREFIX}submission/{{course}}/{{assignment}}"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a metrics page, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


class Server:
    """One ngshare_s3 process on the embedded backends in `folder`, with its log file."""

    def __init__(self, folder: Path, hub_url: str, *options: str):
        self.port, self.log_path = free_port(), folder / "server.log"
        backend = (f"sqlite:///{folder}/ngshare.db", str(folder / "files"))
        with open(self.log_path, "ab") as log:
            self.process = start_server(backend, hub_url, self.port, log, *options)
        self.url = f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def exit_code(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def started(server: Server, http: aiohttp.ClientSession, fake_hub) -> Api:
    await wait_until_healthy(http, base_url(server.port), server.process)
    api = Api(aiohttp.ClientSession(base_url=server.url), fake_hub, types.SimpleNamespace(prefix=PREFIX))
    await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
    await api.release(COURSE, ASSIGNMENT, [NOTEBOOK], caller=INSTRUCTOR)
    return api


async def test_access_log_and_metrics(tmp_path, fake_hub, http):
    metrics_port = free_port()
    server = Server(tmp_path, fake_hub.url, "--log-format", "json", "--metrics-port", str(metrics_port))
    try:
        api = await started(server, http, fake_hub)
        try:
            for _ in range(2):
                await api.submit(STUDENT, COURSE, ASSIGNMENT, [NOTEBOOK])
            assert len(await api.submissions(COURSE, ASSIGNMENT, caller=INSTRUCTOR)) == 2
        finally:
            await api.client.close()

        async with http.get(f"{server.url}/metrics") as response:
            assert response.status == 404, "metrics have a port of their own, so not the main one"
        async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = samples(await response.text())
    finally:
        server.terminate()
    assert server.exit_code() == 0

    requests = "ngshare_s3_request_duration_seconds_count"
    assert value(found, requests, method="POST", route=SUBMIT_ROUTE, status="200") == 2
    submitted_body = len(urllib.parse.urlencode({"files": encode_files([NOTEBOOK]), "user": STUDENT}))
    assert value(found, "ngshare_s3_request_bytes_total", route=SUBMIT_ROUTE) >= 2 * submitted_body
    assert value(found, "ngshare_s3_response_bytes_total", route=SUBMIT_ROUTE) > 0
    assert value(found, "ngshare_s3_uploads_in_flight") == 0
    # One tree per release and per submission went to the file storage, each commit to the database.
    store_calls = "ngshare_s3_store_call_duration_seconds_count"
    assert value(found, store_calls, store="storage", operation="put_many") == 3
    assert value(found, store_calls, store="database", operation="create_submission") == 2
    assert value(found, store_calls, store="database", operation="create_assignment") == 1
    # Three people called; the Hub was asked once for each, the cache answered the rest.
    hub_asked = value(found, "ngshare_s3_hub_token_lookups_total", source="hub")
    assert hub_asked == fake_hub.user_calls == 3
    assert value(found, "ngshare_s3_hub_token_lookups_total", source="cache") > 0

    entries = [json.loads(line) for line in server.log_lines() if '"ngshare_s3.access"' in line]
    submits = [e for e in entries if e["route"] == SUBMIT_ROUTE]
    assert len(submits) == 2
    for entry in submits:
        assert entry["user"] == STUDENT and entry["method"] == "POST" and entry["status"] == 200
        assert entry["bytes_in"] == submitted_body and entry["bytes_out"] > 0
        assert entry["duration_ms"] >= 0 and entry["time"].endswith("+00:00")
    assert {e["user"] for e in entries} >= {ADMIN, INSTRUCTOR, STUDENT}
    whole_log = server.log_path.read_text()
    for token in fake_hub.tokens:
        assert token not in whole_log, "a token was written to the log"
    assert "ngshare_s3.access" in whole_log and all(
        COURSE not in e["route"] for e in entries
    ), "routes are logged by template, never with ids"


class HalfSentUpload:
    """A student's submission whose body stops halfway until `rest_may_go` is set: an upload in
    flight, for what the service does with one while it stops."""

    def __init__(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]):
        self.body = urllib.parse.urlencode({"files": encode_files([NOTEBOOK]), "user": STUDENT}).encode()
        self.halfway, self.rest_may_go = asyncio.Event(), asyncio.Event()
        self.task = asyncio.create_task(self._upload(http, f"{url}{PREFIX}submission/{COURSE}/{ASSIGNMENT}", headers))

    async def _body(self):
        yield self.body[: len(self.body) // 2]
        self.halfway.set()
        await self.rest_may_go.wait()
        yield self.body[len(self.body) // 2 :]

    async def _upload(self, http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> tuple[int, dict]:
        headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        async with http.post(url, data=self._body(), headers=headers) as response:
            return response.status, await response.json()


async def test_sigterm_lets_an_upload_in_flight_finish_and_refuses_new_connections(tmp_path, fake_hub, http):
    metrics_port = free_port()
    server = Server(tmp_path, fake_hub.url, "--metrics-port", str(metrics_port), "--grace-period", "20")
    api = await started(server, http, fake_hub)
    await api.client.close()
    upload = HalfSentUpload(http, server.url, api.headers_for(STUDENT))
    await upload.halfway.wait()
    await until_metric(http, metrics_port, "ngshare_s3_uploads_in_flight", 1)
    server.terminate()
    await until_refused(server.port)
    assert server.process.poll() is None, "the server must wait for the upload in flight"
    upload.rest_may_go.set()
    status, reply = await asyncio.wait_for(upload.task, timeout=30)
    assert (status, reply["success"]) == (200, True), reply
    assert server.exit_code() == 0
    assert any("Shutting down" in line for line in server.log_lines())

    again = Server(tmp_path, fake_hub.url)
    try:
        await wait_until_healthy(http, base_url(again.port), again.process)
        checker = Api(aiohttp.ClientSession(base_url=again.url), fake_hub, types.SimpleNamespace(prefix=PREFIX))
        try:
            listed = await checker.submissions(COURSE, ASSIGNMENT, caller=INSTRUCTOR)
        finally:
            await checker.client.close()
        assert [s["timestamp"] for s in listed] == [reply["timestamp"]]
    finally:
        stop(again.process)


async def test_the_grace_period_bounds_the_wait_for_a_request_that_never_ends(tmp_path, fake_hub, http):
    metrics_port = free_port()
    server = Server(tmp_path, fake_hub.url, "--metrics-port", str(metrics_port), "--grace-period", "2")
    api = await started(server, http, fake_hub)
    await api.client.close()
    never = asyncio.Event()

    async def endless_body():
        yield b"files="
        await never.wait()
        yield b""

    request = asyncio.create_task(
        http.post(
            f"{server.url}{PREFIX}submission/{COURSE}/{ASSIGNMENT}",
            data=endless_body(),
            headers={**api.headers_for(STUDENT), "Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    try:
        await until_metric(http, metrics_port, "ngshare_s3_uploads_in_flight", 1)
        stopping = asyncio.get_running_loop().time()
        server.terminate()
        exit_code = await asyncio.to_thread(server.exit_code, 30)
        took = asyncio.get_running_loop().time() - stopping
    finally:
        request.cancel()
    assert exit_code == 0
    assert 2 <= took < 2 + 4, f"stopping took {took:.1f} s with a grace period of 2 s"
    assert any("still in flight after 2 s" in line for line in server.log_lines())


async def until_metric(http: aiohttp.ClientSession, port: int, name: str, wanted: float) -> None:
    for _ in range(200):
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            if value(samples(await response.text()), name) == wanted:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {wanted}")


async def until_refused(port: int) -> None:
    """Wait until the main port refuses new connections."""
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except (ConnectionRefusedError, ConnectionResetError):  # reset: queued as the listener closed
            return
        writer.close()
        await asyncio.sleep(0.05)
    raise AssertionError("the server still accepts connections after SIGTERM")


async def test_liveness_needs_no_login_and_touches_no_store(tmp_path, fake_hub, http):
    server = Server(tmp_path, fake_hub.url)
    try:
        await wait_until_healthy(http, base_url(server.port), server.process)
        async with http.get(f"{server.url}/livez") as response:
            assert (response.status, await response.json()) == (200, {"success": True})
        async with http.get(f"{server.url}/metrics") as response:
            text = await response.text()
        assert response.status == 200, "without --metrics-port the main port serves /metrics"
        found = samples(text)
        assert value(found, "ngshare_s3_request_duration_seconds_count", method="GET", route="/livez", status="200") == 1
        assert value(found, "ngshare_s3_store_call_duration_seconds_count", store="database", operation="ping") == 1, (
            "only the one readiness check at start-up pinged the database, not /livez"
        )
    finally:
        stop(server.process)
    assert server.process.returncode == 0
