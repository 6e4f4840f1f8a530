"""The database or the bucket goes down under a running service: /healthz and the API answer
503 with a clear message meanwhile, and service resumes by itself once the server is back."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, STUDENT

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import servers  # noqa: E402

RECOVERY_TIMEOUT = 60
RELEASED = {"ps1.ipynb": b'{"cells": []}'}


@pytest.fixture
def own_servers(tmp_path, s3_environment):
    """A FerretDB and a MinIO of this test's own, which it may stop and start at will."""
    started: list[servers.Server] = []
    try:
        for start, name in ((servers.start_ferretdb, "ferretdb"), (servers.start_minio, "minio")):
            try:
                started.append(start(tmp_path / name))
            except servers.ServerUnavailable as reason:
                pytest.skip(str(reason))
        ferretdb, minio = started
        s3 = servers.S3Server("minio", f"http://127.0.0.1:{minio.port}", servers.MINIO_USER, servers.MINIO_PASSWORD, process=minio)
        s3.create_bucket(s3.bucket)
        s3_environment(s3)
        yield ferretdb, minio, (f"mongodb://127.0.0.1:{ferretdb.port}/outage", f"s3://{s3.bucket}/outage")
    finally:
        for server in started:
            server.stop()


async def test_service_answers_503_while_a_store_is_down_and_recovers_by_itself(own_servers, fake_hub, tmp_path):
    ferretdb, minio, backend = own_servers
    port = free_port()
    base = base_url(port)
    headers = {user: {"Authorization": f"token {fake_hub.token_for(user)}"} for user in (ADMIN, INSTRUCTOR, STUDENT)}
    log = open(tmp_path / "server.log", "wb")
    # Without the release cache, whose answers would spare the fetch a visit to the storage.
    server = start_server(backend, fake_hub.url, port, log, "--release-cache-size", "0")
    try:
        async with aiohttp.ClientSession() as http:

            async def call(method: str, user: str, route: str, **fields) -> tuple[int, dict]:
                options = {"data": fields} if method == "POST" else {"params": fields}
                async with http.request(method, f"{base}/{route}", headers=headers[user], **options) as response:
                    return response.status, await response.json()

            async def health() -> tuple[int, dict]:
                async with http.get(f"{base}/healthz") as response:
                    return response.status, await response.json()

            async def fetched_files() -> tuple[int, dict]:
                return await call("GET", STUDENT, "assignment/c1/ps1")

            await wait_until_healthy(http, base, server)
            await call("POST", ADMIN, "course/c1", instructors=json.dumps([INSTRUCTOR]))
            await call("POST", INSTRUCTOR, "student/c1/" + STUDENT, first_name="", last_name="", email="")
            files = [{"path": p, "content": base64.b64encode(b).decode()} for p, b in RELEASED.items()]
            assert (await call("POST", INSTRUCTOR, "assignment/c1/ps1", files=json.dumps(files)))[0] == 200

            for down, store in ((ferretdb, "database"), (minio, "storage")):
                down.stop()
                status, body = await health()
                assert status == 503 and body["success"] is False, body
                assert body[store].startswith("unavailable"), body
                assert body["database" if store == "storage" else "storage"] == "ok", body
                async with http.get(f"http://127.0.0.1:{port}/livez") as response:
                    assert response.status == 200, "liveness must not fail while a store is down"
                status, body = await fetched_files()
                told = "database" if store == "database" else "file storage"
                message = f"The exchange's {told} is unavailable; try again shortly"
                assert (status, body) == (503, {"success": False, "message": message})

                down.start()
                deadline = time.monotonic() + RECOVERY_TIMEOUT
                while (await health())[0] != 200:
                    assert time.monotonic() < deadline, f"no recovery after the {store} came back"
                    await asyncio.sleep(0.5)
                status, body = await fetched_files()
                assert status == 200, body
                assert {f["path"]: base64.b64decode(f["content"]) for f in body["files"]} == RELEASED
            assert server.poll() is None, "the service exited during the outage"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
            errors = [
                sample.labels["store"]
                for family in text_string_to_metric_families(metrics)
                for sample in family.samples
                if sample.name == "ngshare_s3_store_errors_total" and sample.value > 0
            ]
            assert {"database", "storage"} <= set(errors), "each outage shows in the store error counts"

    finally:
        stop(server)
        log.close()
