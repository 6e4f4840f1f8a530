"""A server killed in the middle of a deadline loses no submission it answered and shows
nothing half-written once it is back (DESIGN.md, "Consistency")."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
from urllib.parse import quote

import aiohttp
import pytest

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR

# What a killed server leaves depends on the order of its writes, not on which S3 server
# took them; MinIO stands for them all.
pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

COURSE, ASSIGNMENT = "course101", "ps1"
STUDENTS = [f"student{n:02d}" for n in range(48)]
ANSWERS_BEFORE_THE_KILL = 1


def submission_of(student: str) -> list[dict]:
    """Each student's own files: a notebook and a megabyte of data no one else has."""
    data = hashlib.sha256(student.encode()).digest() * (1 << 15)
    return [
        {"path": "ps1.ipynb", "content": base64.b64encode(f'{{"by": "{student}"}}'.encode()).decode()},
        {"path": "data/big.bin", "content": base64.b64encode(data).decode()},
    ]


def decoded(files: list[dict]) -> list[tuple[str, bytes]]:
    return [(f["path"], base64.b64decode(f["content"])) for f in files]


async def test_a_killed_server_loses_no_answered_submission_and_shows_nothing_half_written(backend, fake_hub, tmp_path):
    port = free_port()
    base = base_url(port)
    headers = {name: {"Authorization": f"token {fake_hub.token_for(name)}"} for name in [ADMIN, INSTRUCTOR, *STUDENTS]}
    log = open(tmp_path / "server.log", "wb")
    server = start_server(backend, fake_hub.url, port, log)
    async with aiohttp.ClientSession() as http:

        async def post(user: str, route: str, **form) -> dict:
            async with http.post(f"{base}/{route}", headers=headers[user], data=form) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        async def get(user: str, route: str, **params) -> dict:
            async with http.get(f"{base}/{route}", headers=headers[user], params=params) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        await wait_until_healthy(http, base, server)
        await post(ADMIN, f"course/{COURSE}", instructors=json.dumps([INSTRUCTOR]))
        roster = [{"username": s, "first_name": "", "last_name": "", "email": ""} for s in STUDENTS]
        await post(INSTRUCTOR, f"students/{COURSE}", students=json.dumps(roster))
        await post(INSTRUCTOR, f"assignment/{COURSE}/{ASSIGNMENT}", files=json.dumps(submission_of("release")))

        answered: dict[str, str] = {}
        enough_answers = asyncio.Event()

        async def submit(student: str) -> None:
            body = {"files": json.dumps(submission_of(student))}
            reply = await post(student, f"submission/{COURSE}/{ASSIGNMENT}", **body)
            answered[student] = reply["timestamp"]
            if len(answered) >= ANSWERS_BEFORE_THE_KILL:
                enough_answers.set()

        deadline = [asyncio.create_task(submit(s)) for s in STUDENTS]
        await asyncio.wait_for(enough_answers.wait(), timeout=120)
        server.send_signal(signal.SIGKILL)
        server.wait()
        await asyncio.gather(*deadline, return_exceptions=True)
        assert ANSWERS_BEFORE_THE_KILL <= len(answered) < len(STUDENTS), "the kill came after every answer"

        server = start_server(backend, fake_hub.url, port, log)
        try:
            await wait_until_healthy(http, base, server)
            listed = (await get(INSTRUCTOR, f"submissions/{COURSE}/{ASSIGNMENT}"))["submissions"]
            by_student = {entry["student_id"]: entry["timestamp"] for entry in listed}
            assert len(by_student) == len(listed), "a student is listed twice"
            for student, timestamp in answered.items():
                assert by_student.get(student) == timestamp, f"{student}'s answered submission is gone"
            for student, timestamp in by_student.items():
                reply = await get(INSTRUCTOR, f"submission/{COURSE}/{ASSIGNMENT}/{quote(student)}", timestamp=timestamp)
                assert decoded(reply["files"]) == decoded(submission_of(student)), f"{student}'s files differ"
                for entry in reply["files"]:
                    assert entry["checksum"] == hashlib.md5(base64.b64decode(entry["content"])).hexdigest()
            print(f"\n{len(answered)} answered before the kill, {len(by_student)} committed in all")
        finally:
            stop(server)
            log.close()
