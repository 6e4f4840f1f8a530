"""What every backend of each store does when its driver fails: every public method raises the
store's unavailable error (a refusal of the service's credentials is one kind of it), with the
driver's exception kept as `__cause__`, the way Kinto's storage backends wrap theirs.

The failures are real: a closed connection or client, a server stopped under a running store, a
storage folder removed, a server refusing the service's credentials. Each way of failing is one
entry below, for one backend; every store method is called on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.exceptions
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, InvalidOperation, OperationFailure

from ngshare_s3.stores.errors import (
    DatabaseRefused,
    DatabaseUnavailable,
    StoreRefused,
    StoreUnavailable,
)
from ngshare_s3.stores.metadata.base import (
    Assignment,
    Event,
    EventQuery,
    Feedback,
    Member,
    MetadataStore,
    Submission,
)
from ngshare_s3.stores.metadata.mongo import MongoMetadataStore, describe
from ngshare_s3.stores.metadata.sqlite import SqliteMetadataStore
from ngshare_s3.stores.objects.base import ObjectStore, chunks_of, read_all
from ngshare_s3.stores.objects.filesystem import FilesystemObjectStore
from ngshare_s3.stores.objects.s3 import S3ObjectStore, make_client, parse_location

from servers import S3Server, fresh_name  # tests/ is on the path (tests/conftest.py)
import servers

# Every public method of each interface, called once with plausible arguments. close() is
# left out: closing is how some failures below are made.

MEMBER = Member("c", "u", "student", "Ada", "Lovelace", "ada@example.org")
SUBMISSION = Submission("c", "a", "u", "2026-01-02 03:04:05.000000", "s1", "r1")
FEEDBACK = Feedback("f1", "2026-01-02 03:04:06.000000")

METADATA_CALLS: dict[str, Callable[[MetadataStore], Awaitable[Any]]] = {
    "ping": lambda s: s.ping(),
    "create_course": lambda s: s.create_course("c"),
    "course_incarnation": lambda s: s.course_incarnation("c"),
    "close_course": lambda s: s.close_course("c"),
    "course_exists": lambda s: s.course_exists("c"),
    "list_courses": lambda s: s.list_courses(),
    "delete_course": lambda s: s.delete_course("c"),
    "get_member": lambda s: s.get_member("c", "u"),
    "list_members": lambda s: s.list_members("c", "student"),
    "courses_of": lambda s: s.courses_of("u"),
    "add_member": lambda s: s.add_member(MEMBER),
    "put_student": lambda s: s.put_student(MEMBER),
    "make_instructor": lambda s: s.make_instructor(MEMBER),
    "update_names": lambda s: s.update_names(MEMBER),
    "delete_member": lambda s: s.delete_member("c", "u", "student"),
    "delete_members": lambda s: s.delete_members("c"),
    "create_assignment": lambda s: s.create_assignment(Assignment("c", "a", "r1", "2026-01-02 03:04:05.000000")),
    "get_assignment": lambda s: s.get_assignment("c", "a"),
    "list_assignments": lambda s: s.list_assignments("c"),
    "delete_assignment": lambda s: s.delete_assignment("c", "a", "r1"),
    "create_submission": lambda s: s.create_submission(SUBMISSION),
    "list_submissions": lambda s: s.list_submissions("c", "a"),
    "get_submission": lambda s: s.get_submission("c", "a", "u"),
    "replace_feedback": lambda s: s.replace_feedback("c", "a", "u", SUBMISSION.timestamp, FEEDBACK),
    "delete_submissions": lambda s: s.delete_submissions("c", "a", "r1"),
    "record_event": lambda s: s.record_event(Event("2026-01-02 03:04:05.000000", "u", "submit", "c")),
    "list_events": lambda s: s.list_events("c"),
    "page_events": lambda s: s.page_events(EventQuery("c")),
    "dump": lambda s: s.dump(),
    "clear": lambda s: s.clear(),
    "claim_once": lambda s: s.claim_once("state", datetime.now(timezone.utc) + timedelta(minutes=10)),
}


async def _listed(store: ObjectStore) -> list[Any]:
    return [info async for info in store.list("courses/")]


OBJECT_CALLS: dict[str, Callable[[ObjectStore], Awaitable[Any]]] = {
    "ping": lambda s: s.ping(),
    "put": lambda s: s.put("courses/c/k", chunks_of(b"body"), hashlib.md5(b"body").hexdigest()),
    "metadata": lambda s: s.metadata("courses/c/k"),
    "get": lambda s: read_all(s.get("courses/c/k")),
    "delete": lambda s: s.delete(["courses/c/k"]),
    "list": _listed,
}


def test_every_method_of_each_interface_is_called() -> None:
    assert set(METADATA_CALLS) == MetadataStore.__abstractmethods__ - {"close"}
    assert set(OBJECT_CALLS) == ObjectStore.__abstractmethods__ - {"close"}


@dataclass(frozen=True)
class Failing:
    """A store whose driver fails, the store error every call must raise, and the driver's
    exception that must be its cause."""

    store: Any
    error: type[StoreUnavailable]
    cause: type[BaseException] | tuple[type[BaseException], ...]


FailureFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[Failing]]


async def outcomes(failing: Failing, calls: dict[str, Callable[[Any], Awaitable[Any]]]) -> dict[str, str]:
    """Each call that did not fail as it must, with what it did instead."""
    wrong = {}
    for name, call in calls.items():
        try:
            await call(failing.store)
        except failing.error as error:
            if not isinstance(error.__cause__, failing.cause):
                wrong[name] = f"{type(error).__name__} caused by {type(error.__cause__).__name__}"
        except Exception as error:
            wrong[name] = f"{type(error).__name__}: {error}"
        else:
            wrong[name] = "returned"
    return wrong


# Metadata stores ------------------------------------------------------------------------------


@asynccontextmanager
async def sqlite_closed(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    store = await SqliteMetadataStore.open(str(request.getfixturevalue("tmp_path") / "x.db"))
    await store.close()
    yield Failing(store, DatabaseUnavailable, ValueError)  # aiosqlite: "no active connection"


@asynccontextmanager
async def sqlite_locked(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    """Another process holds the write lock past the busy timeout (reads still work, so only
    the calls that write are expected to fail: see WRITES)."""
    from ngshare_s3.stores.metadata import sqlite as sqlite_backend

    request.getfixturevalue("monkeypatch").setattr(sqlite_backend, "BUSY_TIMEOUT_SECONDS", 0.05)
    path = str(request.getfixturevalue("tmp_path") / "x.db")
    store = await SqliteMetadataStore.open(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield Failing(store, DatabaseUnavailable, sqlite3.OperationalError)
    finally:
        holder.close()
        await store.close()


def _mongo_store(url: str, wait_ms: int) -> MongoMetadataStore:
    """A store on a client of its own, made without open() (which would fail at its first
    command): the failure must then show in each method."""
    return MongoMetadataStore(describe(url), AsyncMongoClient(url, serverSelectionTimeoutMS=wait_ms))


# A stopped server is given up on after this long. A server refusing the credentials must be
# waited for longer than the driver takes to look at it again after a refusal (at least 500 ms),
# as the store's default of 5 s does: else the refusal shows as a timeout, not as a refusal.
GIVE_UP_MS = 300
WAIT_FOR_REFUSAL_MS = 2000


@asynccontextmanager
async def mongodb_stopped(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    """A FerretDB of this test's own, stopped under a store that was working."""
    try:
        server = servers.start_ferretdb(request.getfixturevalue("tmp_path") / "ferretdb")
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    try:
        store = _mongo_store(f"mongodb://127.0.0.1:{server.port}/stopped", GIVE_UP_MS)
        await store.ping()
        await asyncio.to_thread(server.stop)
        yield Failing(store, DatabaseUnavailable, ConnectionFailure)
        await store.close()
    finally:
        server.stop()


@asynccontextmanager
async def mongodb_closed(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    store = await MongoMetadataStore.open(request.getfixturevalue("mongodb_url"))
    await store.close()
    yield Failing(store, DatabaseUnavailable, InvalidOperation)


@asynccontextmanager
async def mongodb_wrong_password(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    server = request.getfixturevalue("ferretdb_with_auth")
    store = _mongo_store(f"mongodb://{server.user}:wrong-{server.password}@{server.host}/refused?authSource=admin", WAIT_FOR_REFUSAL_MS)
    yield Failing(store, DatabaseRefused, OperationFailure)  # AuthenticationFailed
    await store.close()


@asynccontextmanager
async def mongodb_no_credentials(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    server = request.getfixturevalue("ferretdb_with_auth")
    store = _mongo_store(f"mongodb://{server.host}/refused", WAIT_FOR_REFUSAL_MS)
    yield Failing(store, DatabaseRefused, OperationFailure)  # Unauthorized
    await store.close()


# Calls that read only: a store locked by another writer still answers them.
READS = {
    "ping", "course_exists", "course_incarnation", "list_courses", "get_member", "list_members",
    "courses_of", "get_assignment", "list_assignments", "list_submissions", "get_submission", "list_events",
    "page_events", "dump",
}
WRITES = {name: call for name, call in METADATA_CALLS.items() if name not in READS}

METADATA_FAILURES: dict[str, tuple[FailureFactory, dict[str, Callable[[MetadataStore], Awaitable[Any]]]]] = {
    "sqlite-closed": (sqlite_closed, METADATA_CALLS),
    "sqlite-locked": (sqlite_locked, WRITES),
    "mongodb-stopped": (mongodb_stopped, METADATA_CALLS),
    "mongodb-closed": (mongodb_closed, METADATA_CALLS),
    "mongodb-wrong-password": (mongodb_wrong_password, METADATA_CALLS),
    "mongodb-no-credentials": (mongodb_no_credentials, METADATA_CALLS),
}


@pytest.mark.parametrize("failure", list(METADATA_FAILURES))
async def test_metadata_store_failures_are_unavailable_with_the_cause(request: pytest.FixtureRequest, failure: str) -> None:
    factory, calls = METADATA_FAILURES[failure]
    async with factory(request) as failing:
        assert await outcomes(failing, calls) == {}


# Object stores --------------------------------------------------------------------------------


@asynccontextmanager
async def filesystem_removed(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    """The folder is gone, as when its volume is unmounted: no object may seem merely absent."""
    root = request.getfixturevalue("tmp_path") / "objects"
    store = await FilesystemObjectStore.open(str(root))
    await store.put("courses/c/k", chunks_of(b"body"), hashlib.md5(b"body").hexdigest())
    shutil.rmtree(root)
    yield Failing(store, StoreUnavailable, OSError)


def _s3(request: pytest.FixtureRequest, server_fixture: str) -> S3Server:
    server = request.getfixturevalue(server_fixture)
    request.getfixturevalue("s3_environment")(server)
    return server


def _unopened(location: str) -> S3ObjectStore:
    """A store made without open() (which would already fail), so every method meets the failure."""
    bucket, prefix = parse_location(location)
    return S3ObjectStore(make_client(4), ThreadPoolExecutor(4), bucket, prefix)


def s3_closed(server_fixture: str) -> FailureFactory:
    @asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
        store = await S3ObjectStore.open(_s3(request, server_fixture).new_location())
        await store.close()
        yield Failing(store, StoreUnavailable, RuntimeError)  # the pool refuses new calls

    return factory


@asynccontextmanager
async def minio_stopped(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    """The session's MinIO, stopped under a working store, and started again afterwards."""
    server = _s3(request, "minio_server")
    if server.process is None:
        pytest.skip("needs a MinIO started by the test session")
    store = await S3ObjectStore.open(server.new_location())
    try:
        await asyncio.to_thread(server.process.stop)
        yield Failing(store, StoreUnavailable, botocore.exceptions.ConnectionError)
    finally:
        await asyncio.to_thread(server.process.start)
        await store.close()


def _minio_admin(server: S3Server) -> Any:
    if server.process is None:
        pytest.skip("needs MinIO's admin API with known root credentials")
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    return MinioAdmin(
        endpoint=server.endpoint_url.removeprefix("http://"),
        credentials=StaticProvider(server.access_key, server.secret_key),
        secure=False,
    )


@asynccontextmanager
async def minio_wrong_secret(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    server = _s3(request, "minio_server")
    request.getfixturevalue("monkeypatch").setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    store = _unopened(server.new_location())
    yield Failing(store, StoreRefused, botocore.exceptions.ClientError)  # SignatureDoesNotMatch
    await store.close()


@asynccontextmanager
async def minio_user_without_policy(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    server = _s3(request, "minio_server")
    admin = _minio_admin(server)
    user, secret = fresh_name("nopolicy-"), fresh_name("secret-")
    admin.user_add(user, secret)
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", user)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = _unopened(server.new_location())
    try:
        yield Failing(store, StoreRefused, botocore.exceptions.ClientError)  # AccessDenied
    finally:
        await store.close()
        admin.user_remove(user)


@asynccontextmanager
async def moto_refusing(request: pytest.FixtureRequest) -> AsyncIterator[Failing]:
    pytest.skip("moto accepts any credentials, so it cannot refuse the service's")
    yield  # type: ignore[misc]  # never reached


OBJECT_FAILURES: dict[str, FailureFactory] = {
    "filesystem-removed": filesystem_removed,
    "minio-closed": s3_closed("minio_server"),
    "minio-stopped": minio_stopped,
    "minio-wrong-secret": minio_wrong_secret,
    "minio-user-without-policy": minio_user_without_policy,
    "moto-closed": s3_closed("moto_server"),
    "moto-refusing": moto_refusing,
}


@pytest.mark.parametrize("failure", list(OBJECT_FAILURES))
async def test_object_store_failures_are_unavailable_with_the_cause(request: pytest.FixtureRequest, failure: str) -> None:
    async with OBJECT_FAILURES[failure](request) as failing:
        assert await outcomes(failing, OBJECT_CALLS) == {}
