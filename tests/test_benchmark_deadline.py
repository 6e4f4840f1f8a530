"""The deadline benchmark still runs end to end against ngshare_s3, at a size that takes seconds:
every scenario answered and checked, the measurements it reports present, and its comparison
of two runs printed. (Its numbers are not judged here: timed targets live in benchmarks/.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "benchmarks" / "deadline.py"

SCENARIOS = [
    "setup", "release", "fetch storm", "list", "submit storm", "browse", "collect", "feedback upload",
    "feedback fetch", "big upload", "big collect", "big multipart upload", "big multipart collect",
    "many files upload", "many files collect",
]


def run(*arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], cwd=REPOSITORY, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def test_a_small_deadline_runs_every_scenario_and_compares(tmp_path: Path) -> None:
    numbers = tmp_path / "run.json"
    # More client processes than requests in flight: every student still fetches.
    result = run("--server", "ngshare_s3", "--students", "3", "--concurrency", "2", "--client-processes", "3",
                 "--notebooks", "2",
                 "--notebook-kb", "20", "--data-kb", "40", "--feedback-kb", "5", "--big-mb", "2",
                 "--big-encodings", "urlencoded,multipart", "--lag-interval-ms", "5", "--many-files", "3",
                 "--many-file-kb", "16", "--json", str(numbers))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No errors, no wrong answers." in result.stdout

    phases = {phase["phase"]: phase for phase in json.loads(numbers.read_text())["phases"]}
    assert list(phases) == SCENARIOS
    assert all(phase["errors"] == 0 and phase["wrong"] == 0 for phase in phases.values())
    fetch = phases["fetch storm"]
    assert fetch["requests"] == 3 and fetch["peak_rss_mb"] > 0 and fetch["peak_pss_mb"] > 0
    assert fetch["bytes_checked"] > 3 * 40 * 1024  # three students, each the data file and notebooks
    assert fetch["store_calls"]["storage_calls_per_request"] > 0
    assert phases["collect"]["bytes_checked"] > 0
    assert phases["big collect"]["bytes_checked"] >= 2 * 1024 * 1024
    assert phases["many files collect"]["bytes_checked"] == 3 * 16 * 1024
    assert phases["big upload"]["ops"]["small GET during upload"]["requests"] >= 1

    table = run("--compare", str(numbers), str(numbers), timeout=30)
    assert table.returncode == 0, table.stderr
    assert "| fetch storm |" in table.stdout and "1.00× req/s" in table.stdout
    medians = run("--compare", f"{numbers},{numbers}", str(numbers), timeout=30)
    assert medians.returncode == 0, medians.stderr
    assert "(median of 2 runs)" in medians.stdout and "1.00× req/s" in medians.stdout


def test_answers_too_big_for_memory_are_checked_as_they_arrive() -> None:
    sys.path.insert(0, str(REPOSITORY / "benchmarks"))
    import deadline_bodies

    files = [("a/b.ipynb", os.urandom(1000)), ('odd "name"', os.urandom(7))]
    answer = json.dumps({
        "success": True, "timestamp": "2026-12-03 09:00:00.000001",
        "files": [{"path": path, "content": base64.encodebytes(data).decode(),
                   "checksum": hashlib.md5(data).hexdigest()} for path, data in files],
    }).encode()
    for step in (1, 5, len(answer)):
        reader = deadline_bodies.JsonStream()
        for start in range(0, len(answer), step):
            reader.feed(answer[start:start + step])
        result = reader.close()
        assert result["timestamp"] == "2026-12-03 09:00:00.000001"
        assert [(item["path"], deadline_bodies.content_md5(item["content"])) for item in result["files"]] == \
            [(path, hashlib.md5(data).hexdigest()) for path, data in files]
