"""A course deleted while a release or a roster change to it runs: whatever the interleaving,
no record of the deleted course survives, not even when a course of the same name is created
again at once. Each interleaving is forced with hooks on the real store's calls."""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest

from ngshare_s3.exchange import assignments, courses, fsck, rosters
from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.exchange.errors import NotFound
from ngshare_s3.exchange.permissions import Caller
from ngshare_s3.stores import open_metadata_store, open_object_store

from .test_fsck import files_field

ADMIN = Caller("admin", is_admin=True)
TEACHER = Caller("teacher")

Hook = Callable[[], Awaitable[None]]


class Interleaved:
    """A metadata store whose named calls run a hook just before or just after them (once)."""

    def __init__(self, store):
        self._store = store
        self.before: dict[str, Hook] = {}
        self.after: dict[str, Hook] = {}

    def __getattr__(self, name):
        method = getattr(self._store, name)
        if not inspect.iscoroutinefunction(method):
            return method

        async def call(*args, **kwargs):
            if hook := self.before.pop(name, None):
                await hook()
            result = await method(*args, **kwargs)
            if hook := self.after.pop(name, None):
                await hook()
            return result

        return call


async def set_up(ex: Exchange) -> Exchange:
    await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
    return Exchange(Interleaved(ex.metadata), ex.objects, debug=False)


async def write_between_sweep_and_removal(
    hooked: Exchange, write_call: str, write: Awaitable[None], recreate: bool
) -> BaseException | None:
    """Run `write` so that it begins before the course delete, lands its record after the
    delete's sweep of the course's records, and checks on it only after the course record is
    gone (and, if `recreate`, a new course of the same name exists). Returns what it raised."""
    store = hooked.metadata
    ready, swept, written, settled = (asyncio.Event() for _ in range(4))

    async def hold_write() -> None:
        ready.set()
        await swept.wait()

    async def hold_removal() -> None:
        swept.set()
        await written.wait()

    async def hold_check() -> None:
        written.set()
        await settled.wait()

    store.before[write_call] = hold_write
    store.after[write_call] = hold_check
    store.before["delete_course"] = hold_removal
    writer = asyncio.create_task(write)
    await ready.wait()
    await courses.delete_course(hooked, ADMIN, "course1")
    if recreate:
        await courses.create_course(hooked, ADMIN, "course1", json.dumps(["teacher"]))
    settled.set()
    try:
        await writer
    except Exception as error:
        return error
    return None


async def assert_clean(ex: Exchange, recreate: bool) -> None:
    dump = await ex.metadata.dump()
    if recreate:
        assert [m["user_id"] for m in dump["members"]] == ["teacher"]
    else:
        assert dump["members"] == []
    assert dump["assignments"] == []
    report = await fsck.check(ex.metadata, ex.objects, now=datetime.now(timezone.utc) + timedelta(hours=2))
    assert (report.unreachable, report.unreferenced) == ([], [])


@pytest.mark.parametrize("recreate", [False, True], ids=["deleted", "deleted-and-created-again"])
async def test_a_release_overtaken_by_the_course_delete_is_withdrawn(ex, recreate):
    hooked = await set_up(ex)
    release = assignments.release_assignment(hooked, TEACHER, "course1", "ps1", files_field({"a.ipynb": b"x"}))
    error = await write_between_sweep_and_removal(hooked, "create_assignment", release, recreate)
    assert isinstance(error, NotFound) and error.message == "Course not found"
    await assert_clean(ex, recreate)
    if recreate:
        assert await assignments.list_assignments(ex, ADMIN, "course1") == []


@pytest.mark.parametrize("recreate", [False, True], ids=["deleted", "deleted-and-created-again"])
async def test_a_student_added_while_the_course_is_deleted_is_removed(ex, recreate):
    hooked = await set_up(ex)
    add = rosters.put_student(hooked, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")
    error = await write_between_sweep_and_removal(hooked, "put_student", add, recreate)
    assert isinstance(error, NotFound) and error.message == "Course not found"
    await assert_clean(ex, recreate)
    assert await ex.metadata.courses_of("alice") == []


async def test_a_course_being_deleted_takes_no_new_records(ex):
    """Between the start of a delete and its end, writes into the course answer 404 at once."""
    hooked = await set_up(ex)
    answers = []

    async def try_writes() -> None:
        for write in (
            assignments.release_assignment(hooked, TEACHER, "course1", "ps1", files_field({"a": b"x"})),
            rosters.put_student(hooked, TEACHER, "course1", "alice", "A", "A", "a@example.org"),
            rosters.put_students(hooked, TEACHER, "course1", json.dumps(
                [{"username": "bob", "first_name": "B", "last_name": "B", "email": "b@example.org"}])),
            rosters.update_instructor(hooked, ADMIN, "course1", "carol", "C", "C", "c@example.org"),
        ):
            with pytest.raises(NotFound) as raised:
                await write
            answers.append(raised.value.message)

    hooked.metadata.before["delete_course"] = try_writes
    await courses.delete_course(hooked, ADMIN, "course1")
    assert answers == ["Course not found"] * 4
    await assert_clean(ex, recreate=False)


async def test_a_course_delete_that_stopped_halfway_is_finished_by_a_retry(ex):
    hooked = await set_up(ex)
    await rosters.put_student(ex, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")

    async def crash() -> None:
        raise RuntimeError("the process stops here")

    hooked.metadata.before["delete_members"] = crash
    with pytest.raises(RuntimeError):
        await courses.delete_course(hooked, ADMIN, "course1")
    assert await courses.list_courses(ex, ADMIN) == ["course1"]
    await courses.delete_course(ex, ADMIN, "course1")
    assert await courses.list_courses(ex, ADMIN) == []
    await assert_clean(ex, recreate=False)


async def test_a_course_of_a_database_made_before_incarnations_takes_writes(tmp_path):
    """The embedded database of an earlier version gains the columns on open; its courses
    count as open, and a delete and a new course of the same name work as for any other."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE courses (seq INTEGER PRIMARY KEY, course_id TEXT NOT NULL UNIQUE)")
        old.execute("INSERT INTO courses (course_id) VALUES ('course1')")
    old.close()
    metadata = await open_metadata_store(f"sqlite:///{path}")
    objects = await open_object_store(str(tmp_path / "files"))
    try:
        ex = Exchange(metadata, objects, debug=False)
        await rosters.update_instructor(ex, ADMIN, "course1", "teacher", "T", "T", "t@example.org")
        await rosters.put_student(ex, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")
        assert [s["username"] for s in await rosters.list_students(ex, TEACHER, "course1")] == ["alice"]
        await courses.delete_course(ex, ADMIN, "course1")
        await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
        await rosters.put_student(ex, TEACHER, "course1", "bob", "Bob", "B", "b@example.org")
        assert [s["username"] for s in await rosters.list_students(ex, TEACHER, "course1")] == ["bob"]
    finally:
        await objects.close()
        await metadata.close()
