"""Reading the container build's inputs without Docker: the Dockerfile's instructions per stage,
and the build context that .dockerignore lets through, so that tests can check what an image
build would see and run its pip steps outside Docker."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import servers  # tests/ is on the path (tests/conftest.py)

PROJECT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT / "Dockerfile"
DOCKERIGNORE = PROJECT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    stage: int  # -1 before the first FROM (global ARGs), then 0, 1, ...
    keyword: str  # upper case: FROM, RUN, ENV, ...
    arguments: str  # the rest of the (joined) line

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT/CMD, or of HEALTHCHECK's CMD."""
        text = self.arguments
        if self.keyword == "HEALTHCHECK":
            text = text.split(" CMD ", 1)[1]
        return json.loads(text)

    def pairs(self) -> dict[str, str]:
        """KEY=VALUE pairs of an ENV, LABEL or ARG line (values may be double-quoted)."""
        found = re.findall(r'([A-Za-z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)', self.arguments)
        return {key: value[1:-1] if value.startswith('"') else value for key, value in found}


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order, with backslash continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if not line:
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, arguments.strip()))
    return instructions


# ---------------------------------------------------------------------------------------------
# .dockerignore, with Docker's rules: patterns are matched against the path relative to the
# context and against each of its parent folders; `**` spans folders; the last matching pattern
# wins, and a `!` pattern lets a path back in.


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def read_dockerignore(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line[1:] if negated else line
        pattern = pattern.strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def is_excluded(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def working_tree_files(project: Path = PROJECT) -> list[str]:
    """What `docker build .` in this checkout could see: tracked and untracked files that exist,
    minus those git ignores (.venv, node_modules, caches: never meant to be built from)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=project, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    return sorted(name for name in listed if name and (project / name).is_file())


def build_context(destination: Path, project: Path = PROJECT) -> list[str]:
    """Copy the files .dockerignore lets into the build context; returns their paths."""
    rules = read_dockerignore(project / ".dockerignore")
    kept = [name for name in working_tree_files(project) if not is_excluded(name, rules)]
    for name in kept:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project / name, target)
    return kept


def free_port() -> int:
    return servers.free_port()
