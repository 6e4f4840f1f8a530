"""Course rosters: instructors and students, with their per-course names and emails."""

from __future__ import annotations

from ..stores.metadata.base import Member
from .exchange import Exchange
from .errors import BadRequest, Conflict, NotFound
from .json_fields import json_field
from .large_fields import read_field
from .limits import check_id
from .permissions import Action, Caller

STUDENT_FIELDS = ("username", "first_name", "last_name", "email")


def require_names(first_name: str | None, last_name: str | None, email: str | None) -> None:
    if first_name is None:
        raise BadRequest("Please supply first name")
    if last_name is None:
        raise BadRequest("Please supply last name")
    if email is None:
        raise BadRequest("Please supply email")


def describe(member: Member) -> dict[str, str | None]:
    return {
        "username": member.user_id,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
    }


async def update_instructor(
    ex: Exchange, caller: Caller, course_id: str, instructor_id: str,
    first_name: str | None, last_name: str | None, email: str | None,
) -> None:
    """Admins add, convert or update any instructor; an instructor only updates themself."""
    incarnation = await ex.require_open_course(course_id)
    standing = await ex.authorize(Action.UPDATE_INSTRUCTOR, caller, course_id)
    require_names(first_name, last_name, email)
    member = Member(course_id, instructor_id, "instructor", first_name, last_name, email)
    if standing.is_admin:
        check_id("Username", instructor_id)
        await ex.metadata.make_instructor(member)
        await ex.commit_child(
            course_id, incarnation, lambda: ex.metadata.delete_member(course_id, instructor_id, "instructor")
        )
    else:  # changes names only, never adds a record a course delete could miss
        current = await ex.metadata.get_member(course_id, instructor_id)
        if current is None or current.role != "instructor":
            raise BadRequest("Permission denied (cannot modify instructors)")
        if instructor_id != caller.name:
            raise BadRequest("Permission denied (cannot modify other instructors)")
        await ex.metadata.update_names(member)
    await ex.record(caller, "update instructor", course_id, student_id=instructor_id)


async def get_instructor(ex: Exchange, caller: Caller, course_id: str, instructor_id: str) -> dict:
    await ex.require_course(course_id)
    await ex.authorize(Action.GET_INSTRUCTOR, caller, course_id)
    member = await ex.metadata.get_member(course_id, instructor_id)
    if member is None or member.role != "instructor":
        raise NotFound("Instructor not found")
    return describe(member)


async def delete_instructor(ex: Exchange, caller: Caller, course_id: str, instructor_id: str) -> None:
    await ex.authorize(Action.DELETE_INSTRUCTOR, caller)
    await ex.require_course(course_id)
    if not await ex.metadata.delete_member(course_id, instructor_id, "instructor"):
        raise NotFound("Instructor not found")
    await ex.record(caller, "delete instructor", course_id, student_id=instructor_id)


async def list_instructors(ex: Exchange, caller: Caller, course_id: str) -> list[dict]:
    await ex.require_course(course_id)
    await ex.authorize(Action.LIST_INSTRUCTORS, caller, course_id)
    return [describe(m) for m in await ex.metadata.list_members(course_id, "instructor")]


async def put_student(
    ex: Exchange, caller: Caller, course_id: str, student_id: str,
    first_name: str | None, last_name: str | None, email: str | None,
) -> None:
    incarnation = await ex.require_open_course(course_id)
    await ex.authorize(Action.PUT_STUDENT, caller, course_id)
    require_names(first_name, last_name, email)
    check_id("Username", student_id)
    if not await ex.metadata.put_student(Member(course_id, student_id, "student", first_name, last_name, email)):
        raise Conflict("Cannot add instructor as student")
    await ex.commit_child(course_id, incarnation, lambda: ex.metadata.delete_member(course_id, student_id, "student"))
    await ex.record(caller, "put student", course_id, student_id=student_id)


def parse_students(field: str | None) -> list[dict]:
    if not field:
        raise BadRequest("Please supply students")
    students = json_field(field, "Students cannot be JSON decoded")
    if not isinstance(students, list):
        raise BadRequest("Incorrect request format")
    if not students:
        raise BadRequest("Please supply students")
    for student in students:
        if not isinstance(student, dict) or not all(isinstance(student.get(k), str) for k in STUDENT_FIELDS):
            raise BadRequest("Incorrect request format")
    return students


async def put_students(ex: Exchange, caller: Caller, course_id: str, students_field: str | None) -> list[dict]:
    """Bulk add or update; one status per input element, in input order."""
    incarnation = await ex.require_open_course(course_id)
    await ex.authorize(Action.PUT_STUDENTS, caller, course_id)
    students = await read_field(parse_students, students_field)
    for student in students:
        check_id("Username", student["username"])
    status = []
    for student in students:
        member = Member(course_id, student["username"], "student",
                        student["first_name"], student["last_name"], student["email"])
        if await ex.metadata.put_student(member):
            status.append({"username": member.user_id, "success": True})
        else:
            status.append({"username": member.user_id, "success": False,
                           "message": "Cannot add instructor as student"})

    async def withdraw() -> None:
        for added in status:
            if added["success"]:
                await ex.metadata.delete_member(course_id, added["username"], "student")

    await ex.commit_child(course_id, incarnation, withdraw)
    await ex.record(caller, "put students", course_id, count=len(students))
    return status


async def get_student(ex: Exchange, caller: Caller, course_id: str, student_id: str) -> dict:
    await ex.require_course(course_id)
    await ex.authorize(Action.GET_STUDENT, caller, course_id, target=student_id)
    member = await ex.metadata.get_member(course_id, student_id)
    if member is None or member.role != "student":
        raise NotFound("Student not found")
    return describe(member)


async def delete_student(ex: Exchange, caller: Caller, course_id: str, student_id: str) -> None:
    await ex.require_course(course_id)
    await ex.authorize(Action.DELETE_STUDENT, caller, course_id)
    if not await ex.metadata.delete_member(course_id, student_id, "student"):
        raise NotFound("Student not found")
    await ex.record(caller, "delete student", course_id, student_id=student_id)


async def list_students(ex: Exchange, caller: Caller, course_id: str) -> list[dict]:
    await ex.require_course(course_id)
    await ex.authorize(Action.LIST_STUDENTS, caller, course_id)
    return [describe(m) for m in await ex.metadata.list_members(course_id, "student")]
