"""The reads behind a request about one student's work (collect, feedback upload and fetch,
a student's submission list) go to the database together, and their checks still answer in
the order the spec gives: course, permission, assignment, student, submission."""

from __future__ import annotations

import contextlib

import pytest

from ngshare_s3.exchange import feedback, submissions
from ngshare_s3.exchange.errors import ExchangeError, NotFound
from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.exchange.permissions import Caller
from ngshare_s3.stores.metadata.base import Assignment, Member, Submission
from ngshare_s3.stores.wrapped import WrappedStore

COURSE, ASSIGNMENT, RELEASE = "course1", "ps1", "release-1"
TIMESTAMP = "2026-01-01 00:00:01.000000"
INSTRUCTOR, STUDENT, OTHER = Caller("ada"), Caller("bob"), Caller("eve")


@pytest.fixture
async def course(ex: Exchange) -> Exchange:
    await ex.metadata.create_course(COURSE)
    await ex.metadata.add_member(Member(COURSE, INSTRUCTOR.name, "instructor"))
    await ex.metadata.add_member(Member(COURSE, STUDENT.name, "student"))
    await ex.metadata.add_member(Member(COURSE, "carl", "student"))  # never submitted
    await ex.metadata.create_assignment(Assignment(COURSE, ASSIGNMENT, RELEASE, TIMESTAMP))
    await ex.metadata.create_submission(Submission(COURSE, ASSIGNMENT, STUDENT.name, TIMESTAMP, "s1", RELEASE))
    return ex


class Calls:
    """When each database call starts and ends."""

    def __init__(self) -> None:
        self.log: list[str] = []

    @contextlib.contextmanager
    def around(self, operation: str):
        self.log.append(f"start {operation}")
        try:
            yield
        finally:
            self.log.append(f"end {operation}")


async def test_the_reads_of_a_collect_are_all_sent_before_the_first_answer(course: Exchange):
    calls = Calls()
    course.metadata = WrappedStore(course.metadata, calls.around)
    tree, timestamp = await submissions.get_submission(course, INSTRUCTOR, COURSE, ASSIGNMENT, STUDENT.name, None)
    assert timestamp == TIMESTAMP
    reads = calls.log[: calls.log.index("start record_event")]
    assert sorted(reads[:4]) == ["start get_assignment", "start get_member", "start get_member", "start list_submissions"]
    assert all(entry.startswith("end ") for entry in reads[4:])


async def test_a_student_fetching_feedback_reads_their_membership_once(course: Exchange):
    calls = Calls()
    course.metadata = WrappedStore(course.metadata, calls.around)
    tree, _ = await feedback.get_feedback(course, STUDENT, COURSE, ASSIGNMENT, STUDENT.name, TIMESTAMP)
    assert tree.files == ()
    assert calls.log.count("start get_member") == 1


@pytest.mark.parametrize(
    ("caller", "course_id", "assignment_id", "student_id", "status", "message"),
    [
        (INSTRUCTOR, "nowhere", "nothing", "nobody", 404, "Course not found"),
        (OTHER, COURSE, "nothing", "nobody", 403, None),  # a stranger learns nothing more
        (STUDENT, COURSE, "nothing", "carl", 403, None),
        (INSTRUCTOR, COURSE, "nothing", "nobody", 404, "Assignment not found"),
        (INSTRUCTOR, COURSE, ASSIGNMENT, "nobody", 404, "Student not found"),
        (INSTRUCTOR, COURSE, ASSIGNMENT, "carl", 404, "Submission not found"),
        (Caller("root", is_admin=True), COURSE, ASSIGNMENT, "nobody", 404, "Student not found"),
        (Caller("root", is_admin=True), "nowhere", "nothing", "nobody", 404, "Course not found"),
        (Caller("root", is_admin=True), COURSE, "nothing", "nobody", 404, "Assignment not found"),
    ],
)
async def test_the_checks_answer_in_the_spec_order(course, caller, course_id, assignment_id, student_id, status, message):
    with pytest.raises(ExchangeError) as raised:
        await feedback.get_feedback(course, caller, course_id, assignment_id, student_id, TIMESTAMP)
    assert raised.value.status == status
    if message is not None:
        assert str(raised.value) == message


async def test_submissions_of_an_earlier_release_stay_hidden(course: Exchange):
    await course.metadata.create_submission(
        Submission(COURSE, ASSIGNMENT, "carl", TIMESTAMP, "old", "release-0")
    )
    assert await submissions.list_student_submissions(course, INSTRUCTOR, COURSE, ASSIGNMENT, "carl") == []
    with pytest.raises(NotFound, match="Submission not found"):
        await submissions.get_submission(course, INSTRUCTOR, COURSE, ASSIGNMENT, "carl", None)
