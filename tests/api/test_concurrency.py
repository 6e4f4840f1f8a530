"""Several service processes on one backend, and simultaneous requests: replicas share all
state, submissions never collide, conflicting writes have exactly one winner (spec §2.19,
§7.2 item 6; design: stateless replicas)."""

import asyncio

import pytest

from .support import ADMIN, INSTRUCTOR, STUDENT, encode_files, expected_tree, failure

# Winners are decided by the metadata store; the S3 server only takes whole objects, which
# the object store contract suite checks on MinIO and moto alike.
pytestmark = pytest.mark.backends("embedded", "mongodb+minio")


async def test_replicas_see_each_others_writes(make_api):
    first, second = await make_api(), await make_api()
    await first.create_course("c1", [INSTRUCTOR], [STUDENT])
    assert await second.courses(STUDENT) == ["c1"]
    await second.release("c1", "a1", [("a.ipynb", b"A")], caller=INSTRUCTOR)
    assert await first.assignment_files("c1", "a1", caller=STUDENT) == expected_tree([("a.ipynb", b"A")])
    timestamp = await first.submit(STUDENT, "c1", "a1", [("s.ipynb", b"S")])
    assert await second.submissions("c1", "a1") == [{"student_id": STUDENT, "timestamp": timestamp}]
    await second.give_feedback("c1", "a1", STUDENT, timestamp, [("s.html", b"F")], caller=INSTRUCTOR)
    assert await first.feedback_files("c1", "a1", STUDENT, timestamp, caller=STUDENT) == expected_tree([("s.html", b"F")])
    await first.delete(ADMIN, "course/c1")
    assert await second.courses() == []


async def test_simultaneous_submissions_by_one_student_get_distinct_timestamps(make_api):
    replicas = [await make_api(), await make_api()]
    await replicas[0].create_course("c1", [INSTRUCTOR], [STUDENT])
    await replicas[0].release("c1", "a1")

    async def submit(n):
        api = replicas[n % 2]
        return n, await api.submit(STUDENT, "c1", "a1", [("n.txt", str(n).encode())])

    results = await asyncio.gather(*(submit(n) for n in range(12)))
    timestamps = [timestamp for _, timestamp in results]
    assert len(set(timestamps)) == 12
    listed = await replicas[1].submissions("c1", "a1")
    assert sorted(entry["timestamp"] for entry in listed) == sorted(timestamps)
    for n, timestamp in results:
        status, body = await replicas[0].get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}", timestamp=timestamp)
        assert (status, body["files"]) == (200, expected_tree([("n.txt", str(n).encode())]))


async def test_simultaneous_releases_of_one_assignment_have_one_winner(make_api):
    replicas = [await make_api(), await make_api()]
    await replicas[0].create_course("c1", [INSTRUCTOR])

    async def release(n):
        files = encode_files([("who.txt", str(n).encode())])
        return await replicas[n % 2].post(INSTRUCTOR, "assignment/c1/a1", files=files)

    answers = await asyncio.gather(*(release(n) for n in range(6)))
    winners = [n for n, answer in enumerate(answers) if answer == (200, {"success": True})]
    losers = [answer for answer in answers if answer != (200, {"success": True})]
    assert len(winners) == 1, answers
    assert losers == [(409, failure("Assignment already exists"))] * 5
    assert await replicas[1].assignments("c1") == ["a1"]
    assert await replicas[1].assignment_files("c1", "a1") == expected_tree([("who.txt", str(winners[0]).encode())])


async def test_simultaneous_course_creation_has_one_winner(make_api):
    replicas = [await make_api(), await make_api()]
    answers = await asyncio.gather(*(replicas[n % 2].post(ADMIN, "course/c1", instructors="[]") for n in range(6)))
    assert answers.count((200, {"success": True})) == 1, answers
    assert answers.count((409, failure("Course already exists"))) == 5, answers
    assert await replicas[0].courses() == ["c1"]


async def test_simultaneous_feedback_uploads_leave_one_whole_set(make_api):
    replicas = [await make_api(), await make_api()]
    await replicas[0].create_course("c1", [INSTRUCTOR], [STUDENT])
    await replicas[0].release("c1", "a1")
    timestamp = await replicas[0].submit(STUDENT, "c1", "a1")
    uploads = [[(f"{n}-{k}.html", f"{n}/{k}".encode()) for k in range(3)] for n in range(4)]

    async def upload(n):
        await replicas[n % 2].give_feedback("c1", "a1", STUDENT, timestamp, uploads[n], caller=INSTRUCTOR)

    await asyncio.gather(*(upload(n) for n in range(4)))
    files = await replicas[1].feedback_files("c1", "a1", STUDENT, timestamp)
    assert files in [expected_tree(entries) for entries in uploads]
