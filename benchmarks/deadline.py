#!/usr/bin/env python
"""Does the exchange stay fast at the deadline, and flat in memory?

Starts one exchange server (ngshare_s3, or ngshare 0.6.0 for comparison) as a JupyterHub service
would run it, with a small stand-in for the Hub's token check, and drives it the way the nbgrader
plugin ngshare_exchange does: form-encoded POST bodies, `files` as a JSON list of base64 contents,
`Authorization: token ...`, one connection per request. One course on the day an assignment is
due, scenario by scenario:

  setup               an admin creates the course, adds an instructor and N students
  release             the instructor releases three notebooks and a data file (2.7 MB)
  fetch storm         the N students download the release, C at a time, from one client process
                      per core (one process's event loop takes in answers slower than a server
                      with a cache sends them)
  list                the N students run `nbgrader list` (assignments, then list_only)
  submit storm        the N students submit (their notebooks and the data file), C at a time
  browse              small metadata calls: courses, own student record, instructors, own submissions
  collect             the instructor lists the submissions and downloads every student's latest
  feedback upload     the instructor uploads a feedback page for every submission
  feedback fetch      the N students download their feedback, C at a time
  big upload          one student submits one big file (--big-mb) while another client sends a
                      small GET every few ms (the event loop's lag shows in their latency)
  big collect         the instructor downloads it again
  many files upload   one student submits --many-files files of --many-file-kb each
  many files collect  the instructor downloads them again

Every answer is checked (every submission listed once, every downloaded byte has the MD5 of what
was sent), so a server that is fast because it is wrong cannot look good. Per scenario it reports
throughput, latency percentiles, the server's CPU time, the peak RSS and PSS of its whole process
tree, the Hub calls, and for ngshare_s3 the store calls per request (from its /metrics) and, on
MinIO, the S3 requests per request (from MinIO's metrics).

Usage: .venv/bin/python benchmarks/deadline.py --server ngshare_s3   (or --server ngshare)
       .venv/bin/python benchmarks/deadline.py --compare ngshare.json ngshare_s3.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import random
import re
import shlex
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deadline_bodies as bodies  # noqa: E402  (benchmarks/ is not a package)
import deadline_metrics as metrics  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent
PREFIX = "/services/ngshare/"
SERVICE_TOKEN = "benchmark-service-token"
ADMIN = "admin"
INSTRUCTOR = "instructor"
LARGE_UPLOADER = "big-upload-student"
MANY_UPLOADER = "many-files-student"
COURSE = "course101"
ASSIGNMENT = "ps1"
NOTEBOOK = "ps1.ipynb"  # the one notebook upload_memory.py sends
DATA_FILE = "data/measurements.csv"
LAG_PROBE = "small GET during upload"
PROBE_USER = "student-0001"  # the lag probe's caller: there is always a first student
NGSHARE_VERSION = "0.6.0"
# The virtualenv `make install` builds (tests/clients.py), or this script builds on first use.
DEFAULT_NGSHARE_VENV = PROJECT / ".cache" / "clients" / f"ngshare-{NGSHARE_VERSION}"
# The project's virtualenv, or (in a git worktree without one) the interpreter running this
DEFAULT_S3_PYTHON = PROJECT / ".venv" / "bin" / "python"
if not DEFAULT_S3_PYTHON.exists():
    DEFAULT_S3_PYTHON = Path(sys.executable)
PROFILED_PHASES = ("fetch storm", "submit storm")

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

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system


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
    """ngshare 0.6.0 in a virtualenv of its own, created on first use unless tests/clients.py
    built it (its stamp is `.built`). It needs SQLAlchemy<2: under SQLAlchemy 2 its releases
    answer success but store nothing."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() or (venv / ".built").exists():
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
    """The command line each server is started with, as a JupyterHub `services` entry would,
    plus any --server-arg."""
    extra = list(getattr(args, "server_arg", None) or [])
    if kind == "ngshare_s3":
        python = Path(args.python or DEFAULT_S3_PYTHON)
        return [
            str(python), "-m", "ngshare_s3", "--admins", ADMIN,
            "--database", args.database or f"sqlite:///{workdir}/db.sqlite",
            "--storage", args.storage or f"{workdir}/files", *extra,
        ]
    python = Path(args.python) if args.python else ngshare_python(Path(args.ngshare_venv))
    return [
        str(python), "-m", "ngshare", "--admins", ADMIN,
        "--database", f"sqlite:///{workdir}/ngshare.db", "--storage", f"{workdir}/files/", *extra,
    ]


class Server:
    """The server under test as a child process in a session of its own, so that stopping it
    also stops anything it started, and Ctrl-C in the terminal reaches only this script."""

    def __init__(self, command: list[str], hub: FakeHub, workdir: Path,
                 environment: dict[str, str] | None = None) -> None:
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
            **(environment or {}),
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


class TreeSampler:
    """Samples the memory of the server's whole process tree (the server and any worker
    processes it forks) in a thread, so the sampling keeps going while the event loop is busy.

    RSS counts a page once per process that maps it, so forked workers sharing their parent's
    pages are counted several times; PSS divides each shared page among the processes sharing
    it, so the sum of PSS over the tree is the memory the tree really holds. RSS is read every
    `interval`; PSS (dearer: the kernel walks every mapping) and the list of the tree's processes
    (dearer still: psutil reads every process of the machine to find children) every
    `pss_interval`, so the sampler costs the client little CPU."""

    def __init__(self, pid: int, interval: float = 0.01, pss_interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.pss_interval = pss_interval
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self.processes = self.tree()
        self.peak = self.current()
        self.peak_pss = self.current_pss()
        self.most_processes = len(self.tree())

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return []

    def current(self) -> int:
        total = 0
        for process in self.processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def current_pss(self) -> int:
        total = 0
        for process in self.processes:
            try:
                total += process.memory_full_info().pss
            except (psutil.Error, AttributeError):
                pass
        return total

    def cpu_seconds(self) -> float:
        """CPU time of the tree's live processes, and of the children it has already reaped."""
        total = 0.0
        for index, process in enumerate(self.tree()):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
            if index == 0:
                total += times.children_user + times.children_system
        return total

    def reset_both(self) -> tuple[int, int]:
        """Starts new peaks from the present values, and returns them (RSS, PSS)."""
        self.processes = self.tree()
        rss, pss = self.current(), self.current_pss()
        with self.lock:
            self.peak, self.peak_pss, self.most_processes = rss, pss, len(self.processes)
        return rss, pss

    def reset(self) -> int:
        """Starts new peaks from the present values, and returns the RSS."""
        return self.reset_both()[0]

    def peaks(self) -> tuple[int, int]:
        self.processes = self.tree()
        rss, pss = self.current(), self.current_pss()
        with self.lock:
            return max(self.peak, rss), max(self.peak_pss, pss)

    def _run(self) -> None:
        next_pss = 0.0
        while not self.stopping.wait(self.interval):
            pss = None
            if time.monotonic() >= next_pss:
                self.processes = self.tree()
                pss = self.current_pss()
                next_pss = time.monotonic() + self.pss_interval
            rss = self.current()
            processes = len(self.processes)
            with self.lock:
                self.peak = max(self.peak, rss)
                if pss is not None:
                    self.peak_pss = max(self.peak_pss, pss)
                self.most_processes = max(self.most_processes, processes)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(2)


RssSampler = TreeSampler  # the name upload_memory.py imports


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
    peak_pss: int = 0
    pss_before: int = 0
    processes: int = 1
    cpu_seconds: float = 0.0
    hub_calls: int = 0
    note: str = ""
    counters: dict[str, float] = field(default_factory=dict)  # what the servers' metrics counted
    s3_counted: bool = False
    store_counted: bool = False
    profile: str = ""
    bytes_checked: int = 0  # downloaded bytes whose MD5 was compared with what was uploaded
    checking_seconds: float = 0.0  # the client's checks taken off the clock (see off_clock)
    client_cpu_seconds: float = 0.0  # the benchmark's own process
    hub_cpu_seconds: float = 0.0  # the Hub stand-in's

    @contextlib.contextmanager
    def off_clock(self, sequential: bool):
        """Times the client's check of an answer. Where requests go one at a time the server
        waits for it, so it is not the server's time and comes off the phase's clock; among
        concurrent requests it overlaps the server's work and stays on."""
        started = time.perf_counter()
        try:
            yield
        finally:
            if sequential:
                self.checking_seconds += time.perf_counter() - started

    def op(self, name: str) -> OpStats:
        return self.ops.setdefault(name, OpStats())

    def all_ops(self) -> OpStats:
        """Every request of the phase but the lag probes, which only watch."""
        total = OpStats()
        for name, stats in self.ops.items():
            if name == LAG_PROBE:
                continue
            total.latencies += stats.latencies
            total.errors.update(stats.errors)
            total.wrong.update(stats.wrong)
        return total

    def summary(self) -> dict[str, Any]:
        total = self.all_ops().summary()
        summary = {
            "phase": self.name,
            "seconds": self.seconds,
            "requests_per_second": total["requests"] / self.seconds if self.seconds else 0.0,
            **total,
            "peak_rss_mb": self.peak_rss / MB,
            "rss_growth_mb": (self.peak_rss - self.rss_before) / MB,
            "peak_pss_mb": self.peak_pss / MB,
            "pss_growth_mb": (self.peak_pss - self.pss_before) / MB,
            "processes": self.processes,
            "server_cpu_seconds": self.cpu_seconds,
            "client_cpu_seconds": self.client_cpu_seconds,
            "hub_cpu_seconds": self.hub_cpu_seconds,
            "checking_seconds_off_clock": self.checking_seconds,
            "hub_calls": self.hub_calls,
            "bytes_checked": self.bytes_checked,
            "note": self.note,
            "ops": {name: stats.summary() for name, stats in self.ops.items()},
        }
        if self.store_counted or self.s3_counted:
            # Per request the server answered, the lag probes' included: the counters see them too.
            answered = total["requests"] + self.ops[LAG_PROBE].requests if LAG_PROBE in self.ops else total["requests"]
            summary["store_calls"] = metrics.summarize(self.counters, answered, s3_counted=self.s3_counted)
            summary["counters"] = self.counters
        if self.profile:
            summary["profile"] = self.profile
        return summary


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

    def _request(self, method: str, route: str, user: str, params: dict[str, str] | None,
                 form: dict[str, str] | bytes | bodies.BodyFile | None):
        """The arguments of session.request; a BodyFile is sent from its file, with its length."""
        url = self.base + "/" + quote(route, safe="/")
        headers = {"Authorization": f"token {token_for(user)}"}
        body: Any = None
        if isinstance(form, bodies.BodyFile):
            body = open(form.path, "rb")
            headers["Content-Type"] = form.content_type
            headers["Content-Length"] = str(form.size)
        elif form is not None:
            body = form if isinstance(form, bytes) else prepare_form(user, form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return dict(method=method, url=url, params=params, data=body, headers=headers, allow_redirects=False)

    async def call(
        self, stats: OpStats, method: str, route: str, user: str, *,
        params: dict[str, str] | None = None, form: dict[str, str] | bytes | bodies.BodyFile | None = None,
    ) -> dict | None:
        """`form` may be encoded beforehand (`prepare_form`, a BodyFile), to keep that off the clock."""
        answered = await self.call_raw(stats, method, route, user, params=params, form=form)
        return None if answered is None else self.answer(stats, method, route, *answered)

    async def call_raw(
        self, stats: OpStats, method: str, route: str, user: str, *,
        params: dict[str, str] | None = None, form: dict[str, str] | bytes | bodies.BodyFile | None = None,
    ) -> tuple[int, bytes] | None:
        """The status and body of the answer, not yet checked; None if there was none."""
        request = self._request(method, route, user, params, form)
        started = time.perf_counter()
        try:
            async with self.session.request(**request) as response:
                payload = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            stats.errors[f"no answer: {method} {route.split('/')[0]}: {type(error).__name__} {error}"[:200]] += 1
            return None
        finally:
            if hasattr(request["data"], "close"):
                request["data"].close()
        stats.latencies.append(time.perf_counter() - started)
        return status, payload

    async def download(self, stats: OpStats, route: str, user: str, target: Path) -> Path | None:
        """GET an answer too big for memory into a file, on the clock; check it off the clock
        with `read_streamed`. The file, or None if there was no 200."""
        request = self._request("GET", route, user, None, None)
        started = time.perf_counter()
        try:
            async with self.session.request(**request) as response:
                status = response.status
                with open(target, "wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 20):
                        out.write(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            stats.errors[f"no answer: GET {route.split('/')[0]}: {type(error).__name__} {error}"[:200]] += 1
            return None
        stats.latencies.append(time.perf_counter() - started)
        if status != 200:
            with open(target, "rb") as answer:
                self.answer(stats, "GET", route, status, answer.read(200))
            return None
        return target

    @staticmethod
    def answer(stats: OpStats, method: str, route: str, status: int, payload: bytes) -> dict | None:
        if status != 200:
            snippet = payload[:160].decode(errors="replace").replace("\n", " ")
            stats.errors[f"{status} {method} {route.split('/')[0]}: {snippet}"] += 1
            return None
        try:
            answer = json.loads(payload)
        except ValueError:
            stats.wrong[f"{method} {route.split('/')[0]}: 200 but not JSON"] += 1
            return None
        return Exchange._success(stats, method, route, answer)

    @staticmethod
    def _success(stats: OpStats, method: str, route: str, answer: Any) -> dict | None:
        if not isinstance(answer, dict) or answer.get("success") is not True:
            stats.wrong[f"{method} {route.split('/')[0]}: 200 without success: {str(answer)[:120]}"] += 1
            return None
        return answer


def read_streamed(stats: OpStats, path: Path) -> dict | None:
    """The answer in a downloaded file, read in pieces: `content` strings become their MD5."""
    reader = bodies.JsonStream()
    try:
        with open(path, "rb") as answer:
            while chunk := answer.read(1 << 20):
                reader.feed(chunk)
        result = reader.close()
    except ValueError as error:
        stats.wrong[f"GET: 200 but not JSON ({error})"] += 1
        return None
    return Exchange._success(stats, "GET", path.name, result)


Expected = list[tuple[str, str]]  # (path, MD5 hex) of every file, in order


def expected_of(files: Iterable[tuple[str, bytes]]) -> Expected:
    return [(path, hashlib.md5(data).hexdigest()) for path, data in files]


def check_tree(stats: OpStats, answer: dict, expected: Expected, *, list_only: bool) -> int:
    """The files of an answer are exactly the expected ones, in order, with the right MD5 —
    both the server's checksum and, unless list_only, the MD5 of the bytes it sent back.
    Returns how many downloaded bytes were checked."""
    files = answer.get("files")
    if not isinstance(files, list) or [f.get("path") for f in files] != [path for path, _ in expected]:
        stats.wrong["file list differs from what was uploaded"] += 1
        return 0
    checked = 0
    for item, (path, md5) in zip(files, expected):
        if item.get("checksum") != md5:
            stats.wrong["server checksum differs from the uploaded bytes' MD5"] += 1
        if list_only:
            if "content" in item:
                stats.wrong["list_only answer carries content"] += 1
            continue
        content = item.get("content", "")
        if bodies.content_md5(content) != md5:
            stats.wrong["downloaded bytes' MD5 differs from the uploaded bytes'"] += 1
        else:
            checked += content.length if isinstance(content, bodies.StreamedContent) else len(content) * 3 // 4
    return checked


async def in_pool(items: list, worker: Callable[[Any], Awaitable[None]], concurrency: int) -> None:
    """Runs worker(item) for every item, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with gate:
            await worker(item)

    await asyncio.gather(*(one(item) for item in items))


async def fetch_release(api: Exchange, stats: OpStats, students: list[str], concurrency: int,
                        expected: Expected) -> int:
    """Every student downloads the release; returns the bytes checked. Every student gets the
    same answer: the first answer of each kind is decoded and checked file by file, and an
    answer byte for byte equal to one that passed is as good (comparing costs the client far
    less than decoding)."""
    route = f"assignment/{COURSE}/{ASSIGNMENT}"
    passed: dict[bytes, int] = {}  # answers that passed → the bytes of files they carry
    checked_in_all = 0

    async def student_fetches(student: str) -> None:
        nonlocal checked_in_all
        answered = await api.call_raw(stats, "GET", route, student)
        if answered is None:
            return
        status, payload = answered
        for known, checked in passed.items():
            if status == 200 and payload == known:
                checked_in_all += checked
                return
        answer = api.answer(stats, "GET", route, status, payload)
        if answer is not None:
            wrong_before = sum(stats.wrong.values())
            checked = check_tree(stats, answer, expected, list_only=False)
            checked_in_all += checked
            if sum(stats.wrong.values()) == wrong_before and len(passed) < 4:
                passed[payload] = checked

    await in_pool(students, student_fetches, concurrency)
    return checked_in_all


def fetch_release_in_a_process(base: str, students: list[str], concurrency: int, expected: Expected,
                               request_timeout: float) -> tuple[OpStats, int, float]:
    """One client process's share of the fetch storm: its requests' stats, the bytes it checked
    and the CPU seconds it spent."""
    async def fetch_share() -> tuple[OpStats, int]:
        stats = OpStats()
        connector = aiohttp.TCPConnector(limit=concurrency + 1, force_close=True)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=request_timeout)) as session:
            return stats, await fetch_release(Exchange(session, base), stats, students, concurrency, expected)

    started = time.process_time()
    stats, checked = asyncio.run(fetch_share())
    return stats, checked, time.process_time() - started


def start_client_processes(count: int) -> list[concurrent.futures.ProcessPoolExecutor]:
    """`count` client processes, started (and their modules imported) before any clock runs.
    One executor each, so every process gets exactly one share."""
    clients = [concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
               for _ in range(count)]
    for client in clients:
        client.submit(time.sleep, 0).result()
    return clients


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


def own_notebook(released: bytes, owner: str) -> bytes:
    """A student's copy of a released notebook, answered: different bytes for every student
    (the server stores and checks each), made without building a notebook per student."""
    notebook = json.loads(released)
    rng = random.Random(f"answers {owner}")
    notebook["cells"][0]["source"][1] = f"Submitted by {owner}.\n"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"][0]["text"] = [f"{rng.random():.6f}\n" for _ in range(len(cell["outputs"][0]["text"]))]
    return json.dumps(notebook, indent=1).encode()


def make_csv(size: int) -> bytes:
    rng = random.Random("data")
    lines = ["time,temperature,pressure,humidity"]
    length = len(lines[0]) + 1
    while length < size:
        lines.append(f"{len(lines)},{rng.uniform(10, 30):.3f},{rng.uniform(990, 1030):.2f},{rng.uniform(0, 1):.4f}")
        length += len(lines[-1]) + 1
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
# The scenarios


@dataclass
class Course:
    students: list[str]
    release: list[tuple[str, bytes]]
    submissions: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    timestamps: dict[str, str] = field(default_factory=dict)  # student -> timestamp of the submission
    feedback: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    # What must come back, as (path, MD5), computed once
    release_expected: Expected = field(default_factory=list)
    submission_expected: dict[str, Expected] = field(default_factory=dict)
    feedback_expected: dict[str, Expected] = field(default_factory=dict)
    # POST bodies, encoded before their phase starts so that the clock measures the server
    submit_forms: dict[str, bytes] = field(default_factory=dict)
    feedback_forms: dict[str, bytes] = field(default_factory=dict)

    @property
    def release_bytes(self) -> int:
        return sum(len(data) for _, data in self.release)

    def prepare_submissions(self) -> None:
        shared: dict = {}  # the data file every student sends back, encoded once
        for student in self.students:
            self.submit_forms[student] = bodies.submission_form(student, self.submissions[student], shared)

    def prepare_feedback(self) -> None:
        """Feedback goes to the submission's timestamp, so this waits for the deadline."""
        for student, timestamp in self.timestamps.items():
            self.feedback_forms[student] = prepare_form(INSTRUCTOR, {
                "timestamp": timestamp,
                "files": encode_files(self.feedback[student], with_newlines=True),
            })


def make_course(args: argparse.Namespace) -> Course:
    students = [f"student-{i:04d}" for i in range(1, args.students + 1)]
    notebooks = [(f"problem{n}.ipynb", make_notebook(f"release {n}", args.notebook_kb * 1024))
                 for n in range(1, args.notebooks + 1)]
    release = [*notebooks, (DATA_FILE, make_csv(args.data_kb * 1024))]
    course = Course(students=students, release=release, release_expected=expected_of(release))
    for student in students:
        course.submissions[student] = [*((path, own_notebook(data, student)) for path, data in notebooks),
                                       (DATA_FILE, release[-1][1])]
        course.submission_expected[student] = expected_of(course.submissions[student])
        course.feedback[student] = [("ps1.html", make_feedback(student, args.feedback_kb * 1024))]
        course.feedback_expected[student] = expected_of(course.feedback[student])
    return course


class Benchmark:
    def __init__(self, args: argparse.Namespace, server: Server, hub: FakeHub, workdir: Path,
                 scrapers: list[metrics.Scraper]) -> None:
        self.args = args
        self.server = server
        self.hub = hub
        self.workdir = workdir
        self.scrapers = scrapers
        self.phases: list[Phase] = []
        self.sampler = TreeSampler(server.process.pid)
        self.profiles: list[str] = []
        self.clients = start_client_processes(args.client_processes)

    def close(self) -> None:
        for client in self.clients:
            client.shutdown(cancel_futures=True)

    async def scrape(self) -> Counter:
        found: Counter = Counter()
        for scraper in self.scrapers:
            found.update(await scraper.read(self.stats_session))
        return found

    async def phase(self, name: str, body: Callable[[Phase], Awaitable[None]], note: str = "") -> Phase:
        """Runs one phase under a time limit and records its wall time, the server tree's peak
        RSS and PSS, its CPU time, how often it asked the Hub, and what the metrics counted."""
        phase = Phase(name, note=note)
        self.phases.append(phase)
        await asyncio.sleep(0.1)  # let the previous phase's last buffers go before the baseline
        recording = None
        if self.args.profile and name in self.args.profile_phases:
            import deadline_profile

            safe = re.sub(r"[^a-z0-9]+", "-", f"{self.args.server} {name}".lower())
            recording = deadline_profile.Recording(self.server.process.pid, self.args.profile / f"{safe}.txt")
            await asyncio.sleep(1.0)  # py-spy attaches
        hub_before = await self.hub.calls(self.stats_session)
        counted_before = await self.scrape()
        cpu_before = self.sampler.cpu_seconds()
        client_cpu_before, hub_cpu_before = time.process_time(), self.hub.cpu_seconds()
        phase.rss_before, phase.pss_before = self.sampler.reset_both()
        started = time.perf_counter()
        print(f"  {name} ...", end="", flush=True)
        try:
            await asyncio.wait_for(body(phase), self.args.phase_timeout)
        except asyncio.TimeoutError:
            phase.op("phase").errors[f"no answer: phase stopped after {self.args.phase_timeout:.0f} s"] += 1
        phase.seconds = time.perf_counter() - started - phase.checking_seconds
        phase.client_cpu_seconds += time.process_time() - client_cpu_before
        phase.hub_cpu_seconds = self.hub.cpu_seconds() - hub_cpu_before
        phase.peak_rss, phase.peak_pss = self.sampler.peaks()
        phase.processes = self.sampler.most_processes
        phase.cpu_seconds = self.sampler.cpu_seconds() - cpu_before
        phase.hub_calls = await self.hub.calls(self.stats_session) - hub_before
        if self.scrapers:
            phase.counters = metrics.difference(counted_before, await self.scrape())
            phase.store_counted = any(scraper.kind == "service" for scraper in self.scrapers)
            phase.s3_counted = any(scraper.kind == "s3" for scraper in self.scrapers)
        total = phase.all_ops()
        print(f" {phase.seconds:.2f} s, {total.requests} requests, "
              f"{sum(total.errors.values())} errors, {sum(total.wrong.values())} wrong", flush=True)
        if recording is not None:
            import deadline_profile

            output = recording.stop()
            if output is None:
                self.profiles.append(f"{name}: py-spy wrote nothing; see {recording.log}")
            else:
                text = deadline_profile.summary(output, f"{self.args.server}, {name}")
                output.with_suffix(".top.txt").write_text(text + "\n")
                phase.profile = str(output)
                self.profiles.append(text)
        return phase

    async def run(self) -> None:
        args = self.args
        print("Preparing the course's files ...", flush=True)
        course = make_course(args)
        timeout = aiohttp.ClientTimeout(total=args.request_timeout)
        # One connection per request, as `requests.request` in ngshare_exchange opens one.
        connector = aiohttp.TCPConnector(limit=max(args.concurrency, args.instructor_concurrency) + 1,
                                         force_close=True)
        self.sampler.start()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as self.stats_session, \
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                api = Exchange(session, self.server.base)
                await self.phase("setup", lambda p: self.setup(p, api, course),
                                 "create course, add instructor, bulk-add students")
                await self.phase("release", lambda p: self.release(p, api, course),
                                 f"instructor releases {len(course.release)} files, {course.release_bytes / MB:.1f} MB")
                await self.phase("fetch storm", lambda p: self.fetch(p, api, course),
                                 "every student downloads the release")
                await self.phase("list", lambda p: self.list_assignments(p, api, course),
                                 "nbgrader list: assignments, then the release's list_only")
                course.prepare_submissions()
                await self.phase("submit storm", lambda p: self.submit(p, api, course),
                                 "every student submits")
                course.submit_forms.clear()
                await self.phase("browse", lambda p: self.browse(p, api, course),
                                 "courses, own student record, instructors, own submissions")
                await self.phase("collect", lambda p: self.collect(p, api, course),
                                 "instructor lists and downloads every latest submission")
                course.prepare_feedback()
                await self.phase("feedback upload", lambda p: self.release_feedback(p, api, course),
                                 "instructor uploads feedback for each submission")
                await self.phase("feedback fetch", lambda p: self.fetch_feedback(p, api, course),
                                 "students download their feedback")
                if args.big_mb > 0:
                    for encoding in args.big_encodings:
                        await self.big_submission(api, session, course, encoding)
                if args.many_files > 0:
                    await self.many_files_submission(api)
        finally:
            self.sampler.stop()

    async def setup(self, phase: Phase, api: Exchange, course: Course) -> None:
        await api.call(phase.op("create course"), "POST", f"course/{COURSE}", ADMIN, form={"instructors": "[]"})
        await api.call(phase.op("add instructor"), "POST", f"instructor/{COURSE}/{INSTRUCTOR}", ADMIN,
                       form={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"})
        roster = [{"username": name, "first_name": "First", "last_name": name.title(),
                   "email": f"{name}@example.org"} for name in [*course.students, LARGE_UPLOADER, MANY_UPLOADER]]
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

    async def release(self, phase: Phase, api: Exchange, course: Course) -> None:
        """What `nbgrader release_assignment` sends: the course's assignments, then the release."""
        answer = await api.call(phase.op("list assignments"), "GET", f"assignments/{COURSE}", INSTRUCTOR)
        if answer is not None and ASSIGNMENT in answer.get("assignments", []):
            phase.op("list assignments").wrong["assignment listed before its release"] += 1
        await api.call(phase.op("release"), "POST", f"assignment/{COURSE}/{ASSIGNMENT}", INSTRUCTOR,
                       form=bodies.submission_form(INSTRUCTOR, course.release))

    async def fetch(self, phase: Phase, api: Exchange, course: Course) -> None:
        """The students are shared out among the client processes, and so is the concurrency
        (no more processes than either: each gets at least one student and one in flight)."""
        stats = phase.op("fetch assignment")
        count = min(len(self.clients), self.args.concurrency, len(course.students))
        shares = [(course.students[index::count],
                   self.args.concurrency // count + (index < self.args.concurrency % count))
                  for index in range(count)]
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(
            loop.run_in_executor(client, fetch_release_in_a_process, self.server.base, students, concurrency,
                                 course.release_expected, self.args.request_timeout)
            for client, (students, concurrency) in zip(self.clients, shares)))
        for share, checked, cpu_seconds in results:
            stats.latencies += share.latencies
            stats.errors.update(share.errors)
            stats.wrong.update(share.wrong)
            phase.bytes_checked += checked
            phase.client_cpu_seconds += cpu_seconds

    async def list_assignments(self, phase: Phase, api: Exchange, course: Course) -> None:
        """What `nbgrader list` sends for a course: its assignments, then each one's files."""
        assignments, files = phase.op("assignments"), phase.op("list_only")

        async def student_lists(student: str) -> None:
            answer = await api.call(assignments, "GET", f"assignments/{COURSE}", student)
            if answer is not None and answer.get("assignments") != [ASSIGNMENT]:
                assignments.wrong[f"assignments differ: {answer.get('assignments')!r:.80}"] += 1
            answer = await api.call(files, "GET", f"assignment/{COURSE}/{ASSIGNMENT}", student,
                                    params={"list_only": "true"})
            if answer is not None:
                check_tree(files, answer, course.release_expected, list_only=True)

        await in_pool(course.students, student_lists, self.args.concurrency)

    async def submit(self, phase: Phase, api: Exchange, course: Course) -> None:
        submitting = phase.op("submit")

        async def student_submits(student: str) -> None:
            answer = await api.call(submitting, "POST", f"submission/{COURSE}/{ASSIGNMENT}", student,
                                    form=course.submit_forms[student])
            if answer is not None:
                timestamp = answer.get("timestamp")
                if not isinstance(timestamp, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", timestamp):
                    submitting.wrong[f"timestamp not in ngshare's format: {timestamp!r}"] += 1
                else:
                    course.timestamps[student] = timestamp

        await in_pool(course.students, student_submits, self.args.concurrency)

    async def browse(self, phase: Phase, api: Exchange, course: Course) -> None:
        """Small metadata reads a student's tools make: which courses, who am I, who teaches,
        what did I submit."""
        courses, me, teachers, mine = (phase.op(name) for name in
                                       ("courses", "own student record", "instructors", "own submissions"))

        async def student_browses(student: str) -> None:
            answer = await api.call(courses, "GET", "courses", student)
            if answer is not None and answer.get("courses") != [COURSE]:
                courses.wrong["courses differ"] += 1
            answer = await api.call(me, "GET", f"student/{COURSE}/{student}", student)
            if answer is not None and answer.get("username") != student:
                me.wrong["another student's record"] += 1
            answer = await api.call(teachers, "GET", f"instructors/{COURSE}", student)
            if answer is not None and [i.get("username") for i in answer.get("instructors", [])] != [INSTRUCTOR]:
                teachers.wrong["instructors differ"] += 1
            answer = await api.call(mine, "GET", f"submissions/{COURSE}/{ASSIGNMENT}/{student}", student)
            if answer is not None and [s.get("timestamp") for s in answer.get("submissions", [])] != \
                    [course.timestamps.get(student)]:
                mine.wrong["own submissions differ from the one submitted"] += 1

        await in_pool(course.students, student_browses, self.args.concurrency)

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
        sequential = self.args.instructor_concurrency == 1

        async def instructor_downloads(student: str) -> None:
            route = f"submission/{COURSE}/{ASSIGNMENT}/{student}"
            answered = await api.call_raw(downloading, "GET", route, INSTRUCTOR)
            with phase.off_clock(sequential):
                answer = None if answered is None else api.answer(downloading, "GET", route, *answered)
                if answer is not None:
                    if answer.get("timestamp") != course.timestamps.get(student):
                        downloading.wrong["latest submission has another timestamp than the one submitted"] += 1
                    phase.bytes_checked += check_tree(downloading, answer, course.submission_expected[student],
                                                      list_only=False)

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
                phase.bytes_checked += check_tree(stats, answer, course.feedback_expected[student], list_only=False)

        await in_pool(list(course.timestamps), student_fetches, self.args.concurrency)

    # -- one big submission, and many files in one ---------------------------------------------

    def body_file(self, name: str, user: str, files: list[tuple[str, bytes | int]], encoding: str) -> bodies.BodyFile:
        print(f"Writing the {name} body ({encoding}) ...", flush=True)
        return bodies.write_submission_body(bodies.scratch_folder(self.workdir) / f"{name}.body", user, files,
                                            encoding=encoding, seed=name)

    async def upload_and_collect(self, name: str, note: str, api: Exchange, user: str, body: bodies.BodyFile,
                                 lag_session: aiohttp.ClientSession | None = None) -> None:
        """POST the body (while lag probes run, if a session is given), then GET it back as the
        instructor into a file, and check every byte of that file after the clock stops."""
        timestamp = ""

        async def upload(phase: Phase) -> None:
            nonlocal timestamp
            done = asyncio.Event()
            probes = asyncio.create_task(self.lag_probes(phase, lag_session, done)) if lag_session else None
            try:
                answer = await api.call(phase.op("submit"), "POST", f"submission/{COURSE}/{ASSIGNMENT}", user,
                                        form=body)
            finally:
                done.set()
                if probes is not None:
                    await probes
            timestamp = (answer or {}).get("timestamp", "")

        answer_file = bodies.scratch_folder(self.workdir) / f"{name}.answer"

        async def collect(phase: Phase) -> None:
            await api.download(phase.op("download"), f"submission/{COURSE}/{ASSIGNMENT}/{user}", INSTRUCTOR,
                               answer_file)

        await self.phase(f"{name} upload", upload, note)
        bodies.remove(body)
        phase = await self.phase(f"{name} collect", collect, "the instructor downloads it again")
        if answer_file.exists() and not phase.op("download").errors:
            stats = phase.op("download")
            answer = read_streamed(stats, answer_file)
            if answer is not None:
                if answer.get("timestamp") != timestamp:
                    stats.wrong["the submission comes back with another timestamp"] += 1
                phase.bytes_checked += check_tree(stats, answer, body.expected, list_only=False)
        answer_file.unlink(missing_ok=True)

    async def lag_probes(self, phase: Phase, session: aiohttp.ClientSession, done: asyncio.Event) -> None:
        """A small GET every few ms until `done`: how long the server keeps them waiting."""
        probe = Exchange(session, self.server.base)
        stats = phase.op(LAG_PROBE)
        while not done.is_set():
            await probe.call(stats, "GET", f"assignments/{COURSE}", PROBE_USER)
            try:
                await asyncio.wait_for(done.wait(), self.args.lag_interval_ms / 1000)
            except asyncio.TimeoutError:
                pass

    async def big_submission(self, api: Exchange, session: aiohttp.ClientSession, course: Course,
                             encoding: str) -> None:
        size = self.args.big_mb * MB
        files: list[tuple[str, bytes | int]] = [(path, data) for path, data in course.submissions[course.students[0]][:1]]
        files.append(("data/big.bin", size))
        body = self.body_file("big", LARGE_UPLOADER, files, encoding)
        name = "big" if encoding == "urlencoded" else f"big {encoding}"
        timeout = aiohttp.ClientTimeout(total=self.args.request_timeout)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True), timeout=timeout) as probes:
            await self.upload_and_collect(
                name, f"one {self.args.big_mb} MB file, a {body.size / MB:.0f} MB {encoding} body; "
                f"a small GET every {self.args.lag_interval_ms} ms meanwhile", api, LARGE_UPLOADER, body, probes)

    async def many_files_submission(self, api: Exchange) -> None:
        count, size = self.args.many_files, self.args.many_file_kb * 1024
        files: list[tuple[str, bytes | int]] = [(f"data/part-{n:04d}.bin", size) for n in range(1, count + 1)]
        body = self.body_file("many-files", MANY_UPLOADER, files, "urlencoded")
        await self.upload_and_collect(
            "many files", f"{count} files of {self.args.many_file_kb} KB, a {body.size / MB:.0f} MB body",
            api, MANY_UPLOADER, body)


# ---------------------------------------------------------------------------------------------
# Report


class BenchmarkError(Exception):
    """The benchmark could not run (the server did not start, ...): nothing to measure."""


def top_calls(calls: dict[str, float], count: int = 4) -> str:
    return ", ".join(f"{name} {value:.2g}" for name, value in sorted(calls.items(), key=lambda kv: -kv[1])[:count])


def render(phases: list[Phase], info: dict[str, Any]) -> str:
    lines = [
        f"### {info['server']} on {info['backend']} — {info['date']}",
        "",
        f"{info['students']} students, concurrency {info['concurrency']} "
        f"(fetch storm from {info.get('client_processes', 1)} client process(es)) "
        f"(instructor {info['instructor_concurrency']}), release {info['release_mb']:.1f} MB "
        f"({info['notebooks']} notebooks of {info['notebook_kb']} KB, data {info['data_kb']} KB), "
        f"feedback {info['feedback_kb']} KB; start-up {info['startup_seconds']:.2f} s, resting RSS "
        f"{info['resting_rss_mb']:.0f} MB, {info['resting_processes']} process(es); {info['machine']}; "
        f"load average {info['load_before']:.2f} before, {info['load_after']:.2f} after",
        "",
        f"Command: `{info['command']}`",
        "",
        "| phase | requests | errors | wrong | req/s | p50 ms | p95 ms | p99 ms | max ms | peak RSS MB "
        "| peak PSS MB | RSS growth MB | server CPU s | client CPU s | Hub CPU s | Hub calls | MB checked |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for phase in phases:
        s = phase.summary()
        lines.append(
            f"| {s['phase']} ({s['seconds']:.2f} s) | {s['requests']} | {s['errors']} | {s['wrong']} | "
            f"{s['requests_per_second']:.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['p99_ms']:.0f} | "
            f"{s['max_ms']:.0f} | {s['peak_rss_mb']:.0f} | {s['peak_pss_mb']:.0f} | {s['rss_growth_mb']:+.0f} | "
            f"{s['server_cpu_seconds']:.1f} | {s['client_cpu_seconds']:.1f} | {s['hub_cpu_seconds']:.1f} | "
            f"{s['hub_calls']} | {s['bytes_checked'] / MB:.0f} |"
        )
        if len(phase.ops) > 1:
            for name, op in s["ops"].items():
                lines.append(
                    f"| · {name} | {op['requests']} | {op['errors']} | {op['wrong']} | | {op['p50_ms']:.0f} | "
                    f"{op['p95_ms']:.0f} | {op['p99_ms']:.0f} | {op['max_ms']:.0f} | | | | | | | | |"
                )
    off_clock = [f"{phase.name} {phase.checking_seconds:.2f} s" for phase in phases if phase.checking_seconds]
    if off_clock:
        lines += ["", "The client checked answers off the clock where it sent one request at a time (the server "
                  "waited meanwhile; its time per request is the round trip): " + ", ".join(off_clock) + "."]
    counted = [phase.summary() for phase in phases if phase.store_counted or phase.s3_counted]
    if counted:
        s3 = any(phase.s3_counted for phase in phases)
        lines += ["", "Store calls per request (from the servers' own metrics):", "",
                  "| phase | database calls | storage calls |" + (" S3 requests |" if s3 else "") + " by operation |",
                  "|---|--:|--:|" + ("--:|" if s3 else "") + "---|"]
        for s in counted:
            calls = s["store_calls"]
            detail = "; ".join(part for part in (
                top_calls({f"db {k}": v for k, v in calls["database_calls_by_operation"].items()}),
                top_calls({f"store {k}": v for k, v in calls["storage_calls_by_operation"].items()}),
                top_calls({f"S3 {k}": v for k, v in calls.get("s3_requests_by_api", {}).items()}),
            ) if part)
            lines.append(f"| {s['phase']} | {calls['database_calls_per_request']:.2f} | "
                         f"{calls['storage_calls_per_request']:.2f} |"
                         + (f" {calls.get('s3_requests_per_request', 0):.2f} |" if s3 else "") + f" {detail} |")
        if any(phase.processes > 1 for phase in phases):
            lines.append("\nThe server ran several processes: these counts cover them all only if its /metrics "
                         "sums over its workers (ngshare_s3 does, in prometheus_client's multiprocess mode).")
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
    parser.add_argument("--server", choices=["ngshare_s3", "ngshare"], help="server under test")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("NGSHARE_JSON", "NGSHARE_S3_JSON"),
                        help="print two runs' --json side by side as markdown, with ratios, and exit; either may be "
                             "several runs of one server, comma-separated, compared by their medians")
    parser.add_argument("--backend", choices=["embedded", "mongodb-postgres+minio"], default="embedded",
                        help="ngshare_s3's backends: SQLite + folder, or FerretDB on PostgreSQL + MinIO "
                             "started here (ngshare always runs on its SQLite + folder)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for the server's command line, e.g. --server-arg=--workers=2 "
                             "(repeat for several)")
    parser.add_argument("--students", type=int, default=200, help="students in the course (N)")
    parser.add_argument("--concurrency", type=int, default=50, help="students in flight at once (C)")
    parser.add_argument("--client-processes", type=int, default=os.cpu_count() or 1,
                        help="processes that share the fetch storm's students and concurrency: one "
                             "process's event loop cannot take in answers as fast as the server sends them")
    parser.add_argument("--instructor-concurrency", type=int, default=1,
                        help="parallel instructor requests; nbgrader collect and release_feedback send one at a time")
    parser.add_argument("--notebooks", type=int, default=3, help="notebooks in the release")
    parser.add_argument("--notebook-kb", type=int, default=240, help="size of each notebook")
    parser.add_argument("--data-kb", type=int, default=2048, help="size of the data file released with them")
    parser.add_argument("--feedback-kb", type=int, default=100, help="size of each feedback page")
    parser.add_argument("--big-mb", type=int, default=100,
                        help="size of the one big file submitted (1024 for the 1 GB target); 0 skips it")
    parser.add_argument("--big-encodings", default="urlencoded",
                        help="comma-separated body encodings the big file is sent in: urlencoded "
                             "(as ngshare_exchange sends), multipart")
    parser.add_argument("--lag-interval-ms", type=int, default=10,
                        help="pause between the small GETs sent while the big file is uploaded")
    parser.add_argument("--many-files", type=int, default=100,
                        help="files in the many-files submission (1000 for the target); 0 skips it")
    parser.add_argument("--many-file-kb", type=int, default=1024, help="size of each of those files")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record the server with py-spy during the --profile-phases into DIR "
                             "(collapsed stacks) and print the top functions by own time")
    parser.add_argument("--profile-phases", default=",".join(PROFILED_PHASES), metavar="NAMES",
                        help="comma-separated phases that --profile records")
    parser.add_argument("--request-timeout", type=float, default=900, help="seconds before one request counts as failed")
    parser.add_argument("--phase-timeout", type=float, default=1800, help="seconds before a phase is stopped")
    parser.add_argument("--startup-timeout", type=float, default=60, help="seconds to wait for /healthz")
    parser.add_argument("--python", help="interpreter for the server (default: .venv's, or ngshare's virtualenv)")
    parser.add_argument("--ngshare-venv", default=str(DEFAULT_NGSHARE_VENV), help="where ngshare 0.6.0 is installed")
    parser.add_argument("--database", help="ngshare_s3's --database, e.g. mongodb://127.0.0.1/bench "
                        "(default: an SQLite file of the run's own, or the --backend's)")
    parser.add_argument("--storage", help="ngshare_s3's --storage, e.g. s3://bench/run1 with the AWS_* "
                        "variables exported (default: a folder of the run's own, or the --backend's)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--keep", action="store_true", help="keep the server's database, files and log")
    args = parser.parse_args(argv)
    if args.compare:
        return args
    if args.server is None:
        parser.error("--server is required (or --compare)")
    if min(args.students, args.concurrency, args.instructor_concurrency, args.client_processes) < 1:
        parser.error("--students, the concurrencies and --client-processes must be at least 1")
    args.profile_phases = [name.strip() for name in args.profile_phases.split(",") if name.strip()]
    args.big_encodings = [e.strip() for e in args.big_encodings.split(",") if e.strip()]
    if not set(args.big_encodings) <= {"urlencoded", "multipart"}:
        parser.error("--big-encodings takes urlencoded and/or multipart")
    if args.backend != "embedded" and (args.server != "ngshare_s3" or args.database or args.storage):
        parser.error("--backend applies to --server ngshare_s3 without --database/--storage")
    return args


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        import deadline_compare

        print(deadline_compare.compare(*args.compare))
        return 0
    # Stop cleanly on SIGTERM as on Ctrl-C (also when started in the background, where SIGINT
    # arrives ignored): the `finally` below stops what was started.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    workdir = Path(tempfile.mkdtemp(prefix=f"deadline-{args.server}-"))
    hub = FakeHub()
    server: Server | None = None
    backends = None
    try:
        environment: dict[str, str] = {}
        scrapers: list[metrics.Scraper] = []
        backend = "SQLite + folder"
        if args.backend == "mongodb-postgres+minio":
            import deadline_backends

            print("Starting MinIO, PostgreSQL and FerretDB ...", flush=True)
            backends = deadline_backends.ProductionBackends()
            try:
                backends.start()
            except deadline_backends.BackendError as error:
                raise BenchmarkError(str(error)) from error
            args.database, args.storage = backends.database, backends.storage
            environment = backends.environment
            for name in deadline_backends.servers.AWS_VARIABLES_TO_CLEAR:
                os.environ.pop(name, None)
            scrapers.append(metrics.minio_scraper(backends.minio_url))
            backend = backends.describe()
        elif args.database or args.storage:
            backend = f"{args.database or 'SQLite'} + {args.storage or 'folder'}"
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        command = server_command(args.server, workdir, args)
        hub.start()
        server = Server(command, hub, workdir, environment)
        print(f"Starting: {' '.join(command)}", flush=True)
        server.start(args.startup_timeout)
        if args.server == "ngshare_s3":
            scrapers.insert(0, metrics.ngshare_s3_scraper(server.base))
        if args.profile:
            import deadline_profile

            problem = deadline_profile.check(server.process.pid)
            if problem:
                raise BenchmarkError(f"--profile: {problem}")
        benchmark = Benchmark(args, server, hub, workdir, scrapers)
        info = {
            "server": f"{args.server} {NGSHARE_VERSION}" if args.server == "ngshare"
                      else f"ngshare_s3 {server_version()} ({source_state()})",
            "backend": backend,
            "server_command": command,
            "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/deadline.py",
                                                          *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
                       f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM, Python {platform.python_version()}",
            "cores": os.cpu_count(),
            "students": args.students, "concurrency": args.concurrency, "client_processes": args.client_processes,
            "instructor_concurrency": args.instructor_concurrency, "notebooks": args.notebooks,
            "notebook_kb": args.notebook_kb, "data_kb": args.data_kb, "feedback_kb": args.feedback_kb,
            "release_mb": (args.notebooks * args.notebook_kb + args.data_kb) / 1024,
            "big_mb": args.big_mb, "big_encodings": args.big_encodings,
            "many_files": args.many_files, "many_file_kb": args.many_file_kb,
            "startup_seconds": server.startup_seconds,
            "resting_rss_mb": benchmark.sampler.current() / MB,
            "resting_pss_mb": benchmark.sampler.current_pss() / MB,
            "resting_processes": len(benchmark.sampler.tree()),
            "load_before": os.getloadavg()[0],
        }
        try:
            asyncio.run(benchmark.run())
        finally:
            benchmark.close()
        info["load_after"] = os.getloadavg()[0]
        if server.process.poll() is not None:
            raise BenchmarkError(f"the server exited with status {server.process.returncode} during the run")
        print()
        print(render(benchmark.phases, info))
        for text in benchmark.profiles:
            print()
            print(text)
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
        if backends is not None:
            backends.stop()
        if args.keep:
            print(f"Kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def source_state() -> str:
    """Which ngshare_s3 code was measured: the last commit of ngshare_s3/, and whether that
    folder had edits."""
    try:
        # The last commit that changed the service's code (commits to benchmarks/ do not count).
        commit = subprocess.run(["git", "-C", str(PROJECT), "log", "-1", "--format=%h", "--", "ngshare_s3"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        edits = subprocess.run(["git", "-C", str(PROJECT), "status", "--porcelain", "--", "ngshare_s3"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "source state unknown"
    return f"ngshare_s3/ of commit {commit or '?'}" + (" with uncommitted edits" if edits else "")


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
