"""Offline Kubernetes tooling for the chart tests: helm and kubeconform (built by
`tests/servers.py build`), and the Kubernetes JSON schemas shipped inside the kubernetes-validate
wheel, rewritten so kubeconform can read them from a local folder.

No cluster and no network: `helm template` renders with a fixed Kubernetes version, and every
schema comes from the wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import servers  # noqa: E402  (tests/ is not a package)

REPOSITORY = TESTS.parent
CHART = REPOSITORY / "k8s" / "ngshare-s3"
CI_VALUES = REPOSITORY / "k8s" / "ci"
Z2JH_VALUES = REPOSITORY / "k8s" / "z2jh-values.yaml"
KUBERNETES_VERSION = "1.33.0"


class RenderError(RuntimeError):
    """`helm template` refused the values; the message is helm's."""


def tool(program: servers.GoProgram) -> Path:
    """The built binary, or servers.ServerUnavailable saying why there is none."""
    return servers.binary(program)


def render(
    helm: Path,
    values_files: Iterable[Path] = (),
    settings: Mapping[str, str] | None = None,
    release: str = "ngshare-s3",
    namespace: str = "jhub",
    show_only: str | None = None,
) -> str:
    """The manifests `helm template` renders (tests included), or RenderError with helm's
    message. `settings` are `--set` pairs."""
    command = [str(helm), "template", release, str(CHART), "--namespace", namespace]
    command += ["--kube-version", KUBERNETES_VERSION]
    for path in values_files:
        command += ["--values", str(path)]
    for key, value in (settings or {}).items():
        command += ["--set", f"{key}={value}"]
    if show_only:
        command += ["--show-only", show_only]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


def documents(manifests: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendered stream."""
    return [document for document in yaml.safe_load_all(manifests) if document]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The only object of `kind` (an AssertionError if there are none or several)."""
    found = [document for document in manifests if document["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(manifests: list[dict[str, Any]]) -> list[str]:
    return sorted(document["kind"] for document in manifests)


# Schemas --------------------------------------------------------------------------------------


def wheel_schemas(version: str = KUBERNETES_VERSION) -> Path:
    """The strict JSON schemas of one Kubernetes version inside the kubernetes-validate wheel
    (strict: unknown fields are errors)."""
    import kubernetes_validate

    folder = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not folder.is_dir():
        raise FileNotFoundError(f"kubernetes-validate has no schemas for Kubernetes {version} at {folder}")
    return folder


def write_kubeconform_schemas(target: Path, version: str = KUBERNETES_VERSION) -> Path:
    """Copies the wheel's schemas into `target` in the form kubeconform reads locally: their
    `$ref`s point at `/api/_definitions.json`, an absolute URI kubeconform would try to fetch,
    so they become relative, and the top-level `$id` (which would make them resolve against
    kubernetes.io again) is dropped."""
    target.mkdir(parents=True, exist_ok=True)
    for source in wheel_schemas(version).glob("*.json"):
        schema = json.loads(source.read_text())
        schema.pop("$id", None)
        (target / source.name).write_text(json.dumps(_relative_refs(schema)))
    return target


def _relative_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (value.replace("/api/_definitions.json", "_definitions.json") if key == "$ref" and isinstance(value, str) else _relative_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_relative_refs(item) for item in node]
    return node


def kubeconform(binary: Path, schemas: Path, manifests: str) -> subprocess.CompletedProcess[str]:
    """Runs kubeconform -strict on a rendered stream with only the local schemas; a kind without
    a schema is an error, not a skip."""
    return subprocess.run(
        [
            str(binary),
            "-strict",
            "-summary",
            "-output", "text",
            "-kubernetes-version", KUBERNETES_VERSION,
            "-schema-location", f"{schemas}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json",
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
    )


def kubernetes_validate(manifests_file: Path) -> subprocess.CompletedProcess[str]:
    """Runs the kubernetes-validate command (strict, Kubernetes KUBERNETES_VERSION) on a file."""
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "-k", KUBERNETES_VERSION, "--strict", str(manifests_file)],
        capture_output=True,
        text=True,
    )
