"""Building blocks shared by the API tests: a stand-in for the Hub's token check, a small
client that speaks the exchange's wire format, and functions that set up courses."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote, urlencode

from aiohttp import web

PREFIX = "/services/ngshare/"
CLIENT_ID = "service-ngshare"
SERVICE_TOKEN = "service-secret"

ADMIN = "admin"
INSTRUCTOR = "instructor1"
OTHER_INSTRUCTOR = "instructor2"
STUDENT = "student1"
OTHER_STUDENT = "student2"
OUTSIDER = "other"
KNOWN_USERS = (ADMIN, INSTRUCTOR, OTHER_INSTRUCTOR, STUDENT, OTHER_STUDENT, OUTSIDER)

TIMESTAMP_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
NOT_FOUND_PAGE = "<h1>404 Not Found</h1>\n"

# Over-long values: far above every limit, whatever the exact escaping rules are.
LONG_ID = "x" * 300
LONG_PATH = "p" * 300

Entries = Iterable[tuple[str, bytes]]


def q(identifier: str) -> str:
    """One path segment, percent-escaped like the nbgrader client escapes it."""
    return quote(identifier, safe="")


def failure(message: str) -> dict:
    return {"success": False, "message": message}


# ---------------------------------------------------------------------------------------------
# encoded directory trees


def encode_files(entries: Entries, *, with_newlines: bool = False) -> str:
    """The `files` form field as ngshare_exchange sends it (b64encode, or encodebytes for
    feedback)."""
    encode = base64.encodebytes if with_newlines else base64.b64encode
    return json.dumps([{"path": path, "content": encode(data).decode()} for path, data in entries])


def raw_files(items: Any) -> str:
    """A `files` field built from arbitrary JSON, for malformed uploads."""
    return json.dumps(items)


def expected_tree(entries: Entries, *, list_only: bool = False) -> list[dict]:
    """What the server must answer for these files: encodebytes-style content, MD5 checksum."""
    tree = []
    for path, data in entries:
        item = {"path": path, "checksum": hashlib.md5(data).hexdigest()}
        if not list_only:
            item["content"] = base64.encodebytes(data).decode()
        tree.append(item)
    return tree


# ---------------------------------------------------------------------------------------------
# the Hub's token check


@dataclass
class FakeHub:
    """Answers JupyterHub's `GET /hub/api/user` for the tokens in its table, 403 otherwise.

    Its OAuth provider logs the browser in as `browser_user` and, like JupyterHub's, hands out
    single-use codes bound to the PKCE challenge and knows the service by its API token
    (`service_token`): the OAuth client's secret, refused as `invalid_client` if it is another,
    and the token `/hub/api/user` names the service for."""

    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    admins_of_hub: set[str] = field(default_factory=set)
    scopes: dict[str, list[str]] = field(default_factory=dict)
    user_calls: int = 0
    hanging: bool = False
    release_hanging: asyncio.Event = field(default_factory=asyncio.Event)
    browser_user: str = ""
    service_token: str = SERVICE_TOKEN
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def token_for(self, name: str) -> str:
        for token, owner in self.tokens.items():
            if owner == name:
                return token
        token = secrets.token_hex(16)
        self.tokens[token] = name
        return token

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hub/api/user", self.identify)
        app.router.add_get("/hub/api/oauth2/authorize", self.authorize)
        app.router.add_post("/hub/api/oauth2/token", self.issue_token)
        return app

    async def identify(self, request: web.Request) -> web.Response:
        self.user_calls += 1
        if self.hanging:
            await self.release_hanging.wait()
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        name = self.tokens.get(token.strip()) if scheme.lower() in {"token", "bearer"} else None
        if name is None and token.strip() == self.service_token:
            return web.json_response({"kind": "service", "name": "ngshare", "admin": False, "scopes": []})
        if name is None:
            return web.json_response({"status": 403, "message": "Forbidden"}, status=403)
        return web.json_response(
            {
                "kind": "user",
                "name": name,
                "admin": name in self.admins_of_hub,
                "groups": [],
                # by default what a single-user server's token carries: no access to services
                "scopes": self.scopes.get(name, [f"users:activity!user={name}", f"access:servers!server={name}/"]),
            }
        )


    async def authorize(self, request: web.Request) -> web.Response:
        """The browser, logged in at the Hub as `browser_user`, is sent back with a new code."""
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return web.json_response({"error": "invalid_request"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "user": self.browser_user,
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
        }
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return web.Response(status=302, headers={"Location": location})

    async def issue_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.service_token:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(str(form.get("code")), None)  # a code works once
        verifier = str(form.get("code_verifier", "")).encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
        if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != form.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": self.token_for(grant["user"]), "token_type": "Bearer"})


# ---------------------------------------------------------------------------------------------
# the client


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _drop_none(fields: Any) -> Any:
    if isinstance(fields, dict):
        return {key: value for key, value in fields.items() if value is not None}
    return fields


class Api:
    """Calls routes under the prefix as a given Hub user, the way ngshare_exchange does:
    query parameters for GET and DELETE, a form body for POST. `None` values are left out,
    as `requests` leaves them out."""

    def __init__(self, client, hub: FakeHub, settings) -> None:
        self.client = client
        self.hub = hub
        self.settings = settings
        self.prefix = settings.prefix

    def headers_for(self, caller: str | None, scheme: str = "token") -> dict[str, str]:
        if caller is None:
            return {}
        return {"Authorization": f"{scheme} {self.hub.token_for(caller)}"}

    async def raw(
        self,
        method: str,
        path: str,
        *,
        caller: str | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
        data: Any = None,
    ) -> Reply:
        """Any request to an absolute path, redirects not followed."""
        all_headers = self.headers_for(caller)
        all_headers.update(headers or {})
        async with self.client.request(
            method,
            path,
            headers=all_headers,
            params=_drop_none(params),
            data=_drop_none(data),
            allow_redirects=False,
        ) as response:
            return Reply(response.status, response.headers, await response.read())

    async def call(self, method: str, caller: str | None, route: str, /, **fields) -> tuple[int, Any]:
        if method == "POST":
            reply = await self.raw(method, self.prefix + route, caller=caller, data=fields)
        else:
            reply = await self.raw(method, self.prefix + route, caller=caller, params=fields)
        try:
            body = reply.json
        except ValueError:
            body = reply.text
        return reply.status, body

    async def get(self, caller: str | None, route: str, /, **params) -> tuple[int, Any]:
        return await self.call("GET", caller, route, **params)

    async def post(self, caller: str | None, route: str, /, **form) -> tuple[int, Any]:
        return await self.call("POST", caller, route, **form)

    async def delete(self, caller: str | None, route: str, /, **params) -> tuple[int, Any]:
        return await self.call("DELETE", caller, route, **params)

    async def ok(self, method: str, caller: str, route: str, /, **fields) -> dict:
        """A call that must succeed; returns the body."""
        status, body = await self.call(method, caller, route, **fields)
        assert (status, _success_of(body)) == (200, True), f"{method} {route} as {caller}: {status} {body}"
        return body

    # -- reading state back --------------------------------------------------------------

    async def courses(self, caller: str = ADMIN) -> list[str]:
        return (await self.ok("GET", caller, "courses"))["courses"]

    async def assignments(self, course: str, caller: str = ADMIN) -> list[str]:
        return (await self.ok("GET", caller, f"assignments/{q(course)}"))["assignments"]

    async def instructors(self, course: str, caller: str = ADMIN) -> list[str]:
        body = await self.ok("GET", caller, f"instructors/{q(course)}")
        return [entry["username"] for entry in body["instructors"]]

    async def students(self, course: str, caller: str = ADMIN) -> list[str]:
        body = await self.ok("GET", caller, f"students/{q(course)}")
        return [entry["username"] for entry in body["students"]]

    async def submissions(self, course: str, assignment: str, caller: str = ADMIN) -> list[dict]:
        body = await self.ok("GET", caller, f"submissions/{q(course)}/{q(assignment)}")
        return body["submissions"]

    async def assignment_files(self, course: str, assignment: str, caller: str = ADMIN, **params) -> list[dict]:
        body = await self.ok("GET", caller, f"assignment/{q(course)}/{q(assignment)}", **params)
        return body["files"]

    async def feedback_files(self, course: str, assignment: str, student: str, timestamp: str, caller: str = ADMIN, **params) -> list[dict]:
        route = f"feedback/{q(course)}/{q(assignment)}/{q(student)}"
        return (await self.ok("GET", caller, route, timestamp=timestamp, **params))["files"]

    # -- setting state up ----------------------------------------------------------------

    async def create_course(
        self, course: str, instructors: Iterable[str] = (), students: Iterable[str] = ()
    ) -> None:
        await self.ok("POST", ADMIN, f"course/{q(course)}", instructors=json.dumps(list(instructors)))
        for student in students:
            await self.add_student(course, student)

    async def add_student(self, course: str, student: str, caller: str = ADMIN, **names) -> None:
        fields = {"first_name": "", "last_name": "", "email": ""} | names
        await self.ok("POST", caller, f"student/{q(course)}/{q(student)}", **fields)

    async def release(self, course: str, assignment: str, entries: Entries = (), caller: str = ADMIN) -> None:
        await self.ok("POST", caller, f"assignment/{q(course)}/{q(assignment)}", files=encode_files(entries))

    async def submit(self, caller: str, course: str, assignment: str, entries: Entries = ()) -> str:
        route = f"submission/{q(course)}/{q(assignment)}"
        return (await self.ok("POST", caller, route, files=encode_files(entries), user=caller))["timestamp"]

    async def give_feedback(
        self, course: str, assignment: str, student: str, timestamp: str, entries: Entries, caller: str = ADMIN
    ) -> None:
        route = f"feedback/{q(course)}/{q(assignment)}/{q(student)}"
        files = encode_files(entries, with_newlines=True)
        await self.ok("POST", caller, route, timestamp=timestamp, files=files)


def _success_of(body: Any) -> Any:
    return body.get("success") if isinstance(body, dict) else None


@dataclass
class Classroom:
    """Course `c1` taught by instructor1 with student1 and student2, assignment `a1` released
    with one notebook; course `c2` taught by instructor2. `other` belongs to no course."""

    course: str = "c1"
    assignment: str = "a1"
    other_course: str = "c2"
    release_files: tuple = (("a1.ipynb", b'{"cells": []}'),)


async def set_up_classroom(api: Api) -> Classroom:
    room = Classroom()
    await api.create_course(room.course, [INSTRUCTOR], [STUDENT, OTHER_STUDENT])
    await api.create_course(room.other_course, [OTHER_INSTRUCTOR])
    await api.release(room.course, room.assignment, room.release_files, caller=INSTRUCTOR)
    return room
