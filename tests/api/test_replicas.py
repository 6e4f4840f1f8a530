"""Three server processes on one backend, driven at once round-robin from one client pool,
end in exactly the state one server would have produced, and never answer 5xx."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
from collections import Counter
from datetime import timedelta
from urllib.parse import quote

import aiohttp
import pytest

from ngshare_s3.exchange import fsck
from ngshare_s3.exchange.keys import assignment_prefix
from ngshare_s3.stores import open_metadata_store, open_object_store

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR

# Replicas share the stores through the same calls on any S3 server; MinIO stands for them
# all (the object store contract suite checks moto's answers to those calls).
pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

REPLICAS = 3
COURSE = "course101"
STUDENTS = [f"student{n:03d}" for n in range(100)]


def encoded(files: dict[str, bytes]) -> str:
    return json.dumps([{"path": p, "content": base64.b64encode(b).decode()} for p, b in files.items()])


def decoded(entries: list[dict]) -> dict[str, bytes]:
    return {entry["path"]: base64.b64decode(entry["content"]) for entry in entries}


def work_of(student: str) -> dict[str, bytes]:
    return {"ps1.ipynb": f'{{"answer": "{student}"}}'.encode(), "data.bin": hashlib.sha256(student.encode()).digest() * 2048}


class Pool:
    """One client session spreading calls over every replica in turn; remembers every status."""

    def __init__(self, http: aiohttp.ClientSession, bases: list[str], tokens: dict[str, str]) -> None:
        self.http = http
        self.bases = itertools.cycle(bases)
        self.tokens = tokens
        self.statuses: Counter[int] = Counter()

    async def call(self, method: str, user: str, route: str, **fields) -> tuple[int, dict]:
        url = f"{next(self.bases)}/{route}"
        options = {"data": fields} if method == "POST" else {"params": fields}
        headers = {"Authorization": f"token {self.tokens[user]}"}
        async with self.http.request(method, url, headers=headers, **options) as response:
            self.statuses[response.status] += 1
            return response.status, await response.json()

    async def ok(self, method: str, user: str, route: str, **fields) -> dict:
        status, body = await self.call(method, user, route, **fields)
        assert status == 200 and body["success"], f"{method} {route}: {status} {body}"
        return body


async def state_seen_by(pool: Pool) -> dict:
    """Everything a client can read back, through whichever replica is next."""
    submissions = (await pool.ok("GET", INSTRUCTOR, f"submissions/{COURSE}/ps1"))["submissions"]
    return {
        "courses": (await pool.ok("GET", ADMIN, "courses"))["courses"],
        "instructors": [i["username"] for i in (await pool.ok("GET", ADMIN, f"instructors/{COURSE}"))["instructors"]],
        "students": sorted(s["username"] for s in (await pool.ok("GET", ADMIN, f"students/{COURSE}"))["students"]),
        "assignments": (await pool.ok("GET", ADMIN, f"assignments/{COURSE}"))["assignments"],
        "submissions": sorted((s["student_id"], s["timestamp"]) for s in submissions),
    }


async def test_three_replicas_end_as_one_server_would(backend, fake_hub, tmp_path):
    ports = [free_port() for _ in range(REPLICAS)]
    tokens = {user: fake_hub.token_for(user) for user in [ADMIN, INSTRUCTOR, *STUDENTS]}
    log = open(tmp_path / "replicas.log", "wb")
    servers = [start_server(backend, fake_hub.url, port, log) for port in ports]
    try:
        async with aiohttp.ClientSession() as http:
            for server, port in zip(servers, ports):
                await wait_until_healthy(http, base_url(port), server)
            pool = Pool(http, [base_url(port) for port in ports], tokens)
            await drive(pool)
            # every replica reads back the same state
            states = [await state_seen_by(pool) for _ in range(REPLICAS)]
            assert states[0] == states[1] == states[2]
            assert states[0]["courses"] == [COURSE]
            assert states[0]["instructors"] == [INSTRUCTOR]
            assert states[0]["students"] == STUDENTS
            assert states[0]["assignments"] == ["ps1"]
            assert [student for student, _ in states[0]["submissions"]] == STUDENTS
            assert set(pool.statuses) <= {200, 404, 409}, pool.statuses
    finally:
        for server in servers:
            stop(server)
        log.close()
    await assert_nothing_stray_in_the_stores(backend)


async def drive(pool: Pool) -> None:
    # The same course created twice at once: one wins, the other is told it exists.
    creations = await asyncio.gather(
        *(pool.call("POST", ADMIN, f"course/{COURSE}", instructors=json.dumps([INSTRUCTOR])) for _ in range(2))
    )
    assert sorted(status for status, _ in creations) == [200, 409]
    assert [body["message"] for status, body in creations if status == 409] == ["Course already exists"]

    # The same student added twice at once: one membership, both calls succeed.
    names = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
    await asyncio.gather(*(pool.ok("POST", INSTRUCTOR, f"student/{COURSE}/{STUDENTS[0]}", **names) for _ in range(2)))
    student = await pool.ok("GET", INSTRUCTOR, f"student/{COURSE}/{STUDENTS[0]}")
    assert (student["username"], student["first_name"], student["email"]) == (STUDENTS[0], "Ada", "ada@example.org")
    roster = [{"username": s, "first_name": "", "last_name": "", "email": ""} for s in STUDENTS[1:]]
    await pool.ok("POST", INSTRUCTOR, f"students/{COURSE}", students=json.dumps(roster))

    # Two releases of one assignment at once: exactly one release's files are served.
    releases = [{"ps1.ipynb": b'{"release": "A"}'}, {"ps1.ipynb": b'{"release": "B"}', "extra.txt": b"B only"}]
    outcomes = await asyncio.gather(
        *(pool.call("POST", INSTRUCTOR, f"assignment/{COURSE}/ps1", files=encoded(files)) for files in releases)
    )
    assert sorted(status for status, _ in outcomes) == [200, 409]
    assert [body["message"] for status, body in outcomes if status == 409] == ["Assignment already exists"]
    winner = releases[[status for status, _ in outcomes].index(200)]
    for student in STUDENTS[:REPLICAS]:
        assert decoded((await pool.ok("GET", student, f"assignment/{COURSE}/ps1"))["files"]) == winner

    # 100 students submit at once, spread over the replicas.
    replies = await asyncio.gather(
        *(pool.ok("POST", s, f"submission/{COURSE}/ps1", files=encoded(work_of(s))) for s in STUDENTS)
    )
    timestamps = {student: reply["timestamp"] for student, reply in zip(STUDENTS, replies)}
    listed = (await pool.ok("GET", INSTRUCTOR, f"submissions/{COURSE}/ps1"))["submissions"]
    assert sorted((s["student_id"], s["timestamp"]) for s in listed) == sorted(timestamps.items())
    downloads = await asyncio.gather(
        *(pool.ok("GET", INSTRUCTOR, f"submission/{COURSE}/ps1/{quote(s)}") for s in STUDENTS)
    )
    for student, download in zip(STUDENTS, downloads):
        assert decoded(download["files"]) == work_of(student), f"{student}'s files differ"

    # A delete racing downloads: each download is whole and right, or the assignment is gone.
    big = {"ps2.ipynb": b'{"cells": []}', "data.bin": bytes(range(256)) * 8192}
    await pool.ok("POST", INSTRUCTOR, f"assignment/{COURSE}/ps2", files=encoded(big))
    fetches = [pool.call("GET", s, f"assignment/{COURSE}/ps2") for s in STUDENTS[:30]]
    deletion = pool.ok("DELETE", INSTRUCTOR, f"assignment/{COURSE}/ps2")
    results = await asyncio.gather(*fetches[:15], deletion, *fetches[15:])
    for status, body in results[:15] + results[16:]:
        if status == 200:
            assert decoded(body["files"]) == big
        else:
            assert (status, body["message"]) == (404, "Assignment not found")
    status, body = await pool.call("GET", STUDENTS[0], f"assignment/{COURSE}/ps2")
    assert (status, body["message"]) == (404, "Assignment not found")


async def assert_nothing_stray_in_the_stores(backend: tuple[str, str]) -> None:
    """Behind the API: one document per thing, and exactly the objects they reference."""
    database, storage = backend
    metadata, objects = await open_metadata_store(database), await open_object_store(storage)
    try:
        dump = await metadata.dump()
        assert [c["course_id"] for c in dump["courses"]] == [COURSE]
        assert Counter(m["user_id"] for m in dump["members"]) == Counter([INSTRUCTOR, *STUDENTS])
        assert [a["assignment_id"] for a in dump["assignments"]] == ["ps1"]
        assert sorted(s["student_id"] for s in dump["submissions"]) == STUDENTS
        stored = [info.key async for info in objects.list(f"{assignment_prefix(COURSE, 'ps2')}/")]
        assert stored == [], "the deleted assignment left objects behind"
        (release,) = dump["assignments"]
        released = [info.key async for info in objects.list(f"{assignment_prefix(COURSE, 'ps1')}/release/")]
        assert {key.split("/")[5] for key in released} == {release["release_id"]}, "the losing release left objects"
        report = await fsck.check(metadata, objects, grace_period=timedelta(0))
        assert (report.unreferenced, report.unreachable, report.missing) == ([], [], [])
        assert report.objects == len(release["files"]) + 2 * len(STUDENTS)
    finally:
        await metadata.close()
        await objects.close()
