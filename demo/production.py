"""The demo's production-like exchange (`demo/run.py --production`): MongoDB (FerretDB) and MinIO
with its console on 127.0.0.1, two ngshare_s3 replicas behind one round-robin address (as a
Kubernetes Service would put them), and a read-only auditor account on the exchange's prefix.

MinIO and FerretDB are the programs `make install` builds under .cache/servers/ (started with
the test suite's helpers in tests/servers.py); their data stays in .demo/production/.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import servers  # noqa: E402  (tests/servers.py: builds and starts MinIO and FerretDB)
from e2e.topology import RoundRobinBalancer  # noqa: E402

BUCKET = "ngshare-demo"
EXCHANGE_PREFIX = "exchange"
STORAGE = f"s3://{BUCKET}/{EXCHANGE_PREFIX}"
CONSOLE_PORT = 9001
AUDITOR = "auditor"
REPLICAS = 2


@dataclass
class Stack:
    """Everything started for the production-like exchange; `stop()` stops it all."""

    folder: Path
    service_token: str
    hub_api: str
    minio: servers.Server | None = None
    ferretdb: servers.Server | None = None
    replicas: list[subprocess.Popen] = field(default_factory=list)
    balancer: RoundRobinBalancer | None = None
    auditor_password: str = ""

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{CONSOLE_PORT}"

    @property
    def exchange_url(self) -> str:
        assert self.balancer is not None
        return self.balancer.url

    def s3_environment(self) -> dict[str, str]:
        assert self.minio is not None
        return {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.minio.port}",
            "AWS_ACCESS_KEY_ID": servers.MINIO_USER,
            "AWS_SECRET_ACCESS_KEY": servers.MINIO_PASSWORD,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ferretdb = servers.start_ferretdb(self.folder / "ferretdb")
        self.minio = servers.start_minio(self.folder / "minio", console_port=CONSOLE_PORT)
        environment = {
            **os.environ,
            **self.s3_environment(),
            "JUPYTERHUB_API_TOKEN": self.service_token,
            "JUPYTERHUB_API_URL": self.hub_api,
            "JUPYTERHUB_SERVICE_NAME": "ngshare",
            "JUPYTERHUB_SERVICE_PREFIX": "/services/ngshare/",
            "JUPYTERHUB_CLIENT_ID": "service-ngshare",
            "NGSHARE_S3_DATABASE": f"mongodb://127.0.0.1:{self.ferretdb.port}/ngshare",
            "NGSHARE_S3_STORAGE": STORAGE,
            "NGSHARE_S3_ADMINS": "admin",
            "NGSHARE_S3_HOST": "127.0.0.1",
        }
        ports = [servers.free_port() for _ in range(REPLICAS)]
        for number, port in enumerate(ports, 1):
            log = open(self.folder / f"ngshare-{number}.log", "ab")
            self.replicas.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ngshare_s3", "--port", str(port)],
                    env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
        for port, replica in zip(ports, self.replicas):
            wait_healthy(f"http://127.0.0.1:{port}/healthz", replica)  # the first one creates the bucket
        self.balancer = RoundRobinBalancer(ports)
        self.balancer.start()
        self.auditor_password = self.create_auditor()

    def create_auditor(self) -> str:
        """The auditor's password is made once and kept, so it survives a restart of the demo."""
        password_file = self.folder / "auditor-password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(18) + "\n")
            password_file.chmod(0o600)
        subprocess.run(
            [sys.executable, "-m", "ngshare_s3", "auditor", "create", "--storage", STORAGE,
             "--name", AUDITOR, "--password-file", str(password_file)],
            env={**os.environ, **self.s3_environment()}, check=True,
        )
        return password_file.read_text().strip()

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for replica in self.replicas:
            replica.terminate()
        for replica in self.replicas:
            try:
                replica.wait(40)
            except subprocess.TimeoutExpired:
                replica.kill()
        for server in (self.minio, self.ferretdb):
            if server is not None:
                server.stop()

    def recipe(self) -> str:
        assert self.minio is not None
        courses = quote(f"{EXCHANGE_PREFIX}/courses/", safe="")
        return f"""
Production-like exchange: {REPLICAS} ngshare_s3 replicas behind {self.exchange_url}
(logs: {self.folder}/ngshare-*.log), MongoDB (FerretDB) on 127.0.0.1:{self.ferretdb.port if self.ferretdb else "?"},
MinIO's S3 API on {self.s3_environment()["AWS_ENDPOINT_URL"]}, files under {STORAGE}.

Audit what was submitted, read-only, in MinIO's console:
  open      {self.console_url}/browser/{BUCKET}/{courses}
  log in    user: {AUDITOR}   password: {self.auditor_password}
  (acknowledge the licence notice once; submissions are under
   courses/<course>/assignments/<assignment>/submissions/<student>/<id>/, and each file's
   details show its kind, course, assignment, student, path, timestamp, uploader and MD5)
"""


def wait_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"an ngshare_s3 replica exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")
