#!/usr/bin/env python
"""How much memory and spool disk do concurrent large uploads cost the server?

For each concurrency level C, starts a fresh ngshare_s3 (as deadline.py does: a stand-in for
the Hub's token check, the environment JupyterHub gives a managed service, the embedded backends
in a temporary folder unless --database/--storage say otherwise, and TMPDIR in a folder of its
own), creates a course with C students, and lets the C students submit one large file each at the
same moment, the way ngshare_exchange sends it (a form body with the file base64-encoded). While
they upload, a thread samples the server's resident memory and the bytes in its TMPDIR.

Prints, per level: the resting RSS, the peak RSS growth (in total and per upload), the peak
spool size in TMPDIR, and the time the uploads took. Every upload must be answered 200.

Usage: .venv/bin/python benchmarks/upload_memory.py --mb 50 --concurrency 1,4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deadline import (  # noqa: E402  (benchmarks/ is not a package)
    ADMIN,
    ASSIGNMENT,
    COURSE,
    INSTRUCTOR,
    MB,
    NOTEBOOK,
    BenchmarkError,
    Exchange,
    FakeHub,
    Phase,
    RssSampler,
    Server,
    encode_files,
    prepare_form,
    server_command,
)


class SpoolSampler:
    """The peak number of bytes the server holds in files under its TMPDIR, sampled in a thread.
    Its spool files are unlinked as soon as they are made (tempfile), so they are found through
    the process's open file descriptors, not by listing the folder."""

    def __init__(self, pid: int, folder: Path, interval: float = 0.01) -> None:
        self.fds = Path(f"/proc/{pid}/fd")
        self.folder = str(folder) + "/"
        self.interval = interval
        self.peak = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="spool-sampler", daemon=True)

    def size(self) -> int:
        total = 0
        try:
            descriptors = list(self.fds.iterdir())
        except OSError:
            return 0
        for fd in descriptors:
            try:
                if os.readlink(fd).startswith(self.folder):
                    total += os.stat(fd).st_size
            except OSError:
                pass  # closed while we looked
        return total

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.peak = max(self.peak, self.size())

    def __enter__(self) -> SpoolSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(2)


async def measure(args: argparse.Namespace, concurrency: int, hub: FakeHub, workdir: Path) -> dict:
    spool = workdir / "spool"
    spool.mkdir()
    # One worker: the process whose memory and spool files are sampled is the one that serves.
    server = Server(server_command("ngshare_s3", workdir, args) + ["--workers", "1"], hub, workdir)
    server.env["TMPDIR"] = str(spool)
    server.start(60)
    try:
        students = [f"uploader-{n}" for n in range(1, concurrency + 1)]
        bodies = {
            student: prepare_form(student, {"files": encode_files([
                (NOTEBOOK, b"{}"), ("data/large.bin", os.urandom(args.mb * MB)),
            ])})
            for student in students
        }
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            api = Exchange(session, server.base)
            setup = Phase("setup")
            await api.call(setup.op("course"), "POST", f"course/{COURSE}", ADMIN, form={"instructors": "[]"})
            await api.call(setup.op("instructor"), "POST", f"instructor/{COURSE}/{INSTRUCTOR}", ADMIN, 
                           form={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"})
            roster = [{"username": s, "first_name": "F", "last_name": "L", "email": ""} for s in students]
            await api.call(setup.op("students"), "POST", f"students/{COURSE}", ADMIN,
                           form={"students": json.dumps(roster)})
            await api.call(setup.op("release"), "POST", f"assignment/{COURSE}/{ASSIGNMENT}", INSTRUCTOR,
                           form={"files": encode_files([(NOTEBOOK, b"{}")])})
            failed = {name: op.errors for name, op in setup.ops.items() if op.errors}
            if failed:
                raise BenchmarkError(f"setup failed: {failed}")
            await asyncio.sleep(1)  # let start-up and setup buffers go before the baseline
            sampler = RssSampler(server.process.pid)
            resting = sampler.reset()
            sampler.start()
            uploads = Phase("upload")
            started = time.perf_counter()
            with SpoolSampler(server.process.pid, spool) as disk:
                await asyncio.gather(*(
                    api.call(uploads.op("submit"), "POST", f"submission/{COURSE}/{ASSIGNMENT}", s, form=bodies[s])
                    for s in students
                ))
            seconds = time.perf_counter() - started
            sampler.stop()
            peak = max(sampler.peak, sampler.current())
        errors = dict(uploads.op("submit").errors) | dict(uploads.op("submit").wrong)
        if errors:
            raise BenchmarkError(f"uploads failed: {errors}")
        body_mb = len(next(iter(bodies.values()))) / MB
        return {
            "concurrency": concurrency, "file_mb": args.mb, "body_mb": round(body_mb, 1),
            "resting_rss_mb": round(resting / MB), "peak_rss_growth_mb": round((peak - resting) / MB),
            "growth_per_upload_mb": round((peak - resting) / MB / concurrency),
            "peak_spool_mb": round(disk.peak / MB), "seconds": round(seconds, 2),
        }
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="size of each uploaded file in MiB")
    parser.add_argument("--concurrency", default="1,4", help="comma-separated numbers of simultaneous uploads")
    parser.add_argument("--python", help="interpreter for the server (default: .venv's)")
    parser.add_argument("--database", help="ngshare_s3's --database (default: SQLite in a temporary folder)")
    parser.add_argument("--storage", help="ngshare_s3's --storage (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.concurrency.split(",")]
    hub = FakeHub()
    hub.start()
    results = []
    try:
        for level in levels:
            workdir = Path(tempfile.mkdtemp(prefix="ngshare-upload-memory-"))
            try:
                results.append(asyncio.run(measure(args, level, hub, workdir)))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    except BenchmarkError as error:
        print(f"upload_memory: {error}", file=sys.stderr)
        return 2
    finally:
        hub.stop()
    print("| uploads at once | file MB | body MB | resting RSS MB | peak RSS growth MB | per upload MB "
          "| peak spool in TMPDIR MB | seconds |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(f"| {r['concurrency']} | {r['file_mb']} | {r['body_mb']} | {r['resting_rss_mb']} | "
              f"{r['peak_rss_growth_mb']} | {r['growth_per_upload_mb']} | {r['peak_spool_mb']} | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
