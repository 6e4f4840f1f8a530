"""Authentication through the Hub: token forms, unauthenticated callers on every route, the
Hub being unreachable or slow (spec §1.5, §5.1, §6)."""

import asyncio
import json
import logging
import socket
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from .support import (
    ADMIN,
    CLIENT_ID,
    INSTRUCTOR,
    KNOWN_USERS,
    OTHER_INSTRUCTOR,
    OTHER_STUDENT,
    PREFIX,
    STUDENT,
    encode_files,
    expected_tree,
    failure,
    set_up_classroom,
)

# Routes that need a login: a browser is sent to the Hub's OAuth page.
LOGIN_REQUIRED_GETS = [
    "",
    "courses",
    "instructor/c1/instructor1",
    "instructors/c1",
    "instructors/nope",
    "student/c1/student1",
    "students/c1",
    "assignments/c1",
    "assignments/nope",
    "initialize-Data6ase?action=dump",
]

NAMES = {"first_name": "F", "last_name": "L", "email": "e"}

LOGIN_REQUIRED_WRITES = [
    ("POST", "course/new", {"instructors": "[]"}),
    ("POST", "course/c1", {"instructors": "[]"}),
    ("DELETE", "course/c1", {}),
    ("POST", f"instructor/c1/{INSTRUCTOR}", NAMES),
    ("DELETE", f"instructor/c1/{INSTRUCTOR}", {}),
    ("POST", f"student/c1/{OTHER_STUDENT}", NAMES),
    ("DELETE", f"student/c1/{STUDENT}", {}),
    ("POST", "students/c1", {"students": json.dumps([{"username": "s9", **NAMES}])}),
]

# Routes ngshare left unguarded; they must not answer, nor tell whether the course exists.
FORMERLY_UNGUARDED = [
    ("GET", "assignment/{course}/a1", {}),
    ("POST", "assignment/{course}/a2", {"files": "[]"}),
    ("DELETE", "assignment/{course}/a1", {}),
    ("GET", "submissions/{course}/a1", {}),
    ("GET", "submissions/{course}/a1/student1", {}),
    ("POST", "submission/{course}/a1", {"files": "[]"}),
    ("GET", "submission/{course}/a1/student1", {}),
    ("POST", "feedback/{course}/a1/student1", {"timestamp": "2020-01-01 00:00:00.000000", "files": "[]"}),
    ("GET", "feedback/{course}/a1/student1", {"timestamp": "2020-01-01 00:00:00.000000"}),
]

CREDENTIALS = {
    "no header": {},
    "rejected token": {"Authorization": "token not-a-valid-token"},
    "scheme without token": {"Authorization": "token "},
}


async def unchanged(api):
    assert await api.courses() == ["c1", "c2"]
    assert await api.instructors("c1") == [INSTRUCTOR]
    assert await api.students("c1") == [STUDENT, OTHER_STUDENT]
    assert await api.assignments("c1") == ["a1"]
    assert await api.submissions("c1", "a1") == []


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("route", LOGIN_REQUIRED_GETS)
async def test_an_anonymous_get_is_redirected_to_the_hub_login(api, classroom, route, credentials):
    reply = await api.raw("GET", PREFIX + route, headers=CREDENTIALS[credentials])
    assert reply.status == 302
    location = urlparse(reply.headers["Location"])
    assert location.path.endswith("/oauth2/authorize")
    query = parse_qs(location.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["response_type"] == ["code"]
    assert urlparse(query["redirect_uri"][0]).path == PREFIX + "oauth_callback"
    assert query["state"][0]
    cookies = reply.headers.getall("Set-Cookie", [])
    assert any(cookie.startswith(f"{CLIENT_ID}-oauth-state") for cookie in cookies), cookies


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("method, route, fields", LOGIN_REQUIRED_WRITES, ids=[f"{m} {r}" for m, r, _ in LOGIN_REQUIRED_WRITES])
async def test_an_anonymous_write_is_forbidden(api, classroom, method, route, fields, credentials):
    placement = {"data": fields} if method == "POST" else {"params": fields}
    reply = await api.raw(method, PREFIX + route, headers=CREDENTIALS[credentials], **placement)
    assert reply.status == 403
    await unchanged(api)


@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("method, route, fields", FORMERLY_UNGUARDED, ids=[f"{m} {r}" for m, r, _ in FORMERLY_UNGUARDED])
async def test_anonymous_callers_get_nothing_and_learn_nothing_about_courses(api, classroom, method, route, fields, credentials):
    statuses = []
    for course in ["c1", "nope"]:
        placement = {"data": fields} if method == "POST" else {"params": fields}
        reply = await api.raw(method, PREFIX + route.format(course=course), headers=CREDENTIALS[credentials], **placement)
        statuses.append(reply.status)
    assert statuses[0] in (302, 401, 403), statuses
    assert statuses[0] == statuses[1], "the answer must not depend on whether the course exists"
    await unchanged(api)


@pytest.mark.parametrize("scheme", ["token", "Token", "TOKEN", "Bearer", "bearer"])
async def test_the_authorization_scheme_may_be_token_or_bearer_in_any_case(api, classroom, scheme):
    reply = await api.raw("GET", PREFIX + "courses", headers={"Authorization": f"{scheme} {api.hub.token_for(STUDENT)}"})
    assert (reply.status, reply.json) == (200, {"success": True, "courses": ["c1"]})


async def test_a_token_without_any_scope_is_accepted(api, classroom):
    api.hub.scopes[STUDENT] = []
    assert await api.get(STUDENT, "courses") == (200, {"success": True, "courses": ["c1"]})
    assert await api.get(STUDENT, "assignment/c1/a1", list_only="true") == (
        200,
        {"success": True, "files": expected_tree(classroom.release_files, list_only=True)},
    )


@pytest.mark.parametrize("hub_admins", [False, True])
async def test_jupyterhub_admins_administer_the_exchange_only_when_asked(make_api, hub_admins):
    api = await make_api(hub_admins=hub_admins)
    api.hub.admins_of_hub.add(OTHER_INSTRUCTOR)
    expected = (200, {"success": True}) if hub_admins else (403, failure("Permission denied"))
    assert await api.post(OTHER_INSTRUCTOR, "course/hub-admins-course") == expected
    assert await api.post(STUDENT, "course/not-an-admin") == (403, failure("Permission denied"))


async def test_an_administrator_can_require_the_access_scope(make_api):
    api = await make_api(require_access_scope=True)
    for user in KNOWN_USERS:
        api.hub.scopes[user] = ["access:services!service=ngshare"]
    await set_up_classroom(api)
    assert await api.get(STUDENT, "courses") == (200, {"success": True, "courses": ["c1"]})
    api.hub.scopes[OTHER_STUDENT] = ["access:services!service=another"]
    assert await api.get(OTHER_STUDENT, "courses") == (
        403, failure("Permission denied (the token lacks access:services!service=ngshare)")
    )


async def test_each_token_is_its_own_user(api, classroom):
    for _ in range(2):
        assert await api.courses(STUDENT) == ["c1"]
        assert await api.courses(ADMIN) == ["c1", "c2"]
        assert await api.courses(OTHER_INSTRUCTOR) == ["c2"]


async def test_a_user_field_in_the_body_does_not_change_who_is_calling(api, classroom):
    assert await api.post(STUDENT, "course/c9", user=ADMIN, instructors="[]") == (403, failure("Permission denied"))
    assert await api.post(ADMIN, "course/c9", user=STUDENT, instructors="[]") == (200, {"success": True})
    timestamp = await api.submit(OTHER_STUDENT, "c1", "a1")  # sends user=student2 as the client does
    status, body = await api.post(OTHER_STUDENT, "submission/c1/a1", user=STUDENT, files=encode_files([]))
    assert status == 200
    submitters = [entry["student_id"] for entry in await api.submissions("c1", "a1")]
    assert submitters == [OTHER_STUDENT, OTHER_STUDENT]
    assert timestamp != body["timestamp"]


async def test_the_course_management_delete_carries_a_form_body(api, classroom):
    """ngshare-course-management sends `user=<name>` as the body of its DELETE requests."""
    reply = await api.raw("DELETE", PREFIX + f"student/c1/{STUDENT}", caller=INSTRUCTOR, data={"user": INSTRUCTOR})
    assert (reply.status, reply.json) == (200, {"success": True})
    reply = await api.raw("DELETE", PREFIX + f"instructor/c1/{INSTRUCTOR}", caller=ADMIN, data={"user": ADMIN})
    assert (reply.status, reply.json) == (200, {"success": True})
    reply = await api.raw("DELETE", PREFIX + "course/c2", caller=STUDENT, data={"user": ADMIN})
    assert (reply.status, reply.json) == (403, failure("Permission denied"))
    assert await api.students("c1") == [OTHER_STUDENT]
    assert await api.instructors("c1") == []
    assert await api.courses() == ["c1", "c2"]


async def test_the_course_management_calls_work_as_sent(api):
    """The request shapes of create_course, add_instructor, add_student, add_students."""
    user = {"user": ADMIN}
    assert await api.post(ADMIN, "course/c1", instructors=json.dumps([INSTRUCTOR]), **user) == (200, {"success": True})
    assert await api.post(ADMIN, "instructor/c1/instructor2", **NAMES, **user) == (200, {"success": True})
    assert await api.post(ADMIN, f"student/c1/{STUDENT}", first_name="", last_name="", email="", **user) == (
        200,
        {"success": True},
    )
    students = [{"username": OTHER_STUDENT, "first_name": "A", "last_name": "B", "email": "C"}]
    status, body = await api.post(ADMIN, "students/c1", students=json.dumps(students), **user)
    assert (status, body) == (200, {"success": True, "status": [{"username": OTHER_STUDENT, "success": True}]})
    # add_instructor without names: requests drops the unset options
    assert await api.post(ADMIN, "instructor/c1/instructor3", **user) == (400, failure("Please supply first name"))
    assert await api.instructors("c1") == [INSTRUCTOR, "instructor2"]
    assert await api.students("c1") == [STUDENT, OTHER_STUDENT]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def timed_get(api, route, caller, limit):
    started = time.monotonic()
    status, body = await asyncio.wait_for(api.get(caller, route), timeout=limit)
    return status, body, time.monotonic() - started


async def test_an_unreachable_hub_is_a_503_envelope(make_api):
    api = await make_api(hub_api_url=f"http://127.0.0.1:{closed_port()}/hub/api", hub_timeout=2.0)
    status, body, elapsed = await timed_get(api, "courses", STUDENT, limit=15)
    assert status == 503
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert elapsed < 2.0 + 5


async def test_a_hanging_hub_is_a_503_envelope_after_the_hub_timeout(make_api, fake_hub):
    api = await make_api(hub_timeout=1.0)
    fake_hub.hanging = True
    try:
        status, body, elapsed = await timed_get(api, "courses", STUDENT, limit=15)
    finally:
        fake_hub.release_hanging.set()
    assert status == 503
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert 0.5 <= elapsed < 1.0 + 4


async def test_the_service_answers_again_once_the_hub_is_back(make_api, fake_hub):
    api = await make_api(hub_timeout=1.0)
    fake_hub.hanging = True
    status, _, _ = await timed_get(api, "courses", STUDENT, limit=15)
    fake_hub.release_hanging.set()
    fake_hub.hanging = False
    assert status == 503
    assert await api.get(STUDENT, "courses") == (200, {"success": True, "courses": []})


async def test_a_user_field_alone_identifies_nobody(api, classroom):
    """The stand-alone mode that takes the caller from a `user` field is off by default."""
    reply = await api.raw("GET", PREFIX + "courses", params={"user": ADMIN})
    assert reply.status == 302
    reply = await api.raw("POST", PREFIX + "course/c9", data={"user": ADMIN, "instructors": "[]"})
    assert reply.status == 403
    reply = await api.raw("GET", PREFIX + "assignment/c1/a1", params={"user": ADMIN})
    assert reply.status in (302, 401, 403)
    assert await api.courses() == ["c1", "c2"]


# ---------------------------------------------------------------------------------------------
# browser login through the Hub's OAuth

STATE_COOKIE = f"{CLIENT_ID}-oauth-state"
LOGIN_COOKIE = CLIENT_ID


def set_cookies(reply) -> dict[str, str]:
    cookies = SimpleCookie()
    for header in reply.headers.getall("Set-Cookie", []):
        cookies.load(header)
    return {name: morsel.value for name, morsel in cookies.items()}


async def as_browser(api, path: str, cookies: dict[str, str] | None = None):
    """A GET with exactly these cookies (the test keeps them, so it can replay old ones)."""
    api.client.session.cookie_jar.clear()
    cookie_header = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    return await api.raw("GET", path, headers={"Cookie": cookie_header} if cookie_header else {})


async def start_login(api) -> tuple[str, dict[str, str]]:
    """An anonymous browser opens the home page: the Hub's authorize URL and the state cookie."""
    reply = await as_browser(api, PREFIX)
    assert reply.status == 302
    state_cookie = {STATE_COOKIE: set_cookies(reply)[STATE_COOKIE]}
    return api.hub.url + reply.headers["Location"], state_cookie


async def back_from_the_hub(authorize_url: str) -> str:
    """The Hub's answer to its authorize URL: the service's callback with a fresh code."""
    async with aiohttp.ClientSession() as session:
        async with session.get(authorize_url, allow_redirects=False) as reply:
            assert reply.status == 302, await reply.text()
            return reply.headers["Location"]


async def test_a_browser_logs_in_through_the_hub(api, classroom):
    api.hub.browser_user = STUDENT
    authorize_url, state_cookie = await start_login(api)
    callback = await as_browser(api, await back_from_the_hub(authorize_url), state_cookie)
    assert (callback.status, callback.headers["Location"]) == (302, PREFIX)
    login = set_cookies(callback)[LOGIN_COOKIE]
    courses = await as_browser(api, PREFIX + "courses", {LOGIN_COOKIE: login})
    assert (courses.status, courses.json) == (200, {"success": True, "courses": ["c1"]})


async def test_an_oauth_state_completes_one_login_only(api, classroom):
    api.hub.browser_user = STUDENT
    authorize_url, state_cookie = await start_login(api)
    callback_url = await back_from_the_hub(authorize_url)
    first = await as_browser(api, callback_url, state_cookie)
    assert first.status == 302 and LOGIN_COOKIE in set_cookies(first)
    # The same callback again, then the same state with a new code the Hub hands out for it.
    for replay in [callback_url, await back_from_the_hub(authorize_url)]:
        again = await as_browser(api, replay, state_cookie)
        assert (again.status, again.json) == (403, failure("OAuth state was already used. Try logging in again."))
        assert LOGIN_COOKIE not in set_cookies(again)
    # A new login gets a new state and works.
    authorize_url, state_cookie = await start_login(api)
    fresh = await as_browser(api, await back_from_the_hub(authorize_url), state_cookie)
    assert fresh.status == 302 and LOGIN_COOKIE in set_cookies(fresh)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_an_oauth_state_used_on_one_replica_is_refused_on_another(make_api, fake_hub):
    first, second = await make_api(), await make_api()
    fake_hub.browser_user = STUDENT
    authorize_url, state_cookie = await start_login(first)
    done = await as_browser(first, await back_from_the_hub(authorize_url), state_cookie)
    assert done.status == 302 and LOGIN_COOKIE in set_cookies(done)
    replayed = await as_browser(second, await back_from_the_hub(authorize_url), state_cookie)
    assert (replayed.status, replayed.json) == (403, failure("OAuth state was already used. Try logging in again."))
    assert LOGIN_COOKIE not in set_cookies(replayed)


async def test_the_hub_refusing_the_service_token_is_a_configuration_error(api, classroom, caplog):
    """JupyterHub takes the service's API token as its OAuth client secret: a wrong one fails
    every browser login, and only an administrator can mend it."""
    api.hub.browser_user = STUDENT
    api.hub.service_token = "the-token-the-hub-expects"
    authorize_url, state_cookie = await start_login(api)
    with caplog.at_level(logging.WARNING):
        reply = await as_browser(api, await back_from_the_hub(authorize_url), state_cookie)
    assert (reply.status, reply.json) == (
        503,
        failure("JupyterHub refused the service's API token; an administrator must check the service's api_token configuration"),
    )
    assert LOGIN_COOKIE not in set_cookies(reply)
    ours = [record for record in caplog.records if record.name.startswith("ngshare_s3") and record.levelno >= logging.ERROR]
    assert [record.levelno for record in ours] == [logging.ERROR], ours
    assert "JupyterHub refused the service's API token" in ours[0].getMessage()
    # Checking a caller's token does not take the service's token: the API goes on working.
    assert await api.get(STUDENT, "courses") == (200, {"success": True, "courses": ["c1"]})


async def test_a_login_the_hub_refuses_with_a_good_service_token_is_a_failed_login(api, classroom):
    api.hub.browser_user = STUDENT
    authorize_url, state_cookie = await start_login(api)
    state = parse_qs(urlparse(authorize_url).query)["state"][0]
    made_up = f"{PREFIX}oauth_callback?code=made-up&state={state}"
    reply = await as_browser(api, made_up, state_cookie)
    assert (reply.status, reply.json) == (403, failure("OAuth login failed. Try logging in again."))
    assert LOGIN_COOKIE not in set_cookies(reply)
