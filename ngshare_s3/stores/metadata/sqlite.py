"""The embedded metadata backend: one SQLite file, shared safely by several server processes.

Tables mirror the MongoDB collections one for one. Every write that can race is a single
statement (SQLite runs each one as its own write transaction) or one explicit IMMEDIATE
transaction, and the unique constraints decide who wins. Each table's `seq` column (the rowid)
keeps creation order.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import aiosqlite

from ..errors import DatabaseUnavailable, DuplicateKey, StoreConfigError
from .base import (
    Assignment,
    Event,
    EventPage,
    EventPosition,
    EventQuery,
    Feedback,
    FileRecord,
    Member,
    MetadataStore,
    Role,
    Submission,
    as_document,
    feedback_from_document,
    files_from_documents,
)

BUSY_TIMEOUT_SECONDS = 30.0

Row = tuple[Any, ...]

SCHEMA = """
CREATE TABLE IF NOT EXISTS courses (
    seq INTEGER PRIMARY KEY,
    course_id TEXT NOT NULL UNIQUE,
    incarnation TEXT,
    closing INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS members (
    seq INTEGER PRIMARY KEY,
    course_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('instructor', 'student')),
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    UNIQUE (course_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_by_user ON members (user_id);
CREATE TABLE IF NOT EXISTS assignments (
    seq INTEGER PRIMARY KEY,
    course_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    release_id TEXT NOT NULL,
    released_at TEXT NOT NULL,
    files TEXT NOT NULL,
    UNIQUE (course_id, assignment_id)
);
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY,
    course_id TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    release_id TEXT NOT NULL,
    files TEXT NOT NULL,
    feedback TEXT,
    UNIQUE (course_id, assignment_id, student_id, timestamp)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    course_id TEXT NOT NULL,
    assignment_id TEXT,
    student_id TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_course ON events (course_id);
CREATE INDEX IF NOT EXISTS events_by_course_time ON events (course_id, at, seq);
CREATE TABLE IF NOT EXISTS claims (
    name TEXT NOT NULL PRIMARY KEY,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires_at);
"""

COLLECTIONS = ("courses", "members", "assignments", "submissions", "events", "claims")

MEMBER_COLUMNS = "course_id, user_id, role, first_name, last_name, email"

INSERT_COURSE = "INSERT INTO courses (course_id, incarnation) VALUES (?, lower(hex(randomblob(16))))"
SELECT_INCARNATION = "SELECT COALESCE(incarnation, ''), closing FROM courses WHERE course_id = ?"
CLOSE_COURSE = "UPDATE courses SET closing = 1 WHERE course_id = ?"
# Columns added to a table since its first version; a database created before gets them on open.
ADDED_COLUMNS = {"courses": (("incarnation", "TEXT"), ("closing", "INTEGER NOT NULL DEFAULT 0"))}
SELECT_COURSE = "SELECT 1 FROM courses WHERE course_id = ?"
# BINARY collation compares UTF-8 bytes, which orders exactly like Python's str comparison.
SELECT_COURSES = "SELECT course_id FROM courses ORDER BY course_id"
DELETE_COURSE = "DELETE FROM courses WHERE course_id = ?"

INSERT_MEMBER = f"INSERT INTO members ({MEMBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_MEMBER = f"SELECT {MEMBER_COLUMNS} FROM members WHERE course_id = ? AND user_id = ?"
SELECT_MEMBERS = (
    f"SELECT {MEMBER_COLUMNS} FROM members WHERE course_id = ? AND role = ? ORDER BY seq"
)
SELECT_COURSES_OF = "SELECT course_id FROM members WHERE user_id = ? ORDER BY course_id"
# An instructor's row is left alone: the WHERE of DO UPDATE makes the upsert a no-op.
UPSERT_STUDENT = f"""
INSERT INTO members ({MEMBER_COLUMNS}) VALUES (?, ?, 'student', ?, ?, ?)
ON CONFLICT (course_id, user_id) DO UPDATE SET
    first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email
WHERE members.role = 'student'
RETURNING 1
"""
# A new role takes a fresh seq, which moves the member to the end of the instructor list.
UPSERT_INSTRUCTOR = f"""
INSERT INTO members ({MEMBER_COLUMNS}) VALUES (?, ?, 'instructor', ?, ?, ?)
ON CONFLICT (course_id, user_id) DO UPDATE SET
    first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email,
    seq = CASE WHEN members.role = 'instructor' THEN members.seq
               ELSE (SELECT MAX(seq) + 1 FROM members) END,
    role = 'instructor'
"""
UPDATE_NAMES = """
UPDATE members SET first_name = ?, last_name = ?, email = ?
WHERE course_id = ? AND user_id = ? AND role = ?
"""
DELETE_MEMBER = "DELETE FROM members WHERE course_id = ? AND user_id = ? AND role = ?"
DELETE_MEMBERS = "DELETE FROM members WHERE course_id = ?"

ASSIGNMENT_COLUMNS = "course_id, assignment_id, release_id, released_at, files"
INSERT_ASSIGNMENT = f"INSERT INTO assignments ({ASSIGNMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
SELECT_ASSIGNMENT = (
    f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE course_id = ? AND assignment_id = ?"
)
SELECT_ASSIGNMENTS = (
    f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE course_id = ? ORDER BY seq"
)
DELETE_ASSIGNMENT = (
    "DELETE FROM assignments WHERE course_id = ? AND assignment_id = ? AND release_id = ?"
)

SUBMISSION_COLUMNS = (
    "course_id, assignment_id, student_id, timestamp, submission_id, release_id, files, feedback"
)
SUBMISSION_KEY = "course_id = ? AND assignment_id = ? AND student_id = ? AND timestamp = ?"
INSERT_SUBMISSION = (
    f"INSERT INTO submissions ({SUBMISSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_SUBMISSIONS = (
    f"SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE course_id = ? AND assignment_id = ?"
)
# Timestamps are fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff', so text order is time order.
OLDEST_FIRST = " ORDER BY timestamp, seq"
SELECT_SUBMISSION = f"SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE {SUBMISSION_KEY}"
SELECT_LATEST_SUBMISSION = f"""
SELECT {SUBMISSION_COLUMNS} FROM submissions
WHERE course_id = ? AND assignment_id = ? AND student_id = ?
ORDER BY timestamp DESC, seq DESC LIMIT 1
"""
SELECT_FEEDBACK = f"SELECT feedback FROM submissions WHERE {SUBMISSION_KEY}"
UPDATE_FEEDBACK = f"UPDATE submissions SET feedback = ? WHERE {SUBMISSION_KEY}"

EVENT_COLUMNS = "at, user_id, action, course_id, assignment_id, student_id, detail"
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
SELECT_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq"
SELECT_COURSE_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events WHERE course_id = ? ORDER BY seq"
# seq is the rowid, unique: equal times still have one order, so a cursor never skips or repeats.
NEWEST_EVENTS_FIRST = " ORDER BY at DESC, seq DESC LIMIT ?"

# expires_at: seconds since the epoch
DELETE_EXPIRED_CLAIMS = "DELETE FROM claims WHERE expires_at <= ?"
INSERT_CLAIM = "INSERT INTO claims (name, expires_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"


def event_page_query(query: EventQuery) -> tuple[str, tuple[Any, ...]]:
    """The SELECT of one page (one row more than the limit, to tell whether another follows)."""
    conditions, params = ["course_id = ?"], [query.course_id]
    if query.assignment_id is not None:
        conditions.append("assignment_id = ?")
        params.append(query.assignment_id)
    if query.student_id is not None:
        conditions.append("student_id = ?")
        params.append(query.student_id)
    if query.involving is not None:
        conditions.append("(user_id = ? OR student_id = ?)")
        params += [query.involving, query.involving]
    if query.before is not None:
        position = EventPosition.decode(query.before)
        conditions.append("(at < ? OR (at = ? AND seq < ?))")
        params += [position.at, position.at, position.seq]
    where = " AND ".join(conditions)
    sql = f"SELECT seq, {EVENT_COLUMNS} FROM events WHERE {where}{NEWEST_EVENTS_FIRST}"
    return sql, (*params, query.limit + 1)

# Primary result codes that mean the file cannot be used right now (rather than a bug in a query).
UNAVAILABLE_CODES = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
    sqlite3.SQLITE_NOTADB,
}


def _is_busy(error: sqlite3.Error) -> bool:
    """Another connection holds the lock we need."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # Python < 3.11 carries no result code
        return "locked" in str(error) or "busy" in str(error)
    return code & 0xFF in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def is_unavailable(error: sqlite3.Error) -> bool:
    """Tell "the database cannot be used" apart from a broken query."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # Python < 3.11 carries no result code
        return isinstance(error, sqlite3.OperationalError)
    return code & 0xFF in UNAVAILABLE_CODES


def _files_to_json(files: Iterable[FileRecord]) -> str:
    return json.dumps([asdict(f) for f in files])


def _feedback_to_json(feedback: Feedback | None) -> str | None:
    if feedback is None:
        return None
    return json.dumps(
        {
            "feedback_id": feedback.feedback_id,
            "timestamp": feedback.timestamp,
            "files": [asdict(f) for f in feedback.files],
        }
    )


def _feedback_from_json(text: str | None) -> Feedback | None:
    return None if text is None else feedback_from_document(json.loads(text))


def _member_from_row(row: Row) -> Member:
    return Member(*row)


def _assignment_from_row(row: Row) -> Assignment:
    course_id, assignment_id, release_id, released_at, files = row
    files = files_from_documents(json.loads(files))
    return Assignment(course_id, assignment_id, release_id, released_at, files)


def _submission_params(s: Submission) -> tuple[Any, ...]:
    return (
        s.course_id,
        s.assignment_id,
        s.student_id,
        s.timestamp,
        s.submission_id,
        s.release_id,
        _files_to_json(s.files),
        _feedback_to_json(s.feedback),
    )


def _submission_from_row(row: Row) -> Submission:
    *head, files, feedback = row
    return Submission(
        *head, files=files_from_documents(json.loads(files)), feedback=_feedback_from_json(feedback)
    )


def _event_from_row(row: Row) -> Event:
    *head, detail = row
    return Event(*head, detail=json.loads(detail))


async def _connect_and_prepare(path: str) -> aiosqlite.Connection:
    """A connection in WAL mode with the schema in place (created in one write transaction)."""
    # isolation_level=None: autocommit, each statement is its own transaction unless we open
    # one with BEGIN IMMEDIATE.
    connection = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        await _refuse_foreign_tables(connection, path)  # before WAL mode changes the file
        async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
            (mode,) = await cursor.fetchone()
        if mode.lower() != "wal":
            raise StoreConfigError(f"cannot use the database {path}: WAL journal unavailable")
        await connection.execute("PRAGMA synchronous = FULL")
        await connection.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                await connection.execute(statement)
        await _add_missing_columns(connection)
        await connection.execute("COMMIT")
    except BaseException:
        await connection.close()
        raise
    return connection


async def _connect_reader(path: str, writer: aiosqlite.Connection) -> aiosqlite.Connection:
    """A second connection to the prepared file, for reads only."""
    try:
        reader = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        await reader.execute("PRAGMA query_only = ON")
    except BaseException:
        await writer.close()
        raise
    return reader


async def _add_missing_columns(connection: aiosqlite.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        async with connection.execute(f"PRAGMA table_info({table})") as cursor:
            present = {row[1] for row in await cursor.fetchall()}
        for name, definition in columns:
            if name not in present:
                await connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


async def _refuse_foreign_tables(connection: aiosqlite.Connection, path: str) -> None:
    """A file with other tables is someone else's, typically ngshare 0.6's own database at
    the same default path: writing into it would fail on every query, so refuse to start."""
    async with connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
        tables = {name for (name,) in await cursor.fetchall() if not name.startswith("sqlite_")}
    foreign = sorted(tables - set(COLLECTIONS))
    if foreign:
        raise StoreConfigError(
            f"the database {path} holds tables ngshare_s3 does not use ({', '.join(foreign)}); "
            "if it is ngshare's, point --database at a new file and bring ngshare's data over with "
            f"`ngshare-s3 import-ngshare --from-database sqlite:///{path}`"
        )


class SqliteMetadataStore(MetadataStore):
    """Metadata in one SQLite file, for a single machine (one or several server processes)."""

    def __init__(self, path: str, connection: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        # Two connections per process. Writes share one: its lock keeps one coroutine's
        # transaction from swallowing another coroutine's statements. Reads go to the other, so
        # they never wait behind a write's commit (WAL lets a reader run beside the writer, and
        # every read begins after the writes that returned before it, so it sees them).
        self._db = connection
        self._lock = asyncio.Lock()
        self._reader = reader
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteMetadataStore:
        """Open (creating if missing) the file and its schema; StoreConfigError if unusable."""
        path = os.path.abspath(path)
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise StoreConfigError(
                f"cannot create the database folder {folder}: {e.strerror or e}"
            ) from None
        if os.path.isdir(path):
            raise StoreConfigError(f"the database path {path} is a folder, not a file")
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                connection = await _connect_and_prepare(path)
                return cls(path, connection, await _connect_reader(path, connection))
            except sqlite3.OperationalError as e:
                # Switching a new file to WAL can fail at once, without the busy handler,
                # while another process starting at the same moment does the same.
                if _is_busy(e) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    continue
                raise StoreConfigError(f"cannot use the database {path}: {e}") from e
            except (sqlite3.Error, OSError) as e:
                raise StoreConfigError(f"cannot use the database {path}: {e}") from e

    @asynccontextmanager
    async def _guard(self, lock: asyncio.Lock | None = None) -> AsyncIterator[None]:
        """Serialize use of a connection (the writer's, unless told) and translate driver
        errors into store errors."""
        async with lock or self._lock:
            try:
                yield
            except sqlite3.IntegrityError as e:
                if "UNIQUE constraint failed" in str(e):
                    raise DuplicateKey(str(e)) from e
                raise
            except sqlite3.Error as e:
                if is_unavailable(e):
                    raise DatabaseUnavailable(f"database {self.path}: {e}") from e
                raise
            except ValueError as e:  # aiosqlite: the connection is closed (said two ways)
                if "no active connection" in str(e) or "Connection closed" in str(e):
                    raise DatabaseUnavailable(f"database {self.path} is closed") from e
                raise

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """Several statements as one; IMMEDIATE takes the write lock before the first read,
        so no other process can slip in between our read and our write."""
        async with self._guard():
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                await self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise

    async def _write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        async with self._guard():
            cursor = await self._db.execute(sql, params)
            count = cursor.rowcount
            await cursor.close()
            return count

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        """A read, on the reader: one trip to its thread (a cursor's execute, fetch and close
        are three)."""
        async with self._guard(self._read_lock):
            return list(await self._reader.execute_fetchall(sql, params))

    async def _write_returning(self, sql: str, params: tuple[Any, ...]) -> list[Row]:
        """A write whose RETURNING rows are wanted."""
        async with self._guard():
            return list(await self._db.execute_fetchall(sql, params))

    async def _row(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    async def ping(self) -> None:
        await self._rows("SELECT 1 FROM courses LIMIT 1")  # reads the file, not just the driver

    async def close(self) -> None:
        async with self._lock, self._read_lock:
            await self._db.close()
            await self._reader.close()

    # courses
    async def create_course(self, course_id: str) -> None:
        await self._write(INSERT_COURSE, (course_id,))

    async def course_exists(self, course_id: str) -> bool:
        return await self._row(SELECT_COURSE, (course_id,)) is not None

    async def course_incarnation(self, course_id: str) -> str | None:
        row = await self._row(SELECT_INCARNATION, (course_id,))
        return None if row is None or row[1] else row[0]

    async def close_course(self, course_id: str) -> bool:
        return await self._write(CLOSE_COURSE, (course_id,)) > 0

    async def list_courses(self) -> list[str]:
        return [row[0] for row in await self._rows(SELECT_COURSES)]

    async def delete_course(self, course_id: str) -> bool:
        return await self._write(DELETE_COURSE, (course_id,)) > 0

    # memberships
    async def get_member(self, course_id: str, user_id: str) -> Member | None:
        row = await self._row(SELECT_MEMBER, (course_id, user_id))
        return None if row is None else _member_from_row(row)

    async def list_members(self, course_id: str, role: Role) -> list[Member]:
        rows = await self._rows(SELECT_MEMBERS, (course_id, role))
        return [_member_from_row(row) for row in rows]

    async def courses_of(self, user_id: str) -> list[str]:
        return [row[0] for row in await self._rows(SELECT_COURSES_OF, (user_id,))]

    async def add_member(self, member: Member) -> None:
        m = member
        await self._write(
            INSERT_MEMBER, (m.course_id, m.user_id, m.role, m.first_name, m.last_name, m.email)
        )

    async def put_student(self, member: Member) -> bool:
        m = member
        # RETURNING yields a row when the upsert inserted or updated, none when it did nothing.
        rows = await self._write_returning(
            UPSERT_STUDENT, (m.course_id, m.user_id, m.first_name, m.last_name, m.email)
        )
        return bool(rows)

    async def make_instructor(self, member: Member) -> None:
        m = member
        await self._write(
            UPSERT_INSTRUCTOR, (m.course_id, m.user_id, m.first_name, m.last_name, m.email)
        )

    async def update_names(self, member: Member) -> bool:
        m = member
        changed = await self._write(
            UPDATE_NAMES, (m.first_name, m.last_name, m.email, m.course_id, m.user_id, m.role)
        )
        return changed > 0

    async def delete_member(self, course_id: str, user_id: str, role: Role) -> bool:
        return await self._write(DELETE_MEMBER, (course_id, user_id, role)) > 0

    async def delete_members(self, course_id: str) -> None:
        await self._write(DELETE_MEMBERS, (course_id,))

    # assignments
    async def create_assignment(self, assignment: Assignment) -> None:
        a = assignment
        await self._write(
            INSERT_ASSIGNMENT,
            (a.course_id, a.assignment_id, a.release_id, a.released_at, _files_to_json(a.files)),
        )

    async def get_assignment(self, course_id: str, assignment_id: str) -> Assignment | None:
        row = await self._row(SELECT_ASSIGNMENT, (course_id, assignment_id))
        return None if row is None else _assignment_from_row(row)

    async def list_assignments(self, course_id: str) -> list[Assignment]:
        rows = await self._rows(SELECT_ASSIGNMENTS, (course_id,))
        return [_assignment_from_row(row) for row in rows]

    async def delete_assignment(self, course_id: str, assignment_id: str, release_id: str) -> bool:
        return await self._write(DELETE_ASSIGNMENT, (course_id, assignment_id, release_id)) > 0

    # submissions
    async def create_submission(self, submission: Submission) -> None:
        await self._write(INSERT_SUBMISSION, _submission_params(submission))

    async def list_submissions(
        self, course_id: str, assignment_id: str, student_id: str | None = None
    ) -> list[Submission]:
        sql, params = SELECT_SUBMISSIONS, (course_id, assignment_id)
        if student_id is not None:
            sql, params = sql + " AND student_id = ?", params + (student_id,)
        return [_submission_from_row(row) for row in await self._rows(sql + OLDEST_FIRST, params)]

    async def get_submission(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str | None = None
    ) -> Submission | None:
        if timestamp is None:
            row = await self._row(SELECT_LATEST_SUBMISSION, (course_id, assignment_id, student_id))
        else:
            key = (course_id, assignment_id, student_id, timestamp)
            row = await self._row(SELECT_SUBMISSION, key)
        return None if row is None else _submission_from_row(row)

    async def replace_feedback(
        self,
        course_id: str,
        assignment_id: str,
        student_id: str,
        timestamp: str,
        feedback: Feedback,
    ) -> tuple[bool, Feedback | None]:
        key = (course_id, assignment_id, student_id, timestamp)
        async with self._transaction():
            async with self._db.execute(SELECT_FEEDBACK, key) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await self._db.execute(UPDATE_FEEDBACK, (_feedback_to_json(feedback), *key))
        if row is None:
            return False, None
        return True, _feedback_from_json(row[0])

    async def delete_submissions(
        self, course_id: str, assignment_id: str | None = None, release_id: str | None = None
    ) -> None:
        sql, params = "DELETE FROM submissions WHERE course_id = ?", (course_id,)
        if assignment_id is not None:
            sql, params = sql + " AND assignment_id = ?", params + (assignment_id,)
        if release_id is not None:
            sql, params = sql + " AND release_id = ?", params + (release_id,)
        await self._write(sql, params)

    # audit trail
    async def record_event(self, event: Event) -> None:
        e = event
        detail = json.dumps(e.detail)
        await self._write(
            INSERT_EVENT,
            (e.at, e.user_id, e.action, e.course_id, e.assignment_id, e.student_id, detail),
        )

    async def list_events(self, course_id: str | None = None) -> list[Event]:
        if course_id is None:
            rows = await self._rows(SELECT_EVENTS)
        else:
            rows = await self._rows(SELECT_COURSE_EVENTS, (course_id,))
        return [_event_from_row(row) for row in rows]

    async def page_events(self, query: EventQuery) -> EventPage:
        rows = await self._rows(*event_page_query(query))
        page = rows[: query.limit]
        following = None
        if len(rows) > query.limit:
            seq, at = page[-1][0], page[-1][1]
            following = EventPosition(at, seq).encode()
        return EventPage([_event_from_row(row[1:]) for row in page], following)

    # maintenance
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        courses = await self._rows("SELECT course_id FROM courses ORDER BY seq")
        members = await self._rows(f"SELECT {MEMBER_COLUMNS} FROM members ORDER BY seq")
        assignments = await self._rows(f"SELECT {ASSIGNMENT_COLUMNS} FROM assignments ORDER BY seq")
        submissions = await self._rows(f"SELECT {SUBMISSION_COLUMNS} FROM submissions ORDER BY seq")
        return {
            "courses": [{"course_id": course_id} for (course_id,) in courses],
            "members": [as_document(_member_from_row(row)) for row in members],
            "assignments": [as_document(_assignment_from_row(row)) for row in assignments],
            "submissions": [as_document(_submission_from_row(row)) for row in submissions],
            "events": [as_document(event) for event in await self.list_events()],
        }

    async def clear(self) -> None:
        async with self._transaction():
            for table in COLLECTIONS:
                await self._db.execute(f"DELETE FROM {table}")

    # one-time claims
    async def claim_once(self, name: str, expires_at: datetime) -> bool:
        # Expired claims go first, so the table keeps only live ones and an expired name is free.
        async with self._transaction():
            await self._db.execute(DELETE_EXPIRED_CLAIMS, (time.time(),))
            cursor = await self._db.execute(INSERT_CLAIM, (name, expires_at.timestamp()))
            claimed = cursor.rowcount == 1
            await cursor.close()
        return claimed
