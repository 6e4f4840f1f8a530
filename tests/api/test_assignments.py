"""Assignments: assignments/<c>, assignment/<c>/<a> (spec §2.13–§2.16)."""

import pytest

from .support import (
    ADMIN,
    INSTRUCTOR,
    LONG_ID,
    OTHER_INSTRUCTOR,
    STUDENT,
    encode_files,
    expected_tree,
    failure,
    q,
)

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

NOTEBOOK = [("ps1.ipynb", b'{"cells": []}'), ("data/input.csv", b"a,b\n1,2\n")]


async def test_a_released_assignment_is_listed_and_fetched_by_students(api, classroom):
    await api.release("c1", "ps1", NOTEBOOK, caller=INSTRUCTOR)
    assert await api.get(STUDENT, "assignments/c1") == (200, {"success": True, "assignments": ["a1", "ps1"]})
    assert await api.get(STUDENT, "assignment/c1/ps1") == (200, {"success": True, "files": expected_tree(NOTEBOOK)})


async def test_an_assignment_may_have_no_files(api, classroom):
    status, body = await api.post(INSTRUCTOR, "assignment/c1/empty", files="[]")
    assert (status, body) == (200, {"success": True})
    assert await api.get(STUDENT, "assignment/c1/empty") == (200, {"success": True, "files": []})


async def test_assignments_are_listed_in_release_order(api, classroom):
    for assignment in ["zeta", "alpha", "mid"]:
        await api.release("c1", assignment)
    assert await api.assignments("c1") == ["a1", "zeta", "alpha", "mid"]


async def test_a_course_without_assignments_lists_none(api, classroom):
    assert await api.get(OTHER_INSTRUCTOR, "assignments/c2") == (200, {"success": True, "assignments": []})


async def test_assignments_of_a_missing_course_are_not_found(api):
    assert await api.get(ADMIN, "assignments/nope") == (404, failure("Course not found"))
    assert await api.get(ADMIN, "assignments/*") == (404, failure("Course not found"))


async def test_fetching_a_missing_assignment_is_not_found(api, classroom):
    assert await api.get(STUDENT, "assignment/c1/nope") == (404, failure("Assignment not found"))
    assert await api.get(STUDENT, "assignment/nope/a1") == (404, failure("Course not found"))


async def test_releasing_an_existing_assignment_conflicts_and_keeps_its_files(api, classroom):
    status, body = await api.post(INSTRUCTOR, "assignment/c1/a1", files=encode_files([("new.txt", b"new")]))
    assert (status, body) == (409, failure("Assignment already exists"))
    assert await api.assignment_files("c1", "a1") == expected_tree(classroom.release_files)


async def test_the_conflict_is_reported_before_the_files_are_checked(api, classroom):
    assert await api.post(INSTRUCTOR, "assignment/c1/a1", files="[not json") == (409, failure("Assignment already exists"))
    assert await api.post(INSTRUCTOR, "assignment/c1/a1") == (409, failure("Assignment already exists"))


async def test_releasing_into_a_missing_course_is_not_found(api):
    assert await api.post(ADMIN, "assignment/nope/a1", files="[]") == (404, failure("Course not found"))


async def test_files_may_come_in_the_query_string_when_releasing(api, classroom):
    reply = await api.raw(
        "POST", api.prefix + "assignment/c1/ps1", caller=INSTRUCTOR, params={"files": encode_files(NOTEBOOK)}
    )
    assert (reply.status, reply.json) == (200, {"success": True})
    assert await api.assignment_files("c1", "ps1") == expected_tree(NOTEBOOK)


async def test_an_assignment_id_may_hold_odd_characters(api, classroom):
    for assignment in ["ps 1+2", "ünï", "a/b"]:
        await api.release("c1", assignment, NOTEBOOK)
        assert await api.assignment_files("c1", assignment, caller=STUDENT) == expected_tree(NOTEBOOK)
    assert await api.assignments("c1") == ["a1", "ps 1+2", "ünï", "a/b"]


async def test_an_over_long_assignment_id_is_refused_and_nothing_is_stored(api, classroom):
    status, body = await api.post(INSTRUCTOR, f"assignment/c1/{LONG_ID}", files=encode_files(NOTEBOOK))
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await api.assignments("c1") == ["a1"]


async def test_deleting_an_assignment_removes_it(api, classroom):
    assert await api.delete(INSTRUCTOR, "assignment/c1/a1") == (200, {"success": True})
    assert await api.assignments("c1") == []
    assert await api.get(STUDENT, "assignment/c1/a1") == (404, failure("Assignment not found"))


async def test_deleting_a_missing_assignment_is_not_found(api, classroom):
    assert await api.delete(INSTRUCTOR, "assignment/c1/nope") == (404, failure("Assignment not found"))
    assert await api.delete(ADMIN, "assignment/nope/a1") == (404, failure("Course not found"))


async def test_deleting_an_assignment_destroys_its_submissions_and_feedback(api, classroom):
    timestamp = await api.submit(STUDENT, "c1", "a1", [("s.ipynb", b"S")])
    await api.give_feedback("c1", "a1", STUDENT, timestamp, [("s.html", b"F")])
    await api.delete(INSTRUCTOR, "assignment/c1/a1")

    await api.release("c1", "a1", [("v2.ipynb", b"V2")], caller=INSTRUCTOR)
    assert await api.assignment_files("c1", "a1") == expected_tree([("v2.ipynb", b"V2")])
    assert await api.submissions("c1", "a1") == []
    assert await api.get(INSTRUCTOR, f"submissions/c1/a1/{STUDENT}") == (200, {"success": True, "submissions": []})
    route = f"submission/c1/a1/{STUDENT}"
    assert await api.get(INSTRUCTOR, route) == (404, failure("Submission not found"))
    assert await api.get(INSTRUCTOR, route, timestamp=timestamp) == (404, failure("Submission not found"))
    assert await api.get(STUDENT, f"feedback/c1/a1/{STUDENT}", timestamp=timestamp) == (404, failure("Submission not found"))


async def test_deleting_one_assignment_leaves_the_others(api, classroom):
    await api.release("c1", "a2", NOTEBOOK)
    timestamp = await api.submit(STUDENT, "c1", "a2")
    await api.delete(INSTRUCTOR, "assignment/c1/a1")
    assert await api.assignments("c1") == ["a2"]
    assert await api.submissions("c1", "a2") == [{"student_id": STUDENT, "timestamp": timestamp}]
    assert await api.assignment_files("c1", "a2") == expected_tree(NOTEBOOK)


async def test_same_assignment_id_in_two_courses_is_two_assignments(api, classroom):
    await api.release("c2", "a1", [("other.txt", b"other course")])
    assert await api.assignment_files("c1", "a1") == expected_tree(classroom.release_files)
    assert await api.assignment_files("c2", "a1") == expected_tree([("other.txt", b"other course")])
    await api.delete(ADMIN, f"assignment/{q('c2')}/a1")
    assert await api.assignment_files("c1", "a1") == expected_tree(classroom.release_files)
