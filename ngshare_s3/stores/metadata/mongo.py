"""The production metadata backend: one MongoDB database, shared by any number of replicas.

There are no multi-document transactions (a standalone MongoDB, FerretDB and many managed
services lack them). Every write that can race is one single-document operation, and a unique
index decides who wins: the loser gets DuplicateKey, which the exchange turns into the spec's
4xx. FerretDB, the MongoDB-protocol server the tests run on, shapes a few choices here; each is
marked "FerretDB:".

FerretDB: version 1.x applies an update as read, modify, write back, so two updates of one
document at once can lose one of them (even findAndModify and $inc). Feedback, which must be
replaced exactly once per upload, therefore lives in its own collection as numbered versions:
the unique index on (submission, version) lets exactly one upload take each next number.
Membership changes stay single-document updates: on FerretDB alone, two changes to the same
member at the same moment (say a role change and a name change) may keep only one of them.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, uri_parser
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)

from ..errors import DatabaseRefused, DatabaseUnavailable, DuplicateKey, StoreConfigError
from .base import (
    Assignment,
    Event,
    EventPage,
    EventPosition,
    EventQuery,
    InvalidCursor,
    Feedback,
    FileRecord,
    Member,
    MetadataStore,
    Role,
    Submission,
    as_document,
    assignment_from_document,
    feedback_from_document,
    member_from_document,
    submission_from_document,
)

DEFAULT_DATABASE = "ngshare_s3"

# How long a request waits for an unreachable server before it answers 503. A URL that sets
# serverSelectionTimeoutMS itself keeps its own value.
SERVER_SELECTION_TIMEOUT_MS = 5000

# FerretDB: concurrent upserts of the same new key are not retried by the server as MongoDB
# 4.2+ does, so the loser sees a duplicate key error and tries again as an update.
RACE_ATTEMPTS = 5

COLLECTIONS = ("courses", "members", "assignments", "submissions", "feedback", "events", "claims")

# Enough for every one of a burst of uploads to the same submission to take its turn.
FEEDBACK_ATTEMPTS = 100

INDEXES: dict[str, list[tuple[list[tuple[str, int]], bool]]] = {
    "courses": [([("course_id", ASCENDING)], True)],
    "members": [
        ([("course_id", ASCENDING), ("user_id", ASCENDING)], True),
        ([("user_id", ASCENDING)], False),
    ],
    "assignments": [([("course_id", ASCENDING), ("assignment_id", ASCENDING)], True)],
    "submissions": [
        (
            [
                ("course_id", ASCENDING),
                ("assignment_id", ASCENDING),
                ("student_id", ASCENDING),
                ("timestamp", ASCENDING),
            ],
            True,
        )
    ],
    "feedback": [
        (
            [
                ("course_id", ASCENDING),
                ("assignment_id", ASCENDING),
                ("student_id", ASCENDING),
                ("timestamp", ASCENDING),
                ("version", ASCENDING),
            ],
            True,
        )
    ],
    "events": [
        ([("course_id", ASCENDING), ("seq", ASCENDING)], False),
        ([("course_id", ASCENDING), ("at", ASCENDING), ("seq", ASCENDING)], False),
    ],
}

CREATION_ORDER = [("seq", ASCENDING), ("_id", ASCENDING)]
OLDEST_FIRST = [("timestamp", ASCENDING), ("seq", ASCENDING)]
NEWEST_FIRST = [("timestamp", DESCENDING), ("seq", DESCENDING)]
# Replicas number events by their own clocks, so two may share a seq: _id breaks that tie.
EVENTS_NEWEST_FIRST = [("at", DESCENDING), ("seq", DESCENDING), ("_id", DESCENDING)]

# Server error codes meaning "the service's credentials are refused or lack a right" (Unauthorized,
# AuthenticationFailed): a fault of the configuration that retrying does not mend.
REFUSED_CODES = {13, 18}

P = ParamSpec("P")
T = TypeVar("T")


def _reason(error: ConnectionFailure) -> str:
    """The driver's first words on why, without its timeout settings and topology dump."""
    reason = str(error).split(", Timeout: ")[0]
    return re.sub(r" \(configured timeouts: [^)]*\)", "", reason)


def translated(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn driver errors into the store errors every backend raises."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        try:
            return await method(*args, **kwargs)
        except DuplicateKeyError as e:
            raise DuplicateKey(str(e)) from e
        except ConnectionFailure as e:
            raise DatabaseUnavailable(f"database {store.location} unreachable: {_reason(e)}") from e
        except OperationFailure as e:
            if e.code not in REFUSED_CODES:
                raise
            details = e.details or {}
            reason = details.get("codeName") or f"code {e.code}"
            message = details.get("errmsg") or str(e)
            raise DatabaseRefused(f"database {store.location} refused the service: {message}", reason) from e
        except InvalidOperation as e:
            if not store.closed:
                raise
            raise DatabaseUnavailable(f"database {store.location} is closed") from e

    return wrapper


class Sequence:
    """Creation order across replicas: nanoseconds since the epoch, strictly increasing within
    a process. Clocks of different machines only blur the order of writes made at the same
    moment, whose order is arbitrary anyway."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(time.time_ns(), self._last + 1)
        return self._last


def describe(url: str) -> str:
    """The URL without credentials, for messages and logs."""
    parsed = uri_parser.parse_uri(url)
    hosts = ",".join(f"{host}:{port}" for host, port in parsed["nodelist"])
    scheme = "mongodb+srv" if url.startswith("mongodb+srv://") else "mongodb"
    return f"{scheme}://{hosts}/{parsed['database'] or DEFAULT_DATABASE}"


def _names(member: Member) -> dict[str, str | None]:
    return {"first_name": member.first_name, "last_name": member.last_name, "email": member.email}


def _files(records: tuple[FileRecord, ...]) -> list[dict[str, Any]]:
    return [asdict(f) for f in records]


def _dumped_feedback(version: dict[str, Any] | None) -> dict[str, Any] | None:
    """A feedback version in the dump's shape. Its own `timestamp` field is the submission's
    key, so the feedback's time is stored as `released_at`."""
    return None if version is None else {**version, "timestamp": version["released_at"]}


def _feedback_from(version: dict[str, Any] | None) -> Feedback | None:
    return feedback_from_document(_dumped_feedback(version))


def _submission_from(d: dict[str, Any], feedback: dict[str, Any] | None) -> Submission:
    return submission_from_document({**d, "feedback": _dumped_feedback(feedback)})


def _event_from(d: dict[str, Any]) -> Event:
    return Event(
        d["at"], d["user_id"], d["action"], d["course_id"], d["assignment_id"], d["student_id"], d["detail"]
    )


def event_page_filter(query: EventQuery) -> dict[str, Any]:
    """The find() filter of one page: every condition in the database, none in Python."""
    conditions: list[dict[str, Any]] = [{"course_id": query.course_id}]
    if query.assignment_id is not None:
        conditions.append({"assignment_id": query.assignment_id})
    if query.student_id is not None:
        conditions.append({"student_id": query.student_id})
    if query.involving is not None:
        conditions.append({"$or": [{"user_id": query.involving}, {"student_id": query.involving}]})
    if query.before is not None:
        p = EventPosition.decode(query.before)
        if not ObjectId.is_valid(p.tie):
            raise InvalidCursor(query.before)
        tie = ObjectId(p.tie)
        conditions.append(
            {
                "$or": [
                    {"at": {"$lt": p.at}},
                    {"at": p.at, "seq": {"$lt": p.seq}},
                    {"at": p.at, "seq": p.seq, "_id": {"$lt": tie}},
                ]
            }
        )
    return {"$and": conditions}


def _key_of(document: dict[str, Any]) -> tuple[str, str, str, str]:
    return (document["course_id"], document["assignment_id"], document["student_id"], document["timestamp"])


def _submission_key(course_id: str, assignment_id: str, student_id: str, timestamp: str) -> dict[str, str]:
    return {
        "course_id": course_id,
        "assignment_id": assignment_id,
        "student_id": student_id,
        "timestamp": timestamp,
    }


class MongoMetadataStore(MetadataStore):
    """Metadata as small documents: one per course, membership, release and submission."""

    def __init__(self, location: str, client: AsyncMongoClient) -> None:
        self.location = location
        self._client = client
        self._db = client.get_default_database(default=DEFAULT_DATABASE)
        self._seq = Sequence()
        self.closed = False

    @classmethod
    async def open(cls, url: str) -> MongoMetadataStore:
        """Connect and create the indexes (idempotent, so replicas may start together)."""
        try:
            location = describe(url)
            options = {} if "serverselectiontimeoutms" in url.lower() else {
                "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS
            }
            client: AsyncMongoClient = AsyncMongoClient(url, appname="ngshare_s3", **options)
        except (ConfigurationError, ValueError) as e:
            raise StoreConfigError(f"--database is not a usable MongoDB URL: {e}") from None
        store = cls(location, client)
        try:
            await store._create_indexes()
        except ConnectionFailure as e:
            await client.close()
            raise DatabaseUnavailable(f"database {location} unreachable: {_reason(e)}") from e
        except PyMongoError as e:
            await client.close()
            raise StoreConfigError(f"cannot use the database {location}: {e}") from e
        return store

    async def _create_indexes(self) -> None:
        for collection, indexes in INDEXES.items():
            for keys, unique in indexes:
                name = "_".join(field for field, _ in keys)
                await self._db[collection].create_index(keys, unique=unique, name=name)
        await self._create_claim_index()

    @translated
    async def ping(self) -> None:
        """Reads a collection: a server answers `ping` even to a client it refuses to serve."""
        await self._db.courses.find_one({}, {"_id": 1})

    async def close(self) -> None:
        self.closed = True
        await self._client.close()

    # courses
    @translated
    async def create_course(self, course_id: str) -> None:
        document = {"course_id": course_id, "incarnation": str(ObjectId()), "seq": self._seq.next()}
        await self._db.courses.insert_one(document)

    @translated
    async def course_incarnation(self, course_id: str) -> str | None:
        document = await self._db.courses.find_one({"course_id": course_id})
        if document is None or document.get("closing"):
            return None
        return document.get("incarnation", "")

    @translated
    async def close_course(self, course_id: str) -> bool:
        result = await self._db.courses.update_one({"course_id": course_id}, {"$set": {"closing": True}})
        return result.matched_count > 0

    @translated
    async def course_exists(self, course_id: str) -> bool:
        return await self._db.courses.find_one({"course_id": course_id}) is not None

    @translated
    async def list_courses(self) -> list[str]:
        # Sorted here: Python's order is code point order on every server.
        return sorted([d["course_id"] async for d in self._db.courses.find({})])

    @translated
    async def delete_course(self, course_id: str) -> bool:
        result = await self._db.courses.delete_one({"course_id": course_id})
        return result.deleted_count > 0

    # memberships
    @translated
    async def get_member(self, course_id: str, user_id: str) -> Member | None:
        document = await self._db.members.find_one({"course_id": course_id, "user_id": user_id})
        return None if document is None else member_from_document(document)

    @translated
    async def list_members(self, course_id: str, role: Role) -> list[Member]:
        cursor = self._db.members.find({"course_id": course_id, "role": role}).sort(CREATION_ORDER)
        return [member_from_document(d) async for d in cursor]

    @translated
    async def courses_of(self, user_id: str) -> list[str]:
        return sorted([d["course_id"] async for d in self._db.members.find({"user_id": user_id})])

    @translated
    async def add_member(self, member: Member) -> None:
        m = member
        await self._db.members.insert_one(
            {"course_id": m.course_id, "user_id": m.user_id, "role": m.role, **_names(m), "seq": self._seq.next()}
        )

    @translated
    async def put_student(self, member: Member) -> bool:
        key = {"course_id": member.course_id, "user_id": member.user_id}
        for _ in range(RACE_ATTEMPTS):
            try:
                # Matches only a student; an instructor's key makes the insert fail instead.
                await self._db.members.update_one(
                    {**key, "role": "student"},
                    {"$set": _names(member), "$setOnInsert": {"seq": self._seq.next()}},
                    upsert=True,
                )
                return True
            except DuplicateKeyError:
                existing = await self._db.members.find_one(key)
                if existing is not None and existing["role"] == "instructor":
                    return False
                # Another request added (or removed) the student a moment ago: try again.
        raise DatabaseUnavailable(f"database {self.location}: membership kept changing, try again")

    @translated
    async def make_instructor(self, member: Member) -> None:
        key = {"course_id": member.course_id, "user_id": member.user_id}
        for _ in range(RACE_ATTEMPTS):
            result = await self._db.members.update_one(
                {**key, "role": "instructor"}, {"$set": _names(member)}
            )
            if result.matched_count:
                return
            try:
                # A student becomes an instructor with a fresh seq: the end of the list.
                await self._db.members.update_one(
                    key,
                    {"$set": {**_names(member), "role": "instructor", "seq": self._seq.next()}},
                    upsert=True,
                )
                return
            except DuplicateKeyError:
                continue  # inserted by another request a moment ago: update it instead
        raise DatabaseUnavailable(f"database {self.location}: membership kept changing, try again")

    @translated
    async def update_names(self, member: Member) -> bool:
        m = member
        result = await self._db.members.update_one(
            {"course_id": m.course_id, "user_id": m.user_id, "role": m.role}, {"$set": _names(m)}
        )
        return result.matched_count > 0

    @translated
    async def delete_member(self, course_id: str, user_id: str, role: Role) -> bool:
        result = await self._db.members.delete_one(
            {"course_id": course_id, "user_id": user_id, "role": role}
        )
        return result.deleted_count > 0

    @translated
    async def delete_members(self, course_id: str) -> None:
        await self._db.members.delete_many({"course_id": course_id})

    # assignments
    @translated
    async def create_assignment(self, assignment: Assignment) -> None:
        a = assignment
        await self._db.assignments.insert_one(
            {
                "course_id": a.course_id,
                "assignment_id": a.assignment_id,
                "release_id": a.release_id,
                "released_at": a.released_at,
                "files": _files(a.files),
                "seq": self._seq.next(),
            }
        )

    @translated
    async def get_assignment(self, course_id: str, assignment_id: str) -> Assignment | None:
        document = await self._db.assignments.find_one(
            {"course_id": course_id, "assignment_id": assignment_id}
        )
        return None if document is None else assignment_from_document(document)

    @translated
    async def list_assignments(self, course_id: str) -> list[Assignment]:
        cursor = self._db.assignments.find({"course_id": course_id}).sort(CREATION_ORDER)
        return [assignment_from_document(d) async for d in cursor]

    @translated
    async def delete_assignment(self, course_id: str, assignment_id: str, release_id: str) -> bool:
        result = await self._db.assignments.delete_one(
            {"course_id": course_id, "assignment_id": assignment_id, "release_id": release_id}
        )
        return result.deleted_count > 0

    # submissions
    @translated
    async def create_submission(self, submission: Submission) -> None:
        s = submission
        key = _submission_key(s.course_id, s.assignment_id, s.student_id, s.timestamp)
        await self._db.submissions.insert_one(
            {
                **key,
                "submission_id": s.submission_id,
                "release_id": s.release_id,
                "files": _files(s.files),
                "seq": self._seq.next(),
            }
        )
        if s.feedback is not None:
            await self._insert_feedback(key, 1, s.feedback)

    async def _with_feedback(self, query: dict[str, str], documents: list[dict[str, Any]]) -> list[Submission]:
        """Attach to each submission its newest feedback version."""
        newest = await self._newest_feedback_of(query)
        return [_submission_from(d, newest.get(_key_of(d))) for d in documents]

    async def _newest_feedback_of(self, query: dict[str, str]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        """The newest feedback version of each submission the query matches, by its key."""
        newest: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        async for f in self._db.feedback.find(query).sort("version", ASCENDING):
            newest[_key_of(f)] = f
        return newest

    @translated
    async def list_submissions(
        self, course_id: str, assignment_id: str, student_id: str | None = None
    ) -> list[Submission]:
        query = {"course_id": course_id, "assignment_id": assignment_id}
        if student_id is not None:
            query["student_id"] = student_id
        # Both reads at once: the feedback of submissions that were not found is never used.
        documents, newest = await asyncio.gather(
            self._db.submissions.find(query).sort(OLDEST_FIRST).to_list(), self._newest_feedback_of(query)
        )
        return [_submission_from(d, newest.get(_key_of(d))) for d in documents]

    @translated
    async def get_submission(
        self, course_id: str, assignment_id: str, student_id: str, timestamp: str | None = None
    ) -> Submission | None:
        query = {"course_id": course_id, "assignment_id": assignment_id, "student_id": student_id}
        if timestamp is not None:
            query["timestamp"] = timestamp
        documents = [d async for d in self._db.submissions.find(query).sort(NEWEST_FIRST).limit(1)]
        if not documents:
            return None
        (submission,) = await self._with_feedback(_submission_key(*_key_of(documents[0])), documents)
        return submission

    async def _newest_feedback(self, key: dict[str, str]) -> dict[str, Any] | None:
        cursor = self._db.feedback.find(key).sort("version", DESCENDING).limit(1)
        documents = [d async for d in cursor]
        return documents[0] if documents else None

    async def _insert_feedback(self, key: dict[str, str], version: int, feedback: Feedback) -> None:
        await self._db.feedback.insert_one(
            {
                **key,
                "version": version,
                "feedback_id": feedback.feedback_id,
                "released_at": feedback.timestamp,
                "files": _files(feedback.files),
            }
        )

    @translated
    async def replace_feedback(
        self,
        course_id: str,
        assignment_id: str,
        student_id: str,
        timestamp: str,
        feedback: Feedback,
    ) -> tuple[bool, Feedback | None]:
        key = _submission_key(course_id, assignment_id, student_id, timestamp)
        submission, newest = await asyncio.gather(
            self._db.submissions.find_one(key, {"_id": 1}), self._newest_feedback(key)
        )
        if submission is None:
            return False, None
        for attempt in range(FEEDBACK_ATTEMPTS):
            if attempt:
                newest = await self._newest_feedback(key)
            version = 1 if newest is None else newest["version"] + 1
            try:
                await self._insert_feedback(key, version, feedback)
            except DuplicateKeyError:
                continue  # another upload took this version: replace that one instead
            # Older versions stay until the submission goes: removing them would free their
            # numbers for a late upload that read an old newest version.
            return True, _feedback_from(newest)
        raise DatabaseUnavailable(f"database {self.location}: feedback kept changing, try again")

    @translated
    async def delete_submissions(
        self, course_id: str, assignment_id: str | None = None, release_id: str | None = None
    ) -> None:
        query = {"course_id": course_id}
        if assignment_id is not None:
            query["assignment_id"] = assignment_id
        if release_id is None:
            await self._db.submissions.delete_many(query)
            await self._db.feedback.delete_many(query)
            return
        # Feedback documents carry no release id: remove exactly those of the removed submissions.
        removed = [d async for d in self._db.submissions.find({**query, "release_id": release_id})]
        await self._db.submissions.delete_many({**query, "release_id": release_id})
        for document in removed:
            await self._db.feedback.delete_many(_submission_key(*_key_of(document)))

    # audit trail
    @translated
    async def record_event(self, event: Event) -> None:
        await self._db.events.insert_one({**asdict(event), "seq": self._seq.next()})

    @translated
    async def list_events(self, course_id: str | None = None) -> list[Event]:
        query = {} if course_id is None else {"course_id": course_id}
        return [_event_from(d) async for d in self._db.events.find(query).sort(CREATION_ORDER)]

    @translated
    async def page_events(self, query: EventQuery) -> EventPage:
        found = self._db.events.find(event_page_filter(query)).sort(EVENTS_NEWEST_FIRST).limit(query.limit + 1)
        documents = [d async for d in found]
        page = documents[: query.limit]
        following = None
        if len(documents) > query.limit:
            last = page[-1]
            following = EventPosition(last["at"], last["seq"], str(last["_id"])).encode()
        return EventPage([_event_from(d) for d in page], following)

    # maintenance
    @translated
    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        async def all_of(collection: str, record: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
            cursor = self._db[collection].find({}).sort(CREATION_ORDER)
            return [as_document(record(d)) async for d in cursor]

        return {
            "courses": [
                {"course_id": d["course_id"]} async for d in self._db.courses.find({}).sort(CREATION_ORDER)
            ],
            "members": await all_of("members", member_from_document),
            "assignments": await all_of("assignments", assignment_from_document),
            "submissions": [
                as_document(submission)
                for submission in await self._with_feedback(
                    {}, [d async for d in self._db.submissions.find({}).sort(CREATION_ORDER)]
                )
            ],
            "events": await all_of("events", _event_from),
        }

    @translated
    async def clear(self) -> None:
        for collection in COLLECTIONS:
            await self._db[collection].delete_many({})

    # one-time claims
    async def _create_claim_index(self) -> None:
        """MongoDB removes expired claims itself (a TTL index); FerretDB 1.x has no TTL indexes,
        so there the clean-up in claim_once is all."""
        try:
            await self._db.claims.create_index("expires_at", expireAfterSeconds=0, name="expires_at")
        except OperationFailure as e:
            if (e.details or {}).get("codeName") != "NotImplemented":
                raise

    @translated
    async def claim_once(self, name: str, expires_at: datetime) -> bool:
        # The name is the _id, unique: of several inserts of one name, one wins. Expired claims go
        # first, since MongoDB's TTL monitor runs only once a minute (and FerretDB 1.x has none).
        await self._db.claims.delete_many({"expires_at": {"$lte": datetime.now(timezone.utc)}})
        try:
            await self._db.claims.insert_one({"_id": name, "expires_at": expires_at})
        except DuplicateKeyError:
            return False
        return True
