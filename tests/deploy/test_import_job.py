"""k8s/import-ngshare-job.yaml, the one-off Job that imports an ngshare installation deployed with
ngshare's Helm chart, checked offline: valid for Kubernetes 1.33 (kubeconform and
kubernetes-validate, as shipped and as the README's `sed` turns it into the real run), its
target stores and image the very ones the ngshare-s3 chart renders from docs/kubernetes.rst's
example values, ngshare's volume only read, and its command's flags ones `ngshare-s3
import-ngshare --help` lists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import kube_tools
from kube_tools import REPOSITORY, documents, one, render

JOB = REPOSITORY / "k8s" / "import-ngshare-job.yaml"
GUIDE = REPOSITORY / "docs" / "kubernetes.rst"
README = REPOSITORY / "README.rst"
# What ngshare's chart (LibreTexts/ngshare, helmchart/ngshare) creates and where: the claim is
# named after the chart, `{{ include "ngshare.name" . }}-pvc`, and mounted at /srv/ngshare, where
# ngshare's defaults keep its database and files.
NGSHARE_CLAIM = "ngshare-pvc"
NGSHARE_MOUNT = "/srv/ngshare"
NGSHARE_FS_GROUP = 1000
# The variables that name the target stores and how to reach them.
STORE_VARIABLES = ("NGSHARE_S3_DATABASE", "NGSHARE_S3_STORAGE", "AWS_ENDPOINT_URL", "AWS_REGION",
                   "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def shipped() -> str:
    return JOB.read_text()


def real_run() -> str:
    """The manifest after `sed '/--dry-run/d'`, as the README has it run for the import itself."""
    return "".join(line for line in shipped().splitlines(keepends=True) if "--dry-run" not in line)


def job(manifest: str) -> dict[str, Any]:
    return one(documents(manifest), "Job")


def pod_spec(manifest: str) -> dict[str, Any]:
    return job(manifest)["spec"]["template"]["spec"]


def container(manifest: str) -> dict[str, Any]:
    containers = pod_spec(manifest)["containers"]
    assert len(containers) == 1
    return containers[0]


def env(workload_container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in workload_container["env"]}


def guide_values() -> str:
    """The `ngshare-values.yaml` of docs/kubernetes.rst (MongoDB + S3), as a reader copies it."""
    text = GUIDE.read_text()
    start = text.index("and a values file, say ``ngshare-values.yaml``")
    block = re.search(r"\.\. code-block:: yaml\n\n((?:    .*\n|\n)+)", text[start:])
    assert block, "the guide's ngshare-values.yaml block is missing"
    return "".join(line[4:] if line.strip() else "\n" for line in block.group(1).splitlines(keepends=True))


@pytest.fixture(scope="module")
def chart_deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        helm = kube_tools.tool(kube_tools.servers.HELM)
    except kube_tools.servers.ServerUnavailable as reason:
        pytest.skip(f"helm is not available: {reason}")
    values = tmp_path_factory.mktemp("guide") / "ngshare-values.yaml"
    values.write_text(guide_values())
    return one(documents(render(helm, [values])), "Deployment")


# Valid Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", [shipped, real_run], ids=["dry-run", "import"])
def test_manifest_passes_kubeconform(manifest, tmp_path: Path) -> None:
    try:
        binary = kube_tools.tool(kube_tools.servers.KUBECONFORM)
    except kube_tools.servers.ServerUnavailable as reason:
        pytest.skip(f"kubeconform is not available: {reason}")
    schemas = kube_tools.write_kubeconform_schemas(tmp_path / "schemas")
    result = kube_tools.kubeconform(binary, schemas, manifest())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 resource found" in result.stdout and "Valid: 1, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout


@pytest.mark.parametrize("manifest", [shipped, real_run], ids=["dry-run", "import"])
def test_manifest_passes_kubernetes_validate(manifest, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(manifest())
    result = kube_tools.kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^INFO .* passed for resource", result.stdout, re.MULTILINE), result.stdout


def test_kubeconform_rejects_a_misspelt_field(tmp_path: Path) -> None:
    """The check above can fail: a field Jobs do not have is refused."""
    try:
        binary = kube_tools.tool(kube_tools.servers.KUBECONFORM)
    except kube_tools.servers.ServerUnavailable as reason:
        pytest.skip(f"kubeconform is not available: {reason}")
    schemas = kube_tools.write_kubeconform_schemas(tmp_path / "schemas")
    broken = shipped().replace("backoffLimit: 3", "backofLimit: 3")
    result = kube_tools.kubeconform(binary, schemas, broken)
    assert result.returncode != 0 and "backofLimit" in result.stdout


# Dry run first, then the import ------------------------------------------------------------------


def test_shipped_manifest_is_a_dry_run_and_sed_makes_it_the_import() -> None:
    assert container(shipped())["args"][-1] == "--dry-run"
    imported = container(real_run())["args"]
    assert "--dry-run" not in imported
    assert imported == container(shipped())["args"][:-1]
    # Nothing but the flag differs between the two.
    dry = job(shipped())
    dry["spec"]["template"]["spec"]["containers"][0]["args"].pop()
    assert dry == job(real_run())


def test_exit_statuses_fail_the_job_and_disruptions_resume_it() -> None:
    spec = job(shipped())["spec"]
    assert pod_spec(shipped())["restartPolicy"] == "Never"
    rules = spec["podFailurePolicy"]["rules"]
    fail = [rule for rule in rules if rule["action"] == "FailJob"]
    assert fail and fail[0]["onExitCodes"] == {"containerName": "import", "operator": "In", "values": [1, 2]}
    ignore = [rule for rule in rules if rule["action"] == "Ignore"]
    assert ignore and ignore[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]


# ngshare's volume, only read -----------------------------------------------------------------------


def test_ngshare_volume_is_mounted_read_only_where_ngshare_had_it() -> None:
    spec = pod_spec(shipped())
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    claims = [volume for volume in volumes.values() if "persistentVolumeClaim" in volume]
    assert [volume["persistentVolumeClaim"] for volume in claims] == [{"claimName": NGSHARE_CLAIM, "readOnly": True}]
    mounts = {mount["name"]: mount for mount in container(shipped())["volumeMounts"]}
    data = mounts[claims[0]["name"]]
    assert data == {"name": claims[0]["name"], "mountPath": NGSHARE_MOUNT, "readOnly": True}
    # No fsGroup: the kubelet would otherwise take ngshare's files into that group.
    assert "fsGroup" not in spec["securityContext"]
    assert NGSHARE_FS_GROUP in spec["securityContext"]["supplementalGroups"]
    # Uploads and temporary files go to an emptyDir; the root filesystem is read-only.
    assert mounts["tmp"]["mountPath"] == "/tmp" and "emptyDir" in volumes["tmp"]
    assert env(container(shipped()))["TMPDIR"]["value"] == "/tmp"


def test_sources_are_ngshares_defaults_on_that_volume() -> None:
    args = container(shipped())["args"]
    assert args[0] == "import-ngshare"
    database = args[args.index("--from-database") + 1]
    storage = args[args.index("--from-storage") + 1]
    # ngshare 0.6's defaults (its --database and --storage), which its chart does not change.
    assert database == f"sqlite:///{NGSHARE_MOUNT}/ngshare.db"
    assert storage == f"{NGSHARE_MOUNT}/files/"


# The same image and stores as the chart ------------------------------------------------------------


def test_image_and_stores_are_the_charts(chart_deployment: dict[str, Any]) -> None:
    """Rendered from the guide's example values, the chart's pods and this Job name the same
    image and reach the same database and bucket with the same Secrets."""
    chart_container = chart_deployment["spec"]["template"]["spec"]["containers"][0]
    assert container(shipped())["image"] == chart_container["image"]
    chart_env, job_env = env(chart_container), env(container(shipped()))
    for name in STORE_VARIABLES:
        assert job_env[name] == chart_env[name], name
    assert not {name for name in chart_env if name.startswith("AWS_")} - set(job_env)


def test_security_settings_are_the_charts(chart_deployment: dict[str, Any]) -> None:
    chart_spec = chart_deployment["spec"]["template"]["spec"]
    spec = pod_spec(shipped())
    for key in ("runAsNonRoot", "runAsUser", "runAsGroup", "seccompProfile"):
        assert spec["securityContext"][key] == chart_spec["securityContext"][key], key
    assert spec["automountServiceAccountToken"] is False
    assert container(shipped())["securityContext"] == chart_spec["containers"][0]["securityContext"]


def test_guide_values_are_what_the_job_was_written_for() -> None:
    """The guide's example is the one the Job's comments name; a change there must reach here."""
    values = yaml.safe_load(guide_values())
    assert values["mongodb"]["existingSecret"] == "ngshare-mongodb"
    assert values["s3"]["existingSecret"] == "ngshare-s3-credentials"


# The command ---------------------------------------------------------------------------------------


def import_help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ngshare_s3", "import-ngshare", "--help"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_flag_of_the_job_is_one_the_command_has() -> None:
    usage = import_help()
    flags = [arg for arg in container(shipped())["args"] if arg.startswith("--")]
    assert flags == ["--from-database", "--from-storage", "--dry-run"]
    for flag in flags:
        assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", usage), f"{flag} is not in import-ngshare --help"


def test_readme_runs_the_job_as_shipped() -> None:
    readme = README.read_text()
    name = job(shipped())["metadata"]["name"]
    assert "kubectl --namespace jhub create -f k8s/import-ngshare-job.yaml" in readme
    assert "sed '/--dry-run/d' k8s/import-ngshare-job.yaml | kubectl --namespace jhub create -f -" in readme
    assert f"job/{name}" in readme
    assert f"claimName: {NGSHARE_CLAIM}" in shipped() and NGSHARE_CLAIM in readme
