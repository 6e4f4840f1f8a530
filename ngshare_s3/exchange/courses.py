"""Courses: list, create (admins), delete with everything in them (admins)."""

from __future__ import annotations

from ..stores.errors import DuplicateKey
from ..stores.metadata.base import Member
from .exchange import Exchange
from .stored import feedback_files, release_files, submission_files
from .errors import BadRequest, Conflict
from .json_fields import json_field
from .large_fields import read_field
from .limits import check_id
from .permissions import Action, Caller


async def list_courses(ex: Exchange, caller: Caller) -> list[str]:
    if caller.is_admin:
        return await ex.metadata.list_courses()
    return await ex.metadata.courses_of(caller.name)


def parse_instructors(field: str | None) -> list[str]:
    """A JSON list of usernames, without duplicates, in the order given."""
    if field is None:
        return []
    names = json_field(field, "Instructors cannot be JSON decoded")
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise BadRequest("Instructors cannot be JSON decoded")
    return list(dict.fromkeys(names))


async def create_course(ex: Exchange, caller: Caller, course_id: str, instructors: str | None) -> None:
    await ex.authorize(Action.CREATE_COURSE, caller)
    if await ex.metadata.course_exists(course_id):
        raise Conflict("Course already exists")
    names = await read_field(parse_instructors, instructors)
    check_id("Course id", course_id)
    for name in names:
        check_id("Username", name)
    try:
        await ex.metadata.create_course(course_id)
    except DuplicateKey as error:
        raise Conflict("Course already exists") from error
    incarnation = await ex.require_open_course(course_id)
    for name in names:
        await ex.metadata.make_instructor(Member(course_id, name, "instructor"))

    async def withdraw() -> None:
        for name in names:
            await ex.metadata.delete_member(course_id, name, "instructor")

    await ex.commit_child(course_id, incarnation, withdraw)
    await ex.record(caller, "create course", course_id, instructors=names)


async def delete_course(ex: Exchange, caller: Caller, course_id: str) -> None:
    """Closed to writes first, so that a release or roster change running meanwhile removes
    what it wrote (see Exchange.commit_child); then children, and the course record last, so an
    interrupted delete leaves a smaller course that a retry finishes, never records of a course
    that no longer exists."""
    await ex.authorize(Action.DELETE_COURSE, caller)
    await ex.require_course(course_id)
    await ex.metadata.close_course(course_id)
    assignments = await ex.metadata.list_assignments(course_id)
    bodies = [f for a in assignments for f in release_files(a)]
    for assignment in assignments:
        for submission in await ex.metadata.list_submissions(course_id, assignment.assignment_id):
            bodies += submission_files(submission) + feedback_files(submission)
    await ex.metadata.delete_submissions(course_id)
    for assignment in assignments:
        await ex.metadata.delete_assignment(course_id, assignment.assignment_id, assignment.release_id)
    await ex.metadata.delete_members(course_id)
    await ex.metadata.delete_course(course_id)
    await ex.discard_after_commit(bodies)
    await ex.record(caller, "delete course", course_id)
