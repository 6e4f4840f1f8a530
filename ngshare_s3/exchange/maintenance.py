"""The debug endpoint's actions: dump every record, clear everything, load ngshare's fixture."""

from __future__ import annotations

from typing import Any

from ..stores.metadata.base import Assignment, Feedback, Member, Submission
from . import keys, timestamps
from .exchange import Exchange
from .stored import Provenance
from .errors import BadRequest, Forbidden
from .permissions import Caller
from .files import UploadedFile


async def debug_action(ex: Exchange, caller: Caller, action: str | None) -> dict[str, Any]:
    """Outside debug mode only an admin's dump is allowed, as in ngshare."""
    if not ex.debug:
        if action == "dump" and caller.is_admin:
            return await dump(ex)
        raise Forbidden("Debug mode is off")
    if action == "dump":
        return await dump(ex)
    if action == "clear":
        await clear(ex)
        return {"message": "done"}
    if action == "init":
        await load_fixture(ex)
        return {"message": "done"}
    raise BadRequest("action should be clear, init, or dump")


async def dump(ex: Exchange) -> dict[str, Any]:
    return {name: rows for name, rows in (await ex.metadata.dump()).items() if rows}


async def clear(ex: Exchange) -> None:
    await ex.metadata.clear()
    await ex.objects.delete([info.key async for info in ex.objects.list("")])


def _text_file(path: str, text: str) -> UploadedFile:
    return UploadedFile.of_bytes(path, text.encode())


async def load_fixture(ex: Exchange) -> None:
    """The data ngshare's own test suite is written against (spec §3)."""
    meta = ex.metadata
    instructors = {}
    for course_id, instructor, student in (("course1", "kevin", "lawrence"), ("course2", "abigail", "eric")):
        instructors[course_id] = instructor
        await meta.create_course(course_id)
        await meta.add_member(Member(course_id, instructor, "instructor"))
        await meta.add_member(Member(course_id, student, "student"))
    releases = {}
    for course_id, assignment_id, path, text in (
        ("course1", "challenge", "file2", "22222"),
        ("course2", "assignment2a", "file0", "00000"),
        ("course2", "assignment2b", "file1", "11111"),
    ):
        release_id = keys.new_id()
        released_at = timestamps.now()
        provenance = Provenance("release", course_id, assignment_id, None, released_at, instructors[course_id])
        prefix = keys.release_prefix(course_id, assignment_id, release_id)
        records = await ex.write_files(prefix, [_text_file(path, text)], provenance)
        await meta.create_assignment(Assignment(course_id, assignment_id, release_id, released_at, records))
        releases[assignment_id] = release_id
    for timestamp, path, text, feedback in (
        ("2020-01-01 00:00:00.000000", "file3", "33333", ("file5", "55555")),
        (timestamps.now(), "file4", "44444", None),
    ):
        submission_id = keys.new_id()
        prefix = keys.submission_prefix("course1", "challenge", "lawrence", submission_id)
        submitted = Provenance("submission", "course1", "challenge", "lawrence", timestamp, "lawrence")
        records = await ex.write_files(prefix, [_text_file(path, text)], submitted)
        given = None
        if feedback:
            feedback_id = keys.new_id()
            feedback_prefix = keys.feedback_prefix("course1", "challenge", "lawrence", submission_id, feedback_id)
            answered = Provenance("feedback", "course1", "challenge", "lawrence", timestamp, "kevin")
            answer = await ex.write_files(feedback_prefix, [_text_file(*feedback)], answered)
            given = Feedback(feedback_id, timestamp, answer)
        await meta.create_submission(Submission(
            "course1", "challenge", "lawrence", timestamp, submission_id, releases["challenge"], records, given
        ))
