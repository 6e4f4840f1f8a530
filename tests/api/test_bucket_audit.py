"""An administrator auditing the bucket with another client (the `minio` SDK) finds every file
exactly where DESIGN.md's key layout says, with the bytes and MD5 the users uploaded, and
metadata on each that says what it is, whose, who uploaded it and when."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote, urlsplit

import pytest
from minio import Minio

from ngshare_s3.exchange import timestamps
from ngshare_s3.stores import open_metadata_store

from .support import INSTRUCTOR

COURSE, ASSIGNMENT, STUDENT = "Intro/CS 101", "ps 1?", "stü/dent"
RELEASE = (
    ("ps1.ipynb", b'{"cells": []}'),
    ("a//b", b"double slash"),
    ("a\\b", b"backslash"),
    ("...", b"dots"),
    ("notes/ünïcode #1.txt", "ünïcode".encode()),
)
SUBMISSION = (
    ("ps1.ipynb", b'{"answer": 42}'),
    ("ps1.ipynb", b"the same path twice"),
    ("big.bin", bytes(range(256)) * (9 << 12)),  # 9 MiB: above the multipart threshold
)
FEEDBACK = (("ps1.html", b"<p>3/3</p>"),)


@pytest.fixture
def backend(request, minio_server, mongodb_url, s3_environment):
    """This module runs on MongoDB + MinIO only: the audit reads a real bucket."""
    s3_environment(minio_server)
    return mongodb_url, minio_server.new_location()


def escaped(name: str) -> str:
    """DESIGN.md: every unsafe character percent-escaped; '.' and '..' escaped as well."""
    text = quote(name, safe="")
    return text.replace(".", "%2E") if text in {".", ".."} else text


def expected_objects(prefix: str, dump: dict, timestamp: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Key → bytes and metadata, from the key layout, the ids the database recorded, and the
    submission timestamp the API answered."""
    base = f"{prefix}/courses/{escaped(COURSE)}/assignments/{escaped(ASSIGNMENT)}"
    (release,) = dump["assignments"]
    (submission,) = dump["submissions"]
    common = {"course": COURSE, "assignment": ASSIGNMENT}
    folders_and_files = [
        (
            f"{base}/release/{release['release_id']}",
            RELEASE,
            {"kind": "release", "timestamp": release["released_at"], "uploader": INSTRUCTOR},
        ),
        (
            f"{base}/submissions/{escaped(STUDENT)}/{submission['submission_id']}",
            SUBMISSION,
            {"kind": "submission", "student": STUDENT, "timestamp": timestamp, "uploader": STUDENT},
        ),
        (
            f"{base}/feedback/{escaped(STUDENT)}/{submission['submission_id']}/{submission['feedback']['feedback_id']}",
            FEEDBACK,
            {"kind": "feedback", "student": STUDENT, "timestamp": timestamp, "uploader": INSTRUCTOR},
        ),
    ]
    return {
        f"{folder}/{position:04d}/{escaped(path)}": (
            body,
            {**common, **about, "path": path, "md5": hashlib.md5(body).hexdigest()},
        )
        for folder, files, about in folders_and_files
        for position, (path, body) in enumerate(files)
    }


def user_metadata(headers) -> dict[str, str]:
    """The x-amz-meta-* headers of a stat, decoded as any reader of the bucket would."""
    meta = "x-amz-meta-"
    return {
        name.lower().removeprefix(meta): unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(meta)
    }


async def test_every_file_sits_where_the_key_layout_says_with_its_bytes_and_md5(api, backend, minio_server):
    await api.create_course(COURSE, [INSTRUCTOR], [STUDENT])
    before_release = timestamps.now()
    await api.release(COURSE, ASSIGNMENT, RELEASE, caller=INSTRUCTOR)
    after_release = timestamps.now()
    timestamp = await api.submit(STUDENT, COURSE, ASSIGNMENT, SUBMISSION)
    await api.give_feedback(COURSE, ASSIGNMENT, STUDENT, timestamp, FEEDBACK, caller=INSTRUCTOR)

    database, storage = backend
    metadata = await open_metadata_store(database)
    try:
        dump = await metadata.dump()
    finally:
        await metadata.close()
    bucket, _, prefix = storage.removeprefix("s3://").partition("/")
    expected = expected_objects(prefix, dump, timestamp)
    assert before_release <= dump["assignments"][0]["released_at"] <= after_release

    endpoint = urlsplit(minio_server.endpoint_url)
    auditor = Minio(
        endpoint.netloc,
        access_key=minio_server.access_key,
        secret_key=minio_server.secret_key,
        session_token=minio_server.session_token,
        secure=endpoint.scheme == "https",
        region=minio_server.region,
    )
    listed = {item.object_name: item for item in auditor.list_objects(bucket, prefix=f"{prefix}/", recursive=True)}
    assert sorted(listed) == sorted(expected)

    recorded_md5 = {
        key: file["md5"]
        for key, file in zip(
            expected,
            [*dump["assignments"][0]["files"], *dump["submissions"][0]["files"], *dump["submissions"][0]["feedback"]["files"]],
        )
    }
    for key, (body, about) in expected.items():
        response = auditor.get_object(bucket, key)
        try:
            stored = response.read()
        finally:
            response.close()
            response.release_conn()
        assert stored == body, f"{key} holds other bytes"
        assert hashlib.md5(stored).hexdigest() == recorded_md5[key], f"{key}: the recorded MD5 is wrong"
        if len(body) < 8 << 20:  # a single-part upload's ETag is its MD5
            assert listed[key].etag.strip('"') == recorded_md5[key]
        assert user_metadata(auditor.stat_object(bucket, key).metadata) == about, f"{key}: metadata"
