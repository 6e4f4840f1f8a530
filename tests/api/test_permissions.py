"""The authorization matrix of spec §1.6 as one table, in production and debug mode (§1.7),
checked cell by cell on one classroom: permissions are decided above the stores, so the
embedded backends suffice."""

import json
from dataclasses import dataclass, field

from .support import (
    ADMIN,
    INSTRUCTOR,
    OTHER_INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    STUDENT,
    encode_files,
    failure,
    set_up_classroom,
)

ROLES = {"admin": ADMIN, "instructor": INSTRUCTOR, "student": STUDENT, "other": OUTSIDER}

ALLOWED = "allowed"
NOT_ADMIN = "not admin"
NOT_INSTRUCTOR = "not course instructor"
NOT_RELATED = "not related to course"
STUDENT_NOT_FOUND = (404, "Student not found")

NAMES = {"first_name": "F", "last_name": "L", "email": "e@example.org"}


@dataclass(frozen=True)
class Row:
    """One line of the matrix. In `route`, `{self}` is the caller for the student and other
    roles (the "self" cells) and student1 for admin and instructor; `{timestamp}` in a field
    is student1's submission."""

    method: str
    route: str
    outcomes: dict
    fields: dict = field(default_factory=dict)


def everyone(admin, instructor, student, other):
    return {"admin": admin, "instructor": instructor, "student": student, "other": other}


MATRIX = {
    "GET courses": Row("GET", "courses", everyone(ALLOWED, ALLOWED, ALLOWED, ALLOWED)),
    "POST course": Row(
        "POST", "course/new", everyone(ALLOWED, NOT_ADMIN, NOT_ADMIN, NOT_ADMIN), {"instructors": json.dumps([INSTRUCTOR])}
    ),
    "DELETE course": Row("DELETE", "course/c1", everyone(ALLOWED, NOT_ADMIN, NOT_ADMIN, NOT_ADMIN)),
    "POST instructor": Row(
        "POST", f"instructor/c1/{INSTRUCTOR}", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR), NAMES
    ),
    "GET instructor": Row("GET", f"instructor/c1/{INSTRUCTOR}", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED)),
    "DELETE instructor": Row("DELETE", f"instructor/c1/{INSTRUCTOR}", everyone(ALLOWED, NOT_ADMIN, NOT_ADMIN, NOT_ADMIN)),
    "GET instructors": Row("GET", "instructors/c1", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED)),
    "POST student": Row("POST", "student/c1/newcomer", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR), NAMES),
    "GET student": Row("GET", "student/c1/{self}", everyone(ALLOWED, ALLOWED, ALLOWED, STUDENT_NOT_FOUND)),
    "DELETE student": Row("DELETE", f"student/c1/{STUDENT}", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR)),
    "POST students": Row(
        "POST",
        "students/c1",
        everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR),
        {"students": json.dumps([{"username": "newcomer", **NAMES}])},
    ),
    "GET students": Row("GET", "students/c1", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR)),
    "GET assignments": Row("GET", "assignments/c1", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED)),
    "GET assignment": Row("GET", "assignment/c1/a1", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED)),
    "POST assignment": Row(
        "POST", "assignment/c1/a2", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR), {"files": "[]"}
    ),
    "DELETE assignment": Row("DELETE", "assignment/c1/a1", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR)),
    "GET submissions": Row("GET", "submissions/c1/a1", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR)),
    "GET student submissions": Row(
        "GET", "submissions/c1/a1/{self}", everyone(ALLOWED, ALLOWED, ALLOWED, STUDENT_NOT_FOUND)
    ),
    "POST submission": Row(
        "POST", "submission/c1/a1", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED), {"files": encode_files([("x", b"x")])}
    ),
    "GET submission": Row(
        "GET", f"submission/c1/a1/{STUDENT}", everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR)
    ),
    "POST feedback": Row(
        "POST",
        f"feedback/c1/a1/{STUDENT}",
        everyone(ALLOWED, ALLOWED, NOT_INSTRUCTOR, NOT_INSTRUCTOR),
        {"timestamp": "{timestamp}", "files": encode_files([("a1.html", b"F")], with_newlines=True)},
    ),
    "GET feedback": Row(
        "GET", "feedback/c1/a1/{self}", everyone(ALLOWED, ALLOWED, ALLOWED, STUDENT_NOT_FOUND), {"timestamp": "{timestamp}"}
    ),
    # Not in ngshare: the audit trail.
    "GET events": Row("GET", "events/c1", everyone(ALLOWED, ALLOWED, ALLOWED, NOT_RELATED)),
}

MODES = {"production": False, "debug": True}
DEBUG_ROUTE = "initialize-Data6ase"


def expected_answer(outcome, debug: bool):
    if isinstance(outcome, tuple):
        status, message = outcome
        return status, failure(message)
    message = "Permission denied" + (f" ({outcome})" if debug else "")
    return 403, failure(message)


class OneClassroom:
    """The classroom every cell is checked against. A cell's call that changed what the
    database holds (an allowed write) is followed by setting the classroom up afresh, so each
    cell meets the same state; a refused call must not change it."""

    def __init__(self, production, debug) -> None:
        self.production, self.debug = production, debug
        self.timestamp = ""
        self.state: dict = {}

    async def set_up(self) -> None:
        await self.debug.ok("GET", ADMIN, DEBUG_ROUTE, action="clear")
        await set_up_classroom(self.production)
        self.timestamp = await self.production.submit(STUDENT, "c1", "a1", [("a1.ipynb", b"{}")])
        self.state = await self.snapshot()

    async def snapshot(self) -> dict:
        return await self.production.ok("GET", ADMIN, DEBUG_ROUTE, action="dump")

    async def check(self, name: str, role: str, mode: str) -> str | None:
        """None if the cell holds, else what went wrong, naming the cell."""
        row, caller, debug = MATRIX[name], ROLES[role], MODES[mode]
        api = self.debug if debug else self.production
        target = caller if role in ("student", "other") else STUDENT
        route = row.route.format(self=target)
        fields = {key: value.replace("{timestamp}", self.timestamp) for key, value in row.fields.items()}
        answer = await api.call(row.method, caller, route, **fields)

        outcome = row.outcomes[role]
        problems = []
        if outcome == ALLOWED:
            status, body = answer
            if status != 200 or not isinstance(body, dict) or body.get("success") is not True:
                problems.append(f"expected success, got {answer}")
        elif answer != expected_answer(outcome, debug):
            problems.append(f"expected {expected_answer(outcome, debug)}, got {answer}")
        if await self.snapshot() != self.state:
            if outcome != ALLOWED:
                problems.append("the refused call changed what the database holds")
            await self.set_up()
        return f"{name} as {role} ({mode}): {'; '.join(problems)}" if problems else None


async def test_permission_matrix(make_api):
    """Every cell of the matrix, in production and debug mode, on one classroom served by two
    services (production and debug) that share the backend."""
    classroom = OneClassroom(await make_api(), await make_api(debug=True))
    await classroom.set_up()
    failures = []
    for mode in MODES:
        for name in MATRIX:
            for role in ROLES:
                if problem := await classroom.check(name, role, mode):
                    failures.append(problem)
    assert not failures, f"{len(failures)} cells of the matrix do not hold:\n" + "\n".join(failures)


async def test_an_outsider_lists_no_courses(api, classroom):
    assert await api.get(OUTSIDER, "courses") == (200, {"success": True, "courses": []})


async def test_an_admin_passes_course_checks_without_being_a_member(api, classroom):
    assert await api.courses(ADMIN) == ["c1", "c2"]
    assert await api.students("c1", caller=ADMIN) == [STUDENT, OTHER_STUDENT]
    assert await api.submissions("c1", "a1", caller=ADMIN) == []


async def test_an_instructor_of_another_course_is_an_outsider_here(api, classroom):
    assert await api.get(OTHER_INSTRUCTOR, "students/c1") == (403, failure("Permission denied"))
    assert await api.post(OTHER_INSTRUCTOR, "assignment/c1/a9", files="[]") == (403, failure("Permission denied"))
    assert await api.get(OTHER_INSTRUCTOR, "assignment/c1/a1") == (403, failure("Permission denied"))
    assert await api.assignments("c1") == ["a1"]


async def test_denied_writes_change_nothing(api, classroom):
    assert await api.delete(STUDENT, "course/c1") == (403, failure("Permission denied"))
    assert await api.delete(STUDENT, "assignment/c1/a1") == (403, failure("Permission denied"))
    assert await api.delete(OUTSIDER, f"student/c1/{STUDENT}") == (403, failure("Permission denied"))
    assert await api.post(OUTSIDER, "submission/c1/a1", files="[]") == (403, failure("Permission denied"))
    assert await api.courses() == ["c1", "c2"]
    assert await api.assignments("c1") == ["a1"]
    assert await api.students("c1") == [STUDENT, OTHER_STUDENT]
    assert await api.submissions("c1", "a1") == []
