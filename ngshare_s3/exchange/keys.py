"""Where each file body lives in the object store (DESIGN.md, "Data").

Keys read naturally in a bucket browser, yet every name from a user is percent-escaped into a
single key segment, so no course, assignment, student or file name can climb out of its place,
and two files that differ only in odd characters ('a//b', 'a/b') never share a key.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from urllib.parse import quote


def escape(name: str) -> str:
    escaped = quote(name, safe="")
    if escaped in {".", ".."}:
        escaped = escaped.replace(".", "%2E")
    return escaped


def new_id() -> str:
    """A fresh id for a release, submission or feedback set: sortable by time, never reused."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ-") + secrets.token_hex(4)


def file_name(position: int, path: str) -> str:
    return f"{position:04d}/{escape(path)}"


def assignment_prefix(course_id: str, assignment_id: str) -> str:
    return f"courses/{escape(course_id)}/assignments/{escape(assignment_id)}"


def release_prefix(course_id: str, assignment_id: str, release_id: str) -> str:
    return f"{assignment_prefix(course_id, assignment_id)}/release/{release_id}"


def submission_prefix(course_id: str, assignment_id: str, student_id: str, submission_id: str) -> str:
    return f"{assignment_prefix(course_id, assignment_id)}/submissions/{escape(student_id)}/{submission_id}"


def feedback_prefix(
    course_id: str, assignment_id: str, student_id: str, submission_id: str, feedback_id: str
) -> str:
    return (
        f"{assignment_prefix(course_id, assignment_id)}/feedback/{escape(student_id)}"
        f"/{submission_id}/{feedback_id}"
    )
