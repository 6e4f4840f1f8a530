"""Feedback: instructors upload it per submission (replacing the whole set); students fetch theirs."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from ..stores.metadata.base import Feedback
from . import keys, timestamps
from .exchange import Exchange
from .stored import FileTree, Provenance, feedback_files, stored_files
from .errors import BadRequest, NotFound
from .files import FilesField, decode_files
from .permissions import Action, Caller


def require_timestamp(timestamp: str | None) -> str:
    if timestamp is None:
        raise BadRequest("Please supply timestamp")
    canonical = timestamps.parse_timestamp(timestamp)
    if canonical is None:
        raise BadRequest("Time format incorrect")
    return canonical


async def upload_feedback(
    ex: Exchange, caller: Caller, course_id: str, assignment_id: str, student_id: str,
    timestamp: str | None, files: FilesField,
) -> None:
    """New bodies under a fresh feedback id, one atomic swap of the record, then the old bodies
    go; a failed upload leaves the previous feedback as it was."""
    work = await ex.student_work(Action.UPLOAD_FEEDBACK, caller, course_id, assignment_id, student_id)
    canonical = require_timestamp(timestamp)
    submission = work.submission(canonical)
    uploads = decode_files(files)
    feedback_id = keys.new_id()
    prefix = keys.feedback_prefix(course_id, assignment_id, student_id, submission.submission_id, feedback_id)
    provenance = Provenance("feedback", course_id, assignment_id, student_id, canonical, caller.name)
    records = await ex.write_files(prefix, uploads, provenance)
    found, previous = await ex.metadata.replace_feedback(
        course_id, assignment_id, student_id, canonical, Feedback(feedback_id, timestamps.now(), records)
    )
    if not found:
        await ex.discard(stored_files(prefix, records))
        raise NotFound("Submission not found")
    # After the commit: work that never fails the request, and whose parts need not wait for each other.
    after_commit = [ex.record(caller, "upload feedback", course_id, assignment_id, student_id, timestamp=canonical)]
    if previous is not None:
        after_commit.append(ex.discard_after_commit(feedback_files(replace(submission, feedback=previous))))
    await asyncio.gather(*after_commit)


async def get_feedback(
    ex: Exchange, caller: Caller, course_id: str, assignment_id: str, student_id: str, timestamp: str | None
) -> tuple[FileTree, str]:
    work = await ex.student_work(Action.GET_FEEDBACK, caller, course_id, assignment_id, student_id, target=student_id)
    canonical = require_timestamp(timestamp)
    submission = work.submission(canonical)
    return FileTree(feedback_files(submission), gone="Submission not found"), submission.timestamp
