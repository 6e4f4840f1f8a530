"""Submissions: students (and instructors, admins) submit; instructors list and collect."""

from __future__ import annotations

from ..stores.errors import DuplicateKey
from ..stores.metadata.base import Submission
from . import keys, timestamps
from .exchange import Exchange
from .stored import FileTree, Provenance, submission_files
from .errors import NotFound, Unavailable
from .files import FilesField, decode_files
from .limits import check_id
from .permissions import Action, Caller

TIMESTAMP_ATTEMPTS = 10


def listing(submissions: list[Submission]) -> list[dict[str, str]]:
    return [{"student_id": s.student_id, "timestamp": s.timestamp} for s in submissions]


async def list_submissions(ex: Exchange, caller: Caller, course_id: str, assignment_id: str) -> list[dict]:
    """Every submission to the assignment, also by students since removed."""
    await ex.authorize_in_course(Action.LIST_SUBMISSIONS, caller, course_id)
    assignment = await ex.require_assignment(course_id, assignment_id)
    return listing(await ex.submissions_of(assignment))


async def list_student_submissions(
    ex: Exchange, caller: Caller, course_id: str, assignment_id: str, student_id: str
) -> list[dict]:
    work = await ex.student_work(
        Action.LIST_STUDENT_SUBMISSIONS, caller, course_id, assignment_id, student_id, target=student_id
    )
    return listing(work.submissions)


async def submit(ex: Exchange, caller: Caller, course_id: str, assignment_id: str, files: FilesField) -> str:
    """A new submission, never replacing one; its timestamp is later than the student's last.

    The timestamp is chosen before the bodies go up, since each body carries it; if another
    submission of the same moment wins it, the bodies (still unreferenced) are written again
    with the next one."""
    await ex.authorize_in_course(Action.SUBMIT, caller, course_id)
    assignment = await ex.require_assignment(course_id, assignment_id)
    uploads = decode_files(files)
    check_id("Username", caller.name)
    submission_id = keys.new_id()
    prefix = keys.submission_prefix(course_id, assignment_id, caller.name, submission_id)
    earlier = await ex.submissions_of(assignment, caller.name)
    timestamp = timestamps.now()
    if earlier and earlier[-1].timestamp >= timestamp:
        timestamp = timestamps.later(earlier[-1].timestamp)
    for _ in range(TIMESTAMP_ATTEMPTS):
        provenance = Provenance("submission", course_id, assignment_id, caller.name, timestamp, caller.name)
        records = await ex.write_files(prefix, uploads, provenance)
        submission = Submission(course_id, assignment_id, caller.name, timestamp, submission_id,
                                assignment.release_id, records)
        try:
            await ex.metadata.create_submission(submission)
            break
        except DuplicateKey as error:
            taken = error
            timestamp = timestamps.later(timestamp)
    else:
        await ex.discard(submission_files(submission))
        raise Unavailable("Too many submissions at the same moment; try again") from taken
    await ex.record(caller, "submit", course_id, assignment_id, caller.name, timestamp=timestamp)
    return timestamp


async def get_submission(
    ex: Exchange, caller: Caller, course_id: str, assignment_id: str, student_id: str, timestamp: str | None
) -> tuple[FileTree, str]:
    """The latest submission, or the one with that timestamp (parsed like feedback's; an
    unreadable timestamp simply matches nothing)."""
    work = await ex.student_work(Action.GET_SUBMISSION, caller, course_id, assignment_id, student_id)
    wanted = timestamps.parse_timestamp(timestamp) if timestamp else None
    if timestamp and wanted is None:
        raise NotFound("Submission not found")
    submission = work.submission(wanted)
    await ex.record(caller, "collect submission", course_id, assignment_id, student_id, timestamp=submission.timestamp)
    return FileTree(submission_files(submission), gone="Submission not found"), submission.timestamp
