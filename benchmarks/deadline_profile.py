"""Where the server spends its time during a phase: py-spy samples it (and any worker processes
it forks) from outside, and the top functions by own time are printed.

py-spy writes collapsed stacks (`--format raw`: one line per distinct stack, frames joined by
`;`, then the sample count), which flame-graph tools and speedscope.app open as they are; the
summary here counts, for every function, the samples in which it was the innermost frame (own
time) and those in which it was anywhere on the stack (total time). `--nonblocking` keeps
py-spy from pausing the server for each sample, so the phase runs at nearly its usual speed.
py-spy needs to read the server's memory (ptrace): as root, or with
/proc/sys/kernel/yama/ptrace_scope at 0, or in a container with CAP_SYS_PTRACE.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 100  # samples per second


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def check(pid: int) -> str | None:
    """None if py-spy can read process `pid`, else why not."""
    program = py_spy()
    if program is None:
        return "py-spy is not installed (pip install py-spy)"
    result = subprocess.run([program, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        return f"py-spy dump --pid {pid} failed: {(result.stderr or result.stdout).strip()[:400]}"
    return None


class Recording:
    """`py-spy record` on a process tree while a phase runs."""

    def __init__(self, pid: int, output: Path) -> None:
        self.output = output
        self.log = output.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [py_spy() or "py-spy", "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
                 "--rate", str(RATE), "--format", "raw", "--output", str(output)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def stop(self) -> Path | None:
        """Ends the recording (py-spy writes its file on SIGINT); the file, if there is one."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.output if self.output.exists() else None


def frame_name(frame: str) -> str:
    """'handle (aiohttp/web_protocol.py:512)' -> 'handle (aiohttp/web_protocol.py)': functions,
    not lines. py-spy's 'process 123:"python -m ..."' roots keep only 'process'."""
    if frame.startswith("process "):
        return "process"
    name, _, where = frame.partition(" (")
    if where:
        location = where.rstrip(")").rsplit(":", 1)[0]
        for marker in ("site-packages/", "/lib/python3"):
            if marker in location:
                location = location.split(marker, 1)[1]
                break
        return f"{name} ({location})"
    return name


def top_functions(collapsed: str, count: int = 25) -> tuple[int, list[tuple[str, int, int]]]:
    """(samples, [(function, own samples, total samples), ...] by own samples, largest first)."""
    own: Counter = Counter()
    total: Counter = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        n = int(number)
        samples += n
        frames = [frame_name(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    return samples, [(name, n, total[name]) for name, n in own.most_common(count)]


def summary(collapsed_file: Path, title: str, count: int = 25) -> str:
    samples, rows = top_functions(collapsed_file.read_text(errors="replace"), count)
    lines = [f"{title}: {samples} samples at {RATE}/s (active threads only)",
             f"{'own %':>6} {'total %':>7}  function"]
    for name, own, total in rows:
        lines.append(f"{100 * own / max(samples, 1):6.1f} {100 * total / max(samples, 1):7.1f}  {name}")
    return "\n".join(lines)
