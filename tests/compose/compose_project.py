"""docker-compose.yml as Docker Compose v2 loads it, without Docker: the small Go program in
validate/ (compose-go, the loader Docker Compose itself uses) built into .cache/ and run on the
file with .env.example as the env file, printing the resolved project (variables interpolated,
anchors expanded, references between services, networks and volumes checked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = PROJECT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT / ".env.example"
VALIDATOR_SOURCE = Path(__file__).resolve().parent / "validate"
VALIDATOR = PROJECT / ".cache" / "compose-validate" / "validate"


def validator() -> Path:
    """The built validator; built on first use (and again when its source changes), or a skip
    that says why it cannot be."""
    sources = [VALIDATOR_SOURCE / name for name in ("main.go", "go.mod", "go.sum")]
    if VALIDATOR.exists() and all(VALIDATOR.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return VALIDATOR
    go = shutil.which("go")
    if go is None:
        reason = "the compose-go validator needs Go (no `go` on PATH); see https://go.dev/dl/"
        print(f"\nSKIPPED: {reason}")
        pytest.skip(reason)
    VALIDATOR.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([go, "build", "-o", str(VALIDATOR), "."], cwd=VALIDATOR_SOURCE,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"building the compose-go validator failed:\n{result.stderr[-3000:]}"
    return VALIDATOR


def load(compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    """Run the validator; stdout is the resolved project as JSON when it exits 0."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("COMPOSE_") and key not in variables_in(compose_file)}
    return subprocess.run([str(validator()), str(compose_file), str(env_file)], capture_output=True,
                          text=True, timeout=120, env=environment, cwd=compose_file.parent)


def resolved(compose_file: Path = COMPOSE_FILE, env_file: Path = ENV_EXAMPLE) -> dict:
    result = load(compose_file, env_file)
    assert result.returncode == 0, f"compose-go rejects {compose_file.name}:\n{result.stderr}"
    return json.loads(result.stdout)


def variables_in(compose_file: Path) -> set[str]:
    """Names of the ${VARIABLE...} the file interpolates (so the caller's own are left out)."""
    import re

    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_file.read_text()))


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
