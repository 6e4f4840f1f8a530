"""fsck against real stores: data written through the exchange, then damaged the ways a crash
(or a hand in the bucket) can damage it."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from ngshare_s3.exchange import assignments, courses, feedback, fsck, rosters, submissions
from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.exchange.stored import feedback_files, release_files, submission_files
from ngshare_s3.exchange.permissions import Caller
from ngshare_s3.stores import open_metadata_store
from ngshare_s3.stores.metadata.base import Submission
from ngshare_s3.stores.objects.base import chunks_of, read_all

ADMIN = Caller("admin", is_admin=True)
TEACHER = Caller("teacher")
ALICE = Caller("alice")
LATER = timedelta(hours=2)  # every object counts as old when checked this far in the future


def files_field(files: dict[str, bytes]) -> str:
    return json.dumps([{"path": p, "content": base64.b64encode(b).decode()} for p, b in files.items()])


async def populate(ex: Exchange) -> str:
    """A course with a release, a submission with feedback; returns the submission's timestamp."""
    await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
    await rosters.put_student(ex, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")
    await assignments.release_assignment(
        ex, TEACHER, "course1", "ps1", files_field({"ps1.ipynb": b"release", "data/a b.csv": b"1,2"})
    )
    timestamp = await submissions.submit(ex, ALICE, "course1", "ps1", files_field({"ps1.ipynb": b"answer"}))
    await feedback.upload_feedback(
        ex, TEACHER, "course1", "ps1", "alice", timestamp, files_field({"ps1.html": b"well done"})
    )
    return timestamp


async def check(ex: Exchange, later: timedelta = LATER) -> fsck.FsckReport:
    return await fsck.check(ex.metadata, ex.objects, now=datetime.now(timezone.utc) + later)


async def put(ex: Exchange, key: str, data: bytes = b"stray") -> None:
    await ex.objects.put(key, chunks_of(data), hashlib.md5(data).hexdigest())


async def all_keys(ex: Exchange) -> list[str]:
    return [info.key async for info in ex.objects.list("")]


async def live_bodies(ex: Exchange) -> dict[str, bytes]:
    """Every body the service serves, by key."""
    assignment = await ex.metadata.get_assignment("course1", "ps1")
    files = list(release_files(assignment))
    for s in await ex.submissions_of(assignment):
        files += submission_files(s) + feedback_files(s)
    return {f.key: await read_all(ex.objects.get(f.key)) for f in files}


async def test_data_written_by_the_service_is_consistent(ex):
    await populate(ex)
    report = await check(ex)
    assert report.consistent
    assert report.objects == 4
    assert report.records > 0
    assert (report.unreferenced, report.young, report.unreachable, report.missing) == ([], [], [], [])


async def test_an_unreferenced_object_is_young_until_the_grace_period_passes(ex):
    await populate(ex)
    stray = "courses/course1/assignments/ps1/release/crashed/0000/x"
    await put(ex, stray)

    young = await check(ex, later=timedelta(minutes=30))
    assert [i.key for i in young.young] == [stray]
    assert young.unreferenced == []
    assert young.consistent

    old = await check(ex, later=LATER)
    assert [i.key for i in old.unreferenced] == [stray]
    assert old.young == []
    assert not old.consistent


async def test_repair_removes_only_old_unreferenced_objects(ex):
    await populate(ex)
    before = await live_bodies(ex)
    await put(ex, "courses/course1/assignments/ps1/release/crashed/0000/x")
    await put(ex, "elsewhere/y")
    report = await check(ex)
    await fsck.repair(ex.metadata, ex.objects, report)

    assert report.repaired and report.consistent
    assert sorted(await all_keys(ex)) == sorted(before)
    assert await live_bodies(ex) == before
    assert (await check(ex)).unreferenced == []


async def test_check_changes_nothing(ex):
    await populate(ex)
    await put(ex, "stray/object")
    assignment = await ex.metadata.get_assignment("course1", "ps1")
    await ex.metadata.delete_assignment("course1", "ps1", assignment.release_id)
    dump, keys = await ex.metadata.dump(), await all_keys(ex)
    report = await check(ex)
    assert report.unreferenced and report.unreachable
    assert await ex.metadata.dump() == dump
    assert await all_keys(ex) == keys


async def test_missing_objects_are_reported_never_deleted(ex):
    timestamp = await populate(ex)
    assignment = await ex.metadata.get_assignment("course1", "ps1")
    submission = await ex.metadata.get_submission("course1", "ps1", "alice")
    gone = [release_files(assignment)[1], submission_files(submission)[0], feedback_files(submission)[0]]
    await ex.objects.delete([f.key for f in gone])

    report = await check(ex)
    assert not report.consistent
    assert [(m.kind, m.course_id, m.assignment_id, m.student_id, m.path, m.key) for m in report.missing] == [
        ("release", "course1", "ps1", None, "data/a b.csv", gone[0].key),
        ("submission", "course1", "ps1", "alice", "ps1.ipynb", gone[1].key),
        ("feedback", "course1", "ps1", "alice", "ps1.html", gone[2].key),
    ]
    assert [m.timestamp for m in report.missing] == [assignment.released_at, timestamp, timestamp]

    dump = await ex.metadata.dump()
    await fsck.repair(ex.metadata, ex.objects, report)
    assert await ex.metadata.dump() == dump
    assert not report.consistent
    assert len((await check(ex)).missing) == 3


async def test_submissions_to_an_earlier_release_are_unreachable(ex):
    """An assignment delete interrupted after removing its record, then a release of the same
    id: the old submissions and all the old bodies are leftovers."""
    await populate(ex)
    old = await ex.metadata.get_assignment("course1", "ps1")
    stale = await ex.metadata.get_submission("course1", "ps1", "alice")
    await ex.metadata.delete_assignment("course1", "ps1", old.release_id)
    await assignments.release_assignment(ex, TEACHER, "course1", "ps1", files_field({"ps1.ipynb": b"v2"}))
    await submissions.submit(ex, ALICE, "course1", "ps1", files_field({"ps1.ipynb": b"answer 2"}))
    before = await live_bodies(ex)

    report = await check(ex)
    assert [(u.record, u.reason) for u in report.unreachable] == [
        (stale, "its release is not the assignment's current one")
    ]
    leftovers = release_files(old) + submission_files(stale) + feedback_files(stale)
    assert sorted(i.key for i in report.unreferenced) == sorted(f.key for f in leftovers)

    await fsck.repair(ex.metadata, ex.objects, report)
    current = await ex.metadata.get_assignment("course1", "ps1")
    assert [s.release_id for s in await ex.metadata.list_submissions("course1", "ps1")] == [current.release_id]
    assert sorted(await all_keys(ex)) == sorted(before)
    assert await live_bodies(ex) == before
    assert (await check(ex)).consistent


async def test_submissions_of_a_deleted_assignment_are_unreachable(ex):
    await populate(ex)
    assignment = await ex.metadata.get_assignment("course1", "ps1")
    await ex.metadata.delete_assignment("course1", "ps1", assignment.release_id)
    report = await check(ex)
    assert [(type(u.record), u.reason) for u in report.unreachable] == [
        (Submission, "its assignment does not exist")
    ]
    assert report.objects == len(report.unreferenced) == 4
    await fsck.repair(ex.metadata, ex.objects, report)
    assert await ex.metadata.list_submissions("course1", "ps1") == []
    assert await all_keys(ex) == []


async def test_records_of_a_deleted_course_are_unreachable(ex):
    await populate(ex)
    await ex.metadata.delete_course("course1")
    report = await check(ex)
    kinds = sorted(type(u.record).__name__ for u in report.unreachable)
    assert kinds == ["Assignment", "Member", "Member", "Submission"]
    assert {u.reason for u in report.unreachable} == {"its course does not exist"}

    await fsck.repair(ex.metadata, ex.objects, report)
    assert await ex.metadata.list_members("course1", "instructor") == []
    assert await ex.metadata.list_members("course1", "student") == []
    assert await ex.metadata.list_assignments("course1") == []
    assert await ex.metadata.list_submissions("course1", "ps1") == []
    assert await all_keys(ex) == []
    # The audit trail is history, not a leftover.
    assert await ex.metadata.list_events("course1")


async def test_a_course_whose_delete_stopped_halfway_is_finished_by_repair(ex):
    """The delete closed the course to writes, then stopped: its records go, then the course."""
    await populate(ex)
    await ex.metadata.close_course("course1")
    report = await check(ex)
    assert report.closed_courses == ["course1"]
    assert {u.reason for u in report.unreachable} == {"its course is being deleted"}
    assert len(report.unreachable) == 4 and len(report.unreferenced) == 4
    assert not report.consistent

    await fsck.repair(ex.metadata, ex.objects, report)
    assert await ex.metadata.list_courses() == []
    assert (await ex.metadata.dump())["members"] == []
    assert await all_keys(ex) == []
    await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
    assert await assignments.list_assignments(ex, ADMIN, "course1") == []
    assert (await check(ex)).consistent


async def test_a_parent_created_after_the_dump_keeps_its_children(ex):
    """The dump is not a snapshot: a record read after its course was created must not be
    taken for an orphan because the course was read before."""
    await populate(ex)

    class StaleDump:
        def __init__(self, store):
            self.store = store

        async def dump(self):
            return {**await self.store.dump(), "courses": []}

        def __getattr__(self, name):
            return getattr(self.store, name)

    report = await fsck.check(StaleDump(ex.metadata), ex.objects, now=datetime.now(timezone.utc) + LATER)
    assert report.unreachable == []
    assert report.consistent


async def test_objects_committed_after_the_listing_are_not_missing(ex):
    """Objects written (and their record committed) between the listing and the dump exist."""
    await populate(ex)

    class LateListing:
        def __init__(self, store):
            self.store = store

        async def list(self, prefix=""):
            if prefix:  # the second look at one key sees it
                async for info in self.store.list(prefix):
                    yield info

        def __getattr__(self, name):
            return getattr(self.store, name)

    report = await fsck.check(ex.metadata, LateListing(ex.objects), now=datetime.now(timezone.utc) + LATER)
    assert report.missing == []
    assert report.consistent


async def test_repair_refuses_an_empty_database_beside_full_storage(ex, tmp_path):
    """Most likely --database names the wrong file: removing everything would be a disaster."""
    await populate(ex)
    empty = await open_metadata_store(f"sqlite:///{tmp_path}/other.db")
    try:
        report = await fsck.check(empty, ex.objects, now=datetime.now(timezone.utc) + LATER)
        assert report.records == 0 and len(report.unreferenced) == 4
        with pytest.raises(fsck.RepairRefused, match="--database"):
            await fsck.repair(empty, ex.objects, report)
    finally:
        await empty.close()
    assert len(await all_keys(ex)) == 4
    assert not report.repaired
