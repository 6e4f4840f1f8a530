"""Form bodies as the service reads them: both encodings, the cap on fields other than files,
large rosters, bodies of other types, and uploads that wait for memory."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from ngshare_s3.http.app_keys import UPLOAD_MEMORY

from .support import ADMIN, INSTRUCTOR, STUDENT, OTHER_STUDENT, encode_files, expected_tree, failure

WORK = [("ps1.ipynb", b'{"cells": [1]}'), ("data/x.bin", bytes(range(256)) * 50)]


def multipart(**fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_a_multipart_submission_is_stored_like_a_form_encoded_one(api, classroom):
    reply = await api.raw(
        "POST", api.prefix + "submission/c1/a1", caller=STUDENT, data=multipart(files=encode_files(WORK), user=STUDENT)
    )
    assert (reply.status, reply.json["success"]) == (200, True), reply.json
    tree = await api.ok("GET", INSTRUCTOR, f"submission/c1/a1/{STUDENT}")
    assert tree["files"] == expected_tree(WORK)


async def test_a_multipart_file_part_is_not_the_files_field(api, classroom):
    """tornado keeps parts with a filename apart from the arguments ngshare reads."""
    form = aiohttp.FormData()
    form.add_field("files", encode_files(WORK), filename="files.json")
    reply = await api.raw("POST", api.prefix + "submission/c1/a1", caller=STUDENT, data=form)
    assert (reply.status, reply.json) == (400, failure("Please supply files"))
    assert await api.submissions("c1", "a1") == []


async def test_a_broken_multipart_body_is_a_bad_request(api, classroom):
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    body = b'--b\r\nContent-Disposition: form-data; name="files"\r\n\r\n' + encode_files(WORK).encode()
    reply = await api.raw("POST", api.prefix + "submission/c1/a1", caller=STUDENT, headers=headers, data=body)
    assert (reply.status, reply.json) == (400, failure("Invalid multipart/form-data body"))
    reply = await api.raw("POST", api.prefix + "submission/c1/a1", caller=STUDENT,
                          headers={"Content-Type": "multipart/form-data"}, data=body)
    assert (reply.status, reply.json) == (400, failure("multipart/form-data without a boundary"))
    assert await api.submissions("c1", "a1") == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json"])
async def test_a_body_of_another_type_carries_no_fields(api, classroom, content_type):
    """As in tornado, which reads arguments only from the two form encodings."""
    headers = {"Content-Type": content_type} if content_type else {}
    reply = await api.raw("POST", api.prefix + "student/c1/s3", caller=INSTRUCTOR, headers=headers,
                          data=b"first_name=A&last_name=B&email=e")
    assert (reply.status, reply.json) == (400, failure("Please supply first name"))
    assert sorted(await api.students("c1")) == [STUDENT, OTHER_STUDENT]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_fields_past_the_cap_are_413_and_change_nothing(make_api, encoding):
    api = await make_api(max_field_size=10_000)
    await api.create_course("c1", [INSTRUCTOR])
    roster = json.dumps([{"username": f"s{n}", "first_name": "F", "last_name": "L", "email": ""} for n in range(500)])
    fields = {"students": roster}
    data = multipart(**fields) if encoding == "multipart" else fields
    reply = await api.raw("POST", api.prefix + "students/c1", caller=INSTRUCTOR, data=data)
    assert (reply.status, reply.json) == (413, failure("Form fields too large (at most 10000 bytes besides files)"))
    assert await api.students("c1") == []
    # the files field is not counted: a larger submission goes through
    await api.ok("POST", ADMIN, "student/c1/s1", first_name="", last_name="", email="")
    await api.release("c1", "a1", [("a.ipynb", b"{}")], caller=INSTRUCTOR)
    big = [("big.bin", bytes(50_000))]
    await api.ok("POST", "s1", "submission/c1/a1", files=encode_files(big))


async def test_a_large_roster_is_read(api):
    await api.create_course("c1", [INSTRUCTOR])
    roster = [{"username": f"student{n:02d}", "first_name": "Ada", "last_name": "L", "email": "a@b.c"}
              for n in range(20)]
    spacious = json.dumps(roster).replace(", ", "," + " " * 2000)  # large, yet quick to store
    assert len(spacious) > 128 << 10
    body = await api.ok("POST", INSTRUCTOR, "students/c1", students=spacious)
    assert len(body["status"]) == 20 and all(entry["success"] for entry in body["status"])
    assert len(await api.students("c1")) == 20
    broken = spacious[:-1]
    status, reply = await api.post(INSTRUCTOR, "students/c1", students=broken)
    assert (status, reply) == (400, failure("Students cannot be JSON decoded"))


async def test_a_large_instructor_list_is_read(api):
    names = [f"instructor{n:02d}" for n in range(20)]
    spacious = json.dumps(names).replace(", ", "," + " " * 10_000)
    assert len(spacious) > 128 << 10
    await api.ok("POST", ADMIN, "course/c1", instructors=spacious)
    assert sorted(await api.instructors("c1")) == names


async def test_uploads_beyond_the_memory_limit_wait_and_all_succeed(make_api):
    """A budget smaller than one read, for the whole process: every upload still completes."""
    api = await make_api(upload_memory=64 << 10)
    students = [f"student{n}" for n in range(6)]
    await api.create_course("c1", [INSTRUCTOR], students)
    await api.release("c1", "a1", [("a.ipynb", b"{}")], caller=INSTRUCTOR)
    work = {student: [("data.bin", student.encode() * 40_000)] for student in students}
    await asyncio.gather(*(api.submit(student, "c1", "a1", work[student]) for student in students))
    for student in students:
        tree = await api.ok("GET", INSTRUCTOR, f"submission/c1/a1/{student}")
        assert tree["files"] == expected_tree(work[student])
    assert api.client.server.app[UPLOAD_MEMORY].held == 0, "every byte taken is given back"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_a_body_past_the_limit_without_a_length_is_413(make_api, encoding):
    """Sent in chunks, so only counting what arrives can refuse it."""
    api = await make_api(max_body_size=200_000)
    await api.create_course("c1", [INSTRUCTOR])
    boundary = "xyz"
    headers = {"Content-Type": "application/x-www-form-urlencoded" if encoding == "urlencoded"
               else f"multipart/form-data; boundary={boundary}"}
    head = b"files=" if encoding == "urlencoded" else (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"\r\n\r\n'.encode())

    async def chunks():
        yield head + b'[{"path": "a", "content": "'
        for _ in range(100):
            yield b"QUFB" * 1000

    reply = await api.raw("POST", api.prefix + "assignment/c1/a1", caller=INSTRUCTOR, headers=headers, data=chunks())
    assert (reply.status, reply.json) == (413, failure("Request body too large (at most 200000 bytes)"))
    assert await api.assignments("c1") == []
    budget = api.client.server.app[UPLOAD_MEMORY]
    for _ in range(200):  # the parser's thread hands back what it had queued as it stops
        if budget.held == 0:
            break
        await asyncio.sleep(0.01)
    assert budget.held == 0
