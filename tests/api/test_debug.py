"""The maintenance endpoint initialize-Data6ase, in and out of debug mode (spec §3, §1.7)."""

import pytest

from .support import ADMIN, INSTRUCTOR, NOT_FOUND_PAGE, OTHER_INSTRUCTOR, OUTSIDER, PREFIX, STUDENT, expected_tree, failure

ROUTE = "initialize-Data6ase"
# Table names may follow the service's own data model; these are the ones that hold anything
# about courses and must be gone once every course is.
COURSE_TABLES = {
    "courses",
    "members",
    "assignments",
    "submissions",
    "files",
    "instructor_assoc_table",
    "student_assoc_table",
    "assignment_files_assoc_table",
    "submission_files_assoc_table",
    "feedback_files_assoc_table",
}
DONE = (200, {"success": True, "message": "done"})
FIXTURE_PAST = "2020-01-01 00:00:00.000000"


# ---------------------------------------------------------------------------------------------
# production


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_admins_may_dump_outside_debug_mode(api, classroom):
    status, body = await api.get(ADMIN, ROUTE, action="dump")
    assert status == 200
    assert body["success"] is True
    assert {"courses", "assignments"} <= set(body)
    assert all(body[table] for table in body if table != "success"), "empty tables are left out"


@pytest.mark.parametrize(
    "caller, action",
    [
        (ADMIN, "clear"),
        (ADMIN, "init"),
        (ADMIN, None),
        (ADMIN, "bogus"),
        (INSTRUCTOR, "dump"),
        (STUDENT, "clear"),
        (OUTSIDER, "dump"),
    ],
)
async def test_everything_else_is_refused_outside_debug_mode(api, classroom, caller, action):
    assert await api.get(caller, ROUTE, action=action) == (403, failure("Debug mode is off"))
    assert await api.courses() == ["c1", "c2"]
    assert await api.assignments("c1") == ["a1"]


# ---------------------------------------------------------------------------------------------
# debug mode


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_anyone_may_clear_everything_in_debug_mode(debug_api):
    api = debug_api
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.release("c1", "a1", [("a.txt", b"A")])
    await api.submit(STUDENT, "c1", "a1")
    assert await api.get(OUTSIDER, ROUTE, action="clear") == DONE
    assert await api.courses() == []
    assert await api.courses(INSTRUCTOR) == []
    # ids are free again
    await api.create_course("c1")
    assert await api.assignments("c1") == []


@pytest.mark.parametrize("action", [None, "", "bogus", "DUMP"])
async def test_an_unknown_action_is_a_bad_request_in_debug_mode(debug_api, action):
    status, body = await debug_api.get(STUDENT, ROUTE, action=action)
    assert (status, body) == (400, failure("action should be clear, init, or dump"))


async def test_dump_in_debug_mode_is_open_to_everyone(debug_api):
    status, body = await debug_api.get(STUDENT, ROUTE, action="dump")
    assert (status, body["success"]) == (200, True)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_dump_omits_empty_tables(debug_api):
    api = debug_api
    await api.create_course("c1", [INSTRUCTOR], [STUDENT])
    await api.release("c1", "a1", [("a.txt", b"A")])
    status, body = await api.get(ADMIN, ROUTE, action="dump")
    assert {"courses", "assignments"} <= set(body)
    assert "submissions" not in body
    await api.delete(ADMIN, "course/c1")
    status, body = await api.get(ADMIN, ROUTE, action="dump")
    assert (status, body["success"]) == (200, True)
    assert not set(body) & COURSE_TABLES
    assert all(body[table] for table in body if table != "success"), "empty tables are left out"


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_init_adds_the_ngshare_fixture_data(debug_api):
    api = debug_api
    assert await api.get(ADMIN, ROUTE, action="clear") == DONE
    assert await api.get(STUDENT, ROUTE, action="init") == DONE

    assert await api.courses() == ["course1", "course2"]
    assert await api.courses("kevin") == ["course1"]
    assert await api.courses("lawrence") == ["course1"]
    assert await api.courses("abigail") == ["course2"]
    assert await api.courses("eric") == ["course2"]
    assert await api.get("kevin", "instructor/course1/kevin") == (
        200,
        {"success": True, "username": "kevin", "first_name": None, "last_name": None, "email": None},
    )
    assert await api.students("course1", caller="kevin") == ["lawrence"]
    assert await api.instructors("course2") == ["abigail"]
    assert await api.students("course2", caller="abigail") == ["eric"]

    assert await api.assignments("course1", caller="lawrence") == ["challenge"]
    assert await api.assignment_files("course1", "challenge") == expected_tree([("file2", b"22222")])
    assert await api.assignments("course2", caller="eric") == ["assignment2a", "assignment2b"]
    assert await api.assignment_files("course2", "assignment2a") == expected_tree([("file0", b"00000")])
    assert await api.assignment_files("course2", "assignment2b") == expected_tree([("file1", b"11111")])
    assert await api.submissions("course2", "assignment2a") == []
    assert await api.submissions("course2", "assignment2b") == []

    submissions = await api.submissions("course1", "challenge", caller="kevin")
    assert [entry["student_id"] for entry in submissions] == ["lawrence", "lawrence"]
    assert submissions[0]["timestamp"] == FIXTURE_PAST
    recent = submissions[1]["timestamp"]
    assert recent > FIXTURE_PAST

    route = "submission/course1/challenge/lawrence"
    assert await api.get("kevin", route) == (
        200,
        {"success": True, "files": expected_tree([("file4", b"44444")]), "timestamp": recent},
    )
    assert await api.get("kevin", route, timestamp=FIXTURE_PAST) == (
        200,
        {"success": True, "files": expected_tree([("file3", b"33333")]), "timestamp": FIXTURE_PAST},
    )
    assert await api.feedback_files("course1", "challenge", "lawrence", FIXTURE_PAST, caller="lawrence") == (
        expected_tree([("file5", b"55555")])
    )
    assert await api.feedback_files("course1", "challenge", "lawrence", recent, caller="lawrence") == []


async def test_debug_mode_never_dumps_the_environment_on_unknown_routes(debug_api):
    reply = await debug_api.raw("GET", PREFIX + "no-such-route", caller=ADMIN)
    assert (reply.status, reply.text) == (404, NOT_FOUND_PAGE)


async def test_debug_mode_adds_no_suffix_to_the_instructor_modification_messages(debug_api):
    api = debug_api
    await api.create_course("c1", [INSTRUCTOR, OTHER_INSTRUCTOR], [STUDENT])
    names = {"first_name": "F", "last_name": "L", "email": "e"}
    assert await api.post(INSTRUCTOR, f"instructor/c1/{STUDENT}", **names) == (
        400,
        failure("Permission denied (cannot modify instructors)"),
    )
    assert await api.post(INSTRUCTOR, f"instructor/c1/{OTHER_INSTRUCTOR}", **names) == (
        400,
        failure("Permission denied (cannot modify other instructors)"),
    )
