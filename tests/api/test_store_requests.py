"""What each nbgrader operation costs the stores: the S3 requests it sends (counted on the
wire by botocore's `before-send` event, against MinIO) and the database calls it makes.
The counts are pinned, so that a needless HEAD, LIST, GET or query fails here (run with -s
to see them)."""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterator

import pytest

from ngshare_s3.http.app_keys import EXCHANGE, METRICS
from ngshare_s3.stores.objects.s3 import S3ObjectStore

from .support import INSTRUCTOR, STUDENT, encode_files, set_up_classroom

pytestmark = pytest.mark.backends("mongodb+minio")

TREE = [("one.ipynb", b'{"cells": []}' * 300), ("two.ipynb", b'{"cells": [1]}' * 300), ("data.bin", os.urandom(200_000))]


def s3_store_of(api) -> S3ObjectStore:
    """The S3 store behind the exchange's wrappers (timing, error translation)."""
    store = api.client.server.app[EXCHANGE].objects
    while not isinstance(store, S3ObjectStore):
        store = store._store
    return store


class Wire:
    """S3 requests sent, by operation (GetObject, PutObject, ...), retries included."""

    def __init__(self, api) -> None:
        self.sent: collections.Counter[str] = collections.Counter()
        s3_store_of(api)._client.meta.events.register("before-send.s3", self._count)

    def _count(self, event_name: str, **_: object) -> None:
        self.sent[event_name.rsplit(".", 1)[-1]] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[collections.Counter[str]]:
        self.sent.clear()
        found: collections.Counter[str] = collections.Counter()
        yield found
        found.update(self.sent)


def database_calls(api) -> collections.Counter[str]:
    """Database calls made so far, by operation."""
    registry = api.client.server.app[METRICS].registry
    return collections.Counter({
        sample.labels["operation"]: int(sample.value)
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "ngshare_s3_store_call_duration_seconds_count" and sample.labels["store"] == "database"
    })


# S3 requests of each call ngshare_exchange makes, for a tree of three files: bodies only,
# one request each; nothing is checked (HEAD) or listed (LIST) on the way.
THREE = len(TREE)
S3_REQUESTS = {
    "release": {"PutObject": THREE},
    "list assignments": {},
    "fetch": {"GetObject": THREE},
    "fetch again": {},  # answered from the release cache
    "fetch list_only": {},
    "submit": {"PutObject": THREE},
    "list submissions": {},
    "list student submissions": {},
    "collect": {"GetObject": THREE},
    "feedback upload": {"PutObject": 2},
    "feedback fetch": {"GetObject": 2},
    "delete assignment": {"DeleteObjects": 1},
}

# Database calls of each, a member of the course calling: their membership shows the course
# exists, and a student asking about themselves is not looked up twice.
DATABASE_CALLS = {
    "release": 6,  # the course's incarnation before and at the commit point, the audit event
    "list assignments": 2,
    "fetch": 2,
    "fetch again": 2,
    "fetch list_only": 2,
    "submit": 5,
    "list submissions": 3,
    "list student submissions": 3,
    "collect": 5,
    "feedback upload": 6,
    "feedback fetch": 3,
    "delete assignment": 7,
}


async def run_operations(api) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
    """Each operation's S3 requests and database calls, by operation."""
    wire = Wire(api)
    counts = {}

    async def measure(name, method, caller, route, **fields):
        before = database_calls(api)
        with wire.counting() as sent:
            body = await api.ok(method, caller, route, **fields)
        counts[name] = (dict(sent), dict(database_calls(api) - before))
        return body

    await measure("release", "POST", INSTRUCTOR, "assignment/c1/hw", files=encode_files(TREE))
    await measure("list assignments", "GET", STUDENT, "assignments/c1")
    await measure("fetch", "GET", STUDENT, "assignment/c1/hw")
    await measure("fetch again", "GET", STUDENT, "assignment/c1/hw")
    await measure("fetch list_only", "GET", STUDENT, "assignment/c1/hw", list_only="true")
    submitted = await measure("submit", "POST", STUDENT, "submission/c1/hw", files=encode_files(TREE), user=STUDENT)
    timestamp = submitted["timestamp"]
    await measure("list submissions", "GET", INSTRUCTOR, "submissions/c1/hw")
    await measure("list student submissions", "GET", STUDENT, f"submissions/c1/hw/{STUDENT}")
    await measure("collect", "GET", INSTRUCTOR, f"submission/c1/hw/{STUDENT}")
    await measure("feedback upload", "POST", INSTRUCTOR, f"feedback/c1/hw/{STUDENT}", timestamp=timestamp,
                  files=encode_files(TREE[:2], with_newlines=True))
    await measure("feedback fetch", "GET", STUDENT, f"feedback/c1/hw/{STUDENT}", timestamp=timestamp)
    await measure("delete assignment", "DELETE", INSTRUCTOR, "assignment/c1/hw")
    return counts


async def test_each_operation_sends_only_the_s3_requests_it_needs(api):
    await set_up_classroom(api)
    counts = await run_operations(api)
    for name, (sent, database) in counts.items():
        print(f"{name:26} S3 {sent or '-'}; database {sum(database.values())} {database}")
    assert {name: sent for name, (sent, _) in counts.items()} == S3_REQUESTS
    assert {name: sum(database.values()) for name, (_, database) in counts.items()} == DATABASE_CALLS


async def test_without_the_release_cache_every_fetch_reads_the_bodies(make_api):
    api = await make_api(release_cache_size=0)
    await set_up_classroom(api)
    counts = await run_operations(api)
    assert counts["fetch again"][0] == {"GetObject": THREE}
