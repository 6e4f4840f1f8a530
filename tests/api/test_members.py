"""Course membership: instructor/<c>/<i>, instructors/<c>, student/<c>/<s>, students/<c>
(spec §2.4–§2.12)."""

import json

import pytest

from .support import (
    ADMIN,
    INSTRUCTOR,
    LONG_ID,
    OTHER_INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    STUDENT,
    failure,
    q,
)

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

NAMES = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


def record(username, first_name=None, last_name=None, email=None):
    return {"username": username, "first_name": first_name, "last_name": last_name, "email": email}


@pytest.fixture
async def course(api):
    """c1 taught by instructor1 and instructor2, taken by student1."""
    await api.create_course("c1", [INSTRUCTOR, OTHER_INSTRUCTOR], [STUDENT])
    return "c1"


# ---------------------------------------------------------------------------------------------
# instructors


async def test_admin_adds_an_instructor_with_names(api, course):
    assert await api.post(ADMIN, "instructor/c1/newbie", **NAMES) == (200, {"success": True})
    assert await api.get(STUDENT, "instructor/c1/newbie") == (
        200,
        {"success": True, **record("newbie", "Ada", "Lovelace", "ada@example.org")},
    )
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR, "newbie"]
    assert await api.courses("newbie") == ["c1"]


async def test_instructor_names_may_be_empty_strings(api, course):
    status, body = await api.post(ADMIN, f"instructor/c1/{INSTRUCTOR}", first_name="", last_name="", email="")
    assert (status, body) == (200, {"success": True})
    assert await api.get(ADMIN, f"instructor/c1/{INSTRUCTOR}") == (200, {"success": True, **record(INSTRUCTOR, "", "", "")})


async def test_instructors_list_carries_names_and_nulls(api, course):
    await api.post(INSTRUCTOR, f"instructor/c1/{INSTRUCTOR}", **NAMES)
    status, body = await api.get(STUDENT, "instructors/c1")
    assert status == 200
    assert body == {
        "success": True,
        "instructors": [record(INSTRUCTOR, "Ada", "Lovelace", "ada@example.org"), record(OTHER_INSTRUCTOR)],
    }


async def test_an_instructor_updates_their_own_record(api, course):
    assert await api.post(INSTRUCTOR, f"instructor/c1/{INSTRUCTOR}", **NAMES) == (200, {"success": True})
    status, body = await api.get(INSTRUCTOR, f"instructor/c1/{INSTRUCTOR}")
    assert body == {"success": True, **record(INSTRUCTOR, "Ada", "Lovelace", "ada@example.org")}


async def test_an_instructor_cannot_modify_another_instructor(api, course):
    status, body = await api.post(INSTRUCTOR, f"instructor/c1/{OTHER_INSTRUCTOR}", **NAMES)
    assert (status, body) == (400, failure("Permission denied (cannot modify other instructors)"))
    assert await api.get(ADMIN, f"instructor/c1/{OTHER_INSTRUCTOR}") == (200, {"success": True, **record(OTHER_INSTRUCTOR)})


async def test_an_instructor_cannot_add_an_instructor(api, course):
    status, body = await api.post(INSTRUCTOR, "instructor/c1/newbie", **NAMES)
    assert (status, body) == (400, failure("Permission denied (cannot modify instructors)"))
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR]


async def test_an_instructor_cannot_promote_a_student(api, course):
    status, body = await api.post(INSTRUCTOR, f"instructor/c1/{STUDENT}", **NAMES)
    assert (status, body) == (400, failure("Permission denied (cannot modify instructors)"))
    assert await api.students("c1") == [STUDENT]
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR]


async def test_admin_turns_a_student_into_an_instructor(api, course):
    await api.add_student("c1", STUDENT, first_name="Old", last_name="Name", email="old@example.org")
    assert await api.post(ADMIN, f"instructor/c1/{STUDENT}", **NAMES) == (200, {"success": True})
    assert await api.students("c1") == []
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR, STUDENT]
    assert await api.get(ADMIN, f"instructor/c1/{STUDENT}") == (
        200,
        {"success": True, **record(STUDENT, "Ada", "Lovelace", "ada@example.org")},
    )
    assert await api.get(ADMIN, f"student/c1/{STUDENT}") == (404, failure("Student not found"))
    assert await api.courses(STUDENT) == ["c1"]


@pytest.mark.backends("embedded")  # refused while reading the form, before any store
@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "Please supply first name"),
        ({"last_name": "L", "email": "e"}, "Please supply first name"),
        ({"first_name": "F"}, "Please supply last name"),
        ({"first_name": "F", "email": "e"}, "Please supply last name"),
        ({"first_name": "F", "last_name": "L"}, "Please supply email"),
    ],
)
@pytest.mark.parametrize("caller", [ADMIN, INSTRUCTOR])
async def test_adding_an_instructor_needs_all_three_name_fields(api, course, caller, fields, message):
    assert await api.post(caller, f"instructor/c1/{INSTRUCTOR}", **fields) == (400, failure(message))
    assert await api.get(ADMIN, f"instructor/c1/{INSTRUCTOR}") == (200, {"success": True, **record(INSTRUCTOR)})


async def test_looking_up_a_student_as_instructor_is_not_found(api, course):
    assert await api.get(INSTRUCTOR, f"instructor/c1/{STUDENT}") == (404, failure("Instructor not found"))


async def test_looking_up_an_instructor_of_a_missing_course_is_not_found(api):
    assert await api.get(ADMIN, f"instructor/nope/{INSTRUCTOR}") == (404, failure("Course not found"))
    assert await api.get(OUTSIDER, f"instructor/nope/{INSTRUCTOR}") == (404, failure("Course not found"))


async def test_instructors_of_a_missing_course_are_not_found(api):
    assert await api.get(ADMIN, "instructors/nope") == (404, failure("Course not found"))


async def test_admin_removes_an_instructor(api, course):
    assert await api.delete(ADMIN, f"instructor/c1/{OTHER_INSTRUCTOR}") == (200, {"success": True})
    assert await api.instructors("c1") == [INSTRUCTOR]
    assert await api.courses(OTHER_INSTRUCTOR) == []
    assert await api.get(ADMIN, f"instructor/c1/{OTHER_INSTRUCTOR}") == (404, failure("Instructor not found"))


async def test_removing_a_non_instructor_is_not_found(api, course):
    assert await api.delete(ADMIN, f"instructor/c1/{STUDENT}") == (404, failure("Instructor not found"))
    assert await api.students("c1") == [STUDENT]


async def test_removing_an_instructor_of_a_missing_course_is_not_found(api):
    assert await api.delete(ADMIN, f"instructor/nope/{INSTRUCTOR}") == (404, failure("Course not found"))


async def test_a_removed_instructor_keeps_their_submissions(api, course):
    await api.release("c1", "a1")
    timestamp = await api.submit(OTHER_INSTRUCTOR, "c1", "a1")
    await api.delete(ADMIN, f"instructor/c1/{OTHER_INSTRUCTOR}")
    assert await api.submissions("c1", "a1") == [{"student_id": OTHER_INSTRUCTOR, "timestamp": timestamp}]


async def test_an_over_long_instructor_id_is_refused(api, course):
    status, body = await api.post(ADMIN, f"instructor/c1/{LONG_ID}", **NAMES)
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR]


# ---------------------------------------------------------------------------------------------
# one student


async def test_an_instructor_adds_a_student_with_names(api, course):
    status, body = await api.post(INSTRUCTOR, f"student/c1/{OTHER_STUDENT}", **NAMES)
    assert (status, body) == (200, {"success": True})
    assert await api.get(OTHER_STUDENT, f"student/c1/{OTHER_STUDENT}") == (
        200,
        {"success": True, **record(OTHER_STUDENT, "Ada", "Lovelace", "ada@example.org")},
    )
    assert await api.students("c1") == [STUDENT, OTHER_STUDENT]
    assert await api.courses(OTHER_STUDENT) == ["c1"]


async def test_adding_an_existing_student_updates_the_names(api, course):
    await api.add_student("c1", STUDENT, caller=INSTRUCTOR, first_name="A", last_name="B", email="C")
    await api.add_student("c1", STUDENT, caller=INSTRUCTOR, **NAMES)
    status, body = await api.get(INSTRUCTOR, "students/c1")
    assert body == {"success": True, "students": [record(STUDENT, "Ada", "Lovelace", "ada@example.org")]}


@pytest.mark.parametrize("caller", [ADMIN, INSTRUCTOR])
async def test_an_instructor_cannot_be_added_as_student(api, course, caller):
    status, body = await api.post(caller, f"student/c1/{OTHER_INSTRUCTOR}", **NAMES)
    assert (status, body) == (409, failure("Cannot add instructor as student"))
    assert await api.students("c1") == [STUDENT]
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR]


@pytest.mark.backends("embedded")  # refused while reading the form, before any store
@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "Please supply first name"),
        ({"first_name": "F", "email": "e"}, "Please supply last name"),
        ({"first_name": "F", "last_name": "L"}, "Please supply email"),
    ],
)
async def test_adding_a_student_needs_all_three_name_fields(api, course, fields, message):
    assert await api.post(INSTRUCTOR, f"student/c1/{OTHER_STUDENT}", **fields) == (400, failure(message))
    # the name check comes before the instructor conflict
    assert await api.post(INSTRUCTOR, f"student/c1/{OTHER_INSTRUCTOR}", **fields) == (400, failure(message))
    assert await api.students("c1") == [STUDENT]


async def test_admin_may_add_themselves_as_student(api, course):
    await api.add_student("c1", ADMIN)
    assert await api.students("c1") == [STUDENT, ADMIN]
    assert (await api.get(ADMIN, f"student/c1/{ADMIN}"))[0] == 200


async def test_a_student_cannot_look_up_another_student(api, course):
    await api.add_student("c1", OTHER_STUDENT)
    assert await api.get(STUDENT, f"student/c1/{OTHER_STUDENT}") == (403, failure("Permission denied"))


async def test_looking_up_an_instructor_as_student_is_not_found(api, course):
    assert await api.get(ADMIN, f"student/c1/{INSTRUCTOR}") == (404, failure("Student not found"))
    assert await api.get(INSTRUCTOR, f"student/c1/{INSTRUCTOR}") == (404, failure("Student not found"))


async def test_students_of_a_missing_course_are_not_found(api):
    assert await api.get(ADMIN, f"student/nope/{STUDENT}") == (404, failure("Course not found"))
    assert await api.get(ADMIN, "students/nope") == (404, failure("Course not found"))
    assert await api.post(ADMIN, f"student/nope/{STUDENT}", **NAMES) == (404, failure("Course not found"))


async def test_an_instructor_removes_a_student(api, course):
    await api.add_student("c1", OTHER_STUDENT)
    assert await api.delete(INSTRUCTOR, f"student/c1/{STUDENT}") == (200, {"success": True})
    assert await api.students("c1") == [OTHER_STUDENT]
    assert await api.courses(STUDENT) == []
    assert await api.get(STUDENT, f"student/c1/{STUDENT}") == (404, failure("Student not found"))


async def test_removing_a_non_student_is_not_found(api, course):
    assert await api.delete(INSTRUCTOR, f"student/c1/{OTHER_STUDENT}") == (404, failure("Student not found"))
    assert await api.delete(ADMIN, f"student/c1/{INSTRUCTOR}") == (404, failure("Student not found"))
    assert await api.instructors("c1") == [INSTRUCTOR, OTHER_INSTRUCTOR]


async def test_a_re_added_student_goes_to_the_end_of_the_list(api, course):
    await api.add_student("c1", OTHER_STUDENT)
    await api.delete(ADMIN, f"student/c1/{STUDENT}")
    await api.add_student("c1", STUDENT)
    assert await api.students("c1") == [OTHER_STUDENT, STUDENT]


async def test_an_over_long_student_id_is_refused(api, course):
    status, body = await api.post(ADMIN, f"student/c1/{LONG_ID}", **NAMES)
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.students("c1") == [STUDENT]


# ---------------------------------------------------------------------------------------------
# bulk add


def roster(*usernames, **names):
    fields = {"first_name": "F", "last_name": "L", "email": "e@example.org"} | names
    return [{"username": username, **fields} for username in usernames]


async def test_bulk_add_reports_each_entry_in_order(api, course):
    students = roster(OTHER_STUDENT, INSTRUCTOR, "s3")
    status, body = await api.post(INSTRUCTOR, "students/c1", students=json.dumps(students))
    assert (status, body) == (
        200,
        {
            "success": True,
            "status": [
                {"username": OTHER_STUDENT, "success": True},
                {"username": INSTRUCTOR, "success": False, "message": "Cannot add instructor as student"},
                {"username": "s3", "success": True},
            ],
        },
    )
    assert await api.students("c1") == [STUDENT, OTHER_STUDENT, "s3"]
    assert await api.get(ADMIN, "student/c1/s3") == (200, {"success": True, **record("s3", "F", "L", "e@example.org")})


async def test_bulk_add_keeps_duplicates_and_the_last_names_win(api, course):
    students = roster("s3", first_name="First") + roster("s3", first_name="Second")
    status, body = await api.post(ADMIN, "students/c1", students=json.dumps(students))
    assert status == 200
    assert body["status"] == [{"username": "s3", "success": True}, {"username": "s3", "success": True}]
    assert await api.students("c1") == [STUDENT, "s3"]
    status, body = await api.get(ADMIN, "student/c1/s3")
    assert body["first_name"] == "Second"


async def test_bulk_add_updates_existing_students_and_ignores_extra_keys(api, course):
    students = [{"username": STUDENT, "first_name": "A", "last_name": "B", "email": "C", "id": 7}]
    status, body = await api.post(INSTRUCTOR, "students/c1", students=json.dumps(students))
    assert (status, body) == (200, {"success": True, "status": [{"username": STUDENT, "success": True}]})
    assert await api.get(ADMIN, f"student/c1/{STUDENT}") == (200, {"success": True, **record(STUDENT, "A", "B", "C")})


@pytest.mark.backends("embedded")  # refused while reading the form, before any store
@pytest.mark.parametrize(
    "students, message",
    [
        (None, "Please supply students"),
        ("", "Please supply students"),
        ("[not json", "Students cannot be JSON decoded"),
        ("{}", "Incorrect request format"),
        ('"s3"', "Incorrect request format"),
        ("5", "Incorrect request format"),
        ("[]", "Please supply students"),
        ("[1]", "Incorrect request format"),
        ('["s3"]', "Incorrect request format"),
        (json.dumps([{"username": "s3", "first_name": "F", "last_name": "L"}]), "Incorrect request format"),
        (json.dumps([{"first_name": "F", "last_name": "L", "email": "e"}]), "Incorrect request format"),
        (json.dumps([{"username": 3, "first_name": "F", "last_name": "L", "email": "e"}]), "Incorrect request format"),
        (json.dumps([{"username": "s3", "first_name": None, "last_name": "L", "email": "e"}]), "Incorrect request format"),
        (json.dumps(roster("s3") + [{"username": "s4"}]), "Incorrect request format"),
    ],
    ids=[
        "missing",
        "empty",
        "not-json",
        "object",
        "string",
        "number",
        "empty-list",
        "number-item",
        "string-item",
        "no-email",
        "no-username",
        "numeric-username",
        "null-first-name",
        "one-bad-item-among-good",
    ],
)
async def test_bulk_add_rejects_malformed_input_as_a_whole(api, course, students, message):
    assert await api.post(INSTRUCTOR, "students/c1", students=students) == (400, failure(message))
    assert await api.students("c1") == [STUDENT]


async def test_bulk_add_with_an_over_long_username_stores_nothing(api, course):
    students = roster("s3", LONG_ID)
    status, body = await api.post(INSTRUCTOR, "students/c1", students=json.dumps(students))
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.students("c1") == [STUDENT]


async def test_usernames_with_odd_characters_round_trip(api, course):
    for name in ["ünï", "with space", "plus+sign", "dotted.name@example.org"]:
        await api.add_student("c1", name, caller=INSTRUCTOR)
        status, body = await api.get(INSTRUCTOR, f"student/c1/{q(name)}")
        assert (status, body["username"]) == (200, name)
    assert await api.students("c1") == [STUDENT, "ünï", "with space", "plus+sign", "dotted.name@example.org"]
