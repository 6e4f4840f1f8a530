"""The nbgrader installations the end-to-end tests drive the exchange client from: one virtualenv
per supported nbgrader line under `.cache/clients/<name>/`, each holding the client in client/
(installed editable) and the pinned Jupyter packages, resolved by pip with their dependencies
and checked with `pip check`, as a user's `pip install` would leave them. None of them holds the
service or its dependencies, so a client that imported anything of the server's would fail there.
One more virtualenv, `.cache/clients/ngshare-0.6.0/`, holds the original ngshare 0.6.0 (without
the client), which one client story runs as the Hub's service instead of ngshare_s3.

Run `python tests/clients.py build` to build or reuse them; the Makefile's `install` target does.
A virtualenv is rebuilt only when its pins, the client's pyproject.toml or the Python it is built
with change. A build that fails (no network, a conflict pip cannot resolve, a broken requirement)
is reported and remembered, and the tests that need that environment are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
CACHE = REPOSITORY / ".cache" / "clients"
# Resolved, so a checkout whose client/ links to another's builds the same virtualenvs.
CLIENT = (REPOSITORY / "client").resolve()
# pip resolves each set in well under a minute; one that takes this long is backtracking.
PIP_TIMEOUT = 20 * 60


class ClientUnavailable(RuntimeError):
    """An environment is not built or is out of date; the message is the reason tests skip."""


@dataclasses.dataclass(frozen=True)
class ClientEnvironment:
    """A virtualenv with the client and `pins` (pip requirement strings) installed together, or
    `pins` alone when `client` is false."""

    name: str
    pins: tuple[str, ...]
    client: bool = True

    @property
    def folder(self) -> Path:
        return CACHE / self.name

    @property
    def bin(self) -> Path:
        return self.folder / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def stamp(self) -> Path:
        """Written last, holding the fingerprint of what was built: no stamp, no environment."""
        return self.folder / ".built"

    @property
    def failure_note(self) -> Path:
        return CACHE / f"{self.name}.failed"

    def fingerprint(self) -> str:
        """What the virtualenv depends on: a change to any of it calls for a rebuild."""
        pyproject = CLIENT / "pyproject.toml"
        parts = {
            "pins": list(self.pins),
            "client": str(CLIENT) if self.client else None,
            "pyproject": hashlib.sha256(pyproject.read_bytes()).hexdigest()
            if self.client and pyproject.exists()
            else None,
            "python": base_python(),
            "python_version": sys.version,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def is_current(self) -> bool:
        return self.stamp.exists() and self.stamp.read_text().strip() == self.fingerprint()


# The newest nbgrader with JupyterLab 4 and Notebook 7, pinned to a set pip resolves cleanly.
NBGRADER_0_9 = ClientEnvironment(
    name="nbgrader-0.9",
    pins=(
        "nbgrader==0.9.6",
        "jupyterlab==4.6.6",
        "notebook==7.6.5",
        "jupyter_server==2.21.1",
        "jupyter_core==5.9.1",
    ),
)

# The last nbgrader 0.8, on the Jupyter of its time: Notebook 6, JupyterLab 3, Jupyter Server 1.
# pip resolves it within seconds without further caps.
NBGRADER_0_8 = ClientEnvironment(
    name="nbgrader-0.8",
    pins=(
        "nbgrader==0.8.5",
        "notebook<7",
        "jupyterlab<4",
        "jupyter_server<2",
    ),
)

# The original ngshare, the other exchange the client is tested against. Under SQLAlchemy 2 its
# releases answer success but store nothing, hence the cap.
NGSHARE_0_6 = ClientEnvironment(name="ngshare-0.6.0", pins=("ngshare==0.6.0", "SQLAlchemy<2"), client=False)

# The environments nbgrader runs from, and every environment `build` makes.
ENVIRONMENTS = (NBGRADER_0_9, NBGRADER_0_8)
ALL = (*ENVIRONMENTS, NGSHARE_0_6)


def environment(name: str) -> ClientEnvironment:
    """The environment called `name`; a KeyError lists the names there are."""
    for candidate in ALL:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no client environment {name!r}; there are {', '.join(e.name for e in ALL)}")


def base_python() -> str:
    """The interpreter this one's virtualenv (if any) was made from, so the client virtualenvs
    do not nest inside the project's."""
    return getattr(sys, "_base_executable", None) or sys.executable


# Building ---------------------------------------------------------------------------------


def build(environment: ClientEnvironment) -> str:
    """Builds `environment` unless it is current; returns what happened."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with _lock(environment):
        if environment.is_current():
            return "up to date"
        started = time.monotonic()
        try:
            _install(environment)
        except ClientUnavailable as error:
            environment.failure_note.write_text(str(error))
            return f"not built: {error}"
        environment.failure_note.unlink(missing_ok=True)
        return f"built in {time.monotonic() - started:.0f} s"


@contextmanager
def _lock(environment: ClientEnvironment) -> Iterator[None]:
    """One build of an environment at a time, for checkouts that share the cache."""
    with open(CACHE / f"{environment.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _install(environment: ClientEnvironment) -> None:
    """Makes a fresh virtualenv, installs the client (if wanted) and the pins with their
    dependencies, and requires `pip check` to pass; the stamp is written only after all of that
    succeeded."""
    if environment.client and not (CLIENT / "pyproject.toml").exists():
        raise ClientUnavailable(f"there is no client to install: {CLIENT / 'pyproject.toml'} is missing")
    shutil.rmtree(environment.folder, ignore_errors=True)
    _run([base_python(), "-m", "venv", str(environment.folder)], "creating the virtualenv")
    pip = [str(environment.python), "-m", "pip"]
    _run([*pip, "install", "--quiet", "--upgrade", "pip"], "upgrading pip")
    if environment.client:
        _run([*pip, "install", "--quiet", "-e", str(CLIENT), *environment.pins], "installing the client and pins")
    else:
        _run([*pip, "install", "--quiet", *environment.pins], "installing the pins")
    _run([*pip, "check"], "`pip check`")
    freeze = _run([*pip, "list", "--format=freeze"], "listing what was installed")
    (environment.folder / "installed.txt").write_text(freeze)
    environment.stamp.write_text(environment.fingerprint() + "\n")


def _run(command: list[str], what: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ClientUnavailable(f"{what} took more than {PIP_TIMEOUT} s: `{' '.join(command)}`") from None
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).rstrip().splitlines()[-40:])
        raise ClientUnavailable(f"{what} failed (exit {result.returncode}): `{' '.join(command)}`\n{output}")
    # pip is quiet on success except for its warnings, which the person building should see.
    sys.stderr.write(result.stderr)
    return result.stdout


def bin_folder(environment: ClientEnvironment) -> Path:
    """The environment's bin folder, or ClientUnavailable saying why it cannot be used."""
    if environment.is_current():
        return environment.bin
    if environment.failure_note.exists():
        raise ClientUnavailable(f"{environment.name} failed to build: {environment.failure_note.read_text()}")
    state = "is out of date" if environment.stamp.exists() else "is not built"
    raise ClientUnavailable(f"{environment.name} {state}; run `make clients` (python tests/clients.py build)")


def main(arguments: list[str]) -> int:
    """`build` builds what it can; `build --require` also fails unless every environment is
    built, for CI, where a skipped client suite would hide that it never ran."""
    if arguments not in (["build"], ["build", "--require"]):
        print(f"usage: {Path(__file__).name} build [--require]", file=sys.stderr)
        return 2
    for environment in ALL:
        print(f"{environment.name}: ", end="", flush=True)
        print(build(environment), flush=True)
    missing = [environment.name for environment in ALL if not environment.is_current()]
    return 1 if missing and "--require" in arguments else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
