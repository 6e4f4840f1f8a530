"""The import benchmark still runs end to end, at a size that takes seconds: it builds a small
course in a real ngshare 0.6.0, counts it, times the dry run, the import and a second run into
the embedded stores, and finds every submission list and feedback again through ngshare_s3.
(Its numbers are not judged here: timed targets live in benchmarks/.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SCRIPT = REPOSITORY / "benchmarks" / "import_ngshare.py"


def run(*arguments: str, timeout: float = 180) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], cwd=REPOSITORY, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def test_a_small_course_is_built_imported_and_found_again(tmp_path: Path) -> None:
    numbers = tmp_path / "run.json"
    result = run("--targets", "embedded", "--students", "3", "--submissions", "2", "--notebooks", "2",
                 "--notebook-kb", "8", "--feedback-kb", "2", "--json", str(numbers))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads(numbers.read_text())
    # One course, the instructor and 3 students, one assignment, 6 submissions, 3 feedback sets;
    # files: 2 released, 2 in each submission, one feedback page per student.
    assert report["source"] == {"courses": 1, "members": 4, "assignments": 1, "submissions": 6,
                                "feedback_sets": 3, "files": 2 + 6 * 2 + 3, "bytes": report["source"]["bytes"]}
    assert report["source"]["bytes"] > (2 + 12) * 8 * 1024 * 0.9
    assert report["records"] == 1 + 4 + 1 + 6 + 3
    target = report["targets"]["embedded"]
    assert [run["name"] for run in target["runs"]] == ["dry run", "import", "again"]
    assert all(run["status"] == 0 and run["seconds"] > 0 and run["summary"] for run in target["runs"])
    assert target["check"] == "every submission list and latest feedback as ngshare answered"
    assert "| embedded | import | 0 |" in result.stdout
