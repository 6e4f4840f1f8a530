"""Assignments: release (instructors), list and fetch (members), delete with its submissions."""

from __future__ import annotations

from ..stores.errors import DuplicateKey
from ..stores.metadata.base import Assignment
from . import keys, timestamps
from .exchange import Exchange
from .stored import FileTree, Provenance, feedback_files, release_files, submission_files
from .errors import Conflict
from .files import FilesField, decode_files
from .limits import check_id
from .permissions import Action, Caller


async def list_assignments(ex: Exchange, caller: Caller, course_id: str) -> list[str]:
    await ex.authorize_in_course(Action.LIST_ASSIGNMENTS, caller, course_id)
    return [a.assignment_id for a in await ex.metadata.list_assignments(course_id)]


async def get_assignment(ex: Exchange, caller: Caller, course_id: str, assignment_id: str) -> FileTree:
    await ex.authorize_in_course(Action.GET_ASSIGNMENT, caller, course_id)
    assignment = await ex.require_assignment(course_id, assignment_id)
    return FileTree(release_files(assignment), gone="Assignment not found")


async def release_assignment(ex: Exchange, caller: Caller, course_id: str, assignment_id: str, files: FilesField) -> None:
    """Bodies first under a fresh release id, then the one record that makes them visible,
    kept only if the course was not deleted meanwhile."""
    incarnation = await ex.require_open_course(course_id)
    await ex.authorize(Action.RELEASE_ASSIGNMENT, caller, course_id)
    if await ex.metadata.get_assignment(course_id, assignment_id) is not None:
        raise Conflict("Assignment already exists")
    uploads = decode_files(files)
    check_id("Assignment id", assignment_id)
    release_id = keys.new_id()
    released_at = timestamps.now()
    provenance = Provenance("release", course_id, assignment_id, None, released_at, caller.name)
    records = await ex.write_files(keys.release_prefix(course_id, assignment_id, release_id), uploads, provenance)
    assignment = Assignment(course_id, assignment_id, release_id, released_at, records)
    try:
        await ex.metadata.create_assignment(assignment)
    except DuplicateKey as error:
        await ex.discard(release_files(assignment))
        raise Conflict("Assignment already exists") from error

    async def withdraw() -> None:
        await ex.metadata.delete_assignment(course_id, assignment_id, release_id)
        await ex.discard(release_files(assignment))

    await ex.commit_child(course_id, incarnation, withdraw)
    await ex.record(caller, "release assignment", course_id, assignment_id, release_id=release_id)


async def delete_assignment(ex: Exchange, caller: Caller, course_id: str, assignment_id: str) -> None:
    """Removing the assignment record hides it and its submissions at once; their records and
    bodies go after."""
    await ex.require_course(course_id)
    await ex.authorize(Action.DELETE_ASSIGNMENT, caller, course_id)
    assignment = await ex.require_assignment(course_id, assignment_id)
    submissions = await ex.submissions_of(assignment)
    await ex.metadata.delete_assignment(course_id, assignment_id, assignment.release_id)
    await ex.metadata.delete_submissions(course_id, assignment_id, assignment.release_id)
    bodies = list(release_files(assignment))
    for submission in submissions:
        bodies += submission_files(submission) + feedback_files(submission)
    await ex.discard_after_commit(bodies)
    await ex.record(caller, "delete assignment", course_id, assignment_id, release_id=assignment.release_id)
