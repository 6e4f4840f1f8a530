"""A store that refuses the service's credentials is a configuration fault: the caller gets a 503
that names the store and the reason, and the log line of that answer carries the driver's own
error as its cause. The refusals are real: MinIO lets the service see its bucket but not write to
it; FerretDB (with authentication on) drops the service's user while the service runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import servers
from servers import S3Server, fresh_name  # tests/ is on the path (tests/conftest.py)

from .support import ADMIN, INSTRUCTOR, encode_files, failure


def refused(store: str, reason: str) -> str:
    return f"The exchange's {store} refused the service's credentials ({reason}); an administrator must fix its configuration"


def logged_answer(caplog: pytest.LogCaptureFixture) -> str:
    """The one log line of the 503, which must be a warning."""
    [line] = [r for r in caplog.records if r.name == "ngshare_s3.http.errors"]
    assert line.levelno == logging.WARNING
    assert "answered 503" in line.getMessage()
    return line.getMessage()


@pytest.fixture
def backend(tmp_path: Path) -> tuple[str, str]:
    """The embedded pair; each test swaps in the store that refuses."""
    return f"sqlite:///{tmp_path}/ngshare.db", str(tmp_path / "files")


@pytest.fixture
def look_only_storage(minio_server: S3Server, s3_environment: Callable[[S3Server], None], monkeypatch) -> str:
    """A place in MinIO, reached as a user that may look at the bucket, nothing more: the
    service starts (it finds its bucket) and every upload is refused."""
    if minio_server.process is None:
        pytest.skip("needs MinIO's admin API with known root credentials")
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    admin = MinioAdmin(
        endpoint=minio_server.endpoint_url.removeprefix("http://"),
        credentials=StaticProvider(minio_server.access_key, minio_server.secret_key),
        secure=False,
    )
    policy, user, secret = fresh_name("look-only-"), fresh_name("look-only-"), fresh_name("secret-")
    statement = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{minio_server.bucket}"]}
    admin.policy_add(policy, policy={"Version": "2012-10-17", "Statement": [statement]})
    admin.user_add(user, secret)
    admin.attach_policy([policy], user=user)
    s3_environment(minio_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", user)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    return minio_server.new_location()


async def test_storage_refusing_the_credentials_is_a_503_naming_it(make_api, look_only_storage: str, caplog) -> None:
    api = await make_api(storage=look_only_storage)
    await api.create_course("c", instructors=[INSTRUCTOR])
    caplog.set_level(logging.INFO, logger="ngshare_s3")

    status, body = await api.post(INSTRUCTOR, "assignment/c/a", files=encode_files([("a.ipynb", b"{}")]))

    assert (status, body) == (503, failure(refused("file storage", "AccessDenied")))
    message = logged_answer(caplog)
    # The chain down to the driver: the store's refusal, then botocore's own error.
    assert "; cause: StoreRefused: storage s3://" in message
    assert "An error occurred (AccessDenied) when calling the PutObject operation" in message
    # Removing what landed is refused too: that is logged, and the upload's own cause is kept.
    assert any("left for fsck to remove" in r.getMessage() for r in caplog.records)
    assert await api.assignments("c") == []


ADMIN_USER = ("root", "root-secret")


@pytest.fixture
def mongodb_with_auth(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A FerretDB of this test's own with authentication on: its address, and a client of its
    administrator."""
    import pymongo

    try:
        server = servers.start_ferretdb(tmp_path / "ferretdb", admin=ADMIN_USER)
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    host = f"127.0.0.1:{server.port}"
    admin = pymongo.MongoClient(f"mongodb://{ADMIN_USER[0]}:{ADMIN_USER[1]}@{host}/admin")
    try:
        yield host, admin
    finally:
        admin.close()
        server.stop()


async def test_database_refusing_the_credentials_is_a_503_naming_it(make_api, mongodb_with_auth, caplog) -> None:
    host, admin = mongodb_with_auth
    admin.admin.command("createUser", "ngshare", pwd="ngshare-secret", roles=[])
    # maxIdleTimeMS: a connection left idle is closed, so a later request logs in anew.
    api = await make_api(database=f"mongodb://ngshare:ngshare-secret@{host}/ngshare?authSource=admin&maxIdleTimeMS=1")
    await api.create_course("c")
    admin.admin.command("dropUser", "ngshare")  # the credentials are revoked under the service
    await asyncio.sleep(0.1)
    caplog.set_level(logging.INFO, logger="ngshare_s3")

    status, body = await api.get(ADMIN, "courses")

    assert (status, body) == (503, failure(refused("database", "AuthenticationFailed")))
    message = logged_answer(caplog)
    assert "; cause: DatabaseRefused: database mongodb://" in message
    assert "<- OperationFailure: Authentication failed." in message
