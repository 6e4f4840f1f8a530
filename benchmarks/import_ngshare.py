#!/usr/bin/env python
"""How long does `ngshare-s3 import-ngshare` take to bring over a course of 1,000 submissions?

Builds an ngshare 0.6.0 installation through ngshare's own API (ngshare started as a JupyterHub
service would start it, with deadline.py's stand-in for the Hub's token check): one course, an
instructor, N students, one assignment of a few notebooks released, every student submitting it
several times, and feedback for each student's latest submission. Then stops ngshare, as an
administrator would before moving over, and times the import into each target pair of stores:

  dry run   `import-ngshare --dry-run`: reads and checks everything, writes nothing
  import    the import itself
  again     the same command once more: it finds everything present and adds nothing

Each run's wall time, CPU time and peak memory are reported with what the source holds
(records, files, bytes, read from ngshare's database) and the rates. After the import, ngshare_s3
is started on the target and every student's submission list and latest feedback are compared
with what ngshare answered while the course was built, so a fast import that lost something
cannot look good.

Usage: .venv/bin/python benchmarks/import_ngshare.py
       .venv/bin/python benchmarks/import_ngshare.py --targets embedded --students 20 --submissions 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

try:
    import psutil
except ImportError:  # pragma: no cover - psutil arrives with the test extras (`make install`)
    sys.exit("import_ngshare.py needs psutil: run `make install` and use .venv/bin/python")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deadline  # noqa: E402  (benchmarks/ is not a package)
import deadline_bodies as bodies  # noqa: E402
from deadline import ADMIN, INSTRUCTOR, PREFIX, FakeHub, Server, token_for  # noqa: E402

PROJECT = deadline.PROJECT
COURSE = "course101"
ASSIGNMENT = "ps1"
TARGETS = ("embedded", "mongodb-postgres+minio")
MB = 1024 * 1024


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says why."""


# ---------------------------------------------------------------------------------------------
# The source: an ngshare 0.6.0 installation built through its API


@dataclass
class Built:
    """What ngshare answered while the course was built: every submission's timestamp, in
    order, per student, and the MD5s of each student's latest feedback."""

    timestamps: dict[str, list[str]] = field(default_factory=dict)
    feedback_md5: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class Api:
    """ngshare's API under the service prefix, as the nbgrader plugin calls it; any answer but
    a 200 success stops the benchmark."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base + PREFIX.rstrip("/")

    async def call(self, method: str, route: str, user: str, *, params: dict[str, str] | None = None,
                   body: bytes | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"token {token_for(user)}"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method, f"{self.base}/{route}", params=params, data=body,
                                        headers=headers) as response:
            payload = await response.read()
            status = response.status
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict) or answer.get("success") is not True:
            raise BenchmarkError(f"{method} {route} as {user}: {status} {payload[:300]!r}")
        return answer


def course_files(args: argparse.Namespace) -> list[tuple[str, bytes]]:
    return [(f"problem{n}.ipynb", deadline.make_notebook(f"release {n}", args.notebook_kb * 1024))
            for n in range(1, args.notebooks + 1)]


async def build_course(base: str, args: argparse.Namespace) -> Built:
    """One course through ngshare's API: roster, release, every submission, then feedback for
    each student's latest, `--build-concurrency` students at a time."""
    students = [f"student-{i:04d}" for i in range(1, args.students + 1)]
    release = course_files(args)
    built = Built()
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(force_close=True)) as session:
        api = Api(session, base)
        await api.call("POST", f"course/{COURSE}", ADMIN, body=deadline.prepare_form(ADMIN, {"instructors": "[]"}))
        await api.call("POST", f"instructor/{COURSE}/{INSTRUCTOR}", ADMIN, body=deadline.prepare_form(
            ADMIN, {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}))
        roster = [{"username": name, "first_name": "First", "last_name": name.title(),
                   "email": f"{name}@example.org"} for name in students]
        await api.call("POST", f"students/{COURSE}", ADMIN,
                       body=deadline.prepare_form(ADMIN, {"students": json.dumps(roster)}))
        await api.call("POST", f"assignment/{COURSE}/{ASSIGNMENT}", INSTRUCTOR,
                       body=bodies.submission_form(INSTRUCTOR, release))

        async def student_works(student: str) -> None:
            built.timestamps[student] = []
            for attempt in range(1, args.submissions + 1):
                files = [(path, deadline.own_notebook(data, f"{student} attempt {attempt}")) for path, data in release]
                answer = await api.call("POST", f"submission/{COURSE}/{ASSIGNMENT}", student,
                                        body=bodies.submission_form(student, files))
                built.timestamps[student].append(answer["timestamp"])
            feedback = [(f"{ASSIGNMENT}.html", deadline.make_feedback(student, args.feedback_kb * 1024))]
            await api.call("POST", f"feedback/{COURSE}/{ASSIGNMENT}/{student}", INSTRUCTOR,
                           body=deadline.prepare_form(INSTRUCTOR, {
                               "timestamp": built.timestamps[student][-1],
                               "files": deadline.encode_files(feedback, with_newlines=True)}))
            built.feedback_md5[student] = [(path, hashlib.md5(data).hexdigest()) for path, data in feedback]

        await deadline.in_pool(students, student_works, args.build_concurrency)
    return built


@dataclass
class SourceCounts:
    """What ngshare's database holds, counted with SQL of our own (not the importer's)."""

    courses: int
    members: int
    assignments: int
    submissions: int
    feedback_sets: int
    files: int
    bytes: int

    @property
    def records(self) -> int:
        return self.courses + self.members + self.assignments + self.submissions + self.feedback_sets


def count_source(database: Path) -> SourceCounts:
    with sqlite3.connect(f"{database.absolute().as_uri()}?mode=ro", uri=True) as db:
        def one(query: str) -> int:
            return db.execute(query).fetchone()[0] or 0

        associations = ("assignment_files_assoc_table", "submission_files_assoc_table", "feedback_files_assoc_table")
        referenced = " UNION ALL ".join(f"SELECT right_id FROM {table}" for table in associations)
        return SourceCounts(
            courses=one("SELECT COUNT(*) FROM courses"),
            members=one("SELECT COUNT(*) FROM instructor_assoc_table") + one("SELECT COUNT(*) FROM student_assoc_table"),
            assignments=one("SELECT COUNT(*) FROM assignments"),
            submissions=one("SELECT COUNT(*) FROM submissions"),
            feedback_sets=one("SELECT COUNT(DISTINCT left_id) FROM feedback_files_assoc_table"),
            files=one(f"SELECT COUNT(*) FROM ({referenced})"),
            bytes=one(f"SELECT SUM(files.size) FROM ({referenced}) AS used JOIN files ON files._id = used.right_id"),
        )


def build_source(folder: Path, hub: FakeHub, args: argparse.Namespace) -> tuple[Built, float]:
    """ngshare 0.6.0 started on an empty database in `folder`, the course built, ngshare stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    namespace = argparse.Namespace(server_arg=[], python=args.ngshare_python, ngshare_venv=args.ngshare_venv)
    server = Server(deadline.server_command("ngshare", folder, namespace), hub, folder)
    server.start(timeout=60)
    started = time.monotonic()
    try:
        built = asyncio.run(build_course(server.base, args))
    except BenchmarkError:
        print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        server.stop()
    return built, time.monotonic() - started


# ---------------------------------------------------------------------------------------------
# The targets


class Target:
    """A pair of stores to import into: the embedded pair in a folder, or FerretDB on PostgreSQL
    and MinIO (deadline_backends)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.backends = None
        self.environment: dict[str, str] = {}

    def start(self) -> None:
        if self.kind == "embedded":
            self.folder.mkdir(parents=True, exist_ok=True)
            self.database = f"sqlite:///{self.folder}/ngshare_s3.db"
            self.storage = str(self.folder / "files")
            return
        import deadline_backends

        self.backends = deadline_backends.ProductionBackends()
        try:
            self.backends.start()
        except deadline_backends.BackendError as error:
            self.backends.stop()
            raise BenchmarkError(f"{self.kind}: {error}") from error
        self.database = self.backends.database
        self.storage = self.backends.storage
        self.environment = self.backends.environment

    def stop(self) -> None:
        if self.backends is not None:
            self.backends.stop()

    def describe(self) -> str:
        return "SQLite + a local folder" if self.backends is None else self.backends.describe()


@dataclass
class Run:
    name: str
    command: list[str]
    status: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    summary: str


def peak_rss(process: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.Error:
            return
        stop.wait(0.05)


def run_import(name: str, source: Path, target: Target, python: Path, extra: list[str], log: Path) -> Run:
    command = [str(python), "-m", "ngshare_s3", "import-ngshare",
               "--from-database", f"sqlite:///{source / 'ngshare.db'}", "--from-storage", f"{source / 'files'}/",
               "--database", target.database, "--storage", target.storage, *extra]
    environment = {**os.environ, **target.environment}
    before = os.times()
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=output, stderr=subprocess.STDOUT)
        stop, peak = threading.Event(), [0]
        sampler = threading.Thread(target=peak_rss, args=(psutil.Process(process.pid), stop, peak), daemon=True)
        sampler.start()
        status = process.wait()
        stop.set()
        sampler.join()
    seconds = time.monotonic() - started
    after = os.times()
    lines = log.read_text(errors="replace").strip().splitlines()
    return Run(name=name, command=command, status=status, seconds=seconds,
               cpu_seconds=(after.children_user - before.children_user) + (after.children_system - before.children_system),
               peak_rss_mb=peak[0] / MB, summary=lines[-1] if lines else "")


async def check_import(base: str, built: Built) -> list[str]:
    """ngshare_s3 on the target lists every student's submissions with ngshare's timestamps, in
    ngshare's order, and serves the latest one's feedback with the MD5s ngshare was given."""
    problems: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        api = Api(session, base)

        async def student_checks(student: str) -> None:
            listed = await api.call("GET", f"submissions/{COURSE}/{ASSIGNMENT}/{student}", student)
            timestamps = [item["timestamp"] for item in listed["submissions"]]
            if sorted(timestamps) != sorted(built.timestamps[student]):
                problems.append(f"{student}: submissions {timestamps} instead of {built.timestamps[student]}")
            feedback = await api.call("GET", f"feedback/{COURSE}/{ASSIGNMENT}/{student}", student,
                                      params={"timestamp": built.timestamps[student][-1], "list_only": "false"})
            got = [(item["path"], bodies.content_md5(item["content"])) for item in feedback["files"]]
            if got != built.feedback_md5[student]:
                problems.append(f"{student}: feedback {got} instead of {built.feedback_md5[student]}")

        try:
            await deadline.in_pool(sorted(built.timestamps), student_checks, 8)
        except BenchmarkError as error:
            problems.append(str(error))
    return problems


def verify(target: Target, built: Built, hub: FakeHub, folder: Path, python: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    namespace = argparse.Namespace(server_arg=[], python=str(python), database=target.database,
                                   storage=target.storage)
    server = Server(deadline.server_command("ngshare_s3", folder, namespace), hub, folder, target.environment)
    server.start(timeout=60)
    try:
        return asyncio.run(check_import(server.base, built))
    finally:
        server.stop()


def summary_problems(runs: list[Run], counts: SourceCounts) -> list[str]:
    """The summary lines agree with the source as counted here: the dry run and the import name
    every file and byte of it, and the second run finds nothing new."""
    problems = []
    for run in runs:
        written = re.search(r"\((\d+) files?, (\d+) bytes?\)", run.summary)
        if run.name in ("dry run", "import") and (not written or (int(written[1]), int(written[2])) != (counts.files, counts.bytes)):
            problems.append(f"{run.name}: summary {run.summary!r} does not name {counts.files} files, {counts.bytes} bytes")
        if run.name == "again" and not run.summary.startswith("Imported nothing new"):
            problems.append(f"again: summary {run.summary!r} does not say that nothing was new")
    return problems


# ---------------------------------------------------------------------------------------------
# Report


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def render(counts: SourceCounts, results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"Source: ngshare {deadline.NGSHARE_VERSION}, {counts.courses} course, {counts.members} members, "
        f"{counts.assignments} assignment, {counts.submissions} submissions, {counts.feedback_sets} feedback sets: "
        f"{counts.records} records, {counts.files} files, {counts.bytes / MB:.1f} MB",
        "",
        "| target | run | exit | seconds | records/s | submissions/s | files/s | MB/s | CPU s | peak RSS MB |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for target, result in results.items():
        for run in result["runs"]:
            seconds = run["seconds"]
            lines.append(
                f"| {target} | {run['name']} | {run['status']} | {seconds:.1f} | {rate(counts.records, seconds)} | "
                f"{rate(counts.submissions, seconds)} | {rate(counts.files, seconds)} | "
                f"{counts.bytes / MB / seconds:.1f} | {run['cpu_seconds']:.1f} | {run['peak_rss_mb']:.0f} |"
            )
    lines.append("")
    for target, result in results.items():
        lines.append(f"{target} ({result['stores']}):")
        for run in result["runs"]:
            lines.append(f"  {run['name']}: {run['summary']}")
        lines.append(f"  checked through ngshare_s3: {result['check']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--students", type=int, default=250)
    parser.add_argument("--submissions", type=int, default=4, help="submissions per student")
    parser.add_argument("--notebooks", type=int, default=3, help="notebooks in the release and in each submission")
    parser.add_argument("--notebook-kb", type=int, default=40)
    parser.add_argument("--feedback-kb", type=int, default=20, help="the feedback page of each latest submission")
    parser.add_argument("--build-concurrency", type=int, default=4,
                        help="students building the source through ngshare at once")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, from: {', '.join(TARGETS)}")
    parser.add_argument("--source", type=Path,
                        help="an ngshare folder (ngshare.db, files/) kept by an earlier --keep run, instead of "
                             "building one; its build.json says what ngshare answered")
    parser.add_argument("--python", type=Path, default=deadline.DEFAULT_S3_PYTHON,
                        help="the Python that runs ngshare-s3")
    parser.add_argument("--ngshare-venv", default=str(deadline.DEFAULT_NGSHARE_VENV),
                        help="ngshare 0.6.0's virtualenv (created on first use)")
    parser.add_argument("--ngshare-python", default=None, help="a Python with ngshare 0.6.0, instead of the virtualenv")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (source, targets, logs)")
    args = parser.parse_args(argv)
    args.targets = [name.strip() for name in args.targets.split(",") if name.strip()]
    unknown = set(args.targets) - set(TARGETS)
    if unknown or not args.targets:
        parser.error(f"--targets: unknown {', '.join(sorted(unknown)) or 'none given'}; choose from {', '.join(TARGETS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="import-ngshare-"))
    load_before = os.getloadavg()[0]
    hub = FakeHub()
    results: dict[str, dict[str, Any]] = {}
    try:
        hub.start()
        if args.source:
            source = args.source.absolute()
            built = Built(**json.loads((source / "build.json").read_text()))
            build_seconds = None
        else:
            source = workdir / "ngshare"
            print(f"Building the source through ngshare {deadline.NGSHARE_VERSION}: {args.students} students x "
                  f"{args.submissions} submissions of {args.notebooks} notebooks...", flush=True)
            built, build_seconds = build_source(source, hub, args)
            (source / "build.json").write_text(json.dumps(asdict(built)))
        counts = count_source(source / "ngshare.db")
        print(f"Source ready{f' in {build_seconds:.0f} s' if build_seconds else ''}: {counts.submissions} submissions, "
              f"{counts.files} files, {counts.bytes / MB:.1f} MB", flush=True)
        failed = False
        for kind in args.targets:
            target = Target(kind, workdir / f"target-{kind.replace('+', '-')}")
            target.start()
            try:
                runs = []
                for name, extra in (("dry run", ["--dry-run"]), ("import", []), ("again", [])):
                    print(f"{kind}: {name}...", flush=True)
                    log = workdir / f"{kind.replace('+', '-')}-{name.replace(' ', '-')}.log"
                    run = run_import(name, source, target, args.python, extra, log)
                    runs.append(run)
                    if run.status != 0:
                        failed = True
                        print(f"{kind}: {name} exited with {run.status}:\n{log.read_text()[-3000:]}", file=sys.stderr)
                        break
                problems = summary_problems(runs, counts)
                if runs[-1].status == 0:
                    problems += verify(target, built, hub, workdir / f"serve-{kind.replace('+', '-')}", args.python)
                else:
                    problems.append("not checked: an import run failed")
                failed = failed or bool(problems)
                for problem in problems[:20]:
                    print(f"{kind}: {problem}", file=sys.stderr)
                results[kind] = {
                    "stores": target.describe(),
                    "runs": [asdict(run) for run in runs],
                    "check": "every submission list and latest feedback as ngshare answered" if not problems
                    else f"{len(problems)} differences",
                }
            finally:
                target.stop()
        print()
        print(render(counts, results))
        print()
        print(f"Machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
              f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
        if args.json:
            args.json.write_text(json.dumps({"source": asdict(counts), "records": counts.records,
                                             "build_seconds": build_seconds, "targets": results}, indent=1))
        return 1 if failed else 0
    except (BenchmarkError, deadline.BenchmarkError) as error:
        print(f"import_ngshare.py: {error}", file=sys.stderr)
        return 2
    finally:
        hub.stop()
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
