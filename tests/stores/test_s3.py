"""S3 backend specifics: integrity checks, multipart uploads, prefixes, buckets, start-up errors.

The shared contract (tests/stores/test_object_contract.py) covers what every backend does; this
module covers what only S3 has. Each test runs against the servers it makes sense on: MinIO checks
Content-MD5 like AWS does, moto does not (so only the whole-body comparison is tested there).
`bucket` below is an independent boto3 client (the server's own), auditing what landed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ngshare_s3.stores import open_object_store
from ngshare_s3.stores.errors import (
    ChecksumMismatch,
    ObjectNotFound,
    StoreConfigError,
    StoreUnavailable,
)
from ngshare_s3.stores.objects import s3
from ngshare_s3.stores.objects.base import CHUNK_SIZE, chunks_of, read_all
from ngshare_s3.stores.objects.s3 import MULTIPART_THRESHOLD, S3ObjectStore
from servers import S3Server, free_port  # tests/ is on the path (tests/conftest.py)

# Bigger than one part, not a whole number of parts, cut into odd-sized chunks by the caller.
LARGE = 2 * MULTIPART_THRESHOLD + 12345


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def large_body() -> bytes:
    return hashlib.sha256(b"seed").digest() * (LARGE // 32) + b"tail"


# The store reads endpoint and credentials from the AWS environment only: each fixture below
# points that environment at its server for the test (s3_environment uses monkeypatch).


@pytest.fixture(params=["moto", "minio"])
def server(request: pytest.FixtureRequest, s3_environment: Callable[[S3Server], None]) -> S3Server:
    server = request.getfixturevalue(f"{request.param}_server")
    s3_environment(server)
    return server


@pytest.fixture
def minio(minio_server: S3Server, s3_environment: Callable[[S3Server], None]) -> S3Server:
    s3_environment(minio_server)
    return minio_server


@pytest.fixture
def moto(moto_server: S3Server, s3_environment: Callable[[S3Server], None]) -> S3Server:
    s3_environment(moto_server)
    return moto_server


@asynccontextmanager
async def opened(location: str) -> AsyncIterator[S3ObjectStore]:
    store = await open_object_store(location)
    assert isinstance(store, S3ObjectStore)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(server: S3Server) -> AsyncIterator[S3ObjectStore]:
    async with opened(server.new_location()) as store:
        yield store


def raw_keys(server: S3Server, bucket: str, prefix: str = "") -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def pending_uploads(server: S3Server, store: S3ObjectStore) -> list[Any]:
    answer = server.client().list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    return answer.get("Uploads", [])


def corrupt_bodies(store: S3ObjectStore, operation: str) -> None:
    """Flip a bit of every `operation` body after our own MD5 check, before it is signed and
    sent: what a bad network card or proxy would do, and what only the server can catch."""

    def corrupt(params: dict[str, Any], **_: Any) -> None:
        body = params["body"]
        data = bytes(body.getvalue() if isinstance(body, io.BytesIO) else body)
        params["body"] = bytes([data[0] ^ 1]) + data[1:]

    store._client.meta.events.register(f"before-call.s3.{operation}", corrupt)


def assert_one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# Integrity ------------------------------------------------------------------------------------


async def test_server_refuses_a_body_that_does_not_match_its_content_md5(
    minio: S3Server,
) -> None:
    async with opened(minio.new_location()) as store:
        corrupt_bodies(store, "PutObject")
        with pytest.raises(ChecksumMismatch, match="BadDigest"):
            await store.put("small", chunks_of(b"hello"), md5(b"hello"))
        assert raw_keys(minio, store.bucket, store.prefix) == []


async def test_server_refuses_a_part_that_does_not_match_its_content_md5(
    minio: S3Server,
) -> None:
    data = large_body()
    async with opened(minio.new_location()) as store:
        corrupt_bodies(store, "UploadPart")
        with pytest.raises(ChecksumMismatch):
            await store.put("big", chunks_of(data), md5(data))
        assert raw_keys(minio, store.bucket, store.prefix) == []
        assert pending_uploads(minio, store) == []


async def test_large_body_goes_up_as_one_multipart_object(
    server: S3Server, store: S3ObjectStore
) -> None:
    data = large_body()
    about = {"path": "big ü.bin", "md5": md5(data)}
    await store.put("courses/c/big.bin", chunks_of(data, CHUNK_SIZE // 3 + 7), md5(data), about)
    assert raw_keys(server, store.bucket, store.prefix) == [store.prefix + "courses/c/big.bin"]
    head = server.client().head_object(Bucket=store.bucket, Key=store.prefix + "courses/c/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    assert head["Metadata"] == {"path": "big %C3%BC.bin", "md5": md5(data)}  # given at the start
    assert await store.metadata("courses/c/big.bin") == about
    assert await read_all(store.get("courses/c/big.bin")) == data
    assert pending_uploads(server, store) == []


async def test_small_body_goes_up_in_one_request(server: S3Server, store: S3ObjectStore) -> None:
    data = b"x" * MULTIPART_THRESHOLD  # the threshold itself still fits in one request
    await store.put("f", chunks_of(data), md5(data))
    head = server.client().head_object(Bucket=store.bucket, Key=store.prefix + "f")
    assert head["ETag"].strip('"') == md5(data)


@pytest.mark.parametrize("size", [0, 1000, CHUNK_SIZE, 2 * CHUNK_SIZE + 5])
async def test_a_read_takes_one_trip_to_a_thread_per_chunk_and_keeps_its_connection(
    server: S3Server, store: S3ObjectStore, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The request and its first chunk share a trip; the read ends at the announced length,
    without a trip for the empty read that would say so, and the connection is reused."""
    data = os.urandom(size)
    await store.put("f", chunks_of(data), md5(data))
    assert await read_all(store.get("f")) == data  # the pool holds a connection now
    trips: list[Any] = []
    call = store._call

    async def counted(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        trips.append(function)
        return await call(function, *args, **kwargs)

    store._call = counted  # type: ignore[method-assign]
    with caplog.at_level("DEBUG", logger="urllib3.connectionpool"):
        assert await read_all(store.get("f")) == data
        assert await read_all(store.get("f")) == data
    assert len(trips) == 2 * max(1, -(-size // CHUNK_SIZE))
    assert not [r for r in caplog.records if "Starting new HTTP connection" in r.getMessage()]


async def test_metadata_is_stored_percent_encoded(server: S3Server, store: S3ObjectStore) -> None:
    """What a console or another client shows: ASCII headers, readable where safe."""
    about = {"path": "notes/résumé ü.txt", "other": "50% & more ", "uploader": "ann@example.org"}
    await store.put("f", chunks_of(b"x"), md5(b"x"), about)
    head = server.client().head_object(Bucket=store.bucket, Key=store.prefix + "f")
    assert head["Metadata"] == {
        "path": "notes/r%C3%A9sum%C3%A9 %C3%BC.txt",
        "other": "50%25 %26 more%20",
        "uploader": "ann@example.org",
    }


async def test_large_body_with_wrong_md5_leaves_nothing(
    server: S3Server, store: S3ObjectStore
) -> None:
    data = large_body()
    with pytest.raises(ChecksumMismatch):
        await store.put("big", chunks_of(data), md5(data + b"!"))
    assert raw_keys(server, store.bucket, store.prefix) == []
    assert pending_uploads(server, store) == []


async def test_large_body_failing_midway_leaves_nothing(
    server: S3Server, store: S3ObjectStore
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (MULTIPART_THRESHOLD + 1)  # one part already sent
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put("big", broken(), md5(b"irrelevant"))
    assert raw_keys(server, store.bucket, store.prefix) == []
    assert pending_uploads(server, store) == []


async def test_malformed_md5_is_a_mismatch(moto: S3Server) -> None:
    async with opened(moto.new_location()) as store:
        with pytest.raises(ChecksumMismatch):
            await store.put("f", chunks_of(b"x"), "not an md5")
        assert [info async for info in store.list()] == []


# Keys, prefixes, buckets ------------------------------------------------------------------------


async def test_keys_live_under_the_store_prefix(server: S3Server) -> None:
    base = server.new_location().removeprefix(f"s3://{server.bucket}/")
    async with (
        opened(f"s3://{server.bucket}/{base}/one/") as one,
        opened(f"s3://{server.bucket}/{base}/two") as two,
        opened(f"s3://{server.bucket}") as whole,
    ):
        assert (one.prefix, two.prefix, whole.prefix) == (f"{base}/one/", f"{base}/two/", "")
        await one.put("a/f", chunks_of(b"1"), md5(b"1"))
        await two.put("a/f", chunks_of(b"2"), md5(b"2"))
        assert raw_keys(server, server.bucket, base) == [f"{base}/one/a/f", f"{base}/two/a/f"]
        assert [i.key async for i in one.list()] == ["a/f"]
        assert [i.key async for i in two.list("a/")] == ["a/f"]
        assert await read_all(one.get("a/f")) == b"1"
        assert await read_all(two.get("a/f")) == b"2"
        await one.delete(["a/f"])
        assert [i.key async for i in two.list()] == ["a/f"]
        # A store without a prefix sees the others' objects under their full names.
        assert [i.key async for i in whole.list(f"{base}/")] == [f"{base}/two/a/f"]


@pytest.mark.parametrize(
    "location, prefix",
    [
        ("s3://my-bucket", ""),
        ("s3://my-bucket/", ""),
        ("s3://my-bucket/a/b", "a/b/"),
        ("s3://my-bucket/a/b/", "a/b/"),
        ("s3://my.bucket.2/x", "x/"),
    ],
)
def test_locations(location: str, prefix: str) -> None:
    assert s3.parse_location(location) == (location[5:].split("/")[0], prefix)


@pytest.mark.parametrize(
    "location",
    [
        "s3://",
        "s3:///prefix",
        "s3://ab",
        "s3://Capital",
        "s3://under_score",
        "s3://-leading-hyphen",
        "s3://two..dots",
        "s3://192.168.1.10",
        "s3://user:secret@host/bucket",
        "s3://bucket//double",
        "s3://bucket/a/../b",
        "s3://bucket/./a",
    ],
)
async def test_bad_locations_are_refused_before_connecting(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with pytest.raises(StoreConfigError) as error:
        await open_object_store(location)
    assert location in assert_one_line(error)


async def test_other_schemes_are_refused() -> None:
    with pytest.raises(StoreConfigError) as error:
        await open_object_store("gs://bucket/x")
    assert "s3://" in assert_one_line(error)


BAD_KEYS = ["", "/abs", "a//b", "a/", "../x", "a/../b", "a/./b", ".", "a/b\0c", "k" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS, ids=range(len(BAD_KEYS)))
async def test_bad_keys_are_refused(moto: S3Server, key: str) -> None:
    async with opened(moto.new_location()) as store:
        with pytest.raises(ValueError):
            await store.put(key, chunks_of(b"x"), md5(b"x"))
        with pytest.raises(ValueError):
            await read_all(store.get(key))
        with pytest.raises(ValueError):
            await store.delete(["fine", key])
        assert [info async for info in store.list()] == []


@pytest.mark.parametrize("prefix", ["/", "/a", "a//", "../", "a/../", "a\0"])
async def test_bad_list_prefixes_are_refused(moto: S3Server, prefix: str) -> None:
    async with opened(moto.new_location()) as store:
        with pytest.raises(ValueError):
            [info async for info in store.list(prefix)]


async def test_missing_bucket_is_created(server: S3Server) -> None:
    name = server.new_bucket_name()
    async with opened(f"s3://{name}/p") as store:
        if server.process is None:
            server.created_buckets.append(name)  # removed at the end of the session
        await store.put("f", chunks_of(b"x"), md5(b"x"))
        assert raw_keys(server, name) == ["p/f"]
    # Opening again finds it: nothing to create, nothing lost.
    async with opened(f"s3://{name}/p") as store:
        assert await read_all(store.get("f")) == b"x"


async def test_bucket_is_created_in_the_configured_region(
    moto: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_REGION alone is enough (botocore itself reads only AWS_DEFAULT_REGION)."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    name = moto.new_bucket_name()
    async with opened(f"s3://{name}") as store:
        assert store._client.meta.region_name == "eu-west-1"
    location = moto.client().get_bucket_location(Bucket=name)["LocationConstraint"]
    assert location == "eu-west-1"


@pytest.fixture
def limited_minio_user(minio: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials that may read and list every bucket but create none."""
    if minio.process is None:
        pytest.skip("needs MinIO's admin API with known root credentials")
    from minio.credentials import StaticProvider
    from minio.minioadmin import MinioAdmin

    admin = MinioAdmin(
        endpoint=minio.endpoint_url.removeprefix("http://"),
        credentials=StaticProvider(minio.access_key, minio.secret_key),
        secure=False,
    )
    policy = tmp_path / "policy.json"
    statement = {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"]}
    statement["Resource"] = ["arn:aws:s3:::*"]
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    admin.policy_add("ngshare-test-no-create", str(policy))
    admin.user_add("ngshare-test-limited", "ngshare-test-limited-secret")
    admin.attach_policy(["ngshare-test-no-create"], user="ngshare-test-limited")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ngshare-test-limited")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ngshare-test-limited-secret")


async def test_bucket_that_cannot_be_created(minio: S3Server, limited_minio_user: None) -> None:
    name = minio.new_bucket_name()
    with pytest.raises(StoreConfigError) as error:
        await open_object_store(f"s3://{name}")
    message = assert_one_line(error)
    assert f"bucket '{name}' does not exist and could not be created: AccessDenied" in message
    # The same credentials may use a bucket that exists.
    async with opened(f"s3://{minio.bucket}") as store:
        await store.ping()


async def test_wrong_credentials(minio: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StoreConfigError) as error:
        await open_object_store(minio.new_location())
    assert "HTTP 403" in assert_one_line(error)


@pytest.fixture
def no_aws_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing anywhere in the AWS chain: no variables, no files, no instance metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


async def test_missing_credentials(
    moto_server: S3Server, no_aws_configuration: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    with pytest.raises(StoreConfigError) as error:
        await open_object_store(moto_server.new_location())
    assert "no S3 credentials" in assert_one_line(error)


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"AWS_ACCESS_KEY_ID": "only-half"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_PROFILE": "no-such-profile"}, "no-such-profile"),
        (
            {
                "AWS_ENDPOINT_URL": "minio:9000",
                "AWS_ACCESS_KEY_ID": "k",
                "AWS_SECRET_ACCESS_KEY": "s",
            },
            "minio:9000",
        ),
    ],
    ids=["half-a-key", "missing-profile", "endpoint-without-scheme"],
)
async def test_bad_aws_configuration(
    no_aws_configuration: None,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StoreConfigError) as error:
        await open_object_store("s3://some-bucket")
    assert expected in assert_one_line(error)


# Outages --------------------------------------------------------------------------------------


async def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as error:
        await open_object_store("s3://some-bucket/p")
    assert time.monotonic() - started < 10
    assert assert_one_line(error).startswith("storage s3://some-bucket/p unreachable: ")


@pytest.fixture
def stoppable_minio(minio: S3Server) -> Iterator[S3Server]:
    """MinIO, which this test may stop; it is running again afterwards, with its data."""
    if minio.process is None:
        pytest.skip("needs a MinIO started by the test session")
    try:
        yield minio
    finally:
        minio.process.start()


async def test_outage_is_unavailable_then_recovers(stoppable_minio: S3Server) -> None:
    """Every call answers StoreUnavailable while the server is down, and works again once it is
    back, with the same store: nothing to reset."""
    async with opened(stoppable_minio.new_location()) as store:
        await store.put("kept", chunks_of(b"kept"), md5(b"kept"))
        assert stoppable_minio.process is not None
        await asyncio.to_thread(stoppable_minio.process.stop)

        with pytest.raises(StoreUnavailable) as error:
            await store.ping()
        assert assert_one_line(error).startswith(f"storage {store.location} unreachable")
        with pytest.raises(StoreUnavailable):
            await read_all(store.get("kept"))
        with pytest.raises(StoreUnavailable):
            await store.put("new", chunks_of(b"new"), md5(b"new"))
        with pytest.raises(StoreUnavailable):
            [info async for info in store.list()]
        with pytest.raises(StoreUnavailable):
            await store.delete(["kept"])

        await asyncio.to_thread(stoppable_minio.process.start)
        await store.ping()
        assert await read_all(store.get("kept")) == b"kept"
        await store.put("new", chunks_of(b"new"), md5(b"new"))
        assert [info.key async for info in store.list()] == ["kept", "new"]


async def test_closed_store_is_unavailable(moto: S3Server) -> None:
    store = await open_object_store(moto.new_location())
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


# Requests as sent -------------------------------------------------------------------------------


async def test_client_configuration(moto: S3Server) -> None:
    async with opened(moto.new_location()) as store:
        config = store._client.meta.config
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert config.max_pool_connections == s3.POOL_CONNECTIONS
        assert config.connect_timeout == s3.CONNECT_TIMEOUT
        assert store._executor._max_workers == s3.POOL_CONNECTIONS


@pytest.mark.parametrize(
    "endpoint, url",
    [
        ("http://minio:9000", "http://minio:9000/my-bucket"),
        ("http://localhost:9000", "http://localhost:9000/my-bucket"),
        ("https://s3.example.org", "https://s3.example.org/my-bucket"),
        (None, "https://my-bucket.s3.eu-west-1.amazonaws.com/"),
    ],
)
def test_addressing_style(monkeypatch: pytest.MonkeyPatch, endpoint: str | None, url: str) -> None:
    """A custom endpoint gets path style (no wildcard DNS needed); AWS keeps virtual hosts."""
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    client = s3.make_client()
    sent = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.url)
        raise StopIteration  # never reaches the network

    client.meta.events.register("before-send.s3", capture)
    with pytest.raises(StopIteration):
        client.head_bucket(Bucket="my-bucket")
    assert sent == [url]


async def test_deletes_go_in_batches_with_content_md5(
    moto: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many S3-compatible servers refuse DeleteObjects without Content-MD5."""
    monkeypatch.setattr(s3, "DELETE_BATCH", 2)
    names = [f"k{i}" for i in range(5)]
    async with opened(moto.new_location()) as store:
        for name in names:
            await store.put(name, chunks_of(b"x"), md5(b"x"))
        headers = []
        store._client.meta.events.register(
            "before-send.s3.DeleteObjects", lambda request, **_: headers.append(request.headers)
        )
        await store.delete([*names, "never-existed"])
        assert [info async for info in store.list()] == []
        assert len(headers) == 3
        assert all("Content-MD5" in h for h in headers)


async def test_refused_deletes_raise(moto: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    async with opened(moto.new_location()) as store:
        refused = {"Errors": [{"Key": "k", "Code": "AccessDenied", "Message": "Access Denied"}]}
        monkeypatch.setattr(store._client, "delete_objects", lambda **_: refused)
        with pytest.raises(StoreUnavailable, match="AccessDenied"):
            await store.delete(["k"])


async def test_get_missing_and_early_close(moto: S3Server) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    async with opened(moto.new_location()) as store:
        reader = store.get("missing")
        with pytest.raises(ObjectNotFound):
            await reader.__anext__()
        await store.put("f", chunks_of(data), md5(data))
        reader = store.get("f")
        assert await reader.__anext__() == data[:CHUNK_SIZE]
        await reader.aclose()  # the rest is never read; the connection is dropped
        assert await read_all(store.get("f")) == data
