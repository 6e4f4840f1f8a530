"""A store that refuses the service's credentials is a configuration fault: the caller gets a 503
that names the store and the reason, and the log line of that answer carries the driver's own
error as its cause. Here MinIO lets the service see its bucket but not write to it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from servers import S3Server, fresh_name  # tests/ is on the path (tests/conftest.py)

from .support import INSTRUCTOR, Api, encode_files, failure

REFUSED = (
    "The exchange's file storage refused the service's credentials (AccessDenied); "
    "an administrator must fix its configuration"
)


@pytest.fixture
def backend(tmp_path, minio_server: S3Server, s3_environment: Callable[[S3Server], None], monkeypatch) -> tuple[str, str]:
    """The embedded database, and MinIO as a user that may look at the bucket, nothing more:
    the service starts (it finds its bucket) and every upload is refused."""
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
    return f"sqlite:///{tmp_path}/ngshare.db", minio_server.new_location()


async def test_storage_refusing_the_credentials_is_a_503_naming_it(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    await api.create_course("c", instructors=[INSTRUCTOR])
    caplog.set_level(logging.INFO, logger="ngshare_s3")

    status, body = await api.post(INSTRUCTOR, "assignment/c/a", files=encode_files([("a.ipynb", b"{}")]))

    assert (status, body) == (503, failure(REFUSED))
    [line] = [r for r in caplog.records if r.name == "ngshare_s3.http.errors"]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "answered 503" in message and REFUSED in message
    # The chain down to the driver: the store's refusal, then botocore's own error.
    assert "StoreRefused: storage s3://" in message
    assert "<- ClientError: An error occurred (AccessDenied)" in message
    assert await api.assignments("c") == []
