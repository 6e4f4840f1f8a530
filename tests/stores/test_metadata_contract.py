"""What every MetadataStore backend must do; runs once per backend registered in conftest."""

from __future__ import annotations

import asyncio

import pytest

from ngshare_s3.stores.errors import DuplicateKey
from ngshare_s3.stores.metadata.base import (
    Assignment,
    Event,
    EventQuery,
    Feedback,
    FileRecord,
    Member,
    MetadataStore,
    InvalidCursor,
    Submission,
)

ODD_IDS = ["My Course+1", "é", "a/b", "..", "中文 课程", "x%2Fy", "😀"]

COLLECTIONS = ("courses", "members", "assignments", "submissions", "events")

FILES = (FileRecord("a.ipynb", "0" * 32, 10), FileRecord("data/b.csv", "f" * 32, 0))


def ts(second: int, micro: int = 0) -> str:
    return f"2026-01-02 03:04:{second:02d}.{micro:06d}"


def submission(student: str, timestamp: str, **changes) -> Submission:
    fields = dict(
        course_id="c",
        assignment_id="a",
        student_id=student,
        timestamp=timestamp,
        submission_id=f"sub-{student}-{timestamp}",
        release_id="r1",
        files=FILES,
    )
    fields.update(changes)
    return Submission(**fields)


async def test_ping(metadata_store: MetadataStore) -> None:
    await metadata_store.ping()


# courses


async def test_create_course_and_exists(metadata_store: MetadataStore) -> None:
    assert not await metadata_store.course_exists("c")
    await metadata_store.create_course("c")
    assert await metadata_store.course_exists("c")
    assert not await metadata_store.course_exists("C")


async def test_duplicate_course(metadata_store: MetadataStore) -> None:
    await metadata_store.create_course("c")
    with pytest.raises(DuplicateKey):
        await metadata_store.create_course("c")
    assert await metadata_store.list_courses() == ["c"]


async def test_racing_course_creation_has_one_winner(metadata_store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(metadata_store.create_course("race") for _ in range(20)), return_exceptions=True
    )
    assert results.count(None) == 1
    assert all(isinstance(r, DuplicateKey) for r in results if r is not None)


async def test_list_courses_sorted_by_code_point(metadata_store: MetadataStore) -> None:
    # '\uffff' < '😀' by code point, though UTF-16 code units would order them the other way.
    ids = ODD_IDS + ["b", "B", "a", "\uffff", "ä", "Z", "a b", "a-b", "a0"]
    for course_id in reversed(ids):
        await metadata_store.create_course(course_id)
    assert await metadata_store.list_courses() == sorted(ids)


async def test_odd_ids_round_trip(metadata_store: MetadataStore) -> None:
    for course_id in ODD_IDS:
        await metadata_store.create_course(course_id)
        await metadata_store.add_member(Member(course_id, course_id, "student", "É", "ñ", "x@é"))
    for course_id in ODD_IDS:
        assert await metadata_store.course_exists(course_id)
        member = await metadata_store.get_member(course_id, course_id)
        assert member == Member(course_id, course_id, "student", "É", "ñ", "x@é")
    assert not await metadata_store.course_exists("a")
    assert not await metadata_store.course_exists(".")


async def test_delete_course_removes_only_the_course_record(metadata_store: MetadataStore) -> None:
    await metadata_store.create_course("c")
    await metadata_store.create_course("d")
    await metadata_store.add_member(Member("c", "u", "student"))
    assert await metadata_store.delete_course("c") is True
    assert await metadata_store.delete_course("c") is False
    assert await metadata_store.list_courses() == ["d"]
    assert await metadata_store.get_member("c", "u") is not None


# memberships


async def test_add_and_get_member(metadata_store: MetadataStore) -> None:
    member = Member("c", "u", "instructor", "Ada", "Lovelace", "ada@example.org")
    await metadata_store.add_member(member)
    assert await metadata_store.get_member("c", "u") == member
    assert await metadata_store.get_member("c", "v") is None
    assert await metadata_store.get_member("d", "u") is None


async def test_add_member_without_names(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "u", "student"))
    expected = Member("c", "u", "student", None, None, None)
    assert await metadata_store.get_member("c", "u") == expected


async def test_duplicate_member_whatever_the_role(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "u", "student", "First"))
    with pytest.raises(DuplicateKey):
        await metadata_store.add_member(Member("c", "u", "instructor", "Other"))
    assert await metadata_store.get_member("c", "u") == Member("c", "u", "student", "First")
    await metadata_store.add_member(Member("d", "u", "instructor"))  # another course is fine


async def test_list_members_by_role_in_creation_order(metadata_store: MetadataStore) -> None:
    for user in ["zed", "amy", "mia"]:
        await metadata_store.add_member(Member("c", user, "student"))
    await metadata_store.add_member(Member("c", "teach", "instructor"))
    await metadata_store.add_member(Member("other", "bob", "student"))
    students = await metadata_store.list_members("c", "student")
    assert [m.user_id for m in students] == ["zed", "amy", "mia"]
    instructors = await metadata_store.list_members("c", "instructor")
    assert instructors == [Member("c", "teach", "instructor")]
    assert await metadata_store.list_members("none", "student") == []


async def test_courses_of_sorted_both_roles(metadata_store: MetadataStore) -> None:
    memberships = [("z", "instructor"), ("é", "student"), ("a", "student"), ("M", "instructor")]
    for course, role in memberships:
        await metadata_store.add_member(Member(course, "u", role))
    await metadata_store.add_member(Member("b", "someone-else", "student"))
    assert await metadata_store.courses_of("u") == ["M", "a", "z", "é"]
    assert await metadata_store.courses_of("nobody") == []


async def test_put_student_adds_then_updates_in_place(metadata_store: MetadataStore) -> None:
    assert await metadata_store.put_student(Member("c", "s1", "student", "A")) is True
    assert await metadata_store.put_student(Member("c", "s2", "student", "B")) is True
    assert await metadata_store.put_student(Member("c", "s1", "student", "A2", "L", "e")) is True
    assert await metadata_store.list_members("c", "student") == [
        Member("c", "s1", "student", "A2", "L", "e"),
        Member("c", "s2", "student", "B"),
    ]


async def test_put_student_refuses_an_instructor(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "t", "instructor", "Teach"))
    assert await metadata_store.put_student(Member("c", "t", "student", "Changed")) is False
    assert await metadata_store.get_member("c", "t") == Member("c", "t", "instructor", "Teach")
    assert await metadata_store.list_members("c", "student") == []


async def test_put_student_racing_itself_keeps_one_row(metadata_store: MetadataStore) -> None:
    results = await asyncio.gather(
        *(metadata_store.put_student(Member("c", "s", "student", str(i))) for i in range(20))
    )
    assert results == [True] * 20
    assert len(await metadata_store.list_members("c", "student")) == 1


async def test_make_instructor_adds_new(metadata_store: MetadataStore) -> None:
    await metadata_store.make_instructor(Member("c", "t", "instructor", "T"))
    assert await metadata_store.get_member("c", "t") == Member("c", "t", "instructor", "T")


async def test_make_instructor_moves_a_student_to_the_end(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "s", "student", "Stu"))
    await metadata_store.add_member(Member("c", "t1", "instructor"))
    await metadata_store.add_member(Member("c", "t2", "instructor"))
    await metadata_store.make_instructor(Member("c", "s", "instructor", "Now", "Teaching"))
    instructors = await metadata_store.list_members("c", "instructor")
    assert [m.user_id for m in instructors] == ["t1", "t2", "s"]
    assert instructors[-1] == Member("c", "s", "instructor", "Now", "Teaching")
    assert await metadata_store.list_members("c", "student") == []
    await metadata_store.add_member(Member("c", "t3", "instructor"))
    instructors = await metadata_store.list_members("c", "instructor")
    assert [m.user_id for m in instructors] == ["t1", "t2", "s", "t3"]


async def test_make_instructor_keeps_an_instructors_place(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "t1", "instructor", "Old"))
    await metadata_store.add_member(Member("c", "t2", "instructor"))
    await metadata_store.make_instructor(Member("c", "t1", "instructor", "New"))
    instructors = await metadata_store.list_members("c", "instructor")
    assert instructors == [Member("c", "t1", "instructor", "New"), Member("c", "t2", "instructor")]


async def test_put_student_after_make_instructor_is_refused(metadata_store: MetadataStore) -> None:
    assert await metadata_store.put_student(Member("c", "u", "student")) is True
    await metadata_store.make_instructor(Member("c", "u", "instructor"))
    assert await metadata_store.put_student(Member("c", "u", "student", "X")) is False
    assert await metadata_store.get_member("c", "u") == Member("c", "u", "instructor")


async def test_update_names_only_for_that_role(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "s", "student", "A", "B", "C"))
    assert await metadata_store.update_names(Member("c", "s", "instructor", "X")) is False
    assert await metadata_store.update_names(Member("c", "nobody", "student", "X")) is False
    assert await metadata_store.get_member("c", "s") == Member("c", "s", "student", "A", "B", "C")
    assert await metadata_store.update_names(Member("c", "s", "student", "D", None, "F")) is True
    assert await metadata_store.get_member("c", "s") == Member("c", "s", "student", "D", None, "F")


async def test_delete_member_only_for_that_role(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "s", "student"))
    assert await metadata_store.delete_member("c", "s", "instructor") is False
    assert await metadata_store.get_member("c", "s") is not None
    assert await metadata_store.delete_member("c", "s", "student") is True
    assert await metadata_store.get_member("c", "s") is None
    assert await metadata_store.delete_member("c", "s", "student") is False


async def test_delete_members_of_one_course(metadata_store: MetadataStore) -> None:
    await metadata_store.add_member(Member("c", "s", "student"))
    await metadata_store.add_member(Member("c", "t", "instructor"))
    await metadata_store.add_member(Member("d", "s", "student"))
    await metadata_store.delete_members("c")
    assert await metadata_store.courses_of("s") == ["d"]
    assert await metadata_store.courses_of("t") == []


# assignments


async def test_create_and_get_assignment(metadata_store: MetadataStore) -> None:
    assignment = Assignment("c", "hw 1", "r1", ts(1), FILES)
    await metadata_store.create_assignment(assignment)
    assert await metadata_store.get_assignment("c", "hw 1") == assignment
    assert await metadata_store.get_assignment("c", "hw 2") is None
    assert await metadata_store.get_assignment("d", "hw 1") is None


async def test_assignment_without_files(metadata_store: MetadataStore) -> None:
    await metadata_store.create_assignment(Assignment("c", "a", "r1", ts(1)))
    got = await metadata_store.get_assignment("c", "a")
    assert got is not None and got.files == ()


async def test_duplicate_assignment(metadata_store: MetadataStore) -> None:
    await metadata_store.create_assignment(Assignment("c", "a", "r1", ts(1)))
    with pytest.raises(DuplicateKey):
        await metadata_store.create_assignment(Assignment("c", "a", "r2", ts(2), FILES))
    assert (await metadata_store.get_assignment("c", "a")).release_id == "r1"
    await metadata_store.create_assignment(Assignment("d", "a", "r3", ts(3)))


async def test_list_assignments_in_creation_order(metadata_store: MetadataStore) -> None:
    for name in ["z", "a", "..", "a/b"]:
        await metadata_store.create_assignment(Assignment("c", name, f"r-{name}", ts(1)))
    await metadata_store.create_assignment(Assignment("other", "x", "r", ts(1)))
    listed = await metadata_store.list_assignments("c")
    assert [a.assignment_id for a in listed] == ["z", "a", "..", "a/b"]
    assert listed[2] == Assignment("c", "..", "r-..", ts(1))


async def test_delete_assignment_only_that_release(metadata_store: MetadataStore) -> None:
    await metadata_store.create_assignment(Assignment("c", "a", "old", ts(1)))
    assert await metadata_store.delete_assignment("c", "a", "other") is False
    assert await metadata_store.get_assignment("c", "a") is not None
    assert await metadata_store.delete_assignment("c", "a", "old") is True
    await metadata_store.create_assignment(Assignment("c", "a", "new", ts(2)))
    # A late delete of the old release must not remove the new one.
    assert await metadata_store.delete_assignment("c", "a", "old") is False
    assert (await metadata_store.get_assignment("c", "a")).release_id == "new"


# submissions


async def test_create_and_get_submission(metadata_store: MetadataStore) -> None:
    sub = submission("s", ts(1))
    await metadata_store.create_submission(sub)
    assert await metadata_store.get_submission("c", "a", "s", ts(1)) == sub
    assert await metadata_store.get_submission("c", "a", "s", ts(2)) is None
    assert await metadata_store.get_submission("c", "a", "other") is None
    assert await metadata_store.get_submission("c", "b", "s") is None


async def test_duplicate_submission_timestamp(metadata_store: MetadataStore) -> None:
    await metadata_store.create_submission(submission("s", ts(1), submission_id="first"))
    with pytest.raises(DuplicateKey):
        await metadata_store.create_submission(submission("s", ts(1), submission_id="second"))
    await metadata_store.create_submission(submission("t", ts(1)))  # another student: fine
    await metadata_store.create_submission(submission("s", ts(1, 1)))  # one microsecond later
    listed = await metadata_store.list_submissions("c", "a", "s")
    assert [s.submission_id for s in listed] == ["first", f"sub-s-{ts(1, 1)}"]


async def test_latest_submission(metadata_store: MetadataStore) -> None:
    # Created out of order: "latest" means greatest timestamp, not last inserted.
    for timestamp in [ts(5), ts(9), ts(7), ts(9, 1), ts(8)]:
        await metadata_store.create_submission(submission("s", timestamp))
    latest = await metadata_store.get_submission("c", "a", "s")
    assert latest is not None and latest.timestamp == ts(9, 1)


async def test_list_submissions_oldest_first(metadata_store: MetadataStore) -> None:
    await metadata_store.create_submission(submission("s", ts(3)))
    await metadata_store.create_submission(submission("t", ts(1)))
    await metadata_store.create_submission(submission("s", ts(2)))
    await metadata_store.create_submission(submission("s", ts(4), assignment_id="b"))
    everyone = await metadata_store.list_submissions("c", "a")
    assert [(s.student_id, s.timestamp) for s in everyone] == [
        ("t", ts(1)),
        ("s", ts(2)),
        ("s", ts(3)),
    ]
    mine = await metadata_store.list_submissions("c", "a", "s")
    assert [s.timestamp for s in mine] == [ts(2), ts(3)]
    assert await metadata_store.list_submissions("c", "zzz") == []


async def test_submission_round_trips_feedback(metadata_store: MetadataStore) -> None:
    feedback = Feedback("fb1", ts(30), (FileRecord("fb.html", "a" * 32, 99),))
    sub = submission("é/..", ts(1), feedback=feedback, files=())
    await metadata_store.create_submission(sub)
    assert await metadata_store.get_submission("c", "a", "é/..") == sub


async def test_replace_feedback_returns_the_previous(metadata_store: MetadataStore) -> None:
    await metadata_store.create_submission(submission("s", ts(1)))
    first = Feedback("f1", ts(10), (FileRecord("f.html", "1" * 32, 1),))
    second = Feedback("f2", ts(11), ())
    assert await metadata_store.replace_feedback("c", "a", "s", ts(1), first) == (True, None)
    assert await metadata_store.replace_feedback("c", "a", "s", ts(1), second) == (True, first)
    assert (await metadata_store.get_submission("c", "a", "s", ts(1))).feedback == second


async def test_replace_feedback_on_missing_submission(metadata_store: MetadataStore) -> None:
    await metadata_store.create_submission(submission("s", ts(1)))
    fb = Feedback("f", ts(10))
    assert await metadata_store.replace_feedback("c", "a", "s", ts(2), fb) == (False, None)
    assert await metadata_store.replace_feedback("c", "a", "x", ts(1), fb) == (False, None)
    assert (await metadata_store.get_submission("c", "a", "s", ts(1))).feedback is None


async def test_replace_feedback_only_touches_that_submission(metadata_store: MetadataStore) -> None:
    await metadata_store.create_submission(submission("s", ts(1)))
    await metadata_store.create_submission(submission("s", ts(2)))
    await metadata_store.replace_feedback("c", "a", "s", ts(1), Feedback("f", ts(10)))
    assert (await metadata_store.get_submission("c", "a", "s", ts(2))).feedback is None


async def test_racing_feedback_replacements_form_one_chain(metadata_store: MetadataStore) -> None:
    """Atomic swaps: each feedback is replaced exactly once, except the one that stays."""
    await metadata_store.create_submission(submission("s", ts(1)))
    news = [Feedback(f"f{i}", ts(10, i)) for i in range(20)]
    results = await asyncio.gather(
        *(metadata_store.replace_feedback("c", "a", "s", ts(1), fb) for fb in news)
    )
    assert all(found for found, _ in results)
    previous = [old for _, old in results]
    final = (await metadata_store.get_submission("c", "a", "s", ts(1))).feedback
    assert previous.count(None) == 1
    assert sorted([fb.feedback_id for fb in previous if fb] + [final.feedback_id]) == sorted(
        fb.feedback_id for fb in news
    )


async def test_delete_submissions_narrowing(metadata_store: MetadataStore) -> None:
    async def ids() -> set[tuple[str, str]]:
        found = set()
        for course, assignment in [("c", "a"), ("c", "b"), ("d", "a")]:
            for s in await metadata_store.list_submissions(course, assignment):
                found.add((f"{course}/{assignment}", s.release_id))
        return found

    await metadata_store.create_submission(submission("s", ts(1), release_id="r1"))
    await metadata_store.create_submission(submission("s", ts(2), release_id="r2"))
    await metadata_store.create_submission(submission("s", ts(1), assignment_id="b"))
    await metadata_store.create_submission(submission("s", ts(1), course_id="d", release_id="r1"))

    await metadata_store.delete_submissions("c", "a", "r1")
    assert await ids() == {("c/a", "r2"), ("c/b", "r1"), ("d/a", "r1")}
    await metadata_store.delete_submissions("c", "a")
    assert await ids() == {("c/b", "r1"), ("d/a", "r1")}
    await metadata_store.delete_submissions("c")
    assert await ids() == {("d/a", "r1")}


# audit trail


async def test_events_in_order_and_by_course(metadata_store: MetadataStore) -> None:
    events = [
        Event(ts(1), "t", "create_course", "c"),
        Event(ts(2), "t", "release", "d", "a", None, {"files": 3, "nested": {"é": [1, None]}}),
        Event(ts(1), "s", "submit", "c", "a", "s", {"timestamp": ts(1)}),
    ]
    for event in events:
        await metadata_store.record_event(event)
    assert await metadata_store.list_events() == events
    assert await metadata_store.list_events("c") == [events[0], events[2]]
    assert await metadata_store.list_events("none") == []


def trail() -> list[Event]:
    """Events of course c (and one of course d) in recording order; several share a time."""
    return [
        Event(ts(1), "t", "release assignment", "c", "a"),
        Event(ts(2), "s1", "submit", "c", "a", "s1", {"timestamp": ts(2)}),
        Event(ts(2), "s2", "submit", "c", "a", "s2", {"timestamp": ts(2)}),
        Event(ts(2), "t", "release assignment", "d", "a"),
        Event(ts(2), "t", "collect submission", "c", "a", "s1"),
        Event(ts(3), "t", "upload feedback", "c", "a", "s1", {"timestamp": ts(2)}),
        Event(ts(3), "s1", "submit", "c", "b", "s1"),
        Event(ts(0), "t", "delete student", "c", None, "s2"),  # a clock behind: still ordered by time
    ]


async def record_all(store: MetadataStore, events: list[Event]) -> None:
    for event in events:
        await store.record_event(event)


def newest_first(events: list[Event]) -> list[Event]:
    """By time, newest first; equal times in reverse recording order."""
    ranked = sorted(enumerate(events), key=lambda pair: (pair[1].at, pair[0]), reverse=True)
    return [event for _, event in ranked]


async def test_event_page_is_newest_first_and_of_one_course(metadata_store: MetadataStore) -> None:
    events = trail()
    await record_all(metadata_store, events)
    page = await metadata_store.page_events(EventQuery("c"))
    assert page.events == newest_first([e for e in events if e.course_id == "c"])
    assert page.next is None
    assert (await metadata_store.page_events(EventQuery("none"))).events == []


async def test_event_page_filters(metadata_store: MetadataStore) -> None:
    events = trail()
    await record_all(metadata_store, events)
    in_c = [e for e in events if e.course_id == "c"]

    async def found(**filters) -> list[Event]:
        return (await metadata_store.page_events(EventQuery("c", **filters))).events

    assert await found(assignment_id="b") == [events[6]]
    assert await found(assignment_id="a") == newest_first([e for e in in_c if e.assignment_id == "a"])
    assert await found(student_id="s2") == [events[2], events[7]]
    assert await found(assignment_id="a", student_id="s1") == [events[5], events[4], events[1]]
    # What s1 may see: their own actions and the ones about them.
    assert await found(involving="s1") == [events[6], events[5], events[4], events[1]]
    assert await found(involving="t") == newest_first([e for e in in_c if e.user_id == "t"])
    assert await found(involving="s1", student_id="s2") == []
    assert await found(assignment_id="none") == []


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
async def test_event_pages_give_every_event_exactly_once(metadata_store: MetadataStore, limit: int) -> None:
    # Many events at one moment: only a tie-break on creation order keeps the cursor stable.
    events = [Event(ts(5), f"u{i}", "submit", "c", "a", f"u{i}") for i in range(7)] + trail()
    await record_all(metadata_store, events)
    expected = newest_first([e for e in events if e.course_id == "c"])

    seen, cursor, pages = [], None, 0
    while True:
        page = await metadata_store.page_events(EventQuery("c", limit=limit, before=cursor))
        pages += 1
        assert 0 < len(page.events) <= limit
        seen += page.events
        if page.next is None:
            break
        cursor = page.next
    assert seen == expected
    assert pages == -(-len(expected) // limit)  # no empty last page, even when the count divides evenly


async def test_event_pages_with_a_filter_and_later_events(metadata_store: MetadataStore) -> None:
    events = trail()
    await record_all(metadata_store, events)
    first = await metadata_store.page_events(EventQuery("c", student_id="s1", limit=2))
    assert first.events == [events[6], events[5]]
    # Events recorded after the first page come before it: the next page is unaffected.
    await metadata_store.record_event(Event(ts(9), "s1", "submit", "c", "a", "s1"))
    rest = await metadata_store.page_events(EventQuery("c", student_id="s1", limit=2, before=first.next))
    assert rest.events == [events[4], events[1]]
    assert rest.next is None


@pytest.mark.parametrize("cursor", ["", "not a cursor", "WzEsMiwzXQ", "bnVsbA", "W10"])
async def test_an_unreadable_event_cursor_is_refused(metadata_store: MetadataStore, cursor: str) -> None:
    await record_all(metadata_store, trail())
    with pytest.raises(InvalidCursor):
        await metadata_store.page_events(EventQuery("c", before=cursor))


# maintenance


def _has(rows: list[dict], expected: dict) -> bool:
    """Backends may add their own keys (e.g. MongoDB's _id); the record's fields must be there."""
    return any({k: row.get(k) for k in expected} == expected for row in rows)


async def test_dump_has_every_record(metadata_store: MetadataStore) -> None:
    await metadata_store.create_course("c")
    await metadata_store.add_member(Member("c", "s", "student", "S"))
    await metadata_store.create_assignment(Assignment("c", "a", "r1", ts(1), FILES))
    feedback = Feedback("fb", ts(9), FILES[:1])
    await metadata_store.create_submission(submission("s", ts(2), feedback=feedback))
    await metadata_store.record_event(Event(ts(3), "s", "submit", "c", "a", "s", {"n": 1}))

    dump = await metadata_store.dump()
    assert set(dump) == set(COLLECTIONS)
    files = [{"path": f.path, "md5": f.md5, "size": f.size} for f in FILES]
    assert _has(dump["courses"], {"course_id": "c"})
    assert _has(
        dump["members"], {"course_id": "c", "user_id": "s", "role": "student", "first_name": "S"}
    )
    assert _has(dump["assignments"], {"assignment_id": "a", "release_id": "r1", "files": files})
    assert _has(
        dump["submissions"],
        {
            "student_id": "s",
            "timestamp": ts(2),
            "files": files,
            "feedback": {"feedback_id": "fb", "timestamp": ts(9), "files": files[:1]},
        },
    )
    assert _has(dump["events"], {"action": "submit", "detail": {"n": 1}})
    assert all(len(rows) == 1 for rows in dump.values())


async def test_dump_of_empty_store_names_every_collection(metadata_store: MetadataStore) -> None:
    dump = await metadata_store.dump()
    assert dump == {name: [] for name in COLLECTIONS}


async def test_clear(metadata_store: MetadataStore) -> None:
    await metadata_store.create_course("c")
    await metadata_store.add_member(Member("c", "s", "student"))
    await metadata_store.create_assignment(Assignment("c", "a", "r1", ts(1)))
    await metadata_store.create_submission(submission("s", ts(2)))
    await metadata_store.record_event(Event(ts(3), "s", "submit", "c"))
    await metadata_store.clear()
    dump = await metadata_store.dump()
    assert all(rows == [] for rows in dump.values())
    await metadata_store.create_course("c")  # usable afterwards, and the key is free again
    assert await metadata_store.list_courses() == ["c"]
