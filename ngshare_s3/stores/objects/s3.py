"""The production object backend: objects in an S3 bucket (AWS, MinIO, Ceph RGW, Garage, ...).

One boto3 client, made once at open time, does every request. boto3 blocks, so each call runs in
a dedicated thread pool exactly as large as the client's connection pool: the event loop keeps
serving while S3 answers, and never has more calls in flight than there are connections.

Endpoint, region and credentials come only from the standard AWS chain (`AWS_ENDPOINT_URL`,
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_REGION`/`AWS_DEFAULT_REGION`, a profile, a web
identity role), so the same settings work for the AWS CLI and for us.

Bucket addressing is botocore's own choice, which is the right one: with a custom endpoint
(`AWS_ENDPOINT_URL=http://minio:9000`) botocore ≥ 1.28 forces path style
(`http://minio:9000/bucket/key`), so docker compose and Kubernetes service names work without
wildcard DNS; against AWS itself it keeps virtual-hosted style. A profile may still ask for
`addressing_style = virtual`, and that is honoured.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from typing import Any, TypeVar

import boto3
import botocore.exceptions
from botocore.config import Config

from ..errors import ChecksumMismatch, ObjectNotFound, StoreConfigError, StoreRefused, StoreUnavailable
from .base import (
    CHUNK_SIZE, NO_METADATA, ObjectInfo, ObjectStore, decode_metadata, encode_metadata, key_segments, prefix_segments,
)

SCHEME = "s3://"

# Bodies up to this size go up in one PutObject; larger ones as a multipart upload of parts this
# size (S3 wants every part but the last to be at least 5 MiB). At most about one part of each
# upload is held in memory. 10,000 parts of 8 MiB cap an object at 80 GiB.
MULTIPART_THRESHOLD = 8 << 20

# Connections to S3, and threads making calls over them: a call never waits for a connection.
POOL_CONNECTIONS = 32

# A dead endpoint must become a quick 503, not a hung request; a live one may be slow to answer.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30

# DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000

# S3's longest key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024

# S3's bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, not an IP address.
BUCKET_NAME = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# Error codes meaning "the storage cannot serve this now", whatever the HTTP status.
UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "NoSuchBucket"}

# Error codes meaning "the server refuses the service's credentials or requests": a fault of the
# configuration (keys, policy, clock) that retrying does not mend. Any other 403 means it too.
REFUSED_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "RequestTimeTooSkewed",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
}

# Failures that mean the server could not be reached, or the connection broke mid-request.
CONNECTION_ERRORS = (
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.IncompleteReadError,
)

T = TypeVar("T")


def parse_location(location: str) -> tuple[str, str]:
    """Split s3://bucket/optional/prefix into the bucket and a key prefix ('' or ending in '/')."""
    if not location.startswith(SCHEME):
        raise StoreConfigError(f"not an S3 location: {location!r}, expected s3://bucket/prefix")
    bucket, _, prefix = location[len(SCHEME) :].partition("/")
    if not bucket:
        raise StoreConfigError(f"no bucket in {location!r}, expected s3://bucket/optional/prefix")
    if not BUCKET_NAME.fullmatch(bucket):
        raise StoreConfigError(
            f"invalid bucket name {bucket!r} in {location!r}: "
            "3-63 lowercase letters, digits, dots and hyphens"
        )
    prefix = prefix.removesuffix("/")
    if prefix:
        try:
            key_segments(prefix)
        except ValueError:
            raise StoreConfigError(f"invalid key prefix {prefix!r} in {location!r}") from None
        prefix += "/"
    return bucket, prefix


def _client_config(connections: int) -> Config:
    """botocore settings that work on every S3-compatible server, not only on AWS."""
    return Config(
        # botocore ≥ 1.36 sends CRC checksums by default, which many S3-compatible servers
        # reject. Integrity comes from the Content-MD5 we send instead, which AWS, MinIO and
        # the other real servers check (moto does not, so we compare the MD5 ourselves too).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=connections,
    )


def make_client(connections: int = POOL_CONNECTIONS) -> Any:
    """An S3 client configured by the AWS chain alone.

    botocore reads `AWS_DEFAULT_REGION` but not `AWS_REGION` (which every other AWS SDK and the
    AWS CLI v2 read, and which EKS web identity sets), so that one is passed on explicitly.
    """
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or None)
    client = session.client("s3", config=_client_config(connections))
    client.meta.events.register("before-call.s3.DeleteObjects", _add_content_md5)
    return client


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    """Send Content-MD5 with DeleteObjects, beside botocore's CRC32.

    botocore ≥ 1.36 stopped sending it, but many S3-compatible servers still refuse a
    DeleteObjects request without it (MissingContentMD5).
    """
    if "Content-MD5" not in params["headers"]:
        params["headers"]["Content-MD5"] = _content_md5(hashlib.md5(params["body"]).digest())


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _is_refusal(error: botocore.exceptions.ClientError) -> bool:
    return _status(error) == 403 or _error_code(error) in REFUSED_CODES


def _refusal_reason(error: botocore.exceptions.ClientError) -> str:
    """The server's code ('AccessDenied'); a HEAD answer has only its status."""
    code, status = _error_code(error), _status(error)
    return code if code and code != str(status) else f"HTTP {status}"


def _content_md5(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _md5_digest(md5: str) -> bytes:
    """The caller's hex MD5 as bytes; a malformed one can match no body."""
    try:
        digest = bytes.fromhex(md5)
    except ValueError:
        digest = b""
    if len(digest) != 16:
        raise ChecksumMismatch(f"{md5!r} is not an MD5 digest")
    return digest


def _server_answer(error: Exception) -> botocore.exceptions.ClientError:
    """The server's answer, whether _call passed it through or turned it into a refusal;
    re-raise a refusal with no answer behind it (no credentials were found)."""
    answer = error if isinstance(error, botocore.exceptions.ClientError) else error.__cause__
    if not isinstance(answer, botocore.exceptions.ClientError):
        raise error
    return answer


class S3ObjectStore(ObjectStore):
    """Objects in one bucket, under an optional key prefix shared by nothing else."""

    def __init__(self, client: Any, executor: ThreadPoolExecutor, bucket: str, prefix: str):
        self._client = client
        self._executor = executor
        self.bucket = bucket
        self.prefix = prefix
        self.location = f"{SCHEME}{bucket}/{prefix}".removesuffix("/")
        self._closed = False

    @classmethod
    async def open(cls, location: str, connections: int = POOL_CONNECTIONS) -> S3ObjectStore:
        """Connect, creating the bucket if missing.

        StoreConfigError if the location, credentials or bucket cannot be used; StoreUnavailable
        if the server cannot be reached. Both carry a one-line message for the command line.
        """
        bucket, prefix = parse_location(location)
        executor = ThreadPoolExecutor(connections, thread_name_prefix="ngshare-s3")
        store = None
        try:
            # Making a client reads config files and may ask a metadata service for credentials.
            client = await asyncio.get_running_loop().run_in_executor(
                executor, make_client, connections
            )
            store = cls(client, executor, bucket, prefix)
            await store._ensure_bucket()
        except (botocore.exceptions.NoCredentialsError, StoreRefused) as e:
            # A refusal that reaches here has no answer of the server behind it (see
            # _ensure_bucket): nothing in the AWS chain gave credentials.
            await _close(executor, store)
            raise StoreConfigError(
                f"cannot use storage {location}: no S3 credentials found (set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or a web identity role)"
            ) from e
        except (botocore.exceptions.BotoCoreError, ValueError) as e:
            # A malformed AWS_ENDPOINT_URL, a missing profile, half a key pair, ...
            await _close(executor, store)
            raise StoreConfigError(f"cannot use storage {location}: {_one_line(e)}") from e
        except BaseException:
            await _close(executor, store)
            raise
        return store

    async def _ensure_bucket(self) -> None:
        try:
            await self._call(self._client.head_bucket, Bucket=self.bucket)
        except (botocore.exceptions.ClientError, StoreRefused) as e:
            answer = _server_answer(e)
            if _status(answer) != 404:
                raise StoreConfigError(
                    f"cannot use bucket {self.bucket!r}: {self._describe(answer)}"
                ) from e
            await self._create_bucket()

    async def _create_bucket(self) -> None:
        """Create our bucket; another replica winning the race to create it is fine."""
        region = self._client.meta.region_name
        options = {}
        if region and region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await self._call(self._client.create_bucket, Bucket=self.bucket, **options)
        except (botocore.exceptions.ClientError, StoreRefused) as e:
            answer = _server_answer(e)
            if _error_code(answer) != "BucketAlreadyOwnedByYou":
                raise StoreConfigError(
                    f"bucket {self.bucket!r} does not exist and could not be created: "
                    f"{self._describe(answer)}"
                ) from e

    @staticmethod
    def _describe(error: botocore.exceptions.ClientError) -> str:
        """'AccessDenied: Access Denied. (HTTP 403)'; a HEAD answer has no body, only a status."""
        code = _error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        status = _status(error)
        if code and code != str(status):
            return f"{code}: {message} (HTTP {status})" if message else f"{code} (HTTP {status})"
        text = f"HTTP {status} {message}".strip()
        if status == 403:
            text += " (check the credentials and the bucket's permissions)"
        return text

    async def _call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run one blocking boto3 call in our pool, turning outages into StoreUnavailable."""
        call = functools.partial(function, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except CONNECTION_ERRORS as e:
            raise StoreUnavailable(f"storage {self.location} unreachable: {_one_line(e)}") from e
        except botocore.exceptions.NoCredentialsError as e:  # a role's credentials ran out
            raise StoreRefused(f"storage {self.location}: {_one_line(e)}", "no credentials") from e
        except botocore.exceptions.ClientError as e:
            if _is_refusal(e):
                raise StoreRefused(
                    f"storage {self.location} refused the service: {self._describe(e)}",
                    _refusal_reason(e),
                ) from e
            if _status(e) >= 500 or _error_code(e) in UNAVAILABLE_CODES:
                raise StoreUnavailable(
                    f"storage {self.location} unavailable: {self._describe(e)}"
                ) from e
            raise
        except RuntimeError as e:
            if self._closed:  # the pool refuses new calls once shut down
                raise StoreUnavailable(f"storage {self.location} is closed") from e
            raise

    def _name(self, key: str) -> str:
        """The bucket key of one of our keys."""
        key_segments(key)
        name = self.prefix + key
        if len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise ValueError(f"object key too long: {key!r}")
        return name

    async def ping(self) -> None:
        """Any refusal counts too: a bucket deleted or credentials revoked leave us unusable."""
        try:
            await self._call(self._client.head_bucket, Bucket=self.bucket)
        except botocore.exceptions.ClientError as e:
            raise StoreUnavailable(f"storage {self.location}: {self._describe(e)}") from e

    async def close(self) -> None:
        self._closed = True
        await _close(self._executor, self)

    async def put(
        self, key: str, body: AsyncIterable[bytes], md5: str, metadata: Mapping[str, str] = NO_METADATA
    ) -> None:
        """Upload in one request when small, as a multipart upload when large.

        Either way the server gets each request's Content-MD5 and refuses a body damaged on the
        way, and we compare the whole body with `md5` before anything becomes visible.
        """
        name = self._name(key)
        expected = _md5_digest(md5)
        headers = encode_metadata(metadata)
        whole = hashlib.md5()
        buffer = bytearray()
        upload: _MultipartUpload | None = None
        try:
            async for chunk in body:
                buffer += chunk
                while len(buffer) > MULTIPART_THRESHOLD:
                    if upload is None:
                        upload = await _MultipartUpload.start(self, name, headers)
                    part = buffer[:MULTIPART_THRESHOLD]
                    del buffer[:MULTIPART_THRESHOLD]
                    await upload.send(part, whole)
            if upload is None:
                await self._call(self._put_small, name, buffer, expected, headers)
            else:
                await upload.finish(buffer, whole, expected)
        except BaseException:
            if upload is not None:
                await upload.abort()
            raise

    def _put_small(self, name: str, data: bytearray, expected: bytes, metadata: dict[str, str]) -> None:
        """Check the body's MD5, then send it with that MD5 for the server to check again."""
        if hashlib.md5(data).digest() != expected:
            raise ChecksumMismatch(f"{name}: body MD5 differs from {expected.hex()}")
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentMD5=_content_md5(expected),
                Metadata=metadata,
            )
        except botocore.exceptions.ClientError as e:
            if _error_code(e) in ("BadDigest", "InvalidDigest"):
                message = f"{name}: storage refused the body: {_one_line(e)}"
                raise ChecksumMismatch(message) from None
            raise

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """The body in chunks. The request and the first chunk are one trip to a thread, and
        reading stops at the announced length, so a body of one chunk costs one trip, not three
        (the connection goes back to the pool once its last byte is read)."""
        name = self._name(key)
        try:
            stream, left, chunk = await self._call(self._open, name)
        except botocore.exceptions.ClientError as e:
            if _error_code(e) in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from None
            raise
        try:
            while chunk:
                yield chunk
                if left is not None:
                    left -= len(chunk)
                    if left <= 0:
                        break
                # Until the announced length has come: a body cut short raises (botocore checks).
                chunk = await self._call(stream.read, CHUNK_SIZE)
        finally:
            # Only closes the socket (no request), so it is safe here even while finalizing.
            stream.close()

    def _open(self, name: str) -> tuple[Any, int | None, bytes]:
        """GetObject and the body's first chunk: the stream, the bytes it announces, the chunk."""
        response = self._client.get_object(Bucket=self.bucket, Key=name)
        stream = response["Body"]
        try:
            return stream, response.get("ContentLength"), stream.read(CHUNK_SIZE)
        except BaseException:
            stream.close()
            raise

    async def metadata(self, key: str) -> dict[str, str]:
        name = self._name(key)
        try:
            response = await self._call(self._client.head_object, Bucket=self.bucket, Key=name)
        except botocore.exceptions.ClientError as e:
            if _error_code(e) in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from None
            raise
        return decode_metadata(response.get("Metadata", {}))

    async def delete(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]  # all checked before anything is deleted
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            response = await self._call(
                self._client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
            )
            if errors := response.get("Errors"):
                first = errors[0]
                code = str(first.get("Code"))
                message = (
                    f"storage {self.location} could not delete {len(errors)} objects, "
                    f"first {first.get('Key')!r}: {code} {first.get('Message', '')}"
                )
                # The server's answer, as botocore reports a refused request: the cause to keep.
                answer = botocore.exceptions.ClientError({"Error": first}, "DeleteObjects")
                if code in REFUSED_CODES:
                    raise StoreRefused(message, code) from answer
                raise StoreUnavailable(message) from answer

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """S3 lists keys in UTF-8 byte order, which is code point order: Python's str order."""
        prefix_segments(prefix)
        pages = await self._call(self._pages, self.prefix + prefix)
        while page := await self._call(next, pages, None):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"][len(self.prefix) :],
                    size=item["Size"],
                    modified=item["LastModified"].astimezone(timezone.utc),
                )

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Pages of up to 1,000 keys, each fetched when asked for (the model is read from disk)."""
        paginator = self._client.get_paginator("list_objects_v2")
        return iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix))


class _MultipartUpload:
    """One multipart upload in progress: parts go up one at a time, each with its Content-MD5."""

    def __init__(self, store: S3ObjectStore, name: str, upload_id: str) -> None:
        self.store = store
        self.name = name
        self.upload_id = upload_id
        self.parts: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, store: S3ObjectStore, name: str, metadata: dict[str, str]) -> _MultipartUpload:
        """The metadata goes with the start: S3 gives it to the object on completion."""
        client = store._client
        response = await store._call(
            client.create_multipart_upload, Bucket=store.bucket, Key=name, Metadata=metadata
        )
        return cls(store, name, response["UploadId"])

    async def send(self, part: bytearray, whole: hashlib._Hash) -> None:
        await self.store._call(self._send, part, whole)

    def _send(self, part: bytearray, whole: hashlib._Hash) -> None:
        """Hash and upload one part (in a worker thread: hashing megabytes takes a while)."""
        whole.update(part)
        number = len(self.parts) + 1
        try:
            response = self.store._client.upload_part(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=part,
                ContentMD5=_content_md5(hashlib.md5(part).digest()),
            )
        except botocore.exceptions.ClientError as e:
            if _error_code(e) in ("BadDigest", "InvalidDigest"):
                raise ChecksumMismatch(f"{self.name}: storage refused part {number}") from None
            raise
        self.parts.append({"ETag": response["ETag"], "PartNumber": number})

    async def finish(self, last: bytearray, whole: hashlib._Hash, expected: bytes) -> None:
        """Send the last part and complete, unless the whole body turns out not to match."""
        if last:
            await self.send(last, whole)
        if whole.digest() != expected:
            raise ChecksumMismatch(f"{self.name}: body MD5 differs from {expected.hex()}")
        client = self.store._client
        await self.store._call(
            client.complete_multipart_upload,
            Bucket=self.store.bucket,
            Key=self.name,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    async def abort(self) -> None:
        """Drop the uploaded parts; best effort, as the failure that got us here matters more.

        If S3 is down, the parts stay (invisible, but billed) until a bucket lifecycle rule
        (AbortIncompleteMultipartUpload) removes them.
        """
        client = self.store._client
        try:
            await asyncio.shield(
                self.store._call(
                    client.abort_multipart_upload,
                    Bucket=self.store.bucket,
                    Key=self.name,
                    UploadId=self.upload_id,
                )
            )
        except Exception:
            pass


async def _close(executor: ThreadPoolExecutor, store: S3ObjectStore | None) -> None:
    """Let calls in flight finish (without blocking the loop), then drop the connections."""
    await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
    if store is not None:
        store._client.close()
