"""The real servers the test suite runs against: MinIO and FerretDB (built from source with Go,
pinned, cached under `.cache/servers/`) and moto's S3 server (a Python package). The same
machinery builds the deployment tools the chart tests run offline: helm and kubeconform.

Run `python tests/servers.py build` to build or reuse the pinned programs; the Makefile's
`install` target does. A build that cannot happen (no Go, a failed compile) is reported and
remembered, and the tests that need that server are skipped with the reason.

The test session imports this module to start a server on a free loopback port in a folder of
its own, wait until it answers, and stop it; a `Server` handle can also be stopped and started
again on the same port and folder, to test how the service rides out an outage. `MongoServer`
and `S3Server` are what tests receive: where a server is and how to get a fresh place on it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REPOSITORY = Path(__file__).resolve().parent.parent
CACHE = REPOSITORY / ".cache" / "servers"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

MINIO_USER = "ngshare-test"
MINIO_PASSWORD = "ngshare-test-secret"


class ServerUnavailable(RuntimeError):
    """A server cannot be built or started; the message is the reason tests are skipped."""


@dataclasses.dataclass(frozen=True)
class GoProgram:
    """One server built with `go install`, pinned to a module version.

    `generated` lists files the project's own release process writes into the source before
    building; a plain `go install MODULE@VERSION` lacks them, so those programs are built from a
    copy of the module's source with the files added. `ldflags` sets what a release build
    stamps into variables (`-X package.variable=value`). `version_arguments` is a command that
    must succeed for the built binary to count as working.
    """

    name: str
    module: str
    package: str
    version: str
    generated: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ldflags: tuple[str, ...] = ()
    version_arguments: tuple[str, ...] = ("--version",)

    @property
    def folder(self) -> Path:
        return CACHE / f"{self.name}-{self.version}"

    @property
    def binary(self) -> Path:
        return self.folder / self.name

    @property
    def failure_note(self) -> Path:
        return CACHE / f"{self.name}-{self.version}.failed"


# MinIO's release tags are not Go module versions: it is pinned by a commit's pseudo-version.
MINIO = GoProgram(
    name="minio",
    module="github.com/minio/minio",
    package="github.com/minio/minio",
    version="v0.0.0-20260212201848-7aac2a2c5b7c",
)

# FerretDB's last 1.x release, whose SQLite engine needs no other database server. Its binary
# refuses to start unless build/version/version.txt names its version.
FERRETDB = GoProgram(
    name="ferretdb",
    module="github.com/FerretDB/FerretDB",
    package="github.com/FerretDB/FerretDB/cmd/ferretdb",
    version="v1.24.2",
    generated={"build/version/version.txt": "v1.24.2\n"},
)

# Helm, for `helm lint` and `helm template` of the chart in k8s/. A plain `go install` leaves
# helm believing it talks to Kubernetes 1.20 (its release build stamps the real default), and
# the chart requires 1.28 or newer: stamp the version and a current Kubernetes as its release
# Makefile would.
HELM_VERSION = "v3.21.4"
HELM_KUBERNETES_VERSION = (1, 33)
HELM = GoProgram(
    name="helm",
    module="helm.sh/helm/v3",
    package="helm.sh/helm/v3/cmd/helm",
    version=HELM_VERSION,
    ldflags=(
        f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={HELM_KUBERNETES_VERSION[0]}",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={HELM_KUBERNETES_VERSION[1]}",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={HELM_KUBERNETES_VERSION[0]}",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={HELM_KUBERNETES_VERSION[1]}",
    ),
    version_arguments=("version", "--short"),
)

# kubeconform validates rendered manifests against Kubernetes' OpenAPI schemas; the tests give
# it local schemas, since it would otherwise download them.
KUBECONFORM = GoProgram(
    name="kubeconform",
    module="github.com/yannh/kubeconform",
    package="github.com/yannh/kubeconform/cmd/kubeconform",
    version="v0.8.0",
    version_arguments=("-v",),
)

PROGRAMS = (MINIO, FERRETDB, HELM, KUBECONFORM)


# Building ---------------------------------------------------------------------------------


def build(program: GoProgram) -> str:
    """Builds `program` unless its pinned version is already cached; returns what happened."""
    if program.binary.exists():
        return "cached"
    started = time.monotonic()
    try:
        _install(program)
    except ServerUnavailable as error:
        CACHE.mkdir(parents=True, exist_ok=True)
        program.failure_note.write_text(str(error))
        return f"not built: {error}"
    program.failure_note.unlink(missing_ok=True)
    return f"built in {time.monotonic() - started:.0f} s"


def _install(program: GoProgram) -> None:
    """Runs `go install` into a fresh folder, checks the program runs, then moves it in place,
    so an interrupted build never leaves a binary that looks cached."""
    go = shutil.which("go")
    if go is None:
        raise ServerUnavailable("Go is not installed (no `go` on PATH); see https://go.dev/dl/")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=f".{program.name}-") as scratch:
        gobin = Path(scratch) / "bin"
        flags = ["-ldflags", " ".join(program.ldflags)] if program.ldflags else []
        if program.generated:
            source = _source_with_generated_files(go, program, Path(scratch) / "source")
            package = "./" + program.package.removeprefix(program.module).lstrip("/")
            _go(go, ["install", *flags, package], gobin, cwd=source)
        else:
            _go(go, ["install", *flags, f"{program.package}@{program.version}"], gobin, cwd=Path(scratch))
        _check_runs(gobin / program.name, program.version_arguments)
        shutil.rmtree(program.folder, ignore_errors=True)
        gobin.rename(program.folder)


def _source_with_generated_files(go: str, program: GoProgram, target: Path) -> Path:
    """Copies the module's source out of Go's read-only module cache and adds the files its
    release process would have generated."""
    listing = _go(go, ["mod", "download", "-json", f"{program.module}@{program.version}"], None, cwd=target.parent)
    shutil.copytree(json.loads(listing)["Dir"], target)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    for name, content in program.generated.items():
        (target / name).write_text(content)
    return target


def _go(go: str, arguments: list[str], gobin: Path | None, cwd: Path) -> str:
    environment = dict(os.environ)
    if gobin is not None:
        environment["GOBIN"] = str(gobin)
    result = subprocess.run([go, *arguments], cwd=cwd, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerUnavailable(f"`go {' '.join(arguments)}` failed:\n{_tail(result.stderr)}")
    return result.stdout


def _check_runs(binary: Path, arguments: tuple[str, ...]) -> None:
    result = subprocess.run([str(binary), *arguments], cwd=binary.parent, capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerUnavailable(f"the built {binary.name} does not run:\n{_tail(result.stderr)}")


def binary(program: GoProgram) -> Path:
    """The cached binary of `program`, or ServerUnavailable saying why there is none."""
    if program.binary.exists():
        return program.binary
    if program.failure_note.exists():
        raise ServerUnavailable(f"{program.name} {program.version} failed to build: {program.failure_note.read_text()}")
    raise ServerUnavailable(
        f"{program.name} {program.version} is not built; run `make servers` (python tests/servers.py build)"
    )


# Running ------------------------------------------------------------------------------------


# Ports handed out below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default), so that no outgoing connection and no bind to port 0 takes one between the moment it
# is chosen and the moment its server binds it.
FREE_PORTS = range(15000, 32768)


def free_port() -> int:
    """A loopback port nothing listens on right now (the server takes it a moment later)."""
    for _ in range(100):
        port = random.choice(FREE_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {FREE_PORTS}")


@dataclasses.dataclass
class Server:
    """One server process listening on 127.0.0.1:`port` and keeping its data in `folder`.

    `stop()` and `start()` may be called again and again: the port and folder stay the same, so a
    client configured once sees the same server come back with its data (moto keeps data in
    memory only, so it comes back empty).
    """

    name: str
    port: int
    folder: Path
    command: Callable[[int], list[str]]
    ready: Callable[[Server], bool]
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Starts the process and returns once it answers; raises ServerUnavailable with the end
        of its log if it exits or stays silent for `timeout` seconds."""
        if self.running:
            return
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(self.port),
            cwd=self.folder,
            env={**os.environ, **self.environment},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.ready(self):
            if self.process.poll() is not None:
                self.stop()
                raise ServerUnavailable(f"{self.name} exited with code {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerUnavailable(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminates the process, killing it if it does not exit within a few seconds."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"), lines)
        except FileNotFoundError:
            return "(no log)"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _http_answers(path: str) -> Callable[[Server], bool]:
    """Ready once an HTTP request gets any response: an error status still means it listens."""

    def ready(server: Server) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return ready


def _mongodb_answers(server: Server) -> bool:
    """Ready once a MongoDB `ping` succeeds, which needs FerretDB's storage engine up, not just
    its listener."""
    import pymongo
    import pymongo.errors

    client: pymongo.MongoClient = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{server.port}/", serverSelectionTimeoutMS=500, connectTimeoutMS=500
    )
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False
    finally:
        client.close()


def start(
    name: str,
    folder: Path,
    command: Callable[[int], list[str]],
    ready: Callable[[Server], bool],
    environment: Mapping[str, str] | None = None,
    attempts: int = 3,
) -> Server:
    """Starts a server on a free port, trying another port if the first start fails (another
    process may have taken the port between our probe and the server's bind)."""
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        server = Server(name, free_port(), folder, command, ready, dict(environment or {}))
        try:
            server.start()
            return server
        except ServerUnavailable:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_minio(folder: Path, console_port: int | None = None) -> Server:
    """MinIO on one drive in `folder/data`, with the credentials MINIO_USER / MINIO_PASSWORD.
    Its console (object browser) listens on 127.0.0.1:`console_port` if one is given."""
    program = binary(MINIO)
    console = ["--console-address", f"127.0.0.1:{console_port}"] if console_port else []
    return start(
        "minio",
        folder,
        lambda port: [str(program), "server", str(folder / "data"), "--address", f"127.0.0.1:{port}", *console],
        _http_answers("/minio/health/live"),
        {
            "MINIO_ROOT_USER": MINIO_USER,
            "MINIO_ROOT_PASSWORD": MINIO_PASSWORD,
            # Without a console port, no console, so no second port to pick.
            "MINIO_BROWSER": "on" if console_port else "off",
            "MINIO_UPDATE": "off",
        },
    )


def start_ferretdb(folder: Path, admin: tuple[str, str] | None = None) -> Server:
    """FerretDB on its SQLite engine, one SQLite file per database in `folder/data`. With an
    `admin` (user, password), authentication is on (FerretDB's experimental SCRAM support):
    that user, in the `admin` database, may create others; a client without credentials or
    with wrong ones is refused, as by a MongoDB with access control."""
    program = binary(FERRETDB)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    authentication = [] if admin is None else [
        "--test-enable-new-auth",
        f"--setup-username={admin[0]}",
        f"--setup-password={admin[1]}",
        "--setup-database=admin",
    ]
    return start(
        "ferretdb",
        folder,
        lambda port: [
            str(program),
            "--handler=sqlite",
            f"--sqlite-url=file:{folder / 'data'}/",
            f"--listen-addr=127.0.0.1:{port}",
            "--debug-addr=-",  # no metrics listener, so parallel instances do not collide
            f"--state-dir={folder}",
            "--telemetry=disable",
            *authentication,
        ],
        _mongodb_answers,
    )


def start_moto(folder: Path) -> Server:
    """moto's S3 server (any credentials are accepted; data lives in memory)."""
    return start(
        "moto",
        folder,
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        _http_answers("/moto-api/"),
    )


# Servers as tests see them --------------------------------------------------------------------

# Variables that would make an S3 client ignore a test server's credentials.
AWS_VARIABLES_TO_CLEAR = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def fresh_name(prefix: str) -> str:
    """`prefix` and 12 random hex digits: unique across tests and sessions sharing a server."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@dataclasses.dataclass
class MongoServer:
    """A MongoDB-compatible server; each test gets a database of its own on it."""

    url: str
    process: Server | None = None
    handed_out: list[str] = dataclasses.field(default_factory=list)

    def new_database_url(self) -> str:
        """The server's URL naming a database no test has used. The user's URL keeps its
        credentials and options; if it named a database, that one stays the auth source."""
        name = fresh_name("t_")
        self.handed_out.append(name)
        parts = urlsplit(self.url)
        options = dict(parse_qsl(parts.query))
        current = parts.path.strip("/")
        if current and "authSource" not in options:
            options["authSource"] = current
        return urlunsplit(parts._replace(path=f"/{name}", query=urlencode(options)))

    def drop_database(self, url: str) -> None:
        import pymongo

        with pymongo.MongoClient(url, serverSelectionTimeoutMS=30_000) as client:
            client.drop_database(client.get_default_database().name)

    def drop_databases(self) -> None:
        """Drops every database handed out, so a user's own server is left as it was."""
        import pymongo

        with pymongo.MongoClient(self.url, serverSelectionTimeoutMS=30_000) as client:
            for name in self.handed_out:
                client.drop_database(name)
        self.handed_out.clear()


@dataclasses.dataclass
class S3Server:
    """An S3-compatible endpoint and credentials; each test gets a prefix of its own in a bucket
    shared by the session."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    session_token: str | None = None
    bucket: str = dataclasses.field(default_factory=lambda: fresh_name("ngshare-test-"))
    process: Server | None = None
    # An external endpoint keeps the user's profile; a started server must not pick one up.
    clear: tuple[str, ...] = AWS_VARIABLES_TO_CLEAR
    created_buckets: list[str] = dataclasses.field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The AWS_* variables that point an S3 client at this server. Also remove the names
        in `clear` from the environment (the `s3_environment` fixture does both)."""
        variables = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        if self.session_token:
            variables["AWS_SESSION_TOKEN"] = self.session_token
        return variables

    def process_environment(self) -> dict[str, str]:
        """This process's environment pointed at this server, for a child process."""
        environment = {key: value for key, value in os.environ.items() if key not in self.clear}
        return {**environment, **self.environment()}

    def client(self) -> Any:
        """A boto3 S3 client for this server, configured as S3-compatible servers need: path-style
        addressing and no CRC checksums (botocore >= 1.36 sends them by default)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
            region_name=self.region,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
            ),
        )

    def create_bucket(self, name: str) -> None:
        """Creates a bucket, remembered so an external endpoint is cleaned at session end."""
        location = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        self.client().create_bucket(Bucket=name, **location)
        self.created_buckets.append(name)

    def new_location(self) -> str:
        """`s3://bucket/prefix` with a prefix no test has used, in the session's bucket."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex}"

    def new_bucket_name(self) -> str:
        """A valid bucket name that does not exist yet. A test that creates it should use
        `create_bucket` (or the store under test) on an external endpoint, so it gets removed."""
        return fresh_name("ngshare-test-")

    def delete_created_buckets(self) -> None:
        """Empties and deletes the buckets this session created (on a user's endpoint)."""
        client = self.client()
        for name in self.created_buckets:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
            client.delete_bucket(Bucket=name)
        self.created_buckets.clear()


def main(arguments: list[str]) -> int:
    """`build` builds what it can; `build --require` also fails unless every server is built,
    for CI, where a skipped server suite would hide that it never ran."""
    if arguments not in (["build"], ["build", "--require"]):
        print(f"usage: {Path(__file__).name} build [--require]", file=sys.stderr)
        return 2
    for program in PROGRAMS:
        print(f"{program.name} {program.version}: ", end="", flush=True)
        print(build(program), flush=True)
    missing = [program.name for program in PROGRAMS if not program.binary.exists()]
    return 1 if missing and "--require" in arguments else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
