"""ngshare_s3 as separate server processes on the test's backend, the way a deployment runs
it: for tests that kill a server or run several replicas side by side."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import IO

import aiohttp

from servers import free_port  # noqa: F401  (tests/ is on the path: tests/conftest.py)

from .support import ADMIN, PREFIX, SERVICE_TOKEN


def start_server(
    backend: tuple[str, str], hub_url: str, port: int, log: IO[bytes], *options: str, workers: int = 1
) -> subprocess.Popen:
    """One server process; the environment (AWS variables included) is the test's own.
    `options` are further command-line flags. One worker process unless `workers` says more,
    whatever the machine's CPUs."""
    database, storage = backend
    environment = {**os.environ, "JUPYTERHUB_API_TOKEN": SERVICE_TOKEN, "JUPYTERHUB_API_URL": f"{hub_url}/hub/api"}
    return subprocess.Popen(
        [sys.executable, "-m", "ngshare_s3", "--admins", ADMIN, "--database", database, "--storage", storage,
         "--prefix", PREFIX, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *options],
        env=environment, stdout=log, stderr=subprocess.STDOUT,
    )


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}{PREFIX.rstrip('/')}"


async def wait_until_healthy(http: aiohttp.ClientSession, base: str, server: subprocess.Popen) -> None:
    for _ in range(400):
        assert server.poll() is None, "the server exited during start-up"
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the server did not become healthy")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
