"""SQLite backend specifics: opening paths, WAL sharing, and several processes on one file."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

import ngshare_s3.stores.metadata.sqlite as sqlite_backend
from ngshare_s3.stores import open_metadata_store
from ngshare_s3.stores.errors import DuplicateKey, StoreConfigError, StoreUnavailable
from ngshare_s3.stores.metadata.base import Member
from ngshare_s3.stores.metadata.sqlite import SqliteMetadataStore

PROJECT = Path(__file__).resolve().parents[2]


async def test_open_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ngshare.db"
    store = await SqliteMetadataStore.open(str(path))
    try:
        await store.create_course("c")
    finally:
        await store.close()
    assert path.is_file()


async def test_open_through_the_database_url(tmp_path: Path) -> None:
    store = await open_metadata_store(f"sqlite:///{tmp_path}/x.db")
    try:
        assert isinstance(store, SqliteMetadataStore)
        assert store.path == str(tmp_path / "x.db")
    finally:
        await store.close()


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


async def test_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreConfigError) as error:
        await SqliteMetadataStore.open(str(tmp_path / "file" / "sub" / "ngshare.db"))
    assert str(tmp_path / "file") in _one_line(error)


async def test_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError) as error:
        await SqliteMetadataStore.open(str(tmp_path))
    assert "folder" in _one_line(error)


async def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not an sqlite file, not at all" * 100)
    with pytest.raises(StoreConfigError) as error:
        await SqliteMetadataStore.open(str(path))
    assert str(path) in _one_line(error)


async def test_refuses_a_database_of_another_program(tmp_path: Path) -> None:
    """ngshare 0.6's own file at the same path must stop start-up, untouched."""
    path = tmp_path / "ngshare.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
    with pytest.raises(StoreConfigError, match="alembic_version, users"):
        await SqliteMetadataStore.open(str(path))
    with sqlite3.connect(path) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"users", "alembic_version"}


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
async def test_unwritable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreConfigError) as error:
            await SqliteMetadataStore.open(str(folder / "ngshare.db"))
        _one_line(error)
    finally:
        folder.chmod(0o700)


async def test_reopen_keeps_data_and_uses_wal(tmp_path: Path) -> None:
    path = str(tmp_path / "ngshare.db")
    store = await SqliteMetadataStore.open(path)
    await store.create_course("c")
    await store.add_member(Member("c", "u", "student", "Ü"))
    await store.close()
    store = await SqliteMetadataStore.open(path)
    try:
        assert await store.list_courses() == ["c"]
        assert await store.get_member("c", "u") == Member("c", "u", "student", "Ü")
    finally:
        await store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_code_point_order_of_binary_collation(tmp_path: Path) -> None:
    """SQLite compares UTF-8 bytes; that must equal Python's code point order, also past the BMP."""
    ids = ["\U0001f600", "\uffff", "\ue000", "\u00ff", "\u0100", "z", "Z", "\x7f", "\u0800"]
    store = await SqliteMetadataStore.open(str(tmp_path / "x.db"))
    try:
        for course_id in ids:
            await store.create_course(course_id)
            await store.add_member(Member(course_id, "u", "student"))
        assert await store.list_courses() == sorted(ids)
        assert await store.courses_of("u") == sorted(ids)
    finally:
        await store.close()


async def test_waits_for_another_writer(tmp_path: Path) -> None:
    """A write while another process holds the lock waits (busy timeout) instead of failing."""
    path = str(tmp_path / "x.db")
    store = await SqliteMetadataStore.open(path)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO courses (course_id) VALUES ('first')")
        write = asyncio.create_task(store.create_course("second"))
        await asyncio.sleep(0.5)
        assert not write.done()
        raw.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert await store.list_courses() == ["first", "second"]
    finally:
        raw.close()
        await store.close()


async def test_locked_past_the_timeout_is_unavailable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_SECONDS", 0.2)
    path = str(tmp_path / "x.db")
    store = await SqliteMetadataStore.open(path)
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await store.create_course("c")
        raw.execute("ROLLBACK")
        await store.create_course("c")  # usable again once the lock is gone
    finally:
        raw.close()
        await store.close()


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = await SqliteMetadataStore.open(str(tmp_path / "x.db"))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_only_unique_violations_are_duplicates(tmp_path: Path) -> None:
    store = await SqliteMetadataStore.open(str(tmp_path / "x.db"))
    try:
        with pytest.raises(sqlite3.IntegrityError) as error:
            await store.add_member(Member("c", "u", "teacher"))  # type: ignore[arg-type]
        assert not isinstance(error.value, DuplicateKey)
        assert await store.get_member("c", "u") is None
    finally:
        await store.close()


def test_error_classification() -> None:
    io_error = sqlite3.OperationalError("disk I/O error")
    io_error.sqlite_errorcode = 10 | (13 << 8)  # SQLITE_IOERR_FSYNC
    syntax = sqlite3.OperationalError('near "SELEC": syntax error')
    syntax.sqlite_errorcode = sqlite3.SQLITE_ERROR
    assert sqlite_backend.is_unavailable(io_error)
    assert not sqlite_backend.is_unavailable(syntax)


# Several server processes on one file.

WORKERS = 4
ROUNDS = 50
SHARED_TIMESTAMP = "2026-01-01 00:00:00.000000"  # ts(0) in the worker

WORKER = r"""
import asyncio, json, sys, time
from ngshare_s3.stores.errors import DuplicateKey
from ngshare_s3.stores.metadata.base import Event, Feedback, Member, Submission
from ngshare_s3.stores.metadata.sqlite import SqliteMetadataStore


def ts(i):
    return f"2026-01-01 00:00:{i // 1000:02d}.{i % 1000:06d}"


async def main(path, worker, rounds, start_at):
    time.sleep(max(0.0, start_at - time.time()))
    store = await SqliteMetadataStore.open(path)  # several processes create the file at once
    try:
        print(json.dumps(await hammer(store, worker, rounds)))
    finally:
        await store.close()  # an open connection's thread would keep the process alive


async def hammer(store, worker, rounds):
    result = {"course": 0, "submission": 0, "duplicate": 0, "put_student": [], "previous": []}
    try:
        await store.create_submission(Submission("c", "a", "shared", ts(0), "shared", "r"))
        result["submission"] += 1
    except DuplicateKey:
        result["duplicate"] += 1
    for i in range(rounds):
        try:
            await store.create_course(f"course{i}")
            result["course"] += 1
        except DuplicateKey:
            result["duplicate"] += 1
        if worker == 0 and i % 5 == 0:
            await store.make_instructor(Member("c", f"u{i}", "instructor", f"w{worker}"))
        result["put_student"].append(
            await store.put_student(Member("c", f"u{i}", "student", f"w{worker}"))
        )
        try:
            sub = Submission("c", "a", f"u{i}", ts(i + 1), f"w{worker}-{i}", "r")
            await store.create_submission(sub)
            result["submission"] += 1
        except DuplicateKey:
            result["duplicate"] += 1
        found, previous = await store.replace_feedback(
            "c", "a", "shared", ts(0), Feedback(f"w{worker}-{i}", ts(i))
        )
        assert found
        result["previous"].append(previous and previous.feedback_id)
        await store.record_event(Event(ts(i), f"w{worker}", "tick", "c", detail={"i": i}))
    return result


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
"""


async def test_processes_hammering_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared" / "ngshare.db")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    start_at = time.time() + 2.0  # every process imported and waiting, then all go at once
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, path, str(w), str(ROUNDS), str(start_at),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
        for w in range(WORKERS)
    ]
    try:
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 120)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr.decode()
    results = [json.loads(stdout) for stdout, _ in outputs]

    # Unique keys: exactly one winner per key, every loser saw DuplicateKey.
    assert sum(r["course"] for r in results) == ROUNDS
    assert sum(r["submission"] for r in results) == ROUNDS + 1
    assert sum(r["duplicate"] for r in results) == (WORKERS - 1) * (2 * ROUNDS + 1)
    assert all(isinstance(ok, bool) for r in results for ok in r["put_student"])

    store = await SqliteMetadataStore.open(path)
    try:
        assert await store.list_courses() == sorted(f"course{i}" for i in range(ROUNDS))
        students = await store.list_members("c", "student")
        instructors = await store.list_members("c", "instructor")
        promoted = {f"u{i}" for i in range(0, ROUNDS, 5)}
        assert sorted(m.user_id for m in instructors) == sorted(promoted)
        assert len(students) + len(instructors) == ROUNDS
        assert {m.user_id for m in students} == {f"u{i}" for i in range(ROUNDS)} - promoted
        subs = await store.list_submissions("c", "a")
        assert len(subs) == ROUNDS + 1
        assert len({s.student_id for s in subs}) == ROUNDS + 1

        # Feedback swaps were atomic across processes: one unbroken chain, nothing lost.
        previous = [p for r in results for p in r["previous"]]
        final = (await store.get_submission("c", "a", "shared", SHARED_TIMESTAMP)).feedback
        assert previous.count(None) == 1
        every_new = sorted(f"w{w}-{i}" for w in range(WORKERS) for i in range(ROUNDS))
        assert sorted([p for p in previous if p] + [final.feedback_id]) == every_new

        events = await store.list_events("c")
        assert len(events) == WORKERS * ROUNDS
        for w in range(WORKERS):  # each process's own events stay in its order
            mine = [e.detail["i"] for e in events if e.user_id == f"w{w}"]
            assert mine == list(range(ROUNDS))
    finally:
        await store.close()


# What requests read, each by a unique index or a secondary one: never a scan of a table.
INDEXED_READS = {
    "course": sqlite_backend.SELECT_COURSE,
    "course incarnation": sqlite_backend.SELECT_INCARNATION,
    "member": sqlite_backend.SELECT_MEMBER,
    "members by role": sqlite_backend.SELECT_MEMBERS,
    "courses of a user": sqlite_backend.SELECT_COURSES_OF,
    "assignment": sqlite_backend.SELECT_ASSIGNMENT,
    "assignments": sqlite_backend.SELECT_ASSIGNMENTS,
    "submissions": sqlite_backend.SELECT_SUBMISSIONS + sqlite_backend.OLDEST_FIRST,
    "student submissions": sqlite_backend.SELECT_SUBMISSIONS + " AND student_id = ?" + sqlite_backend.OLDEST_FIRST,
    "latest submission": sqlite_backend.SELECT_LATEST_SUBMISSION,
    "submission": sqlite_backend.SELECT_SUBMISSION,
    "feedback": sqlite_backend.SELECT_FEEDBACK,
    "feedback update": sqlite_backend.UPDATE_FEEDBACK,
    "course events": sqlite_backend.SELECT_COURSE_EVENTS,
}


@pytest.mark.parametrize("name", INDEXED_READS)
async def test_request_reads_search_an_index(tmp_path: Path, name: str) -> None:
    path = tmp_path / "ngshare.db"
    store = await SqliteMetadataStore.open(str(path))
    await store.close()
    sql = INDEXED_READS[name]
    with sqlite3.connect(path) as connection:
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", [None] * sql.count("?"))]
    reads = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
    assert reads and all(step.startswith("SEARCH") and " INDEX " in step for step in reads), plan
