"""`ngshare-s3 import-ngshare` run as a real command on a real ngshare 0.6.0 installation (made
through ngshare's own API by tests/ngshare_source.py, once per session), into the embedded
stores (an SQLite file and a folder). Each test imports from its own copy of that installation,
damaged as the test needs, and checks that the copy is never modified."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ngshare_source as ns
import servers
from ngshare_s3.exchange import keys
from ngshare_s3.exchange.stored import feedback_files, release_files, submission_files
from ngshare_s3.stores import opened_stores
from ngshare_s3.stores.metadata.base import Member
from ngshare_s3.stores.objects.base import read_all

IMPORT_TIMEOUT = 300


# The installation, populated once ---------------------------------------------------------------


@dataclass
class Snapshot:
    """ngshare's data folder after the story (ngshare stopped), what the story uploaded, and
    what ngshare answered the admin about every route."""

    folder: Path
    outcome: ns.StoryOutcome
    answers: dict[str, dict[str, Any]]


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    folder = tmp_path_factory.mktemp("ngshare-0.6.0")
    try:
        source = ns.start_ngshare(folder)
    except (ns.NgshareUnavailable, servers.ServerUnavailable) as reason:
        print(f"\nSKIPPED: {reason}")
        pytest.skip(str(reason))
    try:
        outcome = ns.populate(source.api)
        answers = ns.record_answers(source.api, [ns.ADMIN])
    finally:
        source.stop()
    return Snapshot(folder, outcome, answers)


@dataclass
class Source(ns.NgshareFolder):
    """A copy of the installation: ngshare's database file and storage folder."""

    def fingerprint(self) -> dict[str, str]:
        """Every file of the copy (database, its journals if any, storage) by its SHA-256."""
        return {str(p.relative_to(self.folder)): sha256(p.read_bytes()) for p in self.folder.rglob("*") if p.is_file()}

    def stored_name(self, md5: str) -> str:
        """The storage file ngshare recorded for the one file of that MD5."""
        with sqlite3.connect(self.database_file) as db:
            names = [row[0] for row in db.execute("SELECT actual_name FROM files WHERE checksum = ?", (md5,))]
        assert len(names) == 1, f"{len(names)} files with MD5 {md5}"
        return names[0]

    def execute(self, *statements: str) -> None:
        with sqlite3.connect(self.database_file) as db:
            for statement in statements:
                db.execute(statement)


@pytest.fixture
def source(snapshot: Snapshot, tmp_path: Path) -> Source:
    copy = Source(tmp_path / "ngshare")
    copy.folder.mkdir()
    shutil.copy2(snapshot.folder / "ngshare.db", copy.database_file)
    shutil.copytree(snapshot.folder / "files", copy.storage)
    return copy


@dataclass
class Target:
    """The embedded stores the import writes into."""

    folder: Path

    @property
    def database(self) -> str:
        return f"sqlite:///{self.folder / 'ngshare_s3.db'}"

    @property
    def storage(self) -> Path:
        return self.folder / "objects"

    def flags(self) -> list[str]:
        return ["--database", self.database, "--storage", str(self.storage)]

    def objects(self) -> dict[str, str]:
        """Every file of the storage folder (temporary ones included) by its SHA-256."""
        if not self.storage.exists():
            return {}
        return {str(p.relative_to(self.storage)): sha256(p.read_bytes()) for p in self.storage.rglob("*") if p.is_file()}

    def records(self) -> dict[str, list[dict[str, Any]]]:
        return asyncio.run(_with_stores(self, lambda metadata, objects: metadata.dump()))

    def view(self) -> dict[str, Any]:
        return asyncio.run(_with_stores(self, stored_view))


@pytest.fixture
def target(tmp_path: Path) -> Target:
    folder = tmp_path / "target"
    folder.mkdir()
    return Target(folder)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def _with_stores(target: Target, read):
    async with opened_stores(target.database, str(target.storage)) as (metadata, objects):
        return await read(metadata, objects)


# Running the command ----------------------------------------------------------------------------


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("NGSHARE_S3_", "JUPYTERHUB_"))}


def import_command(source: Source, target: Target, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ngshare_s3", "import-ngshare",
        "--from-database", source.database, "--from-storage", str(source.storage),
        *target.flags(), *extra,
    ]


def import_ngshare(source: Source, target: Target, *extra: str) -> subprocess.CompletedProcess:
    """Runs the import and checks that it left its source exactly as it was."""
    before = source.fingerprint()
    result = subprocess.run(
        import_command(source, target, *extra),
        capture_output=True, text=True, timeout=IMPORT_TIMEOUT, env=clean_environment(),
    )
    assert source.fingerprint() == before, f"the import changed its source\n{result.stdout}\n{result.stderr}"
    return result


def fsck(target: Target) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "fsck", *target.flags()],
        capture_output=True, text=True, timeout=IMPORT_TIMEOUT, env=clean_environment(),
    )


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# What each side holds, in one shape -------------------------------------------------------------


def file_entry(path: str, checksum: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "checksum": checksum, "bytes_md5": md5(data), "size": len(data)}


async def _read_tree(objects, stored) -> list[dict[str, Any]]:
    return [file_entry(f.path, f.md5, await read_all(objects.get(f.key))) for f in stored]


async def stored_view(metadata, objects) -> dict[str, Any]:
    """Everything the target stores hold that ngshare's API shows, read from the records and
    the objects they point at."""
    view: dict[str, Any] = {"courses": await metadata.list_courses()}
    for course in view["courses"]:
        people = {}
        for role in ("instructor", "student"):
            people[role + "s"] = [
                {"username": m.user_id, "first_name": m.first_name, "last_name": m.last_name, "email": m.email}
                for m in await metadata.list_members(course, role)
            ]
        assignments = {}
        for assignment in await metadata.list_assignments(course):
            submissions = {}
            for s in await metadata.list_submissions(course, assignment.assignment_id):
                submissions[f"{s.student_id} {s.timestamp}"] = {
                    "files": await _read_tree(objects, submission_files(s)),
                    "feedback": await _read_tree(objects, feedback_files(s)),
                }
            assignments[assignment.assignment_id] = {
                "files": await _read_tree(objects, release_files(assignment)),
                "submissions": submissions,
            }
        view[course] = {**people, "assignments": assignments}
    return view


def _answer(answers: dict[str, dict[str, Any]], route: str, **params: str) -> dict[str, Any] | None:
    """The admin's answer, or None when ngshare refused it."""
    answer = answers[ns.request_name(ns.ADMIN, route, params or None)]
    return answer["json"] if answer["status"] == 200 else None


def _answered_tree(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [file_entry(f["path"], f["checksum"], base64.b64decode(f["content"])) for f in files]


def _uploaded_tree(files: list[tuple[str, bytes]] | None) -> list[dict[str, Any]]:
    return [file_entry(path, md5(data), data) for path, data in files or []]


def ngshare_view(snapshot: Snapshot) -> dict[str, Any]:
    """The same, from what ngshare answered the admin; for the submissions ngshare no longer
    hands out one by one (their students left the course, or never were in it), from what the
    story uploaded."""
    answers = snapshot.answers
    view: dict[str, Any] = {"courses": _answer(answers, "/courses")["courses"]}
    for course in view["courses"]:
        assignments = {}
        for assignment in _answer(answers, f"/assignments/{course}")["assignments"]:
            submissions = {}
            for s in _answer(answers, f"/submissions/{course}/{assignment}")["submissions"]:
                student, timestamp = s["student_id"], s["timestamp"]
                route = f"{course}/{assignment}/{student}"
                submitted = _answer(answers, f"/submission/{route}", timestamp=timestamp)
                given = _answer(answers, f"/feedback/{route}", timestamp=timestamp)
                if submitted is None:
                    key = (course, assignment, student, timestamp)
                    files = _uploaded_tree(snapshot.outcome.submissions[key])
                    feedback = _uploaded_tree(snapshot.outcome.feedback[key])
                else:
                    files, feedback = _answered_tree(submitted["files"]), _answered_tree(given["files"])
                submissions[f"{student} {timestamp}"] = {"files": files, "feedback": feedback}
            released = _answer(answers, f"/assignment/{course}/{assignment}")["files"]
            assignments[assignment] = {"files": _answered_tree(released), "submissions": submissions}
        view[course] = {
            "instructors": _answer(answers, f"/instructors/{course}")["instructors"],
            "students": _answer(answers, f"/students/{course}")["students"],
            "assignments": assignments,
        }
    return view


def differences(expected: dict[str, Any], found: dict[str, Any]) -> list[str]:
    return ns.diff_recordings({"stores": expected}, {"stores": found})


def comparable_records(records: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The records without what differs from one import to the next by design: the audit
    trail, and the ids generated for releases, submissions and feedback sets (they name
    objects, so the objects are compared through the view instead)."""
    generated = {"release_id", "submission_id", "feedback_id"}
    # ngshare keeps no release time: the import takes the files' modification times, and the
    # time of the import for an assignment released without files.
    for assignment in records["assignments"]:
        if not assignment["files"]:
            assignment["released_at"] = "(when imported)"

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in generated}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    submissions = sorted(
        strip(records["submissions"]),
        key=lambda s: (s["course_id"], s["assignment_id"], s["student_id"], s["timestamp"]),
    )
    return {**strip({k: v for k, v in records.items() if k not in ("events", "submissions")}), "submissions": submissions}


def expected_counts(snapshot: Snapshot) -> dict[str, int]:
    outcome = snapshot.outcome
    trees = [*outcome.releases.values(), *outcome.submissions.values(), *(f for f in outcome.feedback.values() if f)]
    view = ngshare_view(snapshot)
    return {
        "courses": len(view["courses"]),
        "members": sum(len(view[c]["instructors"]) + len(view[c]["students"]) for c in view["courses"]),
        "assignments": len(outcome.releases),
        "submissions": len(outcome.submissions),
        "feedback": sum(1 for f in outcome.feedback.values() if f),
        "files": sum(len(t) for t in trees),
        "bytes": sum(len(data) for t in trees for _, data in t),
    }


def counts_text(counts: dict[str, int]) -> str:
    return (
        f"{counts['courses']} courses, {counts['members']} members, {counts['assignments']} assignments, "
        f"{counts['submissions']} submissions, {counts['feedback']} feedback sets"
    )


NOTHING = {"courses": [], "members": [], "assignments": [], "submissions": [], "events": []}


# A full import ----------------------------------------------------------------------------------


def test_the_story_covers_what_an_import_must_carry(snapshot: Snapshot):
    """The installation holds the cases the other tests rely on, as ngshare answers them."""
    view = ngshare_view(snapshot)
    assert ns.UNUSUAL_COURSE in view["courses"] and ns.GONE_COURSE not in view["courses"]
    course = view[ns.COURSE]
    assert [s["username"] for s in course["students"]][-1] == ns.CARLA  # removed, added again: last
    assert ns.DMITRI not in [s["username"] for s in course["students"]]
    assert {"first_name": None, "last_name": None, "email": None}.items() <= course["instructors"][2].items()
    ps1 = course["assignments"][ns.PS1]
    assert [f["path"] for f in ps1["files"]].count("readme.md") == 2
    assert any(not s["feedback"] for s in ps1["submissions"].values())
    assert sum(1 for key in ps1["submissions"] if key.startswith(ns.BOB + " ")) == 3
    # ngshare keeps the bodies of the deleted release, the replaced feedback and the deleted
    # course on disk, unreferenced: more files on disk than its records list.
    assert len(list((snapshot.folder / "files").iterdir())) > expected_counts(snapshot)["files"]


def test_full_import_holds_what_ngshare_answered(snapshot: Snapshot, source: Source, target: Target):
    started = time.monotonic()
    result = import_ngshare(source, target)
    took = time.monotonic() - started
    assert result.returncode == 0, output(result)
    counts = expected_counts(snapshot)
    summary = last_line(result)
    assert summary.startswith(f"Imported {counts_text(counts)} ({counts['files']} files, {counts['bytes']} bytes)")
    assert "skipped: 0 records." in summary
    assert differences(ngshare_view(snapshot), target.view()) == []
    checked = fsck(target)
    assert checked.returncode == 0 and "Consistent." in checked.stdout, output(checked)
    print(f"\nimported {counts['submissions']} submissions, {counts['bytes']} bytes in {took:.1f} s")


def test_dry_run_counts_per_course_and_writes_nothing(snapshot: Snapshot, source: Source, target: Target):
    result = import_ngshare(source, target, "--dry-run")
    assert result.returncode == 0, output(result)
    counts = expected_counts(snapshot)
    assert last_line(result).startswith(
        f"Dry run, nothing written: would import {counts_text(counts)} ({counts['files']} files, {counts['bytes']} bytes)"
    ), output(result)
    outcome = snapshot.outcome
    for course in ngshare_view(snapshot)["courses"]:
        trees = [files for (c, _), files in outcome.releases.items() if c == course]
        trees += [files for (c, *_), files in outcome.submissions.items() if c == course]
        trees += [files for (c, *_), files in outcome.feedback.items() if c == course and files]
        size = sum(len(data) for tree in trees for _, data in tree)
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{course}: would import ")]
        assert len(lines) == 1, output(result)
        assert f"{sum(len(t) for t in trees)} file" in lines[0] and f"{size} byte" in lines[0], lines[0]
        submitted = sum(1 for key in outcome.submissions if key[0] == course)
        assert f" {submitted} submission" in lines[0], lines[0]
    assert target.records() == NOTHING
    assert target.objects() == {}


def test_second_run_imports_nothing_and_changes_nothing(snapshot: Snapshot, source: Source, target: Target):
    first = import_ngshare(source, target)
    assert first.returncode == 0, output(first)
    records, objects = target.records(), target.objects()
    second = import_ngshare(source, target)
    assert second.returncode == 0, output(second)
    counts = expected_counts(snapshot)
    assert last_line(second).startswith("Imported nothing new: 0 courses, 0 members, 0 assignments"), output(second)
    assert f"already here: {counts_text(counts)}" in last_line(second)
    assert target.records() == records
    assert target.objects() == objects


# Interrupted runs -------------------------------------------------------------------------------


@pytest.fixture
def uninterrupted(snapshot: Snapshot, source: Source, tmp_path: Path) -> dict[str, Any]:
    """The records an import that ran through leaves, for comparison."""
    reference = Target(tmp_path / "reference")
    reference.folder.mkdir()
    result = import_ngshare(source, reference)
    assert result.returncode == 0, output(result)
    return comparable_records(reference.records())


def assert_complete(snapshot: Snapshot, target: Target, uninterrupted: dict[str, Any]) -> None:
    assert differences(ngshare_view(snapshot), target.view()) == []
    assert differences(uninterrupted, comparable_records(target.records())) == []
    checked = fsck(target)
    assert "Records whose objects are missing: 0" in checked.stdout, output(checked)


def test_run_stopped_by_a_failing_store_resumes(
    snapshot: Snapshot, source: Source, target: Target, uninterrupted: dict[str, Any]
):
    """A plain file where the folder of the last course's objects must go makes every write
    there fail, as a full or broken disk would, after the other courses went in."""
    last_course = ngshare_view(snapshot)["courses"][-1]
    assert last_course == ns.PHYSICS
    obstacle = target.storage / "courses" / keys.escape(last_course)
    obstacle.parent.mkdir(parents=True)
    obstacle.write_text("in the way")

    stopped = import_ngshare(source, target)
    assert stopped.returncode == 2, output(stopped)
    assert "the import stopped" in stopped.stderr and "Run the same command again" in stopped.stderr, output(stopped)
    view = target.view()
    assert ns.COURSE in view["courses"] and view[ns.COURSE]["assignments"], "the earlier courses went in"
    checked = fsck(target)
    assert "Records whose objects are missing: 0" in checked.stdout, output(checked)

    obstacle.unlink()
    resumed = import_ngshare(source, target)
    assert resumed.returncode == 0, output(resumed)
    # The course and its members went in before its first file failed; its assignment and the
    # submissions to it did not.
    physics = [key for key in snapshot.outcome.submissions if key[0] == ns.PHYSICS]
    assert last_line(resumed).startswith(
        f"Imported 0 courses, 0 members, 1 assignment, {len(physics)} submissions, 0 feedback sets"
    ), output(resumed)
    assert_complete(snapshot, target, uninterrupted)
    # A foreseeable failure of the store is told in one line, without a trace of the code.
    assert "Traceback" not in stopped.stderr, output(stopped)


def test_killed_run_leaves_nothing_half_visible_and_resumes(
    snapshot: Snapshot, source: Source, target: Target, uninterrupted: dict[str, Any]
):
    """kill -9 as soon as the first submission to course101's ps1 lands, while others are being
    written beside it."""
    before = source.fingerprint()
    process = subprocess.Popen(
        import_command(source, target), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_environment()
    )
    landing = target.storage / "courses" / keys.escape(ns.COURSE) / "assignments" / ns.PS1 / "submissions"
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        if landing.exists() and any(p.is_file() for p in landing.rglob("*")):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the import ended before it was killed:\n{out.decode()}\n{err.decode()}"
    assert source.fingerprint() == before

    checked = fsck(target)
    assert "Records whose objects are missing: 0" in checked.stdout, output(checked)
    partial = target.view()
    assert differences(ngshare_view(snapshot), partial) != [], "the import was killed before its end"

    resumed = import_ngshare(source, target)
    assert resumed.returncode == 0, output(resumed)
    assert_complete(snapshot, target, uninterrupted)


# Damaged sources --------------------------------------------------------------------------------


def _file_of(files: list[tuple[str, bytes]], path: str) -> bytes:
    [data] = [data for p, data in files if p == path]
    return data


def _damage(snapshot: Snapshot, tree: str) -> tuple[bytes, str, Callable[[dict[str, Any]], None]]:
    """A file of one tree (a submission, a feedback set or a release) whose bytes are unique in
    the installation; what the skip is reported as; and how the expected view changes."""
    outcome = snapshot.outcome
    if tree == "submission":
        [key] = [k for k in outcome.submissions if k[:3] == (ns.COURSE, ns.PS1, ns.BOB)][1:2]
        data = _file_of(outcome.submissions[key], "données/résumé ü.txt")
        course, assignment, student, timestamp = key
        report = f"skipped submission course={course} assignment={assignment} student={student} timestamp='{timestamp}'"

        def change(view):
            del view[course]["assignments"][assignment]["submissions"][f"{student} {timestamp}"]

    elif tree == "feedback":
        [key] = [k for k in outcome.submissions if k[:3] == (ns.COURSE, ns.PS1, ns.HEDY)]
        data = _file_of(outcome.feedback[key], "ps1.html")
        course, assignment, student, timestamp = key
        report = f"skipped feedback for submission course={course} assignment={assignment} student={student}"

        def change(view):
            view[course]["assignments"][assignment]["submissions"][f"{student} {timestamp}"]["feedback"] = []

    else:
        data = _file_of(outcome.releases[(ns.UNUSUAL_COURSE, ns.LAB)], "a b/c d/e f.txt")
        report = "skipped assignment course='Algèbre 2 + Ω 100% (été)' assignment='Lab 1 – Übung + 50%'"

        def change(view):
            del view[ns.UNUSUAL_COURSE]["assignments"][ns.LAB]

    return data, report, change


@pytest.mark.parametrize("tree", ["submission", "feedback", "release"])
@pytest.mark.parametrize("damage", ["missing", "wrong MD5"])
def test_damaged_file_is_named_and_skipped_with_its_tree_only(
    snapshot: Snapshot, source: Source, target: Target, damage: str, tree: str
):
    data, report, change = _damage(snapshot, tree)
    name = source.stored_name(md5(data))
    body = source.storage / name
    if damage == "missing":
        body.unlink()
    else:
        changed = bytes([data[0] ^ 0xFF]) + data[1:]  # same size, other bytes
        body.write_bytes(changed)

    result = import_ngshare(source, target)
    assert result.returncode == 1, output(result)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("skipped ")][:1]
    assert line.startswith(report), output(result)
    assert name in line, output(result)
    assert ("missing" in line) if damage == "missing" else (f"ngshare recorded {md5(data)}" in line), line
    assert "skipped: 0 records" not in last_line(result), output(result)
    expected = ngshare_view(snapshot)
    change(expected)
    assert differences(expected, target.view()) == []

    body.write_bytes(data)  # the administrator restores the file from a backup
    again = import_ngshare(source, target)
    assert again.returncode == 0, output(again)
    assert differences(ngshare_view(snapshot), target.view()) == []


def test_unknown_schema_version_imports_nothing(source: Source, target: Target):
    source.execute("UPDATE alembic_version SET version_num = 'f00dfeedbeef'")
    result = import_ngshare(source, target)
    assert result.returncode == 2, output(result)
    assert "f00dfeedbeef" in result.stderr and "1921a169739b" in result.stderr, output(result)
    assert target.records() == NOTHING
    assert target.objects() == {}


@pytest.mark.parametrize("kind", ["another program's database", "an empty database"])
def test_database_without_ngshare_tables_imports_nothing(source: Source, target: Target, kind: str):
    source.database_file.unlink()
    with sqlite3.connect(source.database_file) as db:
        if kind == "another program's database":
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            db.execute("INSERT INTO notes (text) VALUES ('not ngshare')")
    result = import_ngshare(source, target)
    assert result.returncode == 2, output(result)
    assert "not an ngshare database" in result.stderr, output(result)
    assert target.records() == NOTHING
    assert target.objects() == {}


def test_missing_database_file_is_reported_and_not_created(source: Source, target: Target):
    source.database_file.unlink()
    result = import_ngshare(source, target)
    assert result.returncode == 2, output(result)
    assert "ngshare-s3:" in result.stderr and "Traceback" not in result.stderr, output(result)
    assert not source.database_file.exists()
    assert target.records() == NOTHING


# Moving over in two runs, and what is already here ---------------------------------------------


def keys_of(snapshot: Snapshot, student: str, with_feedback: bool) -> list[tuple[str, str, str, str]]:
    """course101 ps1 submissions of the student, oldest first, with or without feedback."""
    return sorted(
        key for key, feedback in snapshot.outcome.feedback.items()
        if key[:3] == (ns.COURSE, ns.PS1, student) and bool(feedback) == with_feedback
    )


def test_a_rehearsal_then_the_final_run_brings_over_what_changed_meanwhile(
    snapshot: Snapshot, source: Source, target: Target
):
    """An administrator imports while ngshare still serves, then stops ngshare and imports
    again: the second run brings exactly what happened in between."""
    rehearsal = import_ngshare(source, target)
    assert rehearsal.returncode == 0, output(rehearsal)
    first_feedback = keys_of(snapshot, ns.BOB, with_feedback=False)[-1]
    second_feedback = keys_of(snapshot, ns.HEDY, with_feedback=True)[0]
    new_feedback = {key: [(f"{key[2]}-regraded.html", f"<p>{key[2]} again</p>".encode())] for key in (first_feedback, second_feedback)}
    running = ns.start_ngshare(source.folder)
    try:
        ns.call(running.api, ns.ADA, "POST", f"/student/{ns.COURSE}/{ns.BOB}",
                {"first_name": "Robert", "last_name": "Builder", "email": "robert@example.edu"})
        late_files = ns.submission_files(ns.BOB, 4)
        late = ns.call(running.api, ns.BOB, "POST", f"/submission/{ns.COURSE}/{ns.PS1}", {"files": ns.files_field(late_files)})
        for (course, assignment, student, timestamp), files in new_feedback.items():
            ns.call(running.api, ns.ADA, "POST", f"/feedback/{course}/{assignment}/{student}",
                    {"timestamp": timestamp, "files": ns.feedback_field(files)})
    finally:
        running.stop()

    final = import_ngshare(source, target)
    assert final.returncode == 0, output(final)
    assert last_line(final).startswith(
        "Imported 0 courses, 1 member, 0 assignments, 1 submission, 2 feedback sets"
    ), output(final)
    view = target.view()
    bob = [s for s in view[ns.COURSE]["students"] if s["username"] == ns.BOB]
    assert bob == [{"username": ns.BOB, "first_name": "Robert", "last_name": "Builder", "email": "robert@example.edu"}]
    submissions = view[ns.COURSE]["assignments"][ns.PS1]["submissions"]
    assert submissions[f"{ns.BOB} {late['timestamp']}"] == {"files": _uploaded_tree(late_files), "feedback": []}
    for (_, _, student, timestamp), files in new_feedback.items():
        assert submissions[f"{student} {timestamp}"]["feedback"] == _uploaded_tree(files)
    checked = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "fsck", *target.flags(), "--grace-period", "0"],
        capture_output=True, text=True, timeout=IMPORT_TIMEOUT, env=clean_environment(),
    )
    assert checked.returncode == 0 and "Consistent." in checked.stdout, output(checked)  # replaced feedback's bodies gone


def test_a_member_here_in_another_role_is_named_and_left_as_is(snapshot: Snapshot, source: Source, target: Target):
    async def bob_teaches_course101(metadata, objects) -> None:
        await metadata.create_course(ns.COURSE)
        await metadata.add_member(Member(ns.COURSE, ns.BOB, "instructor", "Bob", "Builder", "bob@example.edu"))

    asyncio.run(_with_stores(target, bob_teaches_course101))
    result = import_ngshare(source, target)
    assert result.returncode == 1, output(result)
    assert (
        f"skipped member course={ns.COURSE} user={ns.BOB}: a student in ngshare, but here already listed as instructor"
        in result.stdout
    ), output(result)
    assert last_line(result).endswith("skipped: 1 record (listed above)."), output(result)
    view = target.view()
    assert ns.BOB in [i["username"] for i in view[ns.COURSE]["instructors"]]
    assert ns.BOB not in [s["username"] for s in view[ns.COURSE]["students"]]
    expected = ngshare_view(snapshot)[ns.COURSE]["assignments"]
    assert differences(expected, view[ns.COURSE]["assignments"]) == []  # his work came over all the same


def test_progress_shows_on_a_terminal_and_never_in_a_pipe(source: Source, target: Target):
    piped = import_ngshare(source, target, "--dry-run")
    assert piped.returncode == 0, output(piped)
    assert "%|" not in piped.stdout + piped.stderr

    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a window 100 wide
    shown: list[bytes] = []

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other side closed
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        on_terminal = subprocess.run(
            import_command(source, target, "--dry-run"),
            stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=IMPORT_TIMEOUT, env=clean_environment(),
        )
    finally:
        os.close(terminal)
        reader.join(timeout=10)
        os.close(controller)
    bar = b"".join(shown).decode(errors="replace")
    assert on_terminal.returncode == 0, on_terminal.stdout
    assert "%|" in bar and "record" in bar, bar
    assert "%|" not in on_terminal.stdout
    assert on_terminal.stdout.splitlines()[-1].startswith("Dry run, nothing written")


def test_ngshare_s3_pointed_at_ngshare_s_database_refuses_it_untouched_and_names_the_import(source: Source, tmp_path: Path):
    before = source.fingerprint()
    result = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "fsck", "--database", source.database, "--storage", str(tmp_path / "objects")],
        capture_output=True, text=True, timeout=IMPORT_TIMEOUT, env=clean_environment(),
    )
    assert result.returncode == 2, output(result)
    assert f"`ngshare-s3 import-ngshare --from-database {source.database}`" in result.stderr, output(result)
    assert source.fingerprint() == before
