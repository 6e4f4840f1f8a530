"""fsck: find what an interrupted write or delete left behind, and optionally clear it away.

Writes store the bytes first and the metadata record last; deletes remove records first and
bytes after (DESIGN.md, "Consistency"). So a crash can leave objects that no record references,
and records that nothing live reaches any more: submissions to a release that is no longer the
assignment's current one (an interrupted assignment delete), or memberships and assignments of
a course that no longer exists. A course delete closes the course to writes before its records
go; one that stopped halfway leaves a closed course, which repair finishes deleting. Only outside
interference leaves a live record whose objects are missing; those are reported, never deleted.

Everything goes through the two store interfaces, so it works on every backend unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..stores.metadata.base import (
    Assignment,
    Member,
    MetadataStore,
    Submission,
    assignment_from_document,
    member_from_document,
    submission_from_document,
)
from ..stores.objects.base import ObjectInfo, ObjectStore
from .stored import StoredFile, feedback_files, release_files, submission_files

DEFAULT_GRACE_PERIOD = timedelta(hours=1)

Record = Member | Assignment | Submission


class RepairRefused(Exception):
    """Repairing would do more harm than good; nothing was changed."""


@dataclass(frozen=True)
class MissingObject:
    """A file a live record lists whose object is not in the store."""

    kind: str  # "release", "submission" or "feedback"
    course_id: str
    assignment_id: str
    student_id: str | None  # None for a release
    timestamp: str  # when it was released, or the submission's timestamp
    path: str
    key: str


@dataclass(frozen=True)
class UnreachableRecord:
    """A record the service can no longer reach; its objects count as unreferenced."""

    record: Record
    reason: str


@dataclass
class FsckReport:
    records: int = 0  # records the metadata store holds, audit trail included
    objects: int = 0  # objects the object store holds
    unreferenced: list[ObjectInfo] = field(default_factory=list)  # older than the grace period
    young: list[ObjectInfo] = field(default_factory=list)  # unreferenced, maybe an upload in flight
    unreachable: list[UnreachableRecord] = field(default_factory=list)
    missing: list[MissingObject] = field(default_factory=list)
    closed_courses: list[str] = field(default_factory=list)  # a delete of each stopped halfway
    repaired: bool = False

    @property
    def consistent(self) -> bool:
        """Nothing left to worry about: young objects may still become referenced."""
        removable = self.unreferenced or self.unreachable or self.closed_courses
        return not self.missing and (self.repaired or not removable)


class _Parents:
    """Asks the store afresh whether a record's parent is live. A dump is not a snapshot, so
    a record read after its parent was created may look orphaned in the dump alone."""

    def __init__(self, metadata: MetadataStore):
        self.metadata = metadata
        self._courses: dict[str, str | None] = {}
        self._assignments: dict[tuple[str, str], Assignment | None] = {}

    async def course_state(self, course_id: str) -> str | None:
        """None for an open course, else why its records are unreachable."""
        if course_id not in self._courses:
            if await self.metadata.course_incarnation(course_id) is not None:
                self._courses[course_id] = None
            elif await self.metadata.course_exists(course_id):
                self._courses[course_id] = "its course is being deleted"
            else:
                self._courses[course_id] = "its course does not exist"
        return self._courses[course_id]

    async def current_release(self, course_id: str, assignment_id: str) -> str | None:
        if (course_id, assignment_id) not in self._assignments:
            found = await self.metadata.get_assignment(course_id, assignment_id)
            self._assignments[course_id, assignment_id] = found
        found = self._assignments[course_id, assignment_id]
        return found.release_id if found else None

    async def why_unreachable(self, record: Record) -> str | None:
        if reason := await self.course_state(record.course_id):
            return reason
        if isinstance(record, Submission):
            release = await self.current_release(record.course_id, record.assignment_id)
            if release is None:
                return "its assignment does not exist"
            if release != record.release_id:
                return "its release is not the assignment's current one"
        return None


def _files_of(record: Record) -> list[tuple[str, StoredFile]]:
    """The files a record lists, each with what kind of file it is."""
    if isinstance(record, Assignment):
        return [("release", f) for f in release_files(record)]
    if isinstance(record, Submission):
        return [("submission", f) for f in submission_files(record)] + [
            ("feedback", f) for f in feedback_files(record)
        ]
    return []


def _missing_object(record: Assignment | Submission, kind: str, file: StoredFile) -> MissingObject:
    if isinstance(record, Assignment):
        student, timestamp = None, record.released_at
    else:
        student, timestamp = record.student_id, record.timestamp
    return MissingObject(kind, record.course_id, record.assignment_id, student, timestamp, file.path, file.key)


async def _exists(objects: ObjectStore, key: str) -> bool:
    return any([info.key == key async for info in objects.list(key)])


async def check(
    metadata: MetadataStore,
    objects: ObjectStore,
    grace_period: timedelta = DEFAULT_GRACE_PERIOD,
    now: datetime | None = None,
) -> FsckReport:
    """Compare the two stores; change nothing.

    Objects are listed before the records are read, so an object whose record is committed
    meanwhile counts as referenced; an object uploaded later is not looked at at all.
    """
    now = now or datetime.now(timezone.utc)
    listed = [info async for info in objects.list("")]
    dump = await metadata.dump()
    records: list[Record] = [
        *(member_from_document(d) for d in dump.get("members", [])),
        *(assignment_from_document(d) for d in dump.get("assignments", [])),
        *(submission_from_document(d) for d in dump.get("submissions", [])),
    ]
    report = FsckReport(records=sum(len(rows) for rows in dump.values()), objects=len(listed))

    parents = _Parents(metadata)
    for course in dump.get("courses", []):
        if await parents.course_state(course["course_id"]) == "its course is being deleted":
            report.closed_courses.append(course["course_id"])
    live: list[Record] = []
    for record in records:
        reason = await parents.why_unreachable(record)
        if reason is None:
            live.append(record)
        else:
            report.unreachable.append(UnreachableRecord(record, reason))

    referenced = {f.key for record in live for _, f in _files_of(record)}
    for info in listed:
        if info.key not in referenced:
            young = now - info.modified < grace_period
            (report.young if young else report.unreferenced).append(info)

    # A record committed after the listing has its objects: look again before reporting them.
    present = {info.key for info in listed}
    absent = {key for key in referenced - present if not await _exists(objects, key)}
    report.missing = [
        _missing_object(record, kind, f) for record in live for kind, f in _files_of(record) if f.key in absent
    ]
    return report


async def repair(metadata: MetadataStore, objects: ObjectStore, report: FsckReport) -> None:
    """Delete the unreachable records (children first) and the courses whose delete stopped
    halfway, then the unreferenced objects that are older than the grace period. Missing
    objects are left to be reported."""
    if report.records == 0 and report.unreferenced:
        raise RepairRefused(
            f"the database holds no records at all but the storage holds {report.objects} objects; "
            "check that --database names the service's database"
        )
    unreachable = [u.record for u in report.unreachable]
    releases = {(s.course_id, s.assignment_id, s.release_id) for s in unreachable if isinstance(s, Submission)}
    for course_id, assignment_id, release_id in sorted(releases):
        await metadata.delete_submissions(course_id, assignment_id, release_id)
    for record in unreachable:
        if isinstance(record, Assignment):
            await metadata.delete_assignment(record.course_id, record.assignment_id, record.release_id)
        elif isinstance(record, Member):
            await metadata.delete_member(record.course_id, record.user_id, record.role)
    for course_id in report.closed_courses:
        await metadata.delete_course(course_id)
    await objects.delete([info.key for info in report.unreferenced])
    report.repaired = True
