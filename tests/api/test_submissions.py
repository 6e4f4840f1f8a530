"""Submissions: submission/<c>/<a>, submissions/<c>/<a>[/<s>], submission/<c>/<a>/<s>
(spec §2.17–§2.20, §1.8, §1.12)."""

from datetime import datetime, timedelta, timezone

import pytest

from .support import (
    ADMIN,
    INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    STUDENT,
    TIMESTAMP_FORMAT,
    encode_files,
    expected_tree,
    failure,
)

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

WORK = [("a1.ipynb", b'{"answer": 42}')]


def parse(timestamp: str) -> datetime:
    return datetime.strptime(timestamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)


async def test_submitting_answers_a_utc_timestamp_in_the_emitted_format(api, classroom):
    before = datetime.now(timezone.utc)
    status, body = await api.post(STUDENT, "submission/c1/a1", files=encode_files(WORK), user=STUDENT)
    after = datetime.now(timezone.utc)
    assert status == 200
    assert set(body) == {"success", "timestamp"} and body["success"] is True
    assert TIMESTAMP_FORMAT.match(body["timestamp"]), body["timestamp"]
    # UTC, not local time: the value lies between the two readings of the clock
    assert before - timedelta(seconds=1) <= parse(body["timestamp"]) <= after + timedelta(seconds=1)


async def test_the_submitted_timestamp_is_the_one_listed_and_downloaded(api, classroom):
    timestamp = await api.submit(STUDENT, "c1", "a1", WORK)
    assert await api.get(INSTRUCTOR, "submissions/c1/a1") == (
        200,
        {"success": True, "submissions": [{"student_id": STUDENT, "timestamp": timestamp}]},
    )
    assert await api.get(STUDENT, f"submissions/c1/a1/{STUDENT}") == (
        200,
        {"success": True, "submissions": [{"student_id": STUDENT, "timestamp": timestamp}]},
    )
    assert await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}") == (
        200,
        {"success": True, "files": expected_tree(WORK), "timestamp": timestamp},
    )


async def test_repeated_submissions_get_distinct_increasing_timestamps(api, classroom):
    timestamps = [await api.submit(STUDENT, "c1", "a1", [("n.txt", str(n).encode())]) for n in range(5)]
    assert all(TIMESTAMP_FORMAT.match(timestamp) for timestamp in timestamps)
    assert len(set(timestamps)) == 5
    assert timestamps == sorted(timestamps)
    listed = await api.submissions("c1", "a1")
    assert listed == [{"student_id": STUDENT, "timestamp": timestamp} for timestamp in timestamps]


async def test_each_submission_keeps_its_own_files(api, classroom):
    first = await api.submit(STUDENT, "c1", "a1", [("n.txt", b"first")])
    second = await api.submit(STUDENT, "c1", "a1", [("n.txt", b"second")])
    route = f"submission/c1/a1/{STUDENT}"
    assert await api.get(INSTRUCTOR, route, timestamp=first) == (
        200,
        {"success": True, "files": expected_tree([("n.txt", b"first")]), "timestamp": first},
    )
    assert await api.get(INSTRUCTOR, route, timestamp=second) == (
        200,
        {"success": True, "files": expected_tree([("n.txt", b"second")]), "timestamp": second},
    )


@pytest.mark.parametrize("timestamp", [None, ""], ids=["absent", "empty"])
async def test_without_a_timestamp_the_latest_submission_is_downloaded(api, classroom, timestamp):
    await api.submit(STUDENT, "c1", "a1", [("n.txt", b"first")])
    latest = await api.submit(STUDENT, "c1", "a1", [("n.txt", b"second")])
    status, body = await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}", timestamp=timestamp)
    assert (status, body) == (200, {"success": True, "files": expected_tree([("n.txt", b"second")]), "timestamp": latest})


@pytest.mark.parametrize(
    "timestamp",
    ["a", "not a timestamp", "2020-01-01T00:00:00.000000", "2020-13-45 99:99:99.000000", "2020-01-01 00:00:00.000000"],
)
async def test_an_unmatched_or_unparsable_timestamp_is_not_found_never_bad_request(api, classroom, timestamp):
    await api.submit(STUDENT, "c1", "a1", WORK)
    status, body = await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}", timestamp=timestamp)
    assert (status, body) == (404, failure("Submission not found"))


async def test_a_student_without_submissions_has_none_to_download(api, classroom):
    assert await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}") == (404, failure("Submission not found"))
    assert await api.get(STUDENT, f"submissions/c1/a1/{STUDENT}") == (200, {"success": True, "submissions": []})


async def test_students_cannot_download_even_their_own_submission(api, classroom):
    await api.submit(STUDENT, "c1", "a1", WORK)
    assert await api.get(STUDENT, f"submission/c1/a1/{STUDENT}") == (403, failure("Permission denied"))


async def test_instructors_and_non_member_admins_may_submit(api, classroom):
    by_student = await api.submit(STUDENT, "c1", "a1")
    by_instructor = await api.submit(INSTRUCTOR, "c1", "a1")
    by_admin = await api.submit(ADMIN, "c1", "a1")
    assert await api.submissions("c1", "a1") == [
        {"student_id": STUDENT, "timestamp": by_student},
        {"student_id": INSTRUCTOR, "timestamp": by_instructor},
        {"student_id": ADMIN, "timestamp": by_admin},
    ]
    # instructors are members, so their own listing and download work
    assert await api.get(INSTRUCTOR, f"submissions/c1/a1/{INSTRUCTOR}") == (
        200,
        {"success": True, "submissions": [{"student_id": INSTRUCTOR, "timestamp": by_instructor}]},
    )
    assert (await api.get(INSTRUCTOR, f"submission/c1/a1/{INSTRUCTOR}"))[0] == 200
    # the admin is not a member of c1
    assert await api.get(ADMIN, f"submissions/c1/a1/{ADMIN}") == (404, failure("Student not found"))


async def test_submitting_never_replaces_an_earlier_submission_of_another_student(api, classroom):
    mine = await api.submit(STUDENT, "c1", "a1", [("x", b"mine")])
    theirs = await api.submit(OTHER_STUDENT, "c1", "a1", [("x", b"theirs")])
    assert await api.get(STUDENT, f"submissions/c1/a1/{STUDENT}") == (
        200,
        {"success": True, "submissions": [{"student_id": STUDENT, "timestamp": mine}]},
    )
    status, body = await api.get(INSTRUCTOR, f"submission/c1/a1/{OTHER_STUDENT}")
    assert (status, body["timestamp"], body["files"]) == (200, theirs, expected_tree([("x", b"theirs")]))


async def test_submitting_to_a_missing_assignment_is_not_found(api, classroom):
    assert await api.post(STUDENT, "submission/c1/nope", files="[]") == (404, failure("Assignment not found"))
    assert await api.post(STUDENT, "submission/c1/nope", files="[not json") == (404, failure("Assignment not found"))
    assert await api.post(STUDENT, "submission/nope/a1", files="[]") == (404, failure("Course not found"))


async def test_files_in_the_query_string_are_ignored_when_submitting(api, classroom):
    reply = await api.raw(
        "POST", api.prefix + "submission/c1/a1", caller=STUDENT, params={"files": encode_files(WORK)}, data={"user": STUDENT}
    )
    assert (reply.status, reply.json) == (400, failure("Please supply files"))
    assert await api.submissions("c1", "a1") == []


async def test_a_rejected_submission_leaves_no_trace(api, classroom):
    files = encode_files([("ok.txt", b"fine"), ("../escape", b"bad")])
    assert await api.post(STUDENT, "submission/c1/a1", files=files) == (400, failure("Illegal path"))
    assert await api.submissions("c1", "a1") == []
    assert await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}") == (404, failure("Submission not found"))


async def test_listing_submissions_needs_the_assignment(api, classroom):
    assert await api.get(INSTRUCTOR, "submissions/c1/nope") == (404, failure("Assignment not found"))
    assert await api.get(STUDENT, f"submissions/c1/nope/{STUDENT}") == (404, failure("Assignment not found"))
    assert await api.get(INSTRUCTOR, "submissions/nope/a1") == (404, failure("Course not found"))


async def test_listing_another_students_submissions_is_denied_before_the_assignment_is_looked_up(api, classroom):
    assert await api.get(STUDENT, f"submissions/c1/nope/{OTHER_STUDENT}") == (403, failure("Permission denied"))


async def test_a_non_member_target_is_not_found_after_the_assignment_check(api, classroom):
    assert await api.get(INSTRUCTOR, f"submissions/c1/a1/{OUTSIDER}") == (404, failure("Student not found"))
    assert await api.get(INSTRUCTOR, f"submission/c1/a1/{OUTSIDER}") == (404, failure("Student not found"))
    assert await api.get(INSTRUCTOR, f"submission/c1/nope/{OUTSIDER}") == (404, failure("Assignment not found"))


async def test_a_removed_students_submissions_stay_listed_but_are_out_of_reach(api, classroom):
    timestamp = await api.submit(STUDENT, "c1", "a1", WORK)
    await api.give_feedback("c1", "a1", STUDENT, timestamp, [("a1.html", b"F")])
    await api.delete(INSTRUCTOR, f"student/c1/{STUDENT}")

    assert await api.submissions("c1", "a1", caller=INSTRUCTOR) == [{"student_id": STUDENT, "timestamp": timestamp}]
    not_found = (404, failure("Student not found"))
    assert await api.get(INSTRUCTOR, f"submissions/c1/a1/{STUDENT}") == not_found
    assert await api.get(STUDENT, f"submissions/c1/a1/{STUDENT}") == not_found
    assert await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}") == not_found
    assert await api.get(STUDENT, f"feedback/c1/a1/{STUDENT}", timestamp=timestamp) == not_found
    status, body = await api.post(
        INSTRUCTOR, f"feedback/c1/a1/{STUDENT}", timestamp=timestamp, files=encode_files([])
    )
    assert (status, body) == not_found
    assert await api.courses(STUDENT) == []

    # re-adding the student makes everything reachable again
    await api.add_student("c1", STUDENT, caller=INSTRUCTOR)
    status, body = await api.get(INSTRUCTOR, f"submission/c1/a1/{STUDENT}")
    assert (status, body["timestamp"], body["files"]) == (200, timestamp, expected_tree(WORK))
    assert await api.feedback_files("c1", "a1", STUDENT, timestamp, caller=STUDENT) == expected_tree([("a1.html", b"F")])
