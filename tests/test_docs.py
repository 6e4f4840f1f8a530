"""The README and the guides in docs/ are valid reStructuredText: a broken table or link target
would otherwise show as raw markup on the package index and in the repository browser. The
commands the README gives for moving over from ngshare use only flags the command has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import docutils.core
import docutils.utils
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPOSITORY / "README.rst", *sorted((REPOSITORY / "docs").glob("*.rst"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_document_is_valid_restructuredtext(document: Path) -> None:
    try:
        docutils.core.publish_string(
            document.read_text(),
            source_path=str(document),
            writer="null",
            settings_overrides={"report_level": 2, "halt_level": 2},
        )
    except docutils.utils.SystemMessage as problem:
        pytest.fail(f"{document.name}: {problem}")


def literal_commands(text: str, program: str) -> list[str]:
    """Every command line of `program` the document shows: in literal blocks (lines continued
    with a backslash joined) and in inline literals, which may wrap."""
    lines = re.sub(r"\\\n\s*", " ", text).splitlines()
    found = [line.strip() for line in lines if program in line and "``" not in line]
    found += [" ".join(span.split()) for span in re.findall(r"``([^`]*?)``", text, re.DOTALL) if program in span]
    return found


def test_documented_import_commands_use_flags_the_command_has() -> None:
    """The switch-over from ngshare is run by copying these commands: a flag the command does
    not know would stop it, or a flag it lost would go unnoticed."""
    usage = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "import-ngshare", "--help"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
    )
    assert usage.returncode == 0, usage.stderr
    known = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", usage.stdout))
    assert {"--from-database", "--from-storage", "--dry-run"} <= known, usage.stdout
    commands = literal_commands((REPOSITORY / "README.rst").read_text(), "ngshare-s3 import-ngshare")
    assert sum("--from-database" in command for command in commands) >= 3, commands
    assert any("--dry-run" in command for command in commands)
    for command in commands:
        flags = re.findall(r"(?<![\w-])--[a-z][\w-]*", command.split("ngshare-s3 import-ngshare", 1)[1])
        if not flags:  # the command's name in a sentence
            continue
        assert {"--from-database", "--from-storage"} <= set(flags), command
        assert set(flags) <= known, f"{command}: {sorted(set(flags) - known)} not in import-ngshare --help"
