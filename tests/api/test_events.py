"""The audit trail, an addition to ngshare's API: GET events/<course> with the optional filters
`assignment` and `student`, and pages cut by `limit` and the `before` cursor."""

import pytest

from .support import (
    ADMIN,
    INSTRUCTOR,
    OTHER_INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    STUDENT,
    TIMESTAMP_FORMAT,
    failure,
)

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

FIELDS = {"timestamp", "user", "action", "course_id", "assignment_id", "student_id", "detail"}

# What set_up_classroom leaves in c1's trail, oldest first: (user, action, assignment, student).
SET_UP = [
    (ADMIN, "create course", None, None),
    (ADMIN, "put student", None, STUDENT),
    (ADMIN, "put student", None, OTHER_STUDENT),
    (INSTRUCTOR, "release assignment", "a1", None),
]


async def events(api, caller: str, course: str = "c1", **params) -> list[dict]:
    """Every event the caller may see, following `next` through all pages."""
    found, before = [], None
    while True:
        page = await api.ok("GET", caller, f"events/{course}", **params, **({"before": before} if before else {}))
        assert set(page) == {"success", "events", "next"}
        found += page["events"]
        before = page["next"]
        if before is None:
            return found


def summary(found: list[dict]) -> list[tuple]:
    return [(e["user"], e["action"], e["assignment_id"], e["student_id"]) for e in found]


@pytest.fixture
async def cycle(api, classroom) -> dict:
    """A whole course cycle after the set-up: both students submit, the instructor collects
    student1's submission and gives feedback, then removes student2."""
    first = await api.submit(STUDENT, "c1", "a1", [("a1.ipynb", b"{}")])
    second = await api.submit(OTHER_STUDENT, "c1", "a1", [("a1.ipynb", b"{ }")])
    await api.ok("GET", INSTRUCTOR, f"submission/c1/a1/{STUDENT}")
    await api.give_feedback("c1", "a1", STUDENT, first, [("a1.html", b"ok")], caller=INSTRUCTOR)
    await api.ok("DELETE", INSTRUCTOR, f"student/c1/{OTHER_STUDENT}")
    return {"first": first, "second": second}


CYCLE = SET_UP + [
    (STUDENT, "submit", "a1", STUDENT),
    (OTHER_STUDENT, "submit", "a1", OTHER_STUDENT),
    (INSTRUCTOR, "collect submission", "a1", STUDENT),
    (INSTRUCTOR, "upload feedback", "a1", STUDENT),
    (INSTRUCTOR, "delete student", None, OTHER_STUDENT),
]


@pytest.mark.parametrize("caller", [INSTRUCTOR, ADMIN])
async def test_instructors_and_admins_see_every_action_of_a_cycle_newest_first(api, cycle, caller):
    found = await events(api, caller)
    assert summary(found) == CYCLE[::-1]
    assert all(set(e) == FIELDS and e["course_id"] == "c1" for e in found)
    assert all(TIMESTAMP_FORMAT.match(e["timestamp"]) for e in found)
    times = [e["timestamp"] for e in found]
    assert times == sorted(times, reverse=True)
    by_action = {(e["action"], e["student_id"]): e["detail"] for e in found}
    assert by_action[("submit", STUDENT)]["timestamp"] == cycle["first"]
    assert by_action[("submit", OTHER_STUDENT)]["timestamp"] == cycle["second"]
    assert by_action[("collect submission", STUDENT)]["timestamp"] == cycle["first"]
    assert by_action[("upload feedback", STUDENT)]["timestamp"] == cycle["first"]


async def test_another_course_keeps_its_own_trail(api, cycle):
    assert summary(await events(api, OTHER_INSTRUCTOR, "c2")) == [(ADMIN, "create course", None, None)]


async def test_filters_by_assignment_and_student(api, cycle):
    await api.release("c1", "a2", caller=INSTRUCTOR)
    await api.submit(STUDENT, "c1", "a2")
    a1 = [row for row in CYCLE if row[2] == "a1"][::-1]
    assert summary(await events(api, INSTRUCTOR, assignment="a1")) == a1
    assert summary(await events(api, INSTRUCTOR, assignment="a2")) == [
        (STUDENT, "submit", "a2", STUDENT),
        (INSTRUCTOR, "release assignment", "a2", None),
    ]
    about_student2 = [row for row in CYCLE if row[3] == OTHER_STUDENT][::-1]
    assert summary(await events(api, INSTRUCTOR, student=OTHER_STUDENT)) == about_student2
    assert summary(await events(api, INSTRUCTOR, assignment="a2", student=STUDENT)) == [
        (STUDENT, "submit", "a2", STUDENT)
    ]
    assert await events(api, INSTRUCTOR, assignment="nothing") == []


@pytest.mark.parametrize("limit", [1, 2, 4, 9])
async def test_pages_give_every_event_exactly_once(api, cycle, limit):
    everything = await events(api, INSTRUCTOR, limit="1000")
    assert len(everything) == len(CYCLE)
    pages = []
    before = None
    while True:
        params = {"limit": str(limit)} | ({"before": before} if before else {})
        page = await api.ok("GET", INSTRUCTOR, "events/c1", **params)
        assert 0 < len(page["events"]) <= limit
        pages.append(page["events"])
        before = page["next"]
        if before is None:
            break
    assert [e for page in pages for e in page] == everything
    assert len(pages) == -(-len(CYCLE) // limit)


async def test_a_filtered_page_carries_its_filter_through_the_cursor(api, cycle):
    first = await api.ok("GET", INSTRUCTOR, "events/c1", student=STUDENT, limit="2")
    assert summary(first["events"]) == [
        (INSTRUCTOR, "upload feedback", "a1", STUDENT),
        (INSTRUCTOR, "collect submission", "a1", STUDENT),
    ]
    rest = await api.ok("GET", INSTRUCTOR, "events/c1", student=STUDENT, limit="2", before=first["next"])
    assert summary(rest["events"]) == [(STUDENT, "submit", "a1", STUDENT), (ADMIN, "put student", None, STUDENT)]
    assert rest["next"] is None


async def test_a_student_sees_only_what_they_did_or_what_was_done_about_them(api, cycle):
    mine = [row for row in CYCLE if STUDENT in (row[0], row[3])][::-1]
    assert summary(await events(api, STUDENT)) == mine
    assert summary(await events(api, STUDENT, limit="1")) == mine
    assert summary(await events(api, STUDENT, assignment="a1")) == [row for row in mine if row[2] == "a1"]
    # Asking about someone else narrows, never widens.
    assert await events(api, STUDENT, student=OTHER_STUDENT) == []


async def test_a_removed_student_is_an_outsider(api, cycle):
    assert await api.get(OTHER_STUDENT, "events/c1") == (403, failure("Permission denied"))


@pytest.mark.parametrize("caller", [OUTSIDER, OTHER_INSTRUCTOR])
async def test_outsiders_are_refused_like_other_course_reads(api, classroom, caller):
    assert await api.get(caller, "events/c1") == await api.get(caller, "assignments/c1")
    assert await api.get(caller, "events/c1") == (403, failure("Permission denied"))


@pytest.mark.parametrize("caller", [ADMIN, INSTRUCTOR, OUTSIDER])
async def test_an_unknown_course_is_not_found(api, classroom, caller):
    assert await api.get(caller, "events/nope") == (404, failure("Course not found"))


LIMIT_MESSAGE = "Invalid limit: expected a whole number from 1 to 1000"
CURSOR_MESSAGE = "Invalid before: pass the `next` value of a previous page"


@pytest.mark.parametrize(
    "params, message",
    [
        ({"limit": "0"}, LIMIT_MESSAGE),
        ({"limit": "1001"}, LIMIT_MESSAGE),
        ({"limit": "-1"}, LIMIT_MESSAGE),
        ({"limit": "2.5"}, LIMIT_MESSAGE),
        ({"limit": "ten"}, LIMIT_MESSAGE),
        ({"limit": "٣"}, LIMIT_MESSAGE),  # a digit, but not an ASCII one
        ({"before": "not a cursor"}, CURSOR_MESSAGE),
        ({"before": "W10"}, CURSOR_MESSAGE),  # base64 of []
        ({"before": "WzEsMiwzXQ"}, CURSOR_MESSAGE),  # base64 of [1,2,3]: JSON, but not a position
    ],
)
async def test_bad_parameters_are_refused_and_change_nothing(api, cycle, params, message):
    before = await events(api, ADMIN)
    assert await api.get(INSTRUCTOR, "events/c1", **params) == (400, failure(message))
    assert await events(api, ADMIN) == before


async def test_anonymous_callers_are_sent_to_log_in(api, classroom):
    status, _ = await api.get(None, "events/c1")
    assert status == 302
