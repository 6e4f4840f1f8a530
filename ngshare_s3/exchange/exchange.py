"""The exchange: its two stores seen through the exchange's errors, who may do what, and the
lookups, file writes and audit records every operation uses. The operations themselves live
in one module per resource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..stores.errors import ChecksumMismatch, ObjectNotFound
from ..stores.metadata.base import Assignment, Event, FileRecord, Member, MetadataStore, Submission
from ..stores.objects.base import NewObject, ObjectStore
from . import timestamps
from .errors import ExchangeError, NotFound, Unavailable, translated
from .files import UploadedFile
from .permissions import Action, Caller, Standing, authorize
from .stored import FileTree, Provenance, StoredFile, stored_files

log = logging.getLogger(__name__)

HEALTH_CHECK_TIMEOUT = 5.0

T = TypeVar("T")


async def _check(ping: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(ping(), timeout=HEALTH_CHECK_TIMEOUT)
        return "ok"
    except Unavailable as error:  # the store's own words are the more precise
        return f"unavailable: {error.__cause__ or error}"
    except (asyncio.TimeoutError, OSError) as error:
        return f"unavailable: {error or type(error).__name__}"


@dataclass(frozen=True)
class StudentWork:
    """A caller's standing in a course, an assignment, and one student's submissions to its
    current release (oldest first), read together."""

    standing: Standing
    assignment: Assignment
    submissions: list[Submission]

    def submission(self, timestamp: str | None) -> Submission:
        """The latest submission, or the one with that timestamp; 404 if there is none."""
        return latest_submission(self.submissions, timestamp)


def latest_submission(found: list[Submission], timestamp: str | None) -> Submission:
    if timestamp is not None:
        found = [s for s in found if s.timestamp == timestamp]
    if not found:
        raise NotFound("Submission not found")
    return found[-1]


async def _answer(read: Awaitable[T] | None) -> T | None:
    """A read's answer, or None for a read not needed."""
    return None if read is None else await read


class Exchange:
    def __init__(self, metadata: MetadataStore, objects: ObjectStore, debug: bool):
        self.metadata = translated(metadata)
        self.objects = translated(objects)
        self.debug = debug

    async def authorize(
        self, action: Action, caller: Caller, course_id: str | None = None, target: str | None = None
    ) -> Standing:
        member = None
        if course_id is not None and not caller.is_admin:
            member = await self.metadata.get_member(course_id, caller.name)
        return self._standing_for(action, caller, member, target)

    async def authorize_in_course(
        self, action: Action, caller: Caller, course_id: str, target: str | None = None
    ) -> Standing:
        """require_course, then authorize, in one database read for a member of the course:
        a membership exists only while its course does (a course's members go before it)."""
        member = None if caller.is_admin else await self.metadata.get_member(course_id, caller.name)
        if member is None:
            await self.require_course(course_id)
        return self._standing_for(action, caller, member, target)

    def _standing_for(self, action: Action, caller: Caller, member: Member | None, target: str | None) -> Standing:
        standing = Standing(caller.name, caller.is_admin, member.role if member else None)
        authorize(action, standing, target, debug=self.debug)
        return standing

    async def health(self) -> dict[str, str]:
        """The state of the database and of the file storage: ok, or why not."""
        database, storage = await asyncio.gather(_check(self.metadata.ping), _check(self.objects.ping))
        return {"database": database, "storage": storage}

    # lookups that answer 404
    async def require_course(self, course_id: str) -> None:
        if not await self.metadata.course_exists(course_id):
            raise NotFound("Course not found")

    async def require_open_course(self, course_id: str) -> str:
        """404 unless the course exists and is not being deleted; its incarnation, which the
        write that asks hands to commit_child."""
        incarnation = await self.metadata.course_incarnation(course_id)
        if incarnation is None:
            raise NotFound("Course not found")
        return incarnation

    async def commit_child(
        self, course_id: str, incarnation: str, undo: Callable[[], Awaitable[object]]
    ) -> None:
        """The commit point of a record written into a course: the course must still be the one
        the write began in. A delete of the course (and perhaps a new course of that name) that
        ran meanwhile may not have seen the record, so it is removed again and the answer is 404."""
        if await self.metadata.course_incarnation(course_id) != incarnation:
            await undo()
            raise NotFound("Course not found")

    async def require_assignment(self, course_id: str, assignment_id: str) -> Assignment:
        assignment = await self.metadata.get_assignment(course_id, assignment_id)
        if assignment is None:
            raise NotFound("Assignment not found")
        return assignment

    async def submissions_of(self, assignment: Assignment, student_id: str | None = None) -> list[Submission]:
        """Submissions to this release of the assignment, oldest first. Leftovers of an earlier
        release with the same id (a delete that was interrupted) never show."""
        found = await self.metadata.list_submissions(assignment.course_id, assignment.assignment_id, student_id)
        return [s for s in found if s.release_id == assignment.release_id]

    async def student_work(
        self, action: Action, caller: Caller, course_id: str, assignment_id: str, student_id: str,
        target: str | None = None,
    ) -> StudentWork:
        """authorize_in_course, require_assignment, the student's membership and submissions_of
        in one round trip to the database: the reads depend on none of each other's answers, so they
        are sent together, and the checks then run on their answers in the order they always
        did (the same answer, the same error). What a failed check read is never shown."""
        own = not caller.is_admin and caller.name == student_id
        caller_read = None if caller.is_admin else self.metadata.get_member(course_id, caller.name)
        student_read = None if own else self.metadata.get_member(course_id, student_id)
        member, assignment, student, found = await asyncio.gather(
            _answer(caller_read),
            self.metadata.get_assignment(course_id, assignment_id),
            _answer(student_read),
            self.metadata.list_submissions(course_id, assignment_id, student_id),
        )
        if member is None and not caller.is_admin:
            await self.require_course(course_id)
        standing = self._standing_for(action, caller, member, target)
        if assignment is None:
            if caller.is_admin:  # nobody else gets here without a membership in the course
                await self.require_course(course_id)
            raise NotFound("Assignment not found")
        if (member if own else student) is None:
            raise NotFound("Student not found")
        return StudentWork(standing, assignment, [s for s in found if s.release_id == assignment.release_id])

    # file bodies
    async def write_files(
        self, prefix: str, files: Sequence[UploadedFile], provenance: Provenance
    ) -> tuple[FileRecord, ...]:
        """Upload every body before any metadata points at them; on failure remove what landed."""
        records = tuple(FileRecord(f.path, f.md5, f.size) for f in files)
        targets = stored_files(prefix, records)
        objects = [
            NewObject(target.key, file.chunks(), target.md5, provenance.describe(record))
            for target, file, record in zip(targets, files, records)
        ]
        try:
            await self.objects.put_many(objects)
        except Exception as failure:
            try:
                await self.discard(targets)
            except Exception as error:  # the upload's own failure is what the caller must hear of
                log.warning("%d objects of a failed upload left for fsck to remove: %s", len(targets), error, exc_info=error)
            if isinstance(failure, ChecksumMismatch):
                raise ExchangeError("Upload corrupted in transit; nothing was stored") from failure
            raise
        return records

    async def discard(self, files: Iterable[StoredFile]) -> None:
        """Remove bodies no document points at any more (after the metadata is gone)."""
        await self.objects.delete([f.key for f in files])

    async def read(self, tree: FileTree, file: StoredFile) -> AsyncIterator[bytes]:
        """One file's body; NotFound with the tree's message if it vanished (a delete that raced
        the download)."""
        try:
            async for chunk in self.objects.get(file.key):
                yield chunk
        except ObjectNotFound as error:
            raise NotFound(tree.gone) from error

    async def after_commit(self, left_behind: str, work: Awaitable[object]) -> None:
        """Work that follows a write's commit point. The write has happened, so a failure here
        must not answer an error (a client retrying `submit` would submit twice): it is logged,
        saying what was left behind, with its cause."""
        try:
            await work
        except Exception as error:
            log.warning("%s after a completed write: %s", left_behind, error, exc_info=error)

    async def discard_after_commit(self, files: Sequence[StoredFile]) -> None:
        """Remove the bodies a committed write no longer references; fsck removes any left."""
        keys_left = f"{len(files)} unreferenced objects left for fsck to remove"
        await self.after_commit(keys_left, self.discard(files))

    async def record(
        self,
        caller: Caller,
        action: str,
        course_id: str,
        assignment_id: str | None = None,
        student_id: str | None = None,
        **detail: object,
    ) -> None:
        """Add to the audit trail what has just been done: the deed stands even if this fails."""
        event = Event(timestamps.now(), caller.name, action, course_id, assignment_id, student_id, dict(detail))
        lost = (
            f"audit event not recorded: user={caller.name!r} action={action!r} course={course_id!r} "
            f"assignment={assignment_id!r} student={student_id!r} detail={dict(detail)!r}"
        )
        await self.after_commit(lost, self.metadata.record_event(event))
