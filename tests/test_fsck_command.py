"""`ngshare-s3 fsck` run as a real command against embedded stores written through the
exchange, then damaged the ways a crash or a hand in the storage folder can damage them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from ngshare_s3.exchange import assignments, courses, feedback, keys, rosters, submissions
from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.exchange.stored import submission_files
from ngshare_s3.exchange.permissions import Caller
from ngshare_s3.fsck_command import parse_duration
from ngshare_s3.settings import SettingsError
from ngshare_s3.stores import open_metadata_store, open_object_store
from ngshare_s3.stores.metadata.base import FileRecord, Submission
from ngshare_s3.stores.objects.base import chunks_of, read_all

ADMIN = Caller("admin", is_admin=True)
TEACHER = Caller("teacher")
ALICE = Caller("alice")
TWO_HOURS_AGO = time.time() - 2 * 3600


def files_field(files: dict[str, bytes]) -> str:
    return json.dumps([{"path": p, "content": base64.b64encode(b).decode()} for p, b in files.items()])


@dataclass
class Site:
    database: str
    storage: Path
    timestamp: str = ""

    def flags(self) -> list[str]:
        return ["--database", self.database, "--storage", str(self.storage)]

    def path(self, key: str) -> Path:
        return self.storage.joinpath(*key.split("/"))

    def files(self) -> dict[str, bytes]:
        """Everything in the storage folder, temporary files included."""
        return {str(p.relative_to(self.storage)): p.read_bytes() for p in self.storage.rglob("*") if p.is_file()}

    async def exchange(self) -> Exchange:
        metadata = await open_metadata_store(self.database)
        return Exchange(metadata, await open_object_store(str(self.storage)), debug=False)

    def run(self, coroutine_function, *args):
        """Open the stores, run one coroutine on them, close them (the command runs apart)."""

        async def main():
            ex = await self.exchange()
            try:
                return await coroutine_function(ex, *args)
            finally:
                await ex.objects.close()
                await ex.metadata.close()

        return asyncio.run(main())


def fsck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NGSHARE_S3_", "JUPYTERHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "fsck", *args],
        capture_output=True, text=True, timeout=120, env={**clean, **(env or {})},
    )


async def populate(ex: Exchange) -> str:
    await courses.create_course(ex, ADMIN, "course1", json.dumps(["teacher"]))
    await rosters.put_student(ex, TEACHER, "course1", "alice", "Alice", "A", "a@example.org")
    await assignments.release_assignment(
        ex, TEACHER, "course1", "ps1", files_field({"ps1.ipynb": b"release", "data/a b.csv": b"1,2"})
    )
    timestamp = await submissions.submit(ex, ALICE, "course1", "ps1", files_field({"ps1.ipynb": b"answer"}))
    await feedback.upload_feedback(
        ex, TEACHER, "course1", "ps1", "alice", timestamp, files_field({"ps1.html": b"well done"})
    )
    return timestamp


async def service_data(ex: Exchange, timestamp: str) -> dict[str, dict[str, bytes]]:
    """What the service hands out: each tree's files by path, read through the exchange."""
    trees = {
        "release": await assignments.get_assignment(ex, ALICE, "course1", "ps1"),
        "submission": (await submissions.get_submission(ex, TEACHER, "course1", "ps1", "alice", None))[0],
        "feedback": (await feedback.get_feedback(ex, ALICE, "course1", "ps1", "alice", timestamp))[0],
    }
    return {name: {f.path: await read_all(ex.read(tree, f)) for f in tree.files} for name, tree in trees.items()}


async def put(ex: Exchange, key: str, data: bytes) -> None:
    await ex.objects.put(key, chunks_of(data), hashlib.md5(data).hexdigest())


async def leftover_submission(ex: Exchange) -> Submission:
    """A submission to an earlier release of ps1, as an interrupted assignment delete leaves it."""
    submission_id = keys.new_id()
    data = b"old answer"
    prefix = keys.submission_prefix("course1", "ps1", "alice", submission_id)
    await put(ex, f"{prefix}/{keys.file_name(0, 'ps1.ipynb')}", data)
    record = FileRecord("ps1.ipynb", hashlib.md5(data).hexdigest(), len(data))
    submission = Submission(
        "course1", "ps1", "alice", "2020-01-01 00:00:00.000000", submission_id, "earlier-release", (record,)
    )
    await ex.metadata.create_submission(submission)
    return submission


async def submissions_in_store(ex: Exchange) -> list[Submission]:
    return await ex.metadata.list_submissions("course1", "ps1")


OLD_ORPHAN = "courses/course1/assignments/ps1/release/crashed-release/0000/ps1.ipynb"
YOUNG_ORPHAN = "courses/course1/assignments/ps1/submissions/alice/in-flight/0000/ps1.ipynb"


@pytest.fixture
def site(tmp_path) -> Site:
    site = Site(f"sqlite:///{tmp_path}/ngshare.db", tmp_path / "files")
    site.timestamp = site.run(populate)
    return site


@pytest.fixture
def damaged(site) -> tuple[Site, Submission]:
    """Orphans of every kind a crash leaves: an old and a young unreferenced object, a leftover
    submission with its old object, and an old and a young temporary file."""

    async def plant(ex: Exchange) -> Submission:
        await put(ex, OLD_ORPHAN, b"half a release")
        await put(ex, YOUNG_ORPHAN, b"an upload in flight")
        return await leftover_submission(ex)

    stale = site.run(plant)
    for key in [OLD_ORPHAN] + [f.key for f in submission_files(stale)]:
        os.utime(site.path(key), (TWO_HOURS_AGO, TWO_HOURS_AGO))
    (site.storage / ".tmp" / "tmpcrashed").write_bytes(b"partial")
    os.utime(site.storage / ".tmp" / "tmpcrashed", (TWO_HOURS_AGO, TWO_HOURS_AGO))
    (site.storage / ".tmp" / "tmpwriting").write_bytes(b"being written")
    return site, stale


def test_an_untouched_exchange_is_consistent(site):
    result = fsck(*site.flags())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Checked ") and " records and 4 objects (dry run" in lines[0]
    assert "Unreferenced objects older than 1h: 0" in lines
    assert "Records whose objects are missing: 0" in lines
    assert lines[-1] == "Consistent."


def test_a_dry_run_lists_every_leftover_and_changes_nothing(damaged):
    site, stale = damaged
    files, records = site.files(), site.run(lambda ex: ex.metadata.dump())
    result = fsck(*site.flags())
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    stale_key = submission_files(stale)[0].key

    assert "Unreferenced objects older than 1h: 2" in lines
    assert sorted(lines[lines.index("Unreferenced objects older than 1h: 2") + 1 :][:2]) == sorted(
        [f"  {OLD_ORPHAN}", f"  {stale_key}"]
    )
    assert lines[lines.index("Unreferenced objects younger than 1h, left alone: 1") + 1] == f"  {YOUNG_ORPHAN}"
    assert lines[lines.index("Unreachable records: 1") + 1] == (
        "  submission course=course1 assignment=ps1 student=alice timestamp='2020-01-01 00:00:00.000000' "
        "release=earlier-release: its release is not the assignment's current one"
    )
    assert lines[lines.index("Temporary files older than 1h: 1") + 1] == (
        f"  {site.storage / '.tmp' / 'tmpcrashed'}"
    )
    assert "Consistent." not in lines
    assert site.files() == files
    assert site.run(lambda ex: ex.metadata.dump()) == records


def test_repair_removes_exactly_the_leftovers(damaged):
    site, stale = damaged
    before = site.run(service_data, site.timestamp)
    files = site.files()

    result = fsck(*site.flags(), "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unreferenced objects older than 1h (removed): 2" in result.stdout
    assert "Unreachable records (removed): 1" in result.stdout
    assert result.stdout.splitlines()[-1] == "Consistent."

    removed = {OLD_ORPHAN, submission_files(stale)[0].key, ".tmp/tmpcrashed"}
    assert set(files) - set(site.files()) == removed
    assert set(site.files()) <= set(files)
    assert site.path(YOUNG_ORPHAN).exists()
    assert (site.storage / ".tmp" / "tmpwriting").exists()
    assert [s.timestamp for s in site.run(submissions_in_store)] == [site.timestamp]
    assert site.run(service_data, site.timestamp) == before

    again = fsck(*site.flags())
    assert again.returncode == 0, again.stdout
    assert "Unreferenced objects younger than 1h, left alone: 1" in again.stdout


def test_a_course_whose_delete_stopped_halfway_is_listed_then_removed(site):
    site.run(lambda ex: ex.metadata.close_course("course1"))
    result = fsck(*site.flags(), "--grace-period", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[lines.index("Courses whose delete stopped halfway: 1") + 1] == "  course1"
    assert "Unreachable records: 4" in lines
    assert "courses whose delete stopped halfway" in lines[-1]

    repaired = fsck(*site.flags(), "--grace-period", "0", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "Courses whose delete stopped halfway (removed): 1" in repaired.stdout
    assert site.run(lambda ex: ex.metadata.list_courses()) == []
    assert site.files() == {}


def test_the_grace_period_decides_what_is_old(damaged):
    site, _ = damaged
    os.utime(site.path(YOUNG_ORPHAN), (time.time() - 300, time.time() - 300))

    kept = fsck(*site.flags(), "--repair", "--grace-period", "10m")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert site.path(YOUNG_ORPHAN).exists()
    assert "Unreferenced objects younger than 10m, left alone: 1" in kept.stdout

    removed = fsck(*site.flags(), "--repair", "--grace-period", "90s")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "Unreferenced objects older than 90s (removed): 1" in removed.stdout
    assert not site.path(YOUNG_ORPHAN).exists()


def test_a_missing_object_is_reported_and_its_record_kept(site):
    submission = site.run(lambda ex: ex.metadata.get_submission("course1", "ps1", "alice"))
    gone = submission_files(submission)[0]
    site.path(gone.key).unlink()
    line = (
        f"  submission course=course1 assignment=ps1 student=alice timestamp='{site.timestamp}' "
        f"path=ps1.ipynb key={gone.key}"
    )

    dry = fsck(*site.flags())
    assert dry.returncode == 1
    assert line in dry.stdout.splitlines()
    assert "Records whose objects are missing: 1" in dry.stdout

    repaired = fsck(*site.flags(), "--repair")
    assert repaired.returncode == 1
    assert line in repaired.stdout.splitlines()
    assert "never repaired" in repaired.stdout
    assert site.run(submissions_in_store) == [submission]


def test_repair_refuses_an_empty_database(site, tmp_path):
    for path in site.storage.rglob("*"):
        if path.is_file():
            os.utime(path, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    files = site.files()
    result = fsck("--database", f"sqlite:///{tmp_path}/typo.db", "--storage", str(site.storage), "--repair")
    assert result.returncode == 2
    assert result.stderr.startswith("ngshare-s3: the database holds no records")
    assert site.files() == files


def test_database_and_storage_come_from_the_servers_environment_variables(site):
    result = fsck(env={"NGSHARE_S3_DATABASE": site.database, "NGSHARE_S3_STORAGE": str(site.storage)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert " records and 4 objects" in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    "flags, start",
    [
        (["--grace-period", "soon"], "ngshare-s3: --grace-period must be like 3600, 90s, 30m, 2h or 1d, got 'soon'"),
        (["--storage", "ftp://host/files"], "ngshare-s3: --storage must be"),
        (["--database", "postgres://host/db"], "ngshare-s3: --database must be"),
    ],
)
def test_configuration_errors_are_one_line_and_exit_2(tmp_path, flags, start):
    base = ["--database", f"sqlite:///{tmp_path}/db", "--storage", str(tmp_path / "files")]
    result = fsck(*base, *flags)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(start)
    assert result.stderr.count("\n") == 1


def test_without_fsck_the_command_still_starts_the_server(tmp_path):
    """The server's own start-up check answers, not fsck's parser."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NGSHARE_S3_", "JUPYTERHUB_"))}
    result = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "--database", f"sqlite:///{tmp_path}/db", "--storage", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=clean,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("ngshare-s3: JUPYTERHUB_API_TOKEN is not set")


@pytest.mark.parametrize(
    "text, seconds",
    [("3600", 3600), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("0", 0)],
)
def test_grace_periods(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1.5h", "-1", "2w", "h", "1 h"])
def test_bad_grace_periods(text):
    with pytest.raises(SettingsError, match="--grace-period"):
        parse_duration(text)
