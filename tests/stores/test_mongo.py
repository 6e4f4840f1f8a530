"""MongoDB backend specifics: start-up against a real server (FerretDB, or MONGODB_URL),
idempotent indexes, one-line errors, and no credentials in messages."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymongo import AsyncMongoClient

from ngshare_s3.stores import open_metadata_store
from ngshare_s3.stores.errors import DuplicateKey, StoreConfigError, StoreUnavailable
from ngshare_s3.stores.metadata.base import Member
from ngshare_s3.stores.metadata.mongo import MongoMetadataStore, describe

UNIQUE_KEYS = {
    "courses": [("course_id", 1)],
    "members": [("course_id", 1), ("user_id", 1)],
    "assignments": [("course_id", 1), ("assignment_id", 1)],
    "submissions": [("course_id", 1), ("assignment_id", 1), ("student_id", 1), ("timestamp", 1)],
}


async def test_replicas_starting_together_create_the_unique_indexes_once(mongodb_url):
    stores = await asyncio.gather(*(open_metadata_store(mongodb_url) for _ in range(3)))
    try:
        client = AsyncMongoClient(mongodb_url)
        database = client.get_default_database()
        for collection, keys in UNIQUE_KEYS.items():
            indexes = await database[collection].index_information()
            unique = [i["key"] for i in indexes.values() if i.get("unique")]
            assert unique == [keys], f"{collection}: {indexes}"
        await client.close()
        await stores[0].create_course("c1")
        with pytest.raises(DuplicateKey):
            await stores[1].create_course("c1")
    finally:
        for store in stores:
            await store.close()


async def test_a_database_name_defaults_to_ngshare_s3(mongodb):
    url = urlunsplit(urlsplit(mongodb.url)._replace(path="/"))
    store = await MongoMetadataStore.open(url)
    try:
        assert store.location.endswith("/ngshare_s3")
        await store.create_course("c1")
    finally:
        await store.close()
    named = urlunsplit(urlsplit(mongodb.url)._replace(path="/ngshare_s3"))
    named_store = await MongoMetadataStore.open(named)
    try:
        assert await named_store.list_courses() == ["c1"]
    finally:
        await named_store.close()
        mongodb.drop_database(named)


async def test_membership_races_on_one_new_student_end_with_one_record(mongodb_url):
    """Concurrent upserts of one new key: the server may let all but one fail; they retry."""
    store = await open_metadata_store(mongodb_url)
    try:
        students = [Member("c", "s", "student", f"name{i}") for i in range(10)]
        assert all(await asyncio.gather(*(store.put_student(m) for m in students)))
        (member,) = await store.list_members("c", "student")
        assert member.first_name in {m.first_name for m in students}
        await store.make_instructor(Member("c", "t", "instructor"))
        assert not await store.put_student(Member("c", "t", "student"))
        assert (await store.get_member("c", "t")).role == "instructor"
    finally:
        await store.close()


async def test_an_unreachable_server_stops_start_up_with_one_line_and_no_password():
    url = "mongodb://reader:s3cret@127.0.0.1:9/ngshare?serverSelectionTimeoutMS=300"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as error:
        await open_metadata_store(url)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message.startswith("database mongodb://127.0.0.1:9/ngshare unreachable")
    assert "s3cret" not in message and "Topology" not in message and "\n" not in message


@pytest.mark.parametrize("url", ["mongodb://", "mongodb://host:notaport/db", "mongodb://h/db?nosuchoption=1&w=-5"])
async def test_a_malformed_url_is_a_configuration_error(url):
    with pytest.raises(StoreConfigError) as error:
        await open_metadata_store(url)
    assert str(error.value).startswith("--database is not a usable MongoDB URL")


def test_described_location_hides_credentials_and_keeps_hosts():
    assert describe("mongodb://u:p@a:1,b:2/db?replicaSet=x") == "mongodb://a:1,b:2/db"


# The equality filters requests run, by collection: each must be the leading keys of an index,
# so that MongoDB answers it from the index, never by scanning the collection.
REQUEST_FILTERS = [
    ("courses", {"course_id"}),
    ("members", {"course_id", "user_id"}),
    ("members", {"course_id"}),  # roster listings, by role
    ("members", {"user_id"}),  # the courses of a user
    ("assignments", {"course_id", "assignment_id"}),
    ("assignments", {"course_id"}),
    ("submissions", {"course_id", "assignment_id"}),
    ("submissions", {"course_id", "assignment_id", "student_id"}),
    ("submissions", {"course_id", "assignment_id", "student_id", "timestamp"}),
    ("feedback", {"course_id", "assignment_id"}),
    ("feedback", {"course_id", "assignment_id", "student_id", "timestamp"}),
    ("events", {"course_id"}),
]


@pytest.mark.parametrize("collection, fields", REQUEST_FILTERS)
def test_request_filters_lead_an_index(collection, fields):
    from ngshare_s3.stores.metadata.mongo import INDEXES

    leading = [{name for name, _ in keys[: len(fields)]} for keys, _ in INDEXES[collection]]
    assert fields in leading, f"no index of {collection} starts with {sorted(fields)}"
