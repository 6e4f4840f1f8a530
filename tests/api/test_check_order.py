"""Which error wins when a request fails several checks at once (spec §2, §7.1 item 4).
Every request here is wrong in at least two ways; the answer names the first check."""

import json

import pytest

from .support import ADMIN, INSTRUCTOR, OTHER_STUDENT, OUTSIDER, STUDENT, encode_files, failure

BAD_FILES = "[not json"
NAMES = {"first_name": "F", "last_name": "L", "email": "e"}

# (caller, method, route, fields, status, message)
CASES = {
    "admin check before course lookup on DELETE instructor": (
        STUDENT, "DELETE", f"instructor/nope/{INSTRUCTOR}", {}, 403, "Permission denied"),
    "admin check before existence on POST course": (
        INSTRUCTOR, "POST", "course/c1", {"instructors": "[bad"}, 403, "Permission denied"),
    "admin check before course lookup on DELETE course": (
        STUDENT, "DELETE", "course/nope", {}, 403, "Permission denied"),
    "existing course before instructors parsing": (
        ADMIN, "POST", "course/c1", {"instructors": "[bad"}, 409, "Course already exists"),
    "course lookup before permission on POST instructor": (
        OUTSIDER, "POST", f"instructor/nope/{OUTSIDER}", {}, 404, "Course not found"),
    "course lookup before permission on GET students": (
        OUTSIDER, "GET", "students/nope", {}, 404, "Course not found"),
    "course lookup before permission on GET assignment": (
        OUTSIDER, "GET", "assignment/nope/a1", {}, 404, "Course not found"),
    "permission before missing names on POST instructor": (
        STUDENT, "POST", f"instructor/c1/{STUDENT}", {}, 403, "Permission denied"),
    "missing names before the student conversion check": (
        INSTRUCTOR, "POST", f"instructor/c1/{STUDENT}", {"first_name": "F"}, 400, "Please supply last name"),
    "permission before missing names on POST student": (
        STUDENT, "POST", f"student/c1/{OTHER_STUDENT}", {}, 403, "Permission denied"),
    "permission before malformed students": (
        STUDENT, "POST", "students/c1", {"students": "[bad"}, 403, "Permission denied"),
    "permission before assignment lookup on GET assignment": (
        OUTSIDER, "GET", "assignment/c1/nope", {}, 403, "Permission denied"),
    "permission before existing assignment on POST assignment": (
        STUDENT, "POST", "assignment/c1/a1", {"files": BAD_FILES}, 403, "Permission denied"),
    "permission before assignment lookup on DELETE assignment": (
        STUDENT, "DELETE", "assignment/c1/nope", {}, 403, "Permission denied"),
    "existing assignment before missing files": (
        INSTRUCTOR, "POST", "assignment/c1/a1", {}, 409, "Assignment already exists"),
    "permission before assignment lookup on GET submissions": (
        STUDENT, "GET", "submissions/c1/nope", {}, 403, "Permission denied"),
    "permission before assignment lookup on POST submission": (
        OUTSIDER, "POST", "submission/c1/nope", {"files": BAD_FILES}, 403, "Permission denied"),
    "assignment lookup before files on POST submission": (
        STUDENT, "POST", "submission/c1/nope", {"files": BAD_FILES}, 404, "Assignment not found"),
    "permission before assignment lookup on GET submission": (
        STUDENT, "GET", f"submission/c1/nope/{STUDENT}", {}, 403, "Permission denied"),
    "assignment lookup before target on GET submission": (
        INSTRUCTOR, "GET", f"submission/c1/nope/{OUTSIDER}", {}, 404, "Assignment not found"),
    "target membership before submission lookup on GET submission": (
        INSTRUCTOR, "GET", f"submission/c1/a1/{OUTSIDER}", {"timestamp": "a"}, 404, "Student not found"),
    "permission before assignment lookup on POST feedback": (
        STUDENT, "POST", f"feedback/c1/nope/{STUDENT}", {}, 403, "Permission denied"),
    "target membership before timestamp on POST feedback": (
        INSTRUCTOR, "POST", f"feedback/c1/a1/{OUTSIDER}", {"files": BAD_FILES}, 404, "Student not found"),
    "missing timestamp before files on POST feedback": (
        INSTRUCTOR, "POST", f"feedback/c1/a1/{STUDENT}", {"files": BAD_FILES}, 400, "Please supply timestamp"),
    "timestamp format before submission lookup on GET feedback": (
        STUDENT, "GET", f"feedback/c1/a1/{STUDENT}", {"timestamp": "a"}, 400, "Time format incorrect"),
}


@pytest.mark.parametrize("case", CASES)
async def test_the_first_failing_check_decides_the_answer(api, classroom, case):
    caller, method, route, fields, status, message = CASES[case]
    assert await api.call(method, caller, route, **fields) == (status, failure(message))
    assert await api.courses() == ["c1", "c2"]
    assert await api.assignments("c1") == ["a1"]


async def test_the_first_bad_file_decides_between_path_and_content(api, classroom):
    files = json.dumps([{"path": "ok", "content": "YQ"}, {"path": "/abs", "content": "b2s="}])
    assert await api.post(INSTRUCTOR, "assignment/c1/a2", files=files) == (
        400,
        failure("Content cannot be base64 decoded"),
    )
    files = encode_files([("/abs", b"x")])
    assert await api.post(STUDENT, "submission/c1/a1", files=files) == (400, failure("Illegal path"))
    assert await api.assignments("c1") == ["a1"]
    assert await api.submissions("c1", "a1") == []
