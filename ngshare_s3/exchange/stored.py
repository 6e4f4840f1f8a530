"""What the exchange stores of a file tree: where each body of a release, submission or
feedback lives, and what each object says about itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..stores.metadata.base import Assignment, FileRecord, Submission
from . import keys


@dataclass(frozen=True)
class StoredFile:
    path: str
    md5: str
    size: int
    key: str


@dataclass(frozen=True)
class Provenance:
    """What each stored object says about itself (S3 user metadata), so that a person browsing
    the bucket sees what it is, whose, and since when, without the database."""

    kind: str  # release, submission or feedback
    course_id: str
    assignment_id: str
    student_id: str | None  # None for a release
    timestamp: str  # release time, submission timestamp, or the timestamp feedback answers
    uploader: str

    def describe(self, file: FileRecord) -> dict[str, str]:
        student = {} if self.student_id is None else {"student": self.student_id}
        return {
            "kind": self.kind,
            "course": self.course_id,
            "assignment": self.assignment_id,
            **student,
            "path": file.path,
            "timestamp": self.timestamp,
            "uploader": self.uploader,
            "md5": file.md5,
        }


@dataclass(frozen=True)
class FileTree:
    """Files to send back. `gone` is the 404 message if their bodies vanish mid-read
    (a delete that raced the download)."""

    files: tuple[StoredFile, ...]
    gone: str


def stored_files(prefix: str, records: Iterable[FileRecord]) -> tuple[StoredFile, ...]:
    return tuple(
        StoredFile(r.path, r.md5, r.size, f"{prefix}/{keys.file_name(i, r.path)}")
        for i, r in enumerate(records)
    )


def release_files(assignment: Assignment) -> tuple[StoredFile, ...]:
    prefix = keys.release_prefix(assignment.course_id, assignment.assignment_id, assignment.release_id)
    return stored_files(prefix, assignment.files)


def submission_files(submission: Submission) -> tuple[StoredFile, ...]:
    s = submission
    prefix = keys.submission_prefix(s.course_id, s.assignment_id, s.student_id, s.submission_id)
    return stored_files(prefix, s.files)


def feedback_files(submission: Submission) -> tuple[StoredFile, ...]:
    s = submission
    if s.feedback is None:
        return ()
    prefix = keys.feedback_prefix(
        s.course_id, s.assignment_id, s.student_id, s.submission_id, s.feedback.feedback_id
    )
    return stored_files(prefix, s.feedback.files)
