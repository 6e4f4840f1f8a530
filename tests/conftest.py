"""Session fixtures: the real servers the production backends are tested against.

Each server starts the first time a test asks for it and stops when the session ends. A server
that cannot be built or started skips the tests that need it, with the reason. Users can point
the suite at their own servers instead: `MONGODB_URL` replaces FerretDB, `AWS_ENDPOINT_URL` (with
credentials from the usual AWS environment) replaces MinIO.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import servers  # noqa: E402  (tests/ is not a package)
from servers import MongoServer, S3Server  # noqa: E402


# Parallel runs -------------------------------------------------------------------------------

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` spreads the test files over workers with pytest-xdist (`--dist loadfile`: a
    file's tests run on one worker, in order, so a fixture set up once per module is set up
    once). Files with such fixtures (a Hub, an installed image, a rendered chart) take longest,
    so they go first: no worker is left with one of them at the end while the other idles."""
    slow_files = {item.path for item in items if _uses_a_module_fixture(item)}
    items.sort(key=lambda item: item.path not in slow_files)


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    """A fixture of the test suite set up once per module (or once per session in a test file);
    the servers of this file, started once per worker, do not count."""
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return False
    for definitions in fixture_info.name2fixturedefs.values():
        fixture = definitions[-1]
        source = Path(inspect.getfile(fixture.func)).resolve()
        if fixture.scope != "function" and source.is_relative_to(TESTS) and source != Path(__file__).resolve():
            return True
    return False


def _start_or_skip(start: Callable[[Path], servers.Server], folder: Path) -> servers.Server:
    try:
        return start(folder)
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))


# MongoDB ------------------------------------------------------------------------------------

SERVER_WAIT_MS = 30_000


@pytest.fixture(scope="session")
def mongodb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """`MONGODB_URL` if set, else FerretDB (SQLite engine) started for this session."""
    external = os.environ.get("MONGODB_URL")
    if external:
        server = MongoServer(external)
        yield server
        server.drop_databases()
        return
    process = _start_or_skip(servers.start_ferretdb, tmp_path_factory.mktemp("ferretdb"))
    try:
        # A generous wait for the server: a busy test machine's disk can stall it for seconds.
        url = f"mongodb://127.0.0.1:{process.port}/?serverSelectionTimeoutMS={SERVER_WAIT_MS}"
        yield MongoServer(url, process)
    finally:
        process.stop()


@pytest.fixture
def mongodb_url(mongodb: MongoServer) -> Iterator[str]:
    """A URL naming a fresh database, dropped after the test."""
    url = mongodb.new_database_url()
    yield url
    if mongodb.process is None or mongodb.process.running:
        mongodb.drop_database(url)


# S3 -----------------------------------------------------------------------------------------


def _external_s3() -> S3Server:
    """The user's endpoint, with credentials resolved the way any AWS client would."""
    import boto3

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        pytest.skip("AWS_ENDPOINT_URL is set but no AWS credentials were found")
    frozen = credentials.get_frozen_credentials()
    return S3Server(
        name="external",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        access_key=frozen.access_key,
        secret_key=frozen.secret_key,
        session_token=frozen.token,
        region=session.region_name or "us-east-1",
        clear=(),
    )


def _serve_s3(server: S3Server) -> Iterator[S3Server]:
    """Creates the session's bucket, yields the server, then cleans up after it."""
    try:
        server.create_bucket(server.bucket)
        yield server
    finally:
        if server.process is not None:
            server.process.stop()
        else:
            server.delete_created_buckets()


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """`AWS_ENDPOINT_URL` (name "external") if set, else MinIO started for this session."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield from _serve_s3(_external_s3())
        return
    process = _start_or_skip(servers.start_minio, tmp_path_factory.mktemp("minio"))
    endpoint = f"http://127.0.0.1:{process.port}"
    yield from _serve_s3(S3Server("minio", endpoint, servers.MINIO_USER, servers.MINIO_PASSWORD, process=process))


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server started for this session (it accepts any credentials)."""
    process = _start_or_skip(servers.start_moto, tmp_path_factory.mktemp("moto"))
    endpoint = f"http://127.0.0.1:{process.port}"
    yield from _serve_s3(S3Server("moto", endpoint, "testing", "testing", process=process))


@pytest.fixture
def s3_environment(monkeypatch: pytest.MonkeyPatch) -> Callable[[S3Server], None]:
    """Points this process's AWS environment at a server for one test: the S3 store takes its
    endpoint and credentials only from the standard AWS environment. Usage:
    `s3_environment(minio_server)`."""

    def apply(server: S3Server) -> None:
        for name in server.clear:
            monkeypatch.delenv(name, raising=False)
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)

    return apply
