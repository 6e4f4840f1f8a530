"""The test servers behave like the production services they stand in for, on the points the
stores rely on: unique indexes, checked Content-MD5, data kept across a restart."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pymongo
import pymongo.errors
import pytest
from botocore.exceptions import ClientError

import servers
from servers import MongoServer, S3Server


def test_mongodb_enforces_unique_indexes(mongodb_url: str) -> None:
    with pymongo.MongoClient(mongodb_url) as client:
        collection = client.get_default_database()["courses"]
        collection.create_index("name", unique=True)
        collection.insert_one({"name": "math101"})
        with pytest.raises(pymongo.errors.DuplicateKeyError):
            collection.insert_one({"name": "math101"})
        assert collection.count_documents({}) == 1


def test_mongodb_hands_out_fresh_databases(mongodb: MongoServer) -> None:
    first, second = mongodb.new_database_url(), mongodb.new_database_url()
    assert first != second
    with pymongo.MongoClient(first) as client:
        assert client.get_default_database().name.startswith("t_")


@pytest.mark.parametrize("server_fixture", ["minio_server", "moto_server"])
def test_s3_put_and_get(server_fixture: str, request: pytest.FixtureRequest) -> None:
    server: S3Server = request.getfixturevalue(server_fixture)
    bucket, prefix = server.new_location().removeprefix("s3://").split("/", 1)
    client = server.client()
    client.put_object(Bucket=bucket, Key=f"{prefix}/a.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key=f"{prefix}/a.txt")["Body"].read() == b"hello"


def test_minio_rejects_a_body_that_does_not_match_its_md5(minio_server: S3Server) -> None:
    bucket, prefix = minio_server.new_location().removeprefix("s3://").split("/", 1)
    wrong = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    with pytest.raises(ClientError) as raised:
        minio_server.client().put_object(Bucket=bucket, Key=f"{prefix}/a.txt", Body=b"hello", ContentMD5=wrong)
    assert raised.value.response["Error"]["Code"] == "BadDigest"


def test_s3_environment_points_boto3_at_the_server(minio_server: S3Server, s3_environment) -> None:
    import boto3

    s3_environment(minio_server)
    bucket, _ = minio_server.new_location().removeprefix("s3://").split("/", 1)
    names = [entry["Name"] for entry in boto3.client("s3").list_buckets()["Buckets"]]
    assert bucket in names


def test_minio_keeps_its_data_across_a_restart_on_the_same_port(tmp_path: Path) -> None:
    try:
        process = servers.start_minio(tmp_path)
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    try:
        server = S3Server("minio", f"http://127.0.0.1:{process.port}", servers.MINIO_USER, servers.MINIO_PASSWORD)
        server.create_bucket(server.bucket)
        server.client().put_object(Bucket=server.bucket, Key="kept", Body=b"data")
        process.stop()
        with pytest.raises(Exception):
            server.client().list_buckets()
        process.start()
        assert server.client().get_object(Bucket=server.bucket, Key="kept")["Body"].read() == b"data"
    finally:
        process.stop()


def test_ferretdb_keeps_its_data_across_a_restart_on_the_same_port(tmp_path: Path) -> None:
    try:
        process = servers.start_ferretdb(tmp_path)
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    url = f"mongodb://127.0.0.1:{process.port}/kept"
    try:
        with pymongo.MongoClient(url, serverSelectionTimeoutMS=2000) as client:
            client.get_default_database()["items"].insert_one({"_id": 1})
            process.stop()
            with pytest.raises(pymongo.errors.ConnectionFailure):
                client.get_default_database()["items"].find_one({"_id": 1})
            process.start()
            assert client.get_default_database()["items"].find_one({"_id": 1}) == {"_id": 1}
    finally:
        process.stop()
