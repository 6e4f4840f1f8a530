"""Courses: GET courses, POST/DELETE course/<c> (spec §2.1–§2.3, §1.11)."""

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


async def test_a_new_service_has_no_courses(api):
    assert await api.get(ADMIN, "courses") == (200, {"success": True, "courses": []})


async def test_admin_creates_a_course_with_its_instructors(api):
    status, body = await api.post(ADMIN, "course/c1", instructors=json.dumps([INSTRUCTOR, OTHER_INSTRUCTOR]))
    assert (status, body) == (200, {"success": True})
    assert await api.courses() == ["c1"]
    status, body = await api.get(ADMIN, "instructors/c1")
    assert status == 200
    assert body["instructors"] == [
        {"username": INSTRUCTOR, "first_name": None, "last_name": None, "email": None},
        {"username": OTHER_INSTRUCTOR, "first_name": None, "last_name": None, "email": None},
    ]
    assert await api.students("c1") == []
    assert await api.assignments("c1") == []


async def test_instructors_field_is_optional(api):
    assert await api.post(ADMIN, "course/c1") == (200, {"success": True})
    assert await api.instructors("c1") == []


async def test_admin_sees_every_course_sorted_by_code_point(api):
    for course in ["c1", "ünï", "My Course+1", "B"]:
        await api.create_course(course)
    assert await api.courses() == ["B", "My Course+1", "c1", "ünï"]


async def test_members_see_the_courses_they_teach_or_take(api):
    await api.create_course("c2", [INSTRUCTOR], [STUDENT])
    await api.create_course("c1", [INSTRUCTOR], [OTHER_STUDENT])
    await api.create_course("c3", [OTHER_INSTRUCTOR], [STUDENT])
    assert await api.courses(INSTRUCTOR) == ["c1", "c2"]
    assert await api.courses(STUDENT) == ["c2", "c3"]
    assert await api.courses(OTHER_STUDENT) == ["c1"]
    assert await api.courses(OUTSIDER) == []


async def test_an_admin_who_also_takes_a_course_sees_it_once(api):
    await api.create_course("c1", [INSTRUCTOR])
    await api.create_course("c2")
    await api.add_student("c1", ADMIN)
    assert await api.courses(ADMIN) == ["c1", "c2"]


async def test_course_ids_may_hold_spaces_plus_slash_and_non_ascii(api):
    for course in ["My Course+1", "a/b", "ünï 日本"]:
        status, body = await api.post(ADMIN, f"course/{q(course)}", instructors=json.dumps([INSTRUCTOR]))
        assert (status, body) == (200, {"success": True})
        assert await api.instructors(course) == [INSTRUCTOR]
    assert await api.courses(INSTRUCTOR) == ["My Course+1", "a/b", "ünï 日本"]


async def test_course_ids_are_case_sensitive(api):
    await api.create_course("c1")
    assert await api.post(ADMIN, "course/C1") == (200, {"success": True})
    assert await api.courses() == ["C1", "c1"]


async def test_creating_an_existing_course_conflicts(api):
    await api.create_course("c1", [INSTRUCTOR])
    status, body = await api.post(ADMIN, "course/c1", instructors=json.dumps([OTHER_INSTRUCTOR]))
    assert (status, body) == (409, failure("Course already exists"))
    assert await api.instructors("c1") == [INSTRUCTOR]


async def test_instructors_that_are_not_json_are_rejected(api):
    status, body = await api.post(ADMIN, "course/c1", instructors="[not json")
    assert (status, body) == (400, failure("Instructors cannot be JSON decoded"))
    assert await api.courses() == []


@pytest.mark.backends("embedded")  # refused while reading the form, before any store
@pytest.mark.parametrize(
    "instructors",
    ['"ab"', "5", "{}", '{"a": 1}', "[1]", "[null]", '[["a"]]', "null", "true"],
)
async def test_instructors_that_are_not_a_list_of_names_are_rejected(api, instructors):
    status, body = await api.post(ADMIN, "course/c1", instructors=instructors)
    assert (status, body) == (400, failure("Instructors cannot be JSON decoded"))
    assert await api.courses() == []


async def test_duplicate_instructors_are_stored_once(api):
    status, body = await api.post(ADMIN, "course/c1", instructors=json.dumps([INSTRUCTOR, INSTRUCTOR]))
    assert (status, body) == (200, {"success": True})
    assert await api.instructors("c1") == [INSTRUCTOR]


async def test_an_over_long_course_id_is_refused_and_nothing_is_stored(api):
    status, body = await api.post(ADMIN, f"course/{LONG_ID}", instructors=json.dumps([INSTRUCTOR]))
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.courses() == []
    assert await api.courses(INSTRUCTOR) == []


async def test_an_over_long_instructor_id_is_refused_and_nothing_is_stored(api):
    status, body = await api.post(ADMIN, "course/c1", instructors=json.dumps([INSTRUCTOR, LONG_ID]))
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.courses() == []


async def test_deleting_a_missing_course_is_not_found(api):
    assert await api.delete(ADMIN, "course/nope") == (404, failure("Course not found"))


async def test_deleting_a_course_removes_it_from_every_listing(api):
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.create_course("c2", [INSTRUCTOR])
    assert await api.delete(ADMIN, "course/c1") == (200, {"success": True})
    assert await api.courses() == ["c2"]
    assert await api.courses(INSTRUCTOR) == ["c2"]
    assert await api.courses(STUDENT) == []
    assert await api.get(ADMIN, "assignments/c1") == (404, failure("Course not found"))


async def test_a_re_created_course_starts_empty(api):
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.release("c1", "a1", [("a.txt", b"A")])
    timestamp = await api.submit(STUDENT, "c1", "a1", [("s.txt", b"S")])
    await api.give_feedback("c1", "a1", STUDENT, timestamp, [("f.html", b"F")])
    await api.delete(ADMIN, "course/c1")

    await api.create_course("c1", [OTHER_INSTRUCTOR])
    assert await api.instructors("c1") == [OTHER_INSTRUCTOR]
    assert await api.students("c1") == []
    assert await api.assignments("c1") == []
    assert await api.courses(INSTRUCTOR) == []
    assert await api.courses(STUDENT) == []
    # the old assignment id is free again and carries none of the old submissions
    await api.release("c1", "a1", [("b.txt", b"B")])
    assert await api.submissions("c1", "a1") == []
    files = await api.assignment_files("c1", "a1")
    assert [entry["path"] for entry in files] == ["b.txt"]


async def test_users_survive_the_deletion_of_their_course(api):
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.delete(ADMIN, "course/c1")
    await api.create_course("c2", [INSTRUCTOR], [STUDENT])
    assert await api.courses(INSTRUCTOR) == ["c2"]
    assert await api.courses(STUDENT) == ["c2"]


async def test_instructors_are_listed_in_the_order_given(api):
    await api.create_course("c1", ["zed", "amy", "max"])
    assert await api.instructors("c1") == ["zed", "amy", "max"]
