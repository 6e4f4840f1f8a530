#!/usr/bin/env python
"""Does the exchange stay fast at the deadline?

Starts one exchange server (ngshare_s3, or ngshare 0.6.0 for comparison) as a JupyterHub service
would run it, with a small stand-in for the Hub's token check, and drives it the way the nbgrader
plugin ngshare_exchange does: form-encoded POST bodies, `files` as a JSON list of base64 contents,
`Authorization: token ...`. The scenario is one course on the day an assignment is due:

  setup     an admin creates the course, adds an instructor and N students; the instructor
            releases an assignment (a ~50 KB notebook and a data file)
  fetch     the N students download the released assignment
  deadline  the N students, C at a time, each list the assignment and submit
  collect   the instructor lists the submissions and downloads every student's latest one
  feedback  the instructor uploads feedback for every submission
  return    the N students download their feedback
  large     one 50 MB submission, uploaded and downloaded again

Every answer is checked (every submission listed once, downloaded bytes have the MD5 of what
was sent), so a server that is fast because it is wrong cannot look good. Any non-200 answer is
counted as an error and printed.

Usage: .venv/bin/python benchmarks/deadline.py --server ngshare_s3   (or --server ngshare)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import quote

import aiohttp
from aiohttp import web

try:
    import psutil
except ImportError:  # pragma: no cover - psutil arrives with the test extras (`make install`)
    sys.exit("deadline.py needs psutil: run `make install` and use .venv/bin/python")

PROJECT = Path(__file__).resolve().parent.parent
PREFIX = "/services/ngshare/"
SERVICE_TOKEN = "benchmark-service-token"
ADMIN = "admin"
INSTRUCTOR = "instructor"
LARGE_UPLOADER = "large-upload-student"
COURSE = "course101"
ASSIGNMENT = "ps1"
NOTEBOOK = "ps1.ipynb"
DATA_FILE = "data/measurements.csv"
NGSHARE_VERSION = "0.6.0"
DEFAULT_NGSHARE_VENV = PROJECT / ".cache" / f"ngshare-{NGSHARE_VERSION}-venv"
DEFAULT_S3_PYTHON = PROJECT / ".venv" / "bin" / "python"

MB = 1024 * 1024


def token_for(user: str) -> str:
    return f"tok-{user}"


# ---------------------------------------------------------------------------------------------
# The Hub's token check, in its own process so that the load generator's CPU work never delays
# it (ngshare asks the Hub synchronously on every request; a slow Hub would stall its whole loop).


def serve_fake_hub(port: int) -> None:
    """Answers `GET /hub/api/user` like JupyterHub for tokens `tok-<user>`, 403 otherwise;
    `GET /stats` tells how often it was asked."""
    calls = 0

    async def identify(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() not in {"token", "bearer"} or not token.startswith("tok-") or token == "tok-":
            return web.json_response({"status": 403, "message": "Forbidden"}, status=403)
        return web.json_response({"name": token[len("tok-"):], "kind": "user"})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"calls": calls})

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; Ctrl-C goes to it
    app = web.Application()
    app.router.add_get("/hub/api/user", identify)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)


class FakeHub:
    """Runs serve_fake_hub in a child process and stops it again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        self.process = multiprocessing.get_context("spawn").Process(
            target=serve_fake_hub, args=(self.port,), daemon=True, name="fake-hub"
        )

    def start(self, timeout: float = 20.0) -> None:
        self.process.start()
        wait_for_http(f"{self.url}/stats", timeout, alive=self.process.is_alive, what="the Hub stand-in")

    def stop(self) -> None:
        if self.process.pid is None:
            return
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)

    async def calls(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"{self.url}/stats") as response:
            return (await response.json())["calls"]


# ---------------------------------------------------------------------------------------------
# The servers under test


def free_port() -> int:
    """A port free on every interface: ngshare binds 0.0.0.0, whatever we ask."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, timeout: float, *, alive: Callable[[], bool], what: str) -> None:
    """Polls `url` until it answers 200, the process dies, or `timeout` seconds pass."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise BenchmarkError(f"{what} exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise BenchmarkError(f"{what} did not answer {url} within {timeout:.0f} s")


def ngshare_python(venv: Path) -> Path:
    """ngshare 0.6.0 in a virtualenv of its own, created on first use. It needs SQLAlchemy<2:
    under SQLAlchemy 2 its releases answer success but store nothing."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    print(f"Creating {venv} with ngshare {NGSHARE_VERSION} (once)...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"ngshare=={NGSHARE_VERSION}", "SQLAlchemy<2"],
        check=True,
        timeout=900,
    )
    marker.touch()
    return python


def server_command(kind: str, workdir: Path, args: argparse.Namespace) -> list[str]:
    """The command line each server is started with, as a JupyterHub `services` entry would."""
    if kind == "ngshare_s3":
        python = Path(args.python or DEFAULT_S3_PYTHON)
        return [
            str(python), "-m", "ngshare_s3", "--admins", ADMIN,
            "--database", args.database or f"sqlite:///{workdir}/db.sqlite",
            "--storage", args.storage or f"{workdir}/files",
        ]
    python = Path(args.python) if args.python else ngshare_python(Path(args.ngshare_venv))
    return [
        str(python), "-m", "ngshare", "--admins", ADMIN,
        "--database", f"sqlite:///{workdir}/ngshare.db", "--storage", f"{workdir}/files/",
    ]


class Server:
    """The server under test as a child process in a session of its own, so that stopping it
    also stops anything it started, and Ctrl-C in the terminal reaches only this script."""

    def __init__(self, command: list[str], hub: FakeHub, workdir: Path) -> None:
        self.command = command
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"  # ngshare listens on 0.0.0.0; we use loopback only
        self.log_path = workdir / "server.log"
        self.env = dict(
            os.environ,
            JUPYTERHUB_API_TOKEN=SERVICE_TOKEN,
            JUPYTERHUB_API_URL=hub.api_url,
            JUPYTERHUB_SERVICE_PREFIX=PREFIX,
            JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{self.port}",
            JUPYTERHUB_CLIENT_ID="service-ngshare",
            JUPYTERHUB_SERVICE_NAME="ngshare",
        )
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0

    def start(self, timeout: float) -> None:
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_http(f"{self.base}/healthz", timeout, alive=lambda: self.process.poll() is None,
                          what="the server")
        except BenchmarkError:
            print(self.log_tail(), file=sys.stderr)
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(["--- server log (tail) ---", *text[-lines:]])


# ---------------------------------------------------------------------------------------------
# Measuring


class RssSampler:
    """Samples the server's resident memory (with any children) in a thread, every few ms, so
    the sampling keeps going while the event loop is busy sending requests."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.peak = self.current()

    def current(self) -> int:
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes)
        except psutil.Error:
            return 0

    def cpu_seconds(self) -> float:
        try:
            times = self.process.cpu_times()
            return times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            return 0.0

    def reset(self) -> int:
        """Starts a new peak from the present value, and returns that value."""
        now = self.current()
        with self.lock:
            self.peak = now
        return now

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            rss = self.current()
            with self.lock:
                self.peak = max(self.peak, rss)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(2)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class OpStats:
    """One kind of request within a phase: its latencies, its errors and its wrong answers."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # "status: body" -> count
    wrong: Counter = field(default_factory=Counter)  # description of a wrong 200 answer -> count

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(count for key, count in self.errors.items() if key.startswith("no answer"))

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": self.requests,
            "errors": sum(self.errors.values()),
            "wrong": sum(self.wrong.values()),
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p95_ms": percentile(ordered, 0.95) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
            "error_kinds": dict(self.errors),
            "wrong_kinds": dict(self.wrong),
        }


@dataclass
class Phase:
    name: str
    ops: dict[str, OpStats] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss: int = 0
    rss_before: int = 0
    cpu_seconds: float = 0.0
    hub_calls: int = 0
    note: str = ""

    def op(self, name: str) -> OpStats:
        return self.ops.setdefault(name, OpStats())

    def all_ops(self) -> OpStats:
        total = OpStats()
        for stats in self.ops.values():
            total.latencies += stats.latencies
            total.errors.update(stats.errors)
            total.wrong.update(stats.wrong)
        return total

    def summary(self) -> dict[str, Any]:
        total = self.all_ops().summary()
        return {
            "phase": self.name,
            "seconds": self.seconds,
            "requests_per_second": total["requests"] / self.seconds if self.seconds else 0.0,
            **{key: value for key, value in total.items() if not key.endswith("_kinds")},
            "peak_rss_mb": self.peak_rss / MB,
            "rss_growth_mb": (self.peak_rss - self.rss_before) / MB,
            "server_cpu_seconds": self.cpu_seconds,
            "hub_calls": self.hub_calls,
            "note": self.note,
            "ops": {name: stats.summary() for name, stats in self.ops.items()},
        }


# ---------------------------------------------------------------------------------------------
# The client: what ngshare_exchange sends, timed


_FORM_UNSAFE = re.compile(rb"[^A-Za-z0-9_.~-]")
_FORM_ESCAPES = {bytes([b]): b"%%%02X" % b for b in range(256)}


def form_body(fields: dict[str, str]) -> bytes:
    """application/x-www-form-urlencoded, as `requests` sends a dict. Written out here because
    urllib's quoting walks a 70 MB upload byte by byte in Python for several seconds."""
    parts = []
    for name, value in fields.items():
        quoted = _FORM_UNSAFE.sub(lambda m: _FORM_ESCAPES[m.group()], value.encode())
        parts.append(quote(name, safe="").encode() + b"=" + quoted)
    return b"&".join(parts)


def prepare_form(user: str, fields: dict[str, str]) -> bytes:
    """A POST body as the plugin sends it: the fields plus `user`, form-encoded."""
    return form_body({**fields, "user": user})


def encode_files(files: Iterable[tuple[str, bytes]], *, with_newlines: bool = False) -> str:
    """The `files` field: b64encode for assignments and submissions, encodebytes for feedback,
    as ngshare_exchange does."""
    encode = base64.encodebytes if with_newlines else base64.b64encode
    return json.dumps([{"path": path, "content": encode(data).decode()} for path, data in files])


class Exchange:
    """Calls the API under the service prefix as a given user and records every answer in
    the phase it belongs to. Returns the decoded JSON of a 200 success, else None."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base + PREFIX.rstrip("/")

    async def call(
        self, stats: OpStats, method: str, route: str, user: str, *,
        params: dict[str, str] | None = None, form: dict[str, str] | bytes | None = None,
    ) -> dict | None:
        """`form` may be encoded beforehand with `prepare_form`, to keep that off the clock."""
        url = self.base + "/" + quote(route, safe="/")
        headers = {"Authorization": f"token {token_for(user)}"}
        body = None
        if form is not None:
            body = form if isinstance(form, bytes) else prepare_form(user, form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        started = time.perf_counter()
        try:
            async with self.session.request(
                method, url, params=params, data=body, headers=headers, allow_redirects=False
            ) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            stats.errors[f"no answer: {method} {route.split('/')[0]}: {type(error).__name__} {error}"] += 1
            return None
        stats.latencies.append(time.perf_counter() - started)
        if status != 200:
            snippet = payload[:160].decode(errors="replace").replace("\n", " ")
            stats.errors[f"{status} {method} {route.split('/')[0]}: {snippet}"] += 1
            return None
        try:
            answer = json.loads(payload)
        except ValueError:
            stats.wrong[f"{method} {route.split('/')[0]}: 200 but not JSON"] += 1
            return None
        if not isinstance(answer, dict) or answer.get("success") is not True:
            stats.wrong[f"{method} {route.split('/')[0]}: 200 without success: {str(answer)[:120]}"] += 1
            return None
        return answer


def check_tree(stats: OpStats, answer: dict, expected: list[tuple[str, bytes]], *, list_only: bool) -> None:
    """The files of an answer are exactly the expected ones, in order, with the right MD5 —
    both the server's checksum and, unless list_only, the MD5 of the bytes it sent back."""
    files = answer.get("files")
    if not isinstance(files, list) or [f.get("path") for f in files] != [path for path, _ in expected]:
        stats.wrong["file list differs from what was uploaded"] += 1
        return
    for item, (path, data) in zip(files, expected):
        md5 = hashlib.md5(data).hexdigest()
        if item.get("checksum") != md5:
            stats.wrong["server checksum differs from the uploaded bytes' MD5"] += 1
        if list_only:
            if "content" in item:
                stats.wrong["list_only answer carries content"] += 1
        elif hashlib.md5(base64.b64decode(item.get("content", ""))).hexdigest() != md5:
            stats.wrong["downloaded bytes' MD5 differs from the uploaded bytes'"] += 1


async def in_pool(items: list, worker: Callable[[Any], Awaitable[None]], concurrency: int) -> None:
    """Runs worker(item) for every item, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with gate:
            await worker(item)

    await asyncio.gather(*(one(item) for item in items))


# ---------------------------------------------------------------------------------------------
# Realistic content


def make_notebook(owner: str, size: int) -> bytes:
    """An nbformat 4 notebook of about `size` bytes, like nbgrader's: markdown, graded code
    cells with nbgrader metadata, text outputs and a PNG plot. Different for every owner."""
    rng = random.Random(owner)
    words = "data mean variance sample plot model fit residual error estimate value".split()
    cells = [{
        "cell_type": "markdown", "metadata": {},
        "source": [f"# Problem set 1\n", f"Submitted by {owner}.\n", "Answer every question below.\n"],
    }]
    index, length = 0, 0
    while length < size - 1500 and index < 10_000:
        index += 1
        text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 60)))
        cells.append({"cell_type": "markdown", "metadata": {}, "source": [f"## Question {index}\n", text + "\n"]})
        outputs: list[dict] = [{"name": "stdout", "output_type": "stream",
                                "text": [f"{rng.random():.6f}\n" for _ in range(rng.randint(3, 12))]}]
        if index % 6 == 0:
            png = rng.randbytes(rng.randint(2000, 6000))
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"image/png": base64.b64encode(png).decode(), "text/plain": ["<Figure>"]}})
        cells.append({
            "cell_type": "code", "execution_count": index, "outputs": outputs,
            "metadata": {"nbgrader": {"grade": True, "grade_id": f"q{index}", "points": 2,
                                      "solution": True, "locked": False, "schema_version": 3}},
            "source": [f"def answer_{index}(values):\n", f"    # {text[:60]}\n",
                       f"    return sum(values) / len(values) * {rng.random():.4f}\n"],
        })
        length += len(json.dumps(cells[-2:], indent=1))
    notebook = {
        "cells": cells, "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python", "version": "3.11.7"}},
    }
    return json.dumps(notebook, indent=1).encode()


def make_csv(size: int) -> bytes:
    rng = random.Random("data")
    lines = ["time,temperature,pressure,humidity"]
    while sum(len(line) + 1 for line in lines) < size:
        lines.append(f"{len(lines)},{rng.uniform(10, 30):.3f},{rng.uniform(990, 1030):.2f},{rng.uniform(0, 1):.4f}")
    return ("\n".join(lines) + "\n").encode()


def make_feedback(student: str, size: int) -> bytes:
    """An nbgrader feedback page of about `size` bytes: mostly inline CSS, then the scores."""
    rng = random.Random(f"feedback {student}")
    head = "<!DOCTYPE html><html><head><meta charset='utf-8'><style>\n"
    css = "".join(f".cell-{i} {{ margin: {rng.randint(0, 9)}px; color: #{rng.getrandbits(24):06x}; }}\n"
                  for i in range(max(1, size // 45)))
    body = f"</style></head><body><h1>Feedback for {student}</h1><p>Score: {rng.randint(0, 20)} / 20</p></body></html>\n"
    return (head + css + body).encode()


# ---------------------------------------------------------------------------------------------
# The scenario


@dataclass
class Course:
    students: list[str]
    release: list[tuple[str, bytes]]
    submissions: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)  # student -> timestamp of the submission
    feedback: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    # POST bodies, encoded before their phase starts so that the clock measures the server
    submit_forms: dict[str, bytes] = field(default_factory=dict)
    feedback_forms: dict[str, bytes] = field(default_factory=dict)

    def prepare_submissions(self) -> None:
        for student in self.students:
            self.submit_forms[student] = prepare_form(student, {"files": encode_files(self.submissions[student])})

    def prepare_feedback(self) -> None:
        """Feedback goes to the submission's timestamp, so this waits for the deadline."""
        for student, timestamp in self.timestamps.items():
            self.feedback_forms[student] = prepare_form(INSTRUCTOR, {
                "timestamp": timestamp,
                "files": encode_files(self.feedback[student], with_newlines=True),
            })


class Benchmark:
    def __init__(self, args: argparse.Namespace, server: Server, hub: FakeHub) -> None:
        self.args = args
        self.server = server
        self.hub = hub
        self.phases: list[Phase] = []
        self.sampler = RssSampler(server.process.pid)

    async def phase(self, name: str, body: Callable[[Phase], Awaitable[None]], note: str = "") -> Phase:
        """Runs one phase under a time limit and records its wall time, the server's peak RSS,
        its CPU time and how often it asked the Hub."""
        phase = Phase(name, note=note)
        self.phases.append(phase)
        hub_before = await self.hub.calls(self.stats_session)
        cpu_before = self.sampler.cpu_seconds()
        phase.rss_before = self.sampler.reset()
        started = time.perf_counter()
        print(f"  {name} ...", end="", flush=True)
        try:
            await asyncio.wait_for(body(phase), self.args.phase_timeout)
        except asyncio.TimeoutError:
            phase.op("phase").errors[f"no answer: phase stopped after {self.args.phase_timeout:.0f} s"] += 1
        phase.seconds = time.perf_counter() - started
        phase.peak_rss = max(self.sampler.peak, self.sampler.current())
        phase.cpu_seconds = self.sampler.cpu_seconds() - cpu_before
        phase.hub_calls = await self.hub.calls(self.stats_session) - hub_before
        total = phase.all_ops()
        print(f" {phase.seconds:.2f} s, {total.requests} requests, "
              f"{sum(total.errors.values())} errors, {sum(total.wrong.values())} wrong", flush=True)
        return phase

    async def run(self) -> None:
        args = self.args
        students = [f"student-{i:04d}" for i in range(1, args.students + 1)]
        release = [(NOTEBOOK, make_notebook("release", args.notebook_kb * 1024)),
                   (DATA_FILE, make_csv(args.data_kb * 1024))]
        course = Course(students=students, release=release)
        for student in students:
            course.submissions[student] = [(NOTEBOOK, make_notebook(student, args.notebook_kb * 1024)),
                                           (DATA_FILE, release[1][1])]
            course.feedback[student] = [("ps1.html", make_feedback(student, args.feedback_kb * 1024))]

        timeout = aiohttp.ClientTimeout(total=args.request_timeout)
        # One connection per request, as `requests.request` in ngshare_exchange opens one.
        connector = aiohttp.TCPConnector(limit=max(args.concurrency, args.instructor_concurrency),
                                         force_close=True)
        self.sampler.start()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as self.stats_session, \
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                api = Exchange(session, self.server.base)
                await self.phase("setup", lambda p: self.setup(p, api, course),
                                 "create course, add instructor, bulk-add students, release")
                await self.phase("fetch", lambda p: self.fetch(p, api, course),
                                 "students download the assignment")
                course.prepare_submissions()
                await self.phase("deadline", lambda p: self.deadline(p, api, course),
                                 "students list (list_only) and submit")
                await self.phase("collect", lambda p: self.collect(p, api, course),
                                 "instructor lists and downloads every latest submission")
                course.prepare_feedback()
                await self.phase("feedback", lambda p: self.release_feedback(p, api, course),
                                 "instructor uploads feedback for each submission")
                await self.phase("return", lambda p: self.fetch_feedback(p, api, course),
                                 "students download their feedback")
                if args.large_mb > 0:
                    await self.large_upload(api)
        finally:
            self.sampler.stop()

    async def setup(self, phase: Phase, api: Exchange, course: Course) -> None:
        await api.call(phase.op("create course"), "POST", f"course/{COURSE}", ADMIN, form={"instructors": "[]"})
        await api.call(phase.op("add instructor"), "POST", f"instructor/{COURSE}/{INSTRUCTOR}", ADMIN,
                       form={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"})
        roster = [{"username": name, "first_name": "First", "last_name": name.title(),
                   "email": f"{name}@example.org"} for name in [*course.students, LARGE_UPLOADER]]
        stats = phase.op("bulk add students")
        answer = await api.call(stats, "POST", f"students/{COURSE}", ADMIN, form={"students": json.dumps(roster)})
        if answer is not None:
            status = answer.get("status", [])
            if len(status) != len(roster) or not all(item.get("success") for item in status) or \
                    [item.get("username") for item in status] != [item["username"] for item in roster]:
                stats.wrong["bulk add status is not one success per student, in order"] += 1
            listed = await api.call(phase.op("list students"), "GET", f"students/{COURSE}", INSTRUCTOR)
            if listed is not None and sorted(s["username"] for s in listed["students"]) != sorted(
                    item["username"] for item in roster):
                phase.op("list students").wrong["roster differs from the students added"] += 1
        await api.call(phase.op("release"), "POST", f"assignment/{COURSE}/{ASSIGNMENT}", INSTRUCTOR,
                       form={"files": encode_files(course.release)})

    async def fetch(self, phase: Phase, api: Exchange, course: Course) -> None:
        stats = phase.op("fetch assignment")

        async def student_fetches(student: str) -> None:
            answer = await api.call(stats, "GET", f"assignment/{COURSE}/{ASSIGNMENT}", student)
            if answer is not None:
                check_tree(stats, answer, course.release, list_only=False)

        await in_pool(course.students, student_fetches, self.args.concurrency)

    async def deadline(self, phase: Phase, api: Exchange, course: Course) -> None:
        """What `nbgrader submit` sends: a list_only check of the released files, then the
        submission."""
        listing, submitting = phase.op("list_only"), phase.op("submit")

        async def student_submits(student: str) -> None:
            answer = await api.call(listing, "GET", f"assignment/{COURSE}/{ASSIGNMENT}", student,
                                    params={"list_only": "true"})
            if answer is not None:
                check_tree(listing, answer, course.release, list_only=True)
            answer = await api.call(submitting, "POST", f"submission/{COURSE}/{ASSIGNMENT}", student,
                                    form=course.submit_forms[student])
            if answer is not None:
                timestamp = answer.get("timestamp")
                if not isinstance(timestamp, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", timestamp):
                    submitting.wrong[f"timestamp not in ngshare's format: {timestamp!r}"] += 1
                else:
                    course.timestamps[student] = timestamp

        await in_pool(course.students, student_submits, self.args.concurrency)

    async def collect(self, phase: Phase, api: Exchange, course: Course) -> None:
        """What `nbgrader collect` sends: the submission list, then each student's latest."""
        listing = phase.op("list submissions")
        answer = await api.call(listing, "GET", f"submissions/{COURSE}/{ASSIGNMENT}", INSTRUCTOR)
        if answer is not None:
            seen = Counter((item.get("student_id"), item.get("timestamp")) for item in answer.get("submissions", []))
            expected = Counter(course.timestamps.items())
            if seen != expected:
                listing.wrong[f"submission list differs: {sum((seen - expected).values())} unexpected, "
                              f"{sum((expected - seen).values())} missing"] += 1
        downloading = phase.op("download submission")

        async def instructor_downloads(student: str) -> None:
            answer = await api.call(downloading, "GET", f"submission/{COURSE}/{ASSIGNMENT}/{student}", INSTRUCTOR)
            if answer is not None:
                if answer.get("timestamp") != course.timestamps.get(student):
                    downloading.wrong["latest submission has another timestamp than the one submitted"] += 1
                check_tree(downloading, answer, course.submissions[student], list_only=False)

        await in_pool(list(course.timestamps), instructor_downloads, self.args.instructor_concurrency)

    async def release_feedback(self, phase: Phase, api: Exchange, course: Course) -> None:
        stats = phase.op("upload feedback")

        async def instructor_uploads(student: str) -> None:
            await api.call(stats, "POST", f"feedback/{COURSE}/{ASSIGNMENT}/{student}", INSTRUCTOR,
                           form=course.feedback_forms[student])

        await in_pool(list(course.timestamps), instructor_uploads, self.args.instructor_concurrency)

    async def fetch_feedback(self, phase: Phase, api: Exchange, course: Course) -> None:
        stats = phase.op("fetch feedback")

        async def student_fetches(student: str) -> None:
            answer = await api.call(stats, "GET", f"feedback/{COURSE}/{ASSIGNMENT}/{student}", student,
                                    params={"timestamp": course.timestamps[student], "list_only": "false"})
            if answer is not None:
                check_tree(stats, answer, course.feedback[student], list_only=False)

        await in_pool(list(course.timestamps), student_fetches, self.args.concurrency)

    async def large_upload(self, api: Exchange) -> None:
        """One student submits a large data file; the instructor downloads it again. Memory is
        the point here: how far above its resting size does the server grow for one upload."""
        size = self.args.large_mb * MB
        files = [(NOTEBOOK, make_notebook(LARGE_UPLOADER, self.args.notebook_kb * 1024)),
                 ("data/large.bin", os.urandom(size))]
        body = prepare_form(LARGE_UPLOADER, {"files": encode_files(files)})
        timestamp = ""

        async def upload(phase: Phase) -> None:
            nonlocal timestamp
            answer = await api.call(phase.op("submit"), "POST", f"submission/{COURSE}/{ASSIGNMENT}",
                                    LARGE_UPLOADER, form=body)
            timestamp = (answer or {}).get("timestamp", "")

        async def download(phase: Phase) -> None:
            stats = phase.op("download")
            answer = await api.call(stats, "GET", f"submission/{COURSE}/{ASSIGNMENT}/{LARGE_UPLOADER}", INSTRUCTOR)
            if answer is not None:
                if answer.get("timestamp") != timestamp:
                    stats.wrong["large submission comes back with another timestamp"] += 1
                check_tree(stats, answer, files, list_only=False)

        await asyncio.sleep(1)  # let the previous phase's buffers go before taking the baseline
        await self.phase("large upload", upload, f"one {self.args.large_mb} MB submission")
        del body
        await self.phase("large download", download, "instructor downloads it again")


# ---------------------------------------------------------------------------------------------
# Report


class BenchmarkError(Exception):
    """The benchmark could not run (the server did not start, ...): nothing to measure."""


def render(phases: list[Phase], info: dict[str, Any]) -> str:
    lines = [
        f"### {info['server']} — {info['date']}",
        "",
        f"{info['students']} students, concurrency {info['concurrency']} "
        f"(instructor {info['instructor_concurrency']}), notebook {info['notebook_kb']} KB, "
        f"data {info['data_kb']} KB, feedback {info['feedback_kb']} KB; "
        f"start-up {info['startup_seconds']:.2f} s, resting RSS {info['resting_rss_mb']:.0f} MB; "
        f"{info['machine']}; load average {info['load_before']:.2f} before, {info['load_after']:.2f} after",
        "",
        "| phase | requests | errors | wrong | req/s | p50 ms | p95 ms | p99 ms | max ms | peak RSS MB | RSS growth MB | server CPU s | Hub calls |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for phase in phases:
        s = phase.summary()
        lines.append(
            f"| {s['phase']} ({s['seconds']:.2f} s) | {s['requests']} | {s['errors']} | {s['wrong']} | "
            f"{s['requests_per_second']:.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['p99_ms']:.0f} | "
            f"{s['max_ms']:.0f} | {s['peak_rss_mb']:.0f} | {s['rss_growth_mb']:+.0f} | "
            f"{s['server_cpu_seconds']:.1f} | {s['hub_calls']} |"
        )
        if len(phase.ops) > 1:
            for name, op in s["ops"].items():
                lines.append(
                    f"| · {name} | {op['requests']} | {op['errors']} | {op['wrong']} | | {op['p50_ms']:.0f} | "
                    f"{op['p95_ms']:.0f} | {op['p99_ms']:.0f} | {op['max_ms']:.0f} | | | | |"
                )
    problems = []
    for phase in phases:
        for name, op in phase.ops.items():
            for kind, count in [*op.errors.items(), *op.wrong.items()]:
                problems.append(f"- {phase.name} / {name}: {count} × {kind}")
    lines += ["", "Errors and wrong answers:" if problems else "No errors, no wrong answers.", *problems]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--server", choices=["ngshare_s3", "ngshare"], required=True, help="server under test")
    parser.add_argument("--students", type=int, default=300, help="students in the course (N)")
    parser.add_argument("--concurrency", type=int, default=50, help="students in flight at once (C)")
    parser.add_argument("--instructor-concurrency", type=int, default=1,
                        help="parallel instructor requests; nbgrader collect and release_feedback send one at a time")
    parser.add_argument("--notebook-kb", type=int, default=50, help="size of the assignment notebook")
    parser.add_argument("--data-kb", type=int, default=20, help="size of the data file released with it")
    parser.add_argument("--feedback-kb", type=int, default=100, help="size of each feedback page")
    parser.add_argument("--large-mb", type=int, default=50, help="size of the large-upload probe; 0 skips it")
    parser.add_argument("--request-timeout", type=float, default=300, help="seconds before one request counts as failed")
    parser.add_argument("--phase-timeout", type=float, default=900, help="seconds before a phase is stopped")
    parser.add_argument("--startup-timeout", type=float, default=60, help="seconds to wait for /healthz")
    parser.add_argument("--python", help="interpreter for the server (default: .venv's, or ngshare's virtualenv)")
    parser.add_argument("--ngshare-venv", default=str(DEFAULT_NGSHARE_VENV), help="where ngshare 0.6.0 is installed")
    parser.add_argument("--database", help="ngshare_s3's --database, e.g. mongodb://127.0.0.1/bench "
                        "(default: an SQLite file of the run's own)")
    parser.add_argument("--storage", help="ngshare_s3's --storage, e.g. s3://bench/run1 with the AWS_* "
                        "variables exported (default: a folder of the run's own)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the server's database, files and log")
    args = parser.parse_args(argv)
    if args.students < 1 or args.concurrency < 1 or args.instructor_concurrency < 1:
        parser.error("--students and the concurrencies must be at least 1")
    return args


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stop cleanly on SIGTERM as on Ctrl-C (also when started in the background, where SIGINT
    # arrives ignored): the `finally` below stops what was started.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    workdir = Path(tempfile.mkdtemp(prefix=f"deadline-{args.server}-"))
    hub = FakeHub()
    server: Server | None = None
    try:
        command = server_command(args.server, workdir, args)
        hub.start()
        server = Server(command, hub, workdir)
        print(f"Starting: {' '.join(command)}", flush=True)
        server.start(args.startup_timeout)
        info = {
            "server": f"{args.server} {NGSHARE_VERSION}" if args.server == "ngshare"
                      else f"ngshare_s3 {server_version()} ({source_state()})",
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "students": args.students, "concurrency": args.concurrency,
            "instructor_concurrency": args.instructor_concurrency, "notebook_kb": args.notebook_kb,
            "data_kb": args.data_kb, "feedback_kb": args.feedback_kb, "large_mb": args.large_mb,
            "startup_seconds": server.startup_seconds,
            "load_before": os.getloadavg()[0],
        }
        benchmark = Benchmark(args, server, hub)
        info["resting_rss_mb"] = benchmark.sampler.current() / MB
        asyncio.run(benchmark.run())
        info["load_after"] = os.getloadavg()[0]
        if server.process.poll() is not None:
            raise BenchmarkError(f"the server exited with status {server.process.returncode} during the run")
        print()
        print(render(benchmark.phases, info))
        if args.json:
            args.json.write_text(json.dumps({"info": info, "phases": [p.summary() for p in benchmark.phases]}, indent=1))
        failed = any(p.summary()["errors"] or p.summary()["wrong"] for p in benchmark.phases)
        return 1 if failed else 0
    except BenchmarkError as error:
        print(f"deadline.py: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server.", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
        hub.stop()
        if args.keep:
            print(f"Kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def source_state() -> str:
    """Which ngshare_s3 code was measured: the commit, and whether its folder had edits."""
    try:
        commit = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        edits = subprocess.run(["git", "-C", str(PROJECT), "status", "--porcelain", "--", "ngshare_s3"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "source state unknown"
    return f"commit {commit or '?'}" + (", ngshare_s3/ with uncommitted edits" if edits else "")


def server_version() -> str:
    sys.path.insert(0, str(PROJECT))
    try:
        from ngshare_s3 import __version__
    except ImportError:
        return "(version unknown)"
    finally:
        sys.path.pop(0)
    return __version__


if __name__ == "__main__":
    sys.exit(main())
