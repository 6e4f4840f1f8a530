"""Each body the exchange stores says what it is through the object store's metadata, even when
a submission's timestamp has to move after its bodies went up."""

from __future__ import annotations

import base64
import json

from ngshare_s3.exchange import assignments, courses, rosters, submissions, timestamps
from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.exchange.stored import submission_files
from ngshare_s3.exchange.permissions import Caller
from ngshare_s3.stores.metadata.base import Submission

ADMIN = Caller("admin", is_admin=True)
TEACHER = Caller("teacher")
ALICE = Caller("alice")
FUTURE = "2999-01-01 00:00:00.000000"


def files_field(files: dict[str, bytes]) -> str:
    return json.dumps([{"path": p, "content": base64.b64encode(b).decode()} for p, b in files.items()])


async def test_a_submission_whose_timestamp_is_taken_rewrites_its_bodies_with_the_next(ex: Exchange) -> None:
    await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
    await rosters.put_student(ex, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")
    await assignments.release_assignment(ex, TEACHER, "course1", "ps1", files_field({"ps1.ipynb": b"r"}))
    release_id = (await ex.metadata.get_assignment("course1", "ps1")).release_id
    # Alice's last submission is in the future, so hers comes one microsecond after it; that
    # moment is held by a leftover of an earlier release, which she does not see but the
    # database's unique index does.
    await ex.metadata.create_submission(Submission("course1", "ps1", "alice", FUTURE, "s0", release_id))
    held = timestamps.later(FUTURE)
    await ex.metadata.create_submission(Submission("course1", "ps1", "alice", held, "s1", "old-release"))

    timestamp = await submissions.submit(ex, ALICE, "course1", "ps1", files_field({"a b/ü.txt": b"answer"}))

    assert timestamp == timestamps.later(held)
    (submission,) = [s for s in await ex.metadata.list_submissions("course1", "ps1", "alice") if s.timestamp == timestamp]
    (stored,) = submission_files(submission)
    expected = {
        "kind": "submission",
        "course": "course1",
        "assignment": "ps1",
        "student": "alice",
        "path": "a b/ü.txt",
        "timestamp": timestamp,
        "uploader": "alice",
        "md5": stored.md5,
    }
    assert await ex.objects.metadata(stored.key) == (expected if ex.objects.keeps_metadata else {})
