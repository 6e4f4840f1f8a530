"""Several worker processes behind one port (--workers 2), run as a deployment runs them: requests
reach both workers, which share the stores; /metrics sums over the workers, whichever answers;
SIGTERM drains every worker; a killed worker is replaced; a worker that cannot open its stores
stops the service with the reason. Worker processes are told apart by the process id that every
JSON log line carries, and found as the children of the process started."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import types
from pathlib import Path

import aiohttp
import psutil
import pytest

from .processes import base_url, free_port, start_server, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, PREFIX, STUDENT, Api
from .test_operations import HalfSentUpload, samples, until_metric, until_refused, value

COURSE, ASSIGNMENT = "c1", "a1"
NOTEBOOK = ("a1.ipynb", b'{"cells": []}' * 100)
COURSES_ROUTE = f"{PREFIX}courses"
REQUESTS = "ngshare_s3_request_duration_seconds_count"


class Server:
    """ngshare_s3 with two workers on the embedded backends in `folder`, logging JSON lines."""

    def __init__(self, folder: Path, hub_url: str, *options: str, database: str | None = None):
        self.port, self.metrics_port, self.log_path = free_port(), free_port(), folder / "server.log"
        backend = (database or f"sqlite:///{folder}/ngshare.db", str(folder / "files"))
        with open(self.log_path, "ab") as log:
            self.process = start_server(
                backend, hub_url, self.port, log, "--log-format", "json", "--metrics-port", str(self.metrics_port),
                *options, workers=2,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text()

    def access_pids(self, route: str) -> list[int]:
        """The process that answered each request to `route` so far, in the log's order."""
        lines = (json.loads(line) for line in self.log_text().splitlines() if '"ngshare_s3.access"' in line)
        return [line["pid"] for line in lines if line["route"] == route]

    def workers(self) -> set[int]:
        pid = self.process.pid
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    async def metrics(self, http: aiohttp.ClientSession) -> dict:
        async with http.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            assert response.status == 200
            return samples(await response.text())

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except Exception:
            self.process.kill()
            raise


def alive(pid: int) -> bool:
    """Running, not exited (a zombie not yet reaped by its new parent counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def new_api(server: Server, fake_hub) -> Api:
    """A client that opens a connection per request, so that each may reach either worker."""
    session = aiohttp.ClientSession(base_url=server.url, connector=aiohttp.TCPConnector(force_close=True))
    return Api(session, fake_hub, types.SimpleNamespace(prefix=PREFIX))


async def until_workers(server: Server, count: int, gone: frozenset[int] = frozenset()) -> set[int]:
    """The worker processes, once there are `count` of them and none of `gone` is left."""
    for _ in range(200):
        found = server.workers()
        if len(found) == count and not found & gone:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} workers, not {sorted(gone)}; found {sorted(server.workers())}")


async def serving(server: Server, http: aiohttp.ClientSession) -> set[int]:
    """The two workers, once the service answers its health check."""
    await wait_until_healthy(http, base_url(server.port), server.process)
    return await until_workers(server, 2)


async def until_logged(server: Server, route: str, count: int) -> list[int]:
    """The pids of the access lines for `route` once all `count` requests are logged."""
    for _ in range(200):
        pids = server.access_pids(route)
        if len(pids) >= count:
            return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} requests to {route} were answered but {len(pids)} logged")


async def list_courses_until_both_workers_answered(api: Api, server: Server, workers: set[int]) -> int:
    """List courses, 10 at a time, until both workers have answered; every answer must show the
    course. How many requests that took."""
    before, sent = len(server.access_pids(COURSES_ROUTE)), 0
    for _ in range(30):
        answers = await asyncio.gather(*(api.courses() for _ in range(10)))
        sent += len(answers)
        assert all(courses == [COURSE] for courses in answers), answers
        answered_by = set((await until_logged(server, COURSES_ROUTE, before + sent))[before:])
        if answered_by == workers:
            return sent
    raise AssertionError(f"{workers} did not both answer {sent} requests: {answered_by}")


async def test_both_workers_answer_share_the_stores_and_metrics_sum_over_them(tmp_path, fake_hub, http):
    server = Server(tmp_path, fake_hub.url)
    try:
        workers = await serving(server, http)
        api = new_api(server, fake_hub)
        try:
            await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
            # Whichever worker created the course, the other one lists it too.
            sent = await list_courses_until_both_workers_answered(api, server, workers)
        finally:
            await api.client.close()
        answered_by = await until_logged(server, COURSES_ROUTE, sent)
        assert set(answered_by) == workers and len(answered_by) == sent

        found = await server.metrics(http)
        assert value(found, REQUESTS, method="GET", route=COURSES_ROUTE, status="200") == sent, (
            "/metrics counts the requests of both workers"
        )
        assert value(found, REQUESTS, method="POST", route=f"{PREFIX}course/{{course}}", status="200") == 1
        assert value(found, "ngshare_s3_uploads_in_flight") == 0
        assert not any(name.startswith("process_") for name, _ in found), "one process's figures would mislead"
    finally:
        assert server.stop() == 0
    assert server.log_text().count('"Stopped"') == 2


async def test_a_burst_of_connections_is_spread_over_the_workers(tmp_path, fake_hub, http):
    """Each worker has its own socket on the port, so a burst reaches all of them rather than
    the one that happened to wake first (which would then hold all of it)."""
    server = Server(tmp_path, fake_hub.url)
    connections: list[socket.socket] = []
    try:
        workers = await serving(server, http)
        for _ in range(40):  # each request left unfinished keeps its connection with its worker
            connection = socket.create_connection(("127.0.0.1", server.port))
            connection.sendall(b"GET /services/ngshare/healthz HTTP/1.1\r\n")
            connections.append(connection)
        held = await until_connections_accepted(server.port, workers, len(connections))
        assert min(held.values()) >= 10, held
    finally:
        for connection in connections:
            connection.close()
        assert server.stop() == 0


async def until_connections_accepted(port: int, workers: set[int], count: int) -> dict[int, int]:
    """How many connections to `port` each worker holds, once they hold `count` in all."""
    for _ in range(200):
        held = {pid: sum(1 for c in psutil.Process(pid).net_connections("tcp")
                         if c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)
                for pid in workers}
        if sum(held.values()) >= count:
            return held
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workers accepted {held} of {count} connections")


async def test_sigterm_drains_every_worker_and_lets_an_upload_finish(tmp_path, fake_hub, http):
    server = Server(tmp_path, fake_hub.url, "--grace-period", "20")
    workers = await serving(server, http)
    api = new_api(server, fake_hub)
    try:
        await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
        await api.release(COURSE, ASSIGNMENT, [NOTEBOOK], caller=INSTRUCTOR)
    finally:
        await api.client.close()
    upload = HalfSentUpload(http, server.url, api.headers_for(STUDENT))
    try:
        await upload.halfway.wait()
        await until_metric(http, server.metrics_port, "ngshare_s3_uploads_in_flight", 1)
        server.process.send_signal(signal.SIGTERM)
        await until_refused(server.port)
        assert server.process.poll() is None, "the service must wait for the upload in flight"
        upload.rest_may_go.set()
        status, reply = await asyncio.wait_for(upload.task, timeout=30)
    finally:
        upload.rest_may_go.set()
    assert (status, reply["success"]) == (200, True), reply
    assert await asyncio.to_thread(server.stop) == 0
    assert not any(map(alive, workers)), "a worker outlived the service"
    log = server.log_text()
    assert log.count("Shutting down") == 2 and log.count('"Stopped"') == 2
    assert "Every worker has stopped" in log


async def test_a_killed_worker_is_replaced_and_its_counts_are_kept(tmp_path, fake_hub, http):
    server = Server(tmp_path, fake_hub.url)
    try:
        workers = await serving(server, http)
        api = new_api(server, fake_hub)
        try:
            await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
            sent = await list_courses_until_both_workers_answered(api, server, workers)
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            replaced = await until_workers(server, 2, gone=frozenset({victim}))
            newcomer = (replaced - workers).pop()
            # The service goes on, the newcomer among those answering.
            sent += await list_courses_until_both_workers_answered(api, server, replaced)
        finally:
            await api.client.close()
        assert newcomer in set(server.access_pids(COURSES_ROUTE))
        found = await server.metrics(http)
        assert value(found, REQUESTS, method="GET", route=COURSES_ROUTE, status="200") == sent, (
            "the killed worker's requests still count"
        )
        assert f"Worker {victim} exited unexpectedly with signal SIGKILL; starting another" in server.log_text()
    finally:
        assert server.stop() == 0


async def test_a_worker_that_cannot_open_its_store_stops_the_service(tmp_path, fake_hub, http):
    (tmp_path / "a-file").write_text("")
    unusable = tmp_path / "a-file" / "ngshare.db"  # its folder cannot be created
    server = Server(tmp_path, fake_hub.url, database=f"sqlite:///{unusable}")
    try:
        exit_code = await asyncio.to_thread(server.process.wait, 30)
    finally:
        server.process.kill()
    log = server.log_text()
    assert exit_code == 2, log
    assert f"ngshare-s3: cannot create the database folder {unusable.parent}" in log, "the worker's reason is shown"
    assert "could not start (its reason is above); stopping the others" in log
    assert "starting another" not in log, "a worker that cannot start is not started again"


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path, fake_hub, http):
    server = Server(tmp_path, fake_hub.url)
    try:
        workers = await serving(server, http)
    finally:
        server.process.kill()
        server.process.wait()
    for _ in range(100):
        if not any(map(alive, workers)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("workers serve on without their supervisor")
    await until_refused(server.port)
    assert server.log_text().count('"Stopped"') == 2, "each drained as after SIGTERM"
