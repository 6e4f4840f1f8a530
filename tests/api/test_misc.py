"""Routing, health checks, pages, request size, argument handling (spec §1.1–§1.4, §3)."""

import pytest

from .support import (
    ADMIN,
    INSTRUCTOR,
    NOT_FOUND_PAGE,
    PREFIX,
    STUDENT,
    encode_files,
    expected_tree,
    q,
)


@pytest.mark.parametrize("path", ["/healthz", PREFIX + "healthz"])
async def test_health_checks_answer_without_a_login(api, path):
    reply = await api.raw("GET", path)
    assert reply.status == 200
    assert reply.json["success"] is True


@pytest.mark.parametrize(
    "path",
    [
        PREFIX + "no-such-route",
        "/no-such-route",
        "/",
        PREFIX + "courses/",
        PREFIX + "instructors/c1/",
        PREFIX + "assignment/c1",
        PREFIX + "submission/c1/a1/student1/extra",
        "/api/courses",
    ],
)
@pytest.mark.parametrize("caller", [None, ADMIN], ids=["anonymous", "admin"])
async def test_an_unknown_get_is_the_plain_404_page(api, classroom, path, caller):
    reply = await api.raw("GET", path, caller=caller)
    assert (reply.status, reply.text) == (404, NOT_FOUND_PAGE)


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
async def test_other_methods_on_unknown_paths_are_not_allowed(api, method):
    reply = await api.raw(method, PREFIX + "no-such-route", caller=ADMIN)
    assert reply.status == 405


@pytest.mark.parametrize(
    "method, route",
    [
        ("PUT", "courses"),
        ("PATCH", "courses"),
        ("HEAD", "courses"),
        ("POST", "courses"),
        ("DELETE", "courses"),
        ("GET", "course/c1"),
        ("PUT", "course/c1"),
        ("DELETE", "instructors/c1"),
        ("DELETE", "students/c1"),
        ("DELETE", "submission/c1/a1"),
        ("PUT", "feedback/c1/a1/student1"),
    ],
)
async def test_unsupported_methods_on_known_routes_are_not_allowed(api, classroom, method, route):
    reply = await api.raw(method, PREFIX + route, caller=ADMIN)
    assert reply.status == 405
    assert await api.courses() == ["c1", "c2"]


async def test_the_home_page_is_html_for_a_logged_in_user(api):
    reply = await api.raw("GET", PREFIX, caller=STUDENT)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")


async def test_the_oauth_callback_without_a_code_grants_nothing(api):
    reply = await api.raw("GET", PREFIX + "oauth_callback")
    assert reply.status in (302, 400)
    assert not any(cookie.startswith("service-ngshare=") for cookie in reply.headers.getall("Set-Cookie", []))


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_an_escaped_slash_stays_inside_one_id(api):
    await api.create_course("a/b", [INSTRUCTOR])
    await api.create_course("a")
    await api.release("a/b", "x/y", [("f.txt", b"F")])
    assert await api.courses(INSTRUCTOR) == ["a/b"]
    assert await api.get(INSTRUCTOR, f"assignments/{q('a/b')}") == (200, {"success": True, "assignments": ["x/y"]})
    assert await api.get(INSTRUCTOR, f"assignment/{q('a/b')}/{q('x/y')}") == (
        200,
        {"success": True, "files": expected_tree([("f.txt", b"F")])},
    )
    assert await api.assignments("a") == []


# ---------------------------------------------------------------------------------------------
# request size


async def test_a_body_over_the_limit_is_refused_with_an_envelope(make_api):
    api = await make_api(max_body_size=64 * 1024)
    await api.create_course("c1", [INSTRUCTOR])
    big = encode_files([("big.bin", b"\0" * (100 * 1024))])
    status, body = await api.post(INSTRUCTOR, "assignment/c1/big", files=big)
    assert status == 413
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert await api.assignments("c1") == []
    # a body within the limit is fine
    small = [("small.bin", b"\1" * (16 * 1024))]
    await api.release("c1", "small", small, caller=INSTRUCTOR)
    assert await api.assignment_files("c1", "small") == expected_tree(small)


# ---------------------------------------------------------------------------------------------
# arguments


async def names_of(api, course, student):
    status, body = await api.get(ADMIN, f"student/{course}/{student}")
    assert status == 200
    return body["first_name"], body["last_name"], body["email"]


async def test_argument_values_are_stripped_of_surrounding_whitespace(api, classroom):
    await api.add_student("c1", STUDENT, first_name="  Ada ", last_name="\tLovelace\n", email=" ada@example.org ")
    assert await names_of(api, "c1", STUDENT) == ("Ada", "Lovelace", "ada@example.org")


async def test_control_characters_in_arguments_become_spaces(api, classroom):
    await api.add_student("c1", STUDENT, first_name="A\x01B", last_name="C\x1fD", email="E\x08F")
    assert await names_of(api, "c1", STUDENT) == ("A B", "C D", "E F")


async def test_the_last_occurrence_of_an_argument_wins_body_after_query(api, classroom):
    reply = await api.raw(
        "POST",
        PREFIX + f"student/c1/{STUDENT}",
        caller=INSTRUCTOR,
        params={"first_name": "FromQuery", "email": "query@example.org"},
        data=[("first_name", "Body1"), ("first_name", "Body2"), ("last_name", "L")],
    )
    assert (reply.status, reply.json) == (200, {"success": True})
    assert await names_of(api, "c1", STUDENT) == ("Body2", "L", "query@example.org")


async def test_routes_follow_the_configured_prefix(make_api):
    api = await make_api(prefix="/api/", post_login_url="/api/")
    reply = await api.raw("GET", "/api/courses", caller=ADMIN)
    assert (reply.status, reply.json) == (200, {"success": True, "courses": []})
    reply = await api.raw("GET", "/api/healthz")
    assert (reply.status, reply.json["success"]) == (200, True)
    reply = await api.raw("GET", "/healthz")
    assert (reply.status, reply.json["success"]) == (200, True)
    reply = await api.raw("GET", PREFIX + "courses", caller=ADMIN)
    assert (reply.status, reply.text) == (404, NOT_FOUND_PAGE)
