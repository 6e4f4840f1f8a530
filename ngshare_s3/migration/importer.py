"""Writes an ngshare installation (read by ngshare_database) into the service's stores.

Every record is written only if the stores lack it, so a second run adds nothing and an
interrupted one resumes. As everywhere else (DESIGN.md), a tree's bodies go up before the one
record that makes them visible. A tree is imported whole or not at all: a file missing from
ngshare's storage folder, or whose bytes do not have the MD5 ngshare recorded, is reported by
name and its tree skipped, so that running again once it is restored completes the import."""

from __future__ import annotations

import asyncio
import os
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ..exchange import keys, timestamps
from ..exchange.errors import BadRequest
from ..exchange.exchange import Exchange
from ..exchange.files import UploadedFile, check_file_path
from ..exchange.limits import check_id
from ..exchange.stored import Provenance, feedback_files, submission_files
from ..stores.errors import DuplicateKey
from ..stores.metadata.base import Assignment, Event, Feedback, FileRecord, Member, Submission
from .ngshare_database import SourceAssignment, SourceCourse, SourceFile, SourceMember, SourceSubmission

IMPORTER = "ngshare-s3 import-ngshare"  # the uploader of what ngshare did not say who uploaded
PARALLEL_SUBMISSIONS = 8


@dataclass
class Tally:
    """What a run did with each kind of record (course, member, assignment, submission,
    feedback): imported, already present, or skipped; and the files and bytes it wrote."""

    imported: Counter = field(default_factory=Counter)
    present: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.imported.update(other.imported)
        self.present.update(other.present)
        self.skipped.update(other.skipped)


def describe(kind: str, **names: str | None) -> str:
    """A record by name, as reports print it: `submission course=c assignment=a student=s …`."""
    return kind + "".join(f" {name}={shlex.quote(value)}" for name, value in names.items() if value is not None)


def same_files(kept: Iterable[FileRecord], source: Iterable[SourceFile]) -> bool:
    return [(f.path, f.md5) for f in kept] == [(f.path, f.md5) for f in source]


def _moment(seconds: float) -> str:
    return timestamps.format_timestamp(datetime.fromtimestamp(seconds, timezone.utc))


@dataclass(frozen=True)
class ReadTree:
    """A tree's bodies, read from ngshare's storage folder and checked, and when ngshare
    wrote them (the files' modification times)."""

    files: list[UploadedFile]
    first_written: str
    last_written: str


class NgshareImport:
    """One run of the import. `report` hears every skipped record and conflict, by name;
    `advance` hears how many records have been dealt with."""

    def __init__(
        self,
        exchange: Exchange,
        storage: Path,
        dry_run: bool,
        report: Callable[[str], None],
        advance: Callable[[int], None] = lambda records: None,
    ):
        self.ex = exchange
        self.storage = storage
        self.dry_run = dry_run
        self.report = report
        self.advance = advance

    async def course(self, course: SourceCourse) -> Tally:
        tally = Tally()
        cid = course.course_id
        try:
            check_id("Course id", cid)
        except BadRequest as error:
            self._skip(tally, "courses", describe("course", course=cid), str(error))
            self.advance(course.records)
            return tally
        if await self.ex.metadata.course_exists(cid):
            tally.present["courses"] += 1
        else:
            if not self.dry_run:
                await self.ex.metadata.create_course(cid)
            tally.imported["courses"] += 1
        self.advance(1)
        for member in course.members:
            await self._member(cid, member, tally)
            self.advance(1)
        for assignment in course.assignments:
            await self._assignment(cid, assignment, tally)
        if tally.imported and not self.dry_run:
            event = Event(timestamps.now(), IMPORTER, "import from ngshare", cid, detail=dict(tally.imported))
            await self.ex.metadata.record_event(event)
        return tally

    def _skip(self, tally: Tally, kind: str, where: str, why: str) -> None:
        tally.skipped[kind] += 1
        self.report(f"skipped {where}: {why}")

    async def _member(self, course_id: str, source: SourceMember, tally: Tally) -> None:
        member = Member(course_id, source.user_id, source.role, source.first_name, source.last_name, source.email)  # type: ignore[arg-type]
        existing = await self.ex.metadata.get_member(course_id, source.user_id)
        if existing == member:
            tally.present["members"] += 1
        elif existing is not None and existing.role != member.role:
            where = describe("member", course=course_id, user=source.user_id)
            self._skip(tally, "members", where, f"a {member.role} in ngshare, but here already listed as {existing.role}")
        else:
            if not self.dry_run:
                await (self.ex.metadata.add_member if existing is None else self.ex.metadata.update_names)(member)
            tally.imported["members"] += 1

    async def _assignment(self, course_id: str, source: SourceAssignment, tally: Tally) -> None:
        aid = source.assignment_id
        where = describe("assignment", course=course_id, assignment=aid)
        later = len(source.submissions)
        assignment = await self.ex.metadata.get_assignment(course_id, aid)
        if assignment is not None and not same_files(assignment.files, source.files):
            why = "already here with other files; neither it nor its submissions are imported"
            self._skip(tally, "assignments", where, why)
            tally.skipped["submissions"] += later
            self.advance(1 + later)
            return
        if assignment is not None:
            tally.present["assignments"] += 1
        else:
            assignment = await self._release(course_id, source, where, tally)
            if assignment is None:
                tally.skipped["submissions"] += later
                if later:
                    self.report(f"skipped the {later} submissions to {where} with it")
                self.advance(1 + later)
                return
        self.advance(1)
        await self._submissions(assignment, source.submissions, tally)

    async def _release(self, course_id: str, source: SourceAssignment, where: str, tally: Tally) -> Assignment | None:
        aid = source.assignment_id
        try:
            check_id("Assignment id", aid)
        except BadRequest as error:
            self._skip(tally, "assignments", where, str(error))
            return None
        tree = await self._read(source.files, where, tally, "assignments")
        if tree is None:
            return None
        release_id = keys.new_id()
        provenance = Provenance("release", course_id, aid, None, tree.first_written, IMPORTER)
        records = await self._write(keys.release_prefix(course_id, aid, release_id), tree, provenance, tally)
        assignment = Assignment(course_id, aid, release_id, tree.first_written, records)
        if not self.dry_run:
            await self.ex.metadata.create_assignment(assignment)
        tally.imported["assignments"] += 1
        return assignment

    async def _submissions(self, assignment: Assignment, source: Iterable[SourceSubmission], tally: Tally) -> None:
        """Several at a time: lists come back by timestamp, whatever order they land in."""
        kept = await self.ex.metadata.list_submissions(assignment.course_id, assignment.assignment_id)
        existing = {(s.student_id, s.timestamp): s for s in kept if s.release_id == assignment.release_id}
        limit = asyncio.Semaphore(PARALLEL_SUBMISSIONS)

        async def one(submission: SourceSubmission) -> None:
            async with limit:
                await self._submission(assignment, submission, existing.get((submission.student_id, submission.timestamp)), tally)
            self.advance(1)

        await asyncio.gather(*(one(s) for s in source))

    async def _submission(
        self, assignment: Assignment, source: SourceSubmission, kept: Submission | None, tally: Tally
    ) -> None:
        a = assignment
        where = describe(
            "submission", course=a.course_id, assignment=a.assignment_id, student=source.student_id, timestamp=source.timestamp
        )
        if kept is not None:
            if not same_files(kept.files, source.files):
                self._skip(tally, "submissions", where, "already here with other files")
                return
            tally.present["submissions"] += 1
            await self._add_feedback(kept, source, where, tally)
            return
        try:
            check_id("Username", source.student_id)
        except BadRequest as error:
            self._skip(tally, "submissions", where, str(error))
            return
        tree = await self._read(source.files, where, tally, "submissions")
        if tree is None:
            return
        submission_id = keys.new_id()
        prefix = keys.submission_prefix(a.course_id, a.assignment_id, source.student_id, submission_id)
        provenance = Provenance("submission", a.course_id, a.assignment_id, source.student_id, source.timestamp, source.student_id)
        records = await self._write(prefix, tree, provenance, tally)
        submission = Submission(
            a.course_id, a.assignment_id, source.student_id, source.timestamp, submission_id, a.release_id, records
        )
        feedback = await self._feedback(submission, source, where, tally)
        if not self.dry_run:
            complete = replace(submission, feedback=feedback)
            try:
                await self.ex.metadata.create_submission(complete)
            except DuplicateKey:
                await self.ex.discard(submission_files(complete) + feedback_files(complete))
                self._skip(tally, "submissions", where, "a submission of that student and timestamp is already here")
                return
        tally.imported["submissions"] += 1
        if feedback is not None:
            tally.imported["feedback"] += 1

    async def _add_feedback(self, kept: Submission, source: SourceSubmission, where: str, tally: Tally) -> None:
        """Feedback ngshare has and the kept submission lacks (given after an earlier run)."""
        if not source.feedback:
            return
        if kept.feedback is not None and same_files(kept.feedback.files, source.feedback):
            tally.present["feedback"] += 1
            return
        feedback = await self._feedback(kept, source, where, tally)
        if feedback is None:
            return
        if not self.dry_run:
            k = kept
            found, previous = await self.ex.metadata.replace_feedback(
                k.course_id, k.assignment_id, k.student_id, k.timestamp, feedback
            )
            if not found:  # deleted meanwhile, through the service
                await self.ex.discard(feedback_files(replace(k, feedback=feedback)))
                self._skip(tally, "feedback", where, "its submission was deleted meanwhile")
                return
            if previous is not None:
                await self.ex.discard_after_commit(feedback_files(replace(k, feedback=previous)))
        tally.imported["feedback"] += 1

    async def _feedback(
        self, submission: Submission, source: SourceSubmission, where: str, tally: Tally
    ) -> Feedback | None:
        """The submission's feedback, its bodies written; None if ngshare has none or it is skipped."""
        if not source.feedback:
            return None
        tree = await self._read(source.feedback, f"feedback for {where}", tally, "feedback")
        if tree is None:
            return None
        s = submission
        feedback_id = keys.new_id()
        prefix = keys.feedback_prefix(s.course_id, s.assignment_id, s.student_id, s.submission_id, feedback_id)
        provenance = Provenance("feedback", s.course_id, s.assignment_id, s.student_id, s.timestamp, IMPORTER)
        records = await self._write(prefix, tree, provenance, tally)
        return Feedback(feedback_id, tree.last_written, records)

    async def _read(self, files: tuple[SourceFile, ...], where: str, tally: Tally, kind: str) -> ReadTree | None:
        """The tree's bodies, checked against ngshare's record; None, reported, if one is not right."""
        problem, tree = await asyncio.to_thread(self._read_tree, files)
        if problem is not None:
            self._skip(tally, kind, where, problem)
        return tree

    def _read_tree(self, files: tuple[SourceFile, ...]) -> tuple[str | None, ReadTree | None]:
        read, written = [], []
        for f in files:
            try:
                check_file_path(f.path)
            except BadRequest as error:
                return f"file {f.path!r}: {error}", None
            if not f.stored_as or os.sep in f.stored_as or f.stored_as in (".", ".."):
                return f"file {f.path!r} is recorded as stored under {f.stored_as!r}, outside the storage folder", None
            body = self.storage / f.stored_as
            try:
                data = body.read_bytes()
                written.append(body.stat().st_mtime)
            except FileNotFoundError:
                return f"file {f.path!r} is missing from the storage folder ({body})", None
            except OSError as error:
                return f"file {f.path!r} cannot be read ({body}): {error.strerror}", None
            file = UploadedFile.of_bytes(f.path, data)
            if file.md5 != f.md5.lower():
                return f"file {f.path!r} ({body}) has MD5 {file.md5}, but ngshare recorded {f.md5}", None
            if f.size is not None and file.size != f.size:
                return f"file {f.path!r} ({body}) has {file.size} bytes, but ngshare recorded {f.size}", None
            read.append(file)
        if not written:
            now = timestamps.now()
            return None, ReadTree(read, now, now)
        return None, ReadTree(read, _moment(min(written)), _moment(max(written)))

    async def _write(self, prefix: str, tree: ReadTree, provenance: Provenance, tally: Tally) -> tuple[FileRecord, ...]:
        if self.dry_run:
            records = tuple(FileRecord(f.path, f.md5, f.size) for f in tree.files)
        else:
            records = await self.ex.write_files(prefix, tree.files, provenance)
        tally.imported["files"] += len(records)
        tally.imported["bytes"] += sum(r.size for r in records)
        return records
