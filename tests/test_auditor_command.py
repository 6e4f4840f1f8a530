"""`ngshare-s3 auditor` against a real MinIO: the account it creates can list and read the
exchange's objects and nothing else, and the policy it prints for AWS holds only those rights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from servers import S3Server, fresh_name

READ_ONLY_ACTIONS = {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject"}


def run_auditor(server: S3Server | None, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = server.process_environment() if server else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "auditor", *arguments],
        env=environment, capture_output=True, text=True, timeout=60,
    )


def client_as(server: S3Server, access_key: str, secret_key: str):
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=server.region,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"},
        ),
    )


def refused(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def minio(minio_server: S3Server) -> S3Server:
    if minio_server.process is None:
        pytest.skip("the suite runs against an external S3 endpoint; the admin API needs MinIO started here")
    return minio_server


def test_auditor_lists_and_reads_the_exchange_and_nothing_else(minio: S3Server, tmp_path: Path):
    admin = minio.client()
    prefix = fresh_name("exchange-")
    key = f"{prefix}/courses/c1/assignments/a1/submissions/student1/s1/a1.ipynb"
    admin.put_object(Bucket=minio.bucket, Key=key, Body=b'{"cells": []}')
    admin.put_object(Bucket=minio.bucket, Key="elsewhere/secret.txt", Body=b"not the exchange")
    other_bucket = minio.new_bucket_name()
    minio.create_bucket(other_bucket)
    admin.put_object(Bucket=other_bucket, Key="private.txt", Body=b"private")

    name = fresh_name("auditor-")
    password_file = tmp_path / "password"
    password_file.write_text("audit-password-1\n")
    result = run_auditor(minio, "create", "--storage", f"s3://{minio.bucket}/{prefix}", "--name", name,
                         "--password-file", str(password_file))
    assert result.returncode == 0, result.stderr
    assert f"ngshare-audit-{minio.bucket}-{prefix}" in result.stdout
    assert "audit-password-1" not in result.stdout  # a given password is never echoed

    auditor = client_as(minio, name, "audit-password-1")
    listed = auditor.list_objects_v2(Bucket=minio.bucket, Prefix=f"{prefix}/")
    assert [item["Key"] for item in listed["Contents"]] == [key]
    folders = auditor.list_objects_v2(Bucket=minio.bucket, Prefix=f"{prefix}/courses/", Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == [f"{prefix}/courses/c1/"]
    assert auditor.get_object(Bucket=minio.bucket, Key=key)["Body"].read() == b'{"cells": []}'
    auditor.get_bucket_location(Bucket=minio.bucket)

    assert refused(lambda: auditor.put_object(Bucket=minio.bucket, Key=key, Body=b"forged")) == "AccessDenied"
    assert refused(lambda: auditor.put_object(Bucket=minio.bucket, Key=f"{prefix}/new", Body=b"x")) == "AccessDenied"
    assert refused(lambda: auditor.delete_object(Bucket=minio.bucket, Key=key)) == "AccessDenied"
    assert admin.get_object(Bucket=minio.bucket, Key=key)["Body"].read() == b'{"cells": []}'
    # Outside the prefix, and another bucket: neither listed nor read.
    assert refused(lambda: auditor.list_objects_v2(Bucket=minio.bucket)) == "AccessDenied"
    assert refused(lambda: auditor.get_object(Bucket=minio.bucket, Key="elsewhere/secret.txt")) == "AccessDenied"
    assert refused(lambda: auditor.list_objects_v2(Bucket=other_bucket)) == "AccessDenied"
    assert refused(lambda: auditor.get_object(Bucket=other_bucket, Key="private.txt")) == "AccessDenied"
    assert other_bucket not in [b["Name"] for b in auditor.list_buckets()["Buckets"]]

    # Running it again (e.g. each time a deployment starts) changes nothing and still works.
    again = run_auditor(minio, "create", "--storage", f"s3://{minio.bucket}/{prefix}", "--name", name,
                        "--password-file", str(password_file))
    assert again.returncode == 0, again.stderr
    assert auditor.get_object(Bucket=minio.bucket, Key=key)["Body"].read() == b'{"cells": []}'


def test_generated_password_is_printed_once_and_works_on_a_whole_bucket(minio: S3Server):
    bucket = minio.new_bucket_name()
    minio.create_bucket(bucket)
    minio.client().put_object(Bucket=bucket, Key="courses/c1/x.txt", Body=b"x")
    name = fresh_name("auditor-")
    result = run_auditor(minio, "create", "--storage", f"s3://{bucket}", "--name", name)
    assert result.returncode == 0, result.stderr
    password = result.stdout.split("(shown only now): ")[1].strip()
    auditor = client_as(minio, name, password)
    assert [i["Key"] for i in auditor.list_objects_v2(Bucket=bucket)["Contents"]] == ["courses/c1/x.txt"]
    assert refused(lambda: auditor.delete_object(Bucket=bucket, Key="courses/c1/x.txt")) == "AccessDenied"
    assert refused(lambda: auditor.list_objects_v2(Bucket=minio.bucket)) == "AccessDenied"


@pytest.mark.parametrize(
    ("storage", "listing", "objects"),
    [
        ("s3://exchange-bucket/ngshare/", ["ngshare/", "ngshare/*"], "arn:aws:s3:::exchange-bucket/ngshare/*"),
        ("s3://exchange-bucket", None, "arn:aws:s3:::exchange-bucket/*"),
    ],
)
def test_printed_policy_grants_exactly_list_location_and_read(storage: str, listing, objects: str):
    result = run_auditor(None, "policy", "--storage", storage)
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    statements = policy["Statement"]
    assert policy["Version"] == "2012-10-17"
    assert all(s["Effect"] == "Allow" for s in statements)
    granted = {(action, resource) for s in statements for action in s["Action"] for resource in s["Resource"]}
    assert granted == {
        ("s3:ListBucket", "arn:aws:s3:::exchange-bucket"),
        ("s3:GetBucketLocation", "arn:aws:s3:::exchange-bucket"),
        ("s3:GetObject", objects),
    }
    assert {a for s in statements for a in s["Action"]} == READ_ONLY_ACTIONS
    (list_statement,) = [s for s in statements if s["Action"] == ["s3:ListBucket"]]
    if listing is None:
        assert "Condition" not in list_statement
    else:
        assert list_statement["Condition"] == {"StringLike": {"s3:prefix": listing}}


def test_misconfiguration_exits_2_with_one_line(tmp_path: Path):
    assert run_auditor(None, "policy", "--storage", str(tmp_path)).returncode == 2
    short = tmp_path / "short"
    short.write_text("abc\n")
    result = run_auditor(None, "create", "--storage", "s3://exchange-bucket", "--password-file", str(short))
    assert result.returncode == 2
    assert "shorter than 8 characters" in result.stderr
