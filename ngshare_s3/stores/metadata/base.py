"""The metadata interface: courses, memberships, assignments, submissions, events.

Every backend keeps the same records and the same guarantees: a write that can race is decided
by a unique key or by one atomic single-record update, never by a read followed by a write.
Lists come back in creation order.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["instructor", "student"]


@dataclass(frozen=True)
class FileRecord:
    """One uploaded file: its path as the user gave it, MD5 hex digest and size in bytes."""

    path: str
    md5: str
    size: int


@dataclass(frozen=True)
class Member:
    course_id: str
    user_id: str
    role: Role
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Assignment:
    course_id: str
    assignment_id: str
    release_id: str
    released_at: str
    files: tuple[FileRecord, ...] = ()


@dataclass(frozen=True)
class Feedback:
    feedback_id: str
    timestamp: str
    files: tuple[FileRecord, ...] = ()


@dataclass(frozen=True)
class Submission:
    course_id: str
    assignment_id: str
    student_id: str
    timestamp: str
    submission_id: str
    release_id: str
    files: tuple[FileRecord, ...] = ()
    feedback: Feedback | None = None


@dataclass(frozen=True)
class Event:
    """One line of the audit trail."""

    at: str
    user_id: str
    action: str
    course_id: str
    assignment_id: str | None = None
    student_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


MAX_EVENT_PAGE = 1000


@dataclass(frozen=True)
class EventQuery:
    """One page of a course's audit trail, newest first. `involving` keeps the events whose
    user or student is that user (what a student may see); `before` is the `next` cursor of
    the previous page."""

    course_id: str
    assignment_id: str | None = None
    student_id: str | None = None
    involving: str | None = None
    limit: int = 100
    before: str | None = None


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    next: str | None


class InvalidCursor(ValueError):
    """A `before` cursor that no page of this store ever handed out."""


@dataclass(frozen=True)
class EventPosition:
    """Where an event sits in newest-first order: its time, then the store's sequence number,
    then a tie-break the store may need when sequence numbers can collide (MongoDB's _id)."""

    at: str
    seq: int
    tie: str = ""

    def encode(self) -> str:
        text = json.dumps([self.at, self.seq, self.tie], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> "EventPosition":
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            at, seq, tie = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, TypeError, UnicodeError, binascii.Error) as error:
            raise InvalidCursor(cursor) from error
        if not (isinstance(at, str) and type(seq) is int and isinstance(tie, str)):
            raise InvalidCursor(cursor)
        return cls(at, seq, tie)


def as_document(record: Any) -> dict[str, Any]:
    """A record as the plain dict a MongoDB document would hold (lists, not tuples)."""
    return json.loads(json.dumps(asdict(record)))


# The way back, for documents of dump()'s shape.


def files_from_documents(documents: list[dict[str, Any]]) -> tuple[FileRecord, ...]:
    return tuple(FileRecord(d["path"], d["md5"], d["size"]) for d in documents)


def feedback_from_document(d: dict[str, Any] | None) -> Feedback | None:
    return None if d is None else Feedback(d["feedback_id"], d["timestamp"], files_from_documents(d["files"]))


def member_from_document(d: dict[str, Any]) -> Member:
    return Member(d["course_id"], d["user_id"], d["role"], d["first_name"], d["last_name"], d["email"])


def assignment_from_document(d: dict[str, Any]) -> Assignment:
    files = files_from_documents(d["files"])
    return Assignment(d["course_id"], d["assignment_id"], d["release_id"], d["released_at"], files)


def submission_from_document(d: dict[str, Any]) -> Submission:
    return Submission(
        d["course_id"],
        d["assignment_id"],
        d["student_id"],
        d["timestamp"],
        d["submission_id"],
        d["release_id"],
        files_from_documents(d["files"]),
        feedback_from_document(d["feedback"]),
    )


class MetadataStore(ABC):
    """Where rosters and file listings live. Knows nothing of permissions or HTTP."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""

    @abstractmethod
    async def close(self) -> None: ...

    # courses
    @abstractmethod
    async def create_course(self, course_id: str) -> None:
        """Raise DuplicateKey if the course exists. The new course gets an incarnation: an id
        that a course deleted and created again under the same name never shares."""

    @abstractmethod
    async def course_incarnation(self, course_id: str) -> str | None:
        """The course's incarnation while it takes writes; None if there is no such course or
        close_course has marked it for deletion. A course created before incarnations were
        kept has the incarnation ""."""

    @abstractmethod
    async def close_course(self, course_id: str) -> bool:
        """Mark the course for deletion, in one atomic step, so that a write that began before
        sees its course go; False if there is no such course."""

    @abstractmethod
    async def course_exists(self, course_id: str) -> bool: ...

    @abstractmethod
    async def list_courses(self) -> list[str]:
        """Every course id, sorted by code point."""

    @abstractmethod
    async def delete_course(self, course_id: str) -> bool:
        """Remove the course record only; False if there was none."""

    # memberships
    @abstractmethod
    async def get_member(self, course_id: str, user_id: str) -> Member | None: ...

    @abstractmethod
    async def list_members(self, course_id: str, role: Role) -> list[Member]: ...

    @abstractmethod
    async def courses_of(self, user_id: str) -> list[str]:
        """Courses the user teaches or takes, sorted by code point."""

    @abstractmethod
    async def add_member(self, member: Member) -> None:
        """Insert a membership; raise DuplicateKey if the user is already in the course."""

    @abstractmethod
    async def put_student(self, member: Member) -> bool:
        """Add the student or update their names, in one atomic step.

        Returns False, changing nothing, if the user is an instructor of the course.
        """

    @abstractmethod
    async def make_instructor(self, member: Member) -> None:
        """Set the user's role to instructor with these names, whatever it was (or add them).

        A changed role moves the member to the end of the instructor list.
        """

    @abstractmethod
    async def update_names(self, member: Member) -> bool:
        """Overwrite the names of an existing membership of that role; False if there is none."""

    @abstractmethod
    async def delete_member(self, course_id: str, user_id: str, role: Role) -> bool: ...

    @abstractmethod
    async def delete_members(self, course_id: str) -> None: ...

    # assignments
    @abstractmethod
    async def create_assignment(self, assignment: Assignment) -> None:
        """Raise DuplicateKey if the course already has an assignment of that id."""

    @abstractmethod
    async def get_assignment(self, course_id: str, assignment_id: str) -> Assignment | None: ...

    @abstractmethod
    async def list_assignments(self, course_id: str) -> list[Assignment]: ...

    @abstractmethod
    async def delete_assignment(self, course_id: str, assignment_id: str, release_id: str) -> bool:
        """Remove that release of the assignment (not a newer one of the same id)."""

    # submissions
    @abstractmethod
    async def create_submission(self, submission: Submission) -> None:
        """Raise DuplicateKey if the student already has a submission with that timestamp."""

    @abstractmethod
    async def list_submissions(
        self, course_id: str, assignment_id: str, student_id: str | None = None
    ) -> list[Submission]:
        """Oldest first."""

    @abstractmethod
    async def get_submission(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str | None = None
    ) -> Submission | None:
        """The one with that timestamp, or the latest when timestamp is None."""

    @abstractmethod
    async def replace_feedback(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str, feedback: Feedback
    ) -> tuple[bool, Feedback | None]:
        """Atomically swap in new feedback; returns (found, the feedback it replaced)."""

    @abstractmethod
    async def delete_submissions(
        self, course_id: str, assignment_id: str | None = None, release_id: str | None = None
    ) -> None:
        """Remove the course's submissions, narrowed to one assignment release if given."""

    # audit trail
    @abstractmethod
    async def record_event(self, event: Event) -> None: ...

    @abstractmethod
    async def list_events(self, course_id: str | None = None) -> list[Event]:
        """Every event (of the course), in creation order: for dump and fsck."""

    @abstractmethod
    async def page_events(self, query: EventQuery) -> EventPage:
        """One page of the course's events, newest first (time, then creation order), filtered
        and cut by the database itself. Raise InvalidCursor for a `before` it cannot read."""

    # maintenance
    @abstractmethod
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every record, by collection name (for the debug endpoint and fsck)."""

    @abstractmethod
    async def clear(self) -> None:
        """Remove every record."""

    # one-time claims
    @abstractmethod
    async def claim_once(self, name: str, expires_at: datetime) -> bool:
        """True for the first claim of `name`, False while that claim lasts, on every replica:
        a unique key decides. After `expires_at` (a timezone-aware time) the name may be claimed
        again; expired claims are removed as the store sees fit."""
