"""Feedback: POST and GET feedback/<c>/<a>/<s> (spec §2.21, §2.22, §1.8)."""

import pytest

from .support import (
    INSTRUCTOR,
    OTHER_STUDENT,
    OUTSIDER,
    STUDENT,
    encode_files,
    expected_tree,
    failure,
    raw_files,
)

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

ROUTE = f"feedback/c1/a1/{STUDENT}"
REPORT = [("a1.html", b"<html>well done</html>")]


@pytest.fixture
async def submitted(api, classroom) -> str:
    """student1's submission of a1; its timestamp."""
    return await api.submit(STUDENT, "c1", "a1", [("a1.ipynb", b"{}")])


def timestamp_forms(timestamp):
    return {"canonical": timestamp, "with UTC": f"{timestamp} UTC"}


@pytest.mark.parametrize("form", ["canonical", "with UTC"])
async def test_feedback_round_trips_with_either_timestamp_form(api, submitted, form):
    sent = timestamp_forms(submitted)[form]
    files = encode_files(REPORT, with_newlines=True)
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=sent, files=files) == (200, {"success": True})
    for asked in timestamp_forms(submitted).values():
        assert await api.get(STUDENT, ROUTE, timestamp=asked) == (
            200,
            {"success": True, "files": expected_tree(REPORT), "timestamp": submitted},
        )


async def test_feedback_accepts_contents_without_newlines_too(api, submitted):
    files = encode_files(REPORT)
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=submitted, files=files) == (200, {"success": True})
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == expected_tree(REPORT)


async def test_a_submission_without_feedback_answers_an_empty_list(api, submitted):
    assert await api.get(STUDENT, ROUTE, timestamp=f"{submitted} UTC") == (
        200,
        {"success": True, "files": [], "timestamp": submitted},
    )


async def test_feedback_belongs_to_one_submission(api, submitted):
    later = await api.submit(STUDENT, "c1", "a1")
    await api.give_feedback("c1", "a1", STUDENT, submitted, REPORT)
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == expected_tree(REPORT)
    assert await api.feedback_files("c1", "a1", STUDENT, later) == []


async def test_a_new_upload_replaces_the_whole_feedback_set(api, submitted):
    await api.give_feedback("c1", "a1", STUDENT, submitted, [("one.html", b"1"), ("two.html", b"2")])
    await api.give_feedback("c1", "a1", STUDENT, submitted, [("three.html", b"3")])
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == expected_tree([("three.html", b"3")])


async def test_an_empty_upload_clears_the_feedback(api, submitted):
    await api.give_feedback("c1", "a1", STUDENT, submitted, REPORT)
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=submitted, files="[]") == (200, {"success": True})
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == []


@pytest.mark.parametrize(
    "files, message",
    [
        (None, "Please supply files"),
        ("", "Files cannot be JSON decoded"),
        ("[not json", "Files cannot be JSON decoded"),
        (raw_files([{"path": "ok.html", "content": "b2s="}, {"path": "/abs", "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": "ok.html", "content": "b2s="}, {"path": "bad.html", "content": "YQ"}]), "Content cannot be base64 decoded"),
    ],
    ids=["missing", "empty", "not-json", "illegal-path", "bad-base64"],
)
async def test_a_failed_upload_keeps_the_previous_feedback(api, submitted, files, message):
    await api.give_feedback("c1", "a1", STUDENT, submitted, REPORT)
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=submitted, files=files) == (400, failure(message))
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == expected_tree(REPORT)


@pytest.mark.backends("embedded")  # refused while reading the form, before any store
@pytest.mark.parametrize("timestamp", ["a", "not a time", "2020-01-01T00:00:00.000000"])
async def test_an_unparsable_timestamp_is_a_bad_request(api, submitted, timestamp):
    files = encode_files(REPORT)
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=timestamp, files=files) == (400, failure("Time format incorrect"))
    assert await api.get(STUDENT, ROUTE, timestamp=timestamp) == (400, failure("Time format incorrect"))


async def test_a_timestamp_is_required(api, submitted):
    assert await api.post(INSTRUCTOR, ROUTE, files=encode_files(REPORT)) == (400, failure("Please supply timestamp"))
    assert await api.get(STUDENT, ROUTE) == (400, failure("Please supply timestamp"))


async def test_the_upload_timestamp_is_read_from_the_body_only(api, submitted):
    reply = await api.raw(
        "POST",
        api.prefix + ROUTE,
        caller=INSTRUCTOR,
        params={"timestamp": submitted},
        data={"files": encode_files(REPORT)},
    )
    assert (reply.status, reply.json) == (400, failure("Please supply timestamp"))
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == []


async def test_the_upload_files_are_read_from_the_body_only(api, submitted):
    reply = await api.raw(
        "POST",
        api.prefix + ROUTE,
        caller=INSTRUCTOR,
        params={"files": encode_files(REPORT)},
        data={"timestamp": submitted},
    )
    assert (reply.status, reply.json) == (400, failure("Please supply files"))


async def test_an_unknown_submission_is_not_found_before_the_files_are_checked(api, submitted):
    unknown = "2020-01-01 00:00:00.000000"
    assert await api.post(INSTRUCTOR, ROUTE, timestamp=unknown, files="[not json") == (404, failure("Submission not found"))
    assert await api.get(STUDENT, ROUTE, timestamp=unknown) == (404, failure("Submission not found"))


async def test_the_timestamp_is_checked_before_the_files(api, submitted):
    assert await api.post(INSTRUCTOR, ROUTE, files="[not json") == (400, failure("Please supply timestamp"))
    assert await api.post(INSTRUCTOR, ROUTE, timestamp="a", files="[not json") == (400, failure("Time format incorrect"))


async def test_the_target_must_be_a_member_before_the_timestamp_is_read(api, submitted):
    route = f"feedback/c1/a1/{OUTSIDER}"
    assert await api.post(INSTRUCTOR, route) == (404, failure("Student not found"))
    assert await api.get(INSTRUCTOR, route) == (404, failure("Student not found"))
    assert await api.get(OUTSIDER, route) == (404, failure("Student not found"))


async def test_the_assignment_is_checked_before_the_target(api, submitted):
    assert await api.post(INSTRUCTOR, f"feedback/c1/nope/{OUTSIDER}") == (404, failure("Assignment not found"))
    assert await api.get(INSTRUCTOR, f"feedback/c1/nope/{OUTSIDER}") == (404, failure("Assignment not found"))
    assert await api.get(INSTRUCTOR, f"feedback/nope/a1/{STUDENT}") == (404, failure("Course not found"))


async def test_a_student_cannot_read_another_students_feedback(api, submitted):
    await api.give_feedback("c1", "a1", STUDENT, submitted, REPORT)
    status, body = await api.get(OTHER_STUDENT, ROUTE, timestamp=submitted)
    assert (status, body) == (403, failure("Permission denied"))
    # permission comes before the assignment lookup
    assert await api.get(OTHER_STUDENT, f"feedback/c1/nope/{STUDENT}") == (403, failure("Permission denied"))


async def test_students_cannot_upload_feedback_even_for_themselves(api, submitted):
    files = encode_files(REPORT)
    assert await api.post(STUDENT, ROUTE, timestamp=submitted, files=files) == (403, failure("Permission denied"))
    assert await api.feedback_files("c1", "a1", STUDENT, submitted) == []
