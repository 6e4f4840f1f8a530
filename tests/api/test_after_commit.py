"""Work after a write's commit point (the audit event, removing replaced bodies) that fails on
a real backend: the write has happened, so the answer is success, and a client retry of
`submit` never makes a second submission. The failure is logged for the administrator."""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse

import pymongo
import pytest

from ngshare_s3.stores import open_metadata_store
from ngshare_s3.stores.metadata.base import Submission

from .support import ADMIN, INSTRUCTOR, KNOWN_USERS, STUDENT, encode_files, expected_tree, failure

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

RELEASED = (("a1.ipynb", b'{"cells": []}'),)
ANSWER = (("a1.ipynb", b'{"cells": ["answer"]}'),)


def refuse_events(database: str) -> None:
    """Make the audit trail refuse every write, the way a damaged database would."""
    if database.startswith("sqlite:///"):
        connection = sqlite3.connect(urllib.parse.urlparse(database).path)
        connection.execute("DROP TABLE events")
        connection.close()
        return
    # One event of each user already, and a unique index on the user: every new event collides.
    with pymongo.MongoClient(database) as client:
        events = client.get_default_database().events
        events.drop()
        events.insert_many([{"user_id": user} for user in KNOWN_USERS])
        events.create_index("user_id", unique=True)


def event_warnings(caplog) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.levelno == logging.WARNING and "audit event not recorded" in r.getMessage()
    ]


@pytest.fixture
async def course(api):
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.release("c1", "a1", RELEASED, caller=INSTRUCTOR)
    return "c1"


async def test_submit_succeeds_once_when_its_event_cannot_be_recorded(api, course, caplog):
    refuse_events(api.settings.database)
    status, body = await api.post(STUDENT, "submission/c1/a1", files=encode_files(ANSWER), user=STUDENT)
    assert (status, body["success"]) == (200, True), body
    listed = await api.submissions("c1", "a1", caller=INSTRUCTOR)
    assert [s["timestamp"] for s in listed] == [body["timestamp"]]
    warnings = event_warnings(caplog)
    assert len(warnings) == 1 and "action='submit'" in warnings[0] and "student1" in warnings[0]


async def test_roster_release_feedback_and_deletes_succeed_when_events_cannot_be_recorded(api, course, caplog):
    refuse_events(api.settings.database)
    await api.create_course("c2", [INSTRUCTOR])
    assert "c2" in await api.courses()
    await api.add_student("c1", "student2", caller=INSTRUCTOR)
    assert "student2" in await api.students("c1")
    await api.release("c1", "a2", RELEASED, caller=INSTRUCTOR)
    assert "a2" in await api.assignments("c1")
    timestamp = await api.submit(STUDENT, "c1", "a2", ANSWER)
    await api.give_feedback("c1", "a2", STUDENT, timestamp, (("a2.html", b"good"),), caller=INSTRUCTOR)
    assert await api.feedback_files("c1", "a2", STUDENT, timestamp, caller=STUDENT)
    await api.ok("DELETE", INSTRUCTOR, "assignment/c1/a2")
    assert "a2" not in await api.assignments("c1")
    await api.ok("DELETE", ADMIN, "course/c2")
    assert "c2" not in await api.courses()
    assert len(event_warnings(caplog)) == 7


@pytest.mark.backends("embedded")  # the folder store's delete is the one a test can make fail
async def test_replacing_feedback_succeeds_when_the_old_bodies_cannot_be_removed(api, course, caplog):
    timestamp = await api.submit(STUDENT, "c1", "a1", ANSWER)
    await api.give_feedback("c1", "a1", STUDENT, timestamp, (("a1.html", b"first"),), caller=INSTRUCTOR)
    # A folder where the old feedback's file was: removing it fails (even for root).
    (old,) = [os.path.join(folder, name) for folder, _, names in os.walk(api.settings.storage)
              if "/feedback/" in folder for name in names]
    os.unlink(old)
    os.makedirs(os.path.join(old, "blocker"))

    await api.give_feedback("c1", "a1", STUDENT, timestamp, (("a1.html", b"second"),), caller=INSTRUCTOR)
    second = (("a1.html", b"second"),)
    assert await api.feedback_files("c1", "a1", STUDENT, timestamp, caller=STUDENT) == expected_tree(second)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 unreferenced objects left for fsck" in w for w in warnings), warnings


async def test_running_out_of_submission_timestamps_is_a_clear_503(api, course):
    """Every timestamp the student's submit can try is taken (by leftovers of another release
    that the listing never shows): the client is told to try again, nothing is stored."""
    metadata = await open_metadata_store(api.settings.database)
    try:
        latest = "2999-01-01 00:00:00.000000"
        release = (await metadata.get_assignment("c1", "a1")).release_id
        await metadata.create_submission(Submission("c1", "a1", STUDENT, latest, "s0", release))
        for n in range(1, 12):
            taken = f"2999-01-01 00:00:00.{n:06d}"
            await metadata.create_submission(Submission("c1", "a1", STUDENT, taken, f"s{n}", "old-release"))
    finally:
        await metadata.close()
    status, body = await api.post(STUDENT, "submission/c1/a1", files=encode_files(ANSWER), user=STUDENT)
    assert (status, body) == (503, failure("Too many submissions at the same moment; try again"))
    assert [s["timestamp"] for s in await api.submissions("c1", "a1", caller=INSTRUCTOR)] == [latest]

