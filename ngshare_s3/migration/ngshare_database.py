"""Reads an ngshare 0.6 installation's database as it is stored: the tables of ngshare's alembic
head 1921a169739b, through SQLAlchemy Core, with SELECTs only (an SQLite file is opened
read-only). Every list comes back in the order ngshare's own queries give, so that the lists
the service answers after an import are in ngshare's order."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from ..exchange import timestamps

SCHEMA_VERSION = "1921a169739b"  # ngshare 0.6's alembic head ("Add file size")
OLDER_SCHEMA_VERSIONS = {"aa00db20c10a"}  # ngshare's first schema, before files had a size

_tables = sa.MetaData()
alembic_version = sa.Table("alembic_version", _tables, sa.Column("version_num", sa.String))
courses = sa.Table("courses", _tables, sa.Column("_id", sa.Integer), sa.Column("id", sa.Text))
files = sa.Table(
    "files",
    _tables,
    sa.Column("_id", sa.Integer),
    sa.Column("filename", sa.Text),
    sa.Column("checksum", sa.Text),
    sa.Column("size", sa.Integer),
    sa.Column("actual_name", sa.Text),
)
assignments = sa.Table(
    "assignments", _tables, sa.Column("_id", sa.Integer), sa.Column("id", sa.Text), sa.Column("course_id", sa.Integer)
)
submissions = sa.Table(
    "submissions",
    _tables,
    sa.Column("_id", sa.Integer),
    sa.Column("assignment_id", sa.Integer),
    sa.Column("timestamp", sa.TIMESTAMP),
    sa.Column("student_id", sa.Text),
)


def _membership_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        _tables,
        sa.Column("left_id", sa.Text),  # the user
        sa.Column("right_id", sa.Text),  # the course's id (its name, not its _id)
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("email", sa.Text),
    )


def _files_table(name: str) -> sa.Table:
    # left_id is TEXT in ngshare's schema although it holds the owner's integer _id.
    return sa.Table(name, _tables, sa.Column("left_id", sa.Text), sa.Column("right_id", sa.Integer))


instructors = _membership_table("instructor_assoc_table")
students = _membership_table("student_assoc_table")
release_files = _files_table("assignment_files_assoc_table")
submitted_files = _files_table("submission_files_assoc_table")
feedback_files = _files_table("feedback_files_assoc_table")


class SourceError(Exception):
    """The database cannot be read as ngshare 0.6's; nothing was imported."""


@dataclass(frozen=True)
class SourceFile:
    """One file as ngshare recorded it: the path the user gave, its MD5 and size, and the name
    of its body in the storage folder."""

    path: str
    md5: str
    size: int | None
    stored_as: str


@dataclass(frozen=True)
class SourceMember:
    user_id: str
    role: str  # instructor or student
    first_name: str | None
    last_name: str | None
    email: str | None


@dataclass(frozen=True)
class SourceSubmission:
    student_id: str
    timestamp: str  # as ngshare answers it
    files: tuple[SourceFile, ...]
    feedback: tuple[SourceFile, ...]  # empty: no feedback


@dataclass(frozen=True)
class SourceAssignment:
    assignment_id: str
    files: tuple[SourceFile, ...]
    submissions: tuple[SourceSubmission, ...]


@dataclass(frozen=True)
class SourceCourse:
    course_id: str
    members: tuple[SourceMember, ...]  # instructors first, then students
    assignments: tuple[SourceAssignment, ...]

    @property
    def records(self) -> int:
        """What importing the course writes, for progress: the course, its members,
        assignments and submissions."""
        return 1 + len(self.members) + len(self.assignments) + sum(len(a.submissions) for a in self.assignments)


def read_only_engine(url: str) -> sa.Engine:
    """An engine for the URL as given, except that an SQLite file is opened read-only (and never
    created), through a file: URI that SQLite itself decodes, whatever the path's characters."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        uri = Path(parsed.database).absolute().as_uri() + "?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    return sa.create_engine(parsed)


def _timestamp(value: datetime | str) -> str:
    """ngshare's answer for a stored timestamp: UTC, no zone name (its strftime of a naive time)."""
    if isinstance(value, str):  # a driver that hands back text
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return timestamps.format_timestamp(value)


class NgshareDatabase:
    """One read of an ngshare database: check its schema version, then read it course by course."""

    def __init__(self, connection: Connection):
        self._db = connection

    def schema_version(self) -> str:
        if not sa.inspect(self._db).has_table("alembic_version"):
            raise SourceError("not an ngshare database: it has no alembic_version table")
        versions = self._db.execute(sa.select(alembic_version.c.version_num)).scalars().all()
        if versions != [SCHEMA_VERSION]:
            found = ", ".join(versions) or "none"
            older = OLDER_SCHEMA_VERSIONS.intersection(versions)
            hint = " (an older ngshare's: starting ngshare 0.6 on it once upgrades it)" if older else ""
            raise SourceError(
                f"the database is at schema version {found}{hint}; this import reads ngshare 0.6's "
                f"schema, version {SCHEMA_VERSION}"
            )
        return SCHEMA_VERSION

    def courses(self) -> list[SourceCourse]:
        rows = self._db.execute(sa.select(courses.c._id, courses.c.id).order_by(courses.c.id)).all()
        return [self._course(row._id, row.id) for row in rows]

    def _course(self, internal_id: int, course_id: str) -> SourceCourse:
        members = [*self._members(instructors, "instructor", course_id), *self._members(students, "student", course_id)]
        query = sa.select(assignments.c._id, assignments.c.id).where(assignments.c.course_id == internal_id)
        found = [self._assignment(row._id, row.id) for row in self._db.execute(query)]
        return SourceCourse(course_id, tuple(members), tuple(found))

    def _members(self, table: sa.Table, role: str, course_id: str) -> Iterator[SourceMember]:
        for row in self._db.execute(sa.select(table).where(table.c.right_id == course_id)):
            yield SourceMember(row.left_id, role, row.first_name, row.last_name, row.email)

    def _assignment(self, internal_id: int, assignment_id: str) -> SourceAssignment:
        query = sa.select(submissions).where(submissions.c.assignment_id == internal_id)
        found = [
            SourceSubmission(
                row.student_id,
                _timestamp(row.timestamp),
                self._files(submitted_files, row._id),
                self._files(feedback_files, row._id),
            )
            for row in self._db.execute(query)
        ]
        return SourceAssignment(assignment_id, self._files(release_files, internal_id), tuple(found))

    def _files(self, association: sa.Table, owner: int) -> tuple[SourceFile, ...]:
        """A tree's files, selected as ngshare's relationship loads them."""
        query = sa.select(files).where(association.c.left_id == str(owner), files.c._id == association.c.right_id)
        return tuple(
            SourceFile(row.filename, row.checksum, row.size, row.actual_name) for row in self._db.execute(query)
        )


def shown(url: str) -> str:
    """The URL as messages may show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def read_ngshare_database(url: str) -> list[SourceCourse]:
    """Every course of the database at an SQLAlchemy URL (ngshare's --database), once its schema
    version is checked, sorted by course id."""
    try:
        engine = read_only_engine(url)
    except ImportError as error:
        raise SourceError(f"--from-database {shown(url)}: the database's driver is not installed ({error})") from error
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise SourceError(f"--from-database {shown(url)}: {error}") from error
    try:
        with engine.connect() as connection:
            database = NgshareDatabase(connection)
            database.schema_version()
            return database.courses()
    except sa.exc.DBAPIError as error:
        raise SourceError(f"--from-database {shown(url)}: {error.orig}") from error
    finally:
        engine.dispose()
