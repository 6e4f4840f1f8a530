"""The Helm chart in k8s/ngshare-s3, checked offline: `helm lint --strict`, `helm template` with
each values set in k8s/ci/, every rendered stream validated by kubeconform and kubernetes-validate
against Kubernetes 1.33's schemas, and the rendered objects checked for what a cluster relies on
(security context, probes, secrets referenced and never inlined, selectors that match the pods
they mean, the token key z2jh writes, shutdown timing, the upload spool's size).

helm and kubeconform come from `python tests/servers.py build`; without them these tests skip
and say so.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import kube_tools
import z2jh_facts as z2jh
from kube_tools import CHART, CI_VALUES, RenderError, documents, one, render

VALUES_SETS = sorted(CI_VALUES.glob("*.yaml"))
SECRET_WORDS = re.compile(r"TOKEN|PASSWORD|SECRET|KEY|CREDENTIAL", re.IGNORECASE)
# Values given inline in k8s/ci/mongodb-s3.yaml that must only ever appear in the Secret.
INLINE_SECRETS = ("example-password", "example-access-key", "example-secret-key")


def built(program: kube_tools.servers.GoProgram) -> Path:
    try:
        return kube_tools.tool(program)
    except kube_tools.servers.ServerUnavailable as reason:
        pytest.skip(f"{program.name} is not available: {reason}")


@pytest.fixture(scope="session")
def helm() -> Path:
    return built(kube_tools.servers.HELM)


@pytest.fixture(scope="session")
def kubeconform() -> Path:
    return built(kube_tools.servers.KUBECONFORM)


@pytest.fixture(scope="session")
def kubeconform_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube_tools.write_kubeconform_schemas(tmp_path_factory.mktemp("kubeconform-schemas"))


@pytest.fixture(scope="session")
def rendered(helm: Path) -> dict[str, list[dict[str, Any]]]:
    """Each CI values set rendered once for the session, by file stem."""
    return {path.stem: documents(render(helm, [path])) for path in VALUES_SETS}


def values_id(path: Path) -> str:
    return path.stem


# Helpers over rendered objects ------------------------------------------------------------------


def deployment(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return one(manifests, "Deployment")


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(manifests)["spec"]["template"]["spec"]


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(manifests)["containers"]
    assert len(containers) == 1
    return containers[0]


def env(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container(manifests)["env"]}


def helm_test_pod(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    pods = [document for document in manifests if document["kind"] == "Pod"]
    assert len(pods) == 1
    return pods[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def quantity_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "": 1}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|)", quantity)
    assert match, f"unexpected quantity {quantity!r}"
    return int(match.group(1)) * units[match.group(2)]


def secret_ref(variable: dict[str, Any]) -> tuple[str, str]:
    reference = variable["valueFrom"]["secretKeyRef"]
    return reference["name"], reference["key"]


# The chart itself -------------------------------------------------------------------------------


def test_chart_versions_follow_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    package = ast.literal_eval(
        re.search(r"__version__\s*=\s*(.+)", (kube_tools.REPOSITORY / "ngshare_s3" / "__init__.py").read_text()).group(1)
    )
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == package
    assert chart["version"] == package
    assert chart["kubeVersion"] == ">=1.28.0-0"


def test_ci_values_sets_cover_the_documented_modes() -> None:
    assert {path.stem for path in VALUES_SETS} >= {
        "embedded",
        "mongodb-s3",
        "existing-secrets",
        "no-network-policy",
        "irsa",
    }


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_helm_lint_strict(helm: Path, values_file: Path) -> None:
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "--values", str(values_file)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_rendered_manifests_pass_kubeconform(
    helm: Path, kubeconform: Path, kubeconform_schemas: Path, values_file: Path
) -> None:
    manifests = render(helm, [values_file])
    result = kube_tools.kubeconform(kubeconform, kubeconform_schemas, manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(documents(manifests))
    assert f"{count} resources found" in result.stdout and f"Valid: {count}," in result.stdout, result.stdout


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_rendered_manifests_pass_kubernetes_validate(helm: Path, values_file: Path, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(render(helm, [values_file]))
    result = kube_tools.kubernetes_validate(manifests)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"^INFO .* passed for resource", result.stdout, re.MULTILINE)
    assert len(passed) == len(documents(manifests.read_text())), result.stdout


def test_kubeconform_rejects_an_unknown_field(helm: Path, kubeconform: Path, kubeconform_schemas: Path) -> None:
    """The local schemas are strict: a field Kubernetes does not know fails validation."""
    manifests = render(helm, [CI_VALUES / "embedded.yaml"]).replace(
        "revisionHistoryLimit: 5", "revisionHistoryLimit: 5\n  revisionHistoryLimt: 5"
    )
    result = kube_tools.kubeconform(kubeconform, kubeconform_schemas, manifests)
    assert result.returncode != 0
    assert "revisionHistoryLimt" in result.stdout


# Values that must be refused --------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, complaint",
    [
        ({"storage.embeded": "true"}, "additional properties 'embeded' not allowed"),
        ({"replica": "3"}, "additional properties 'replica' not allowed"),
        ({"networkPolicy.jupyterhub.proxyLabels.app": "x"}, "additional properties 'proxyLabels' not allowed"),
        ({"replicas": "two"}, "replicas"),
        ({"logFormat": "yaml"}, "logFormat"),
        ({"workers": "0"}, "workers"),
        ({"workers": "two"}, "workers"),
    ],
)
def test_values_typos_fail_the_schema(helm: Path, settings: dict[str, str], complaint: str) -> None:
    with pytest.raises(RenderError) as raised:
        render(helm, [CI_VALUES / "embedded.yaml"], settings)
    assert "schema" in str(raised.value)
    assert complaint in str(raised.value)


def test_default_values_ask_for_the_backends(helm: Path) -> None:
    with pytest.raises(RenderError) as raised:
        render(helm)
    assert "needs mongodb.url or mongodb.existingSecret" in str(raised.value)
    assert "storage.embedded=true" in str(raised.value)


def test_missing_bucket_is_refused(helm: Path) -> None:
    with pytest.raises(RenderError, match="needs s3.bucket"):
        render(helm, settings={"mongodb.existingSecret": "m"})


def test_embedded_mode_refuses_several_replicas(helm: Path) -> None:
    with pytest.raises(RenderError) as raised:
        render(helm, [CI_VALUES / "embedded.yaml"], {"replicas": "3"})
    assert "runs exactly 1 replica, but replicas is 3" in str(raised.value)


# Pod security -----------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_security_context(rendered: dict[str, list[dict[str, Any]]], values_file: Path) -> None:
    manifests = rendered[values_file.stem]
    for spec in (pod_spec(manifests), helm_test_pod(manifests)["spec"]):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == pod["runAsGroup"] == pod["fsGroup"] == 10001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for each in spec["containers"]:
            context = each["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert each["resources"]["requests"] and each["resources"]["limits"]["memory"]
    accounts = [document for document in manifests if document["kind"] == "ServiceAccount"]
    assert accounts and all(account["automountServiceAccountToken"] is False for account in accounts)


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_probes_use_livez_and_healthz_on_the_http_port(
    rendered: dict[str, list[dict[str, Any]]], values_file: Path
) -> None:
    main = container(rendered[values_file.stem])
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in main["ports"]
    assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    if "startupProbe" in main:
        assert main["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    variables = env(rendered[values_file.stem])
    assert variables["NGSHARE_S3_HOST"]["value"] == "0.0.0.0"
    assert variables["NGSHARE_S3_PORT"]["value"] == "8080"
    assert variables["NGSHARE_S3_LOG_FORMAT"]["value"] == "json"


def test_startup_probe_can_be_turned_off(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert "startupProbe" in container(rendered["embedded"])
    assert "startupProbe" not in container(rendered["no-network-policy"])


# Secrets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_no_secret_is_inlined(rendered: dict[str, list[dict[str, Any]]], values_file: Path) -> None:
    manifests = rendered[values_file.stem]
    for name, variable in env(manifests).items():
        if SECRET_WORDS.search(name) and name != "NGSHARE_S3_MAX_BODY_SIZE":
            assert "value" not in variable and "secretKeyRef" in variable["valueFrom"], name
        if "value" in variable:
            assert not re.search(r"mongodb(\+srv)?://[^/@]*:[^/@]*@", variable["value"]), name
    database = env(manifests)["NGSHARE_S3_DATABASE"]
    if values_file.stem != "embedded":
        assert "value" not in database and "secretKeyRef" in database["valueFrom"]
    outside_secrets = yaml.safe_dump_all([document for document in manifests if document["kind"] != "Secret"])
    for secret in INLINE_SECRETS:
        assert secret not in outside_secrets


def test_inline_values_go_into_the_charts_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["mongodb-s3"]
    secret = one(manifests, "Secret")
    variables = env(manifests)
    assert secret_ref(variables["NGSHARE_S3_DATABASE"]) == (secret["metadata"]["name"], "mongodb-url")
    assert secret_ref(variables["AWS_ACCESS_KEY_ID"]) == (secret["metadata"]["name"], "aws-access-key-id")
    assert secret_ref(variables["AWS_SECRET_ACCESS_KEY"]) == (secret["metadata"]["name"], "aws-secret-access-key")
    assert set(secret["data"]) == {"mongodb-url", "aws-access-key-id", "aws-secret-access-key"}
    # A changed Secret rolls the pods.
    assert "checksum/secret" in deployment(manifests)["spec"]["template"]["metadata"]["annotations"]


def test_existing_secrets_are_referenced(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["existing-secrets"]
    variables = env(manifests)
    assert not [document for document in manifests if document["kind"] == "Secret"]
    assert secret_ref(variables["NGSHARE_S3_DATABASE"]) == ("ngshare-mongodb", "url")
    assert secret_ref(variables["AWS_ACCESS_KEY_ID"]) == ("ngshare-s3-credentials", "AWS_ACCESS_KEY_ID")
    assert secret_ref(variables["AWS_SECRET_ACCESS_KEY"]) == ("ngshare-s3-credentials", "AWS_SECRET_ACCESS_KEY")
    assert secret_ref(variables["JUPYTERHUB_API_TOKEN"]) == ("ngshare-hub-token", "token")
    assert variables["NGSHARE_S3_STORAGE"]["value"] == "s3://nbgrader-exchange"
    assert variables["AWS_ENDPOINT_URL"]["value"] == "https://s3.eu-central-1.example.org"


def test_token_comes_from_z2jhs_secret_by_default(rendered: dict[str, list[dict[str, Any]]]) -> None:
    variables = env(rendered["mongodb-s3"])
    assert secret_ref(variables["JUPYTERHUB_API_TOKEN"]) == (z2jh.HUB_SECRET, z2jh.secret_key("ngshare"))
    assert secret_ref(variables["JUPYTERHUB_API_TOKEN"]) == ("hub", "hub.services.ngshare.apiToken")
    assert variables["JUPYTERHUB_SERVICE_NAME"]["value"] == "ngshare"
    assert variables["JUPYTERHUB_SERVICE_PREFIX"]["value"] == "/services/ngshare/"
    assert variables["JUPYTERHUB_CLIENT_ID"]["value"] == "service-ngshare"
    assert variables["JUPYTERHUB_API_URL"]["value"] == "http://hub:8081/hub/api"


def test_token_key_follows_the_service_name(rendered: dict[str, list[dict[str, Any]]]) -> None:
    variables = env(rendered["irsa"])
    assert secret_ref(variables["JUPYTERHUB_API_TOKEN"]) == ("hub", "hub.services.exchange.apiToken")
    assert variables["JUPYTERHUB_SERVICE_PREFIX"]["value"] == "/services/exchange/"
    assert variables["JUPYTERHUB_CLIENT_ID"]["value"] == "service-exchange"


def test_workload_identity_needs_no_keys(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["irsa"]
    variables = env(manifests)
    assert "AWS_ACCESS_KEY_ID" not in variables and "AWS_SECRET_ACCESS_KEY" not in variables
    assert variables["AWS_REGION"]["value"] == "eu-west-1"
    account = one(manifests, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/ngshare-s3")
    assert pod_spec(manifests)["serviceAccountName"] == account["metadata"]["name"]


def test_notes_name_no_secret_and_give_the_z2jh_values(helm: Path, tmp_path: Path) -> None:
    """NOTES.txt rendered through a copy of the chart that exposes it as a ConfigMap (helm
    template does not print NOTES, and helm install needs a cluster)."""
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "notes-under-test" -}}\n' + notes + "\n{{- end }}\n"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "notes-under-test" . | indent 4 }}\n'
    )
    result = subprocess.run(
        [str(helm), "template", "ngshare-s3", str(chart), "--kube-version", kube_tools.KUBERNETES_VERSION,
         "--values", str(CI_VALUES / "mongodb-s3.yaml"), "--show-only", "templates/notes-under-test.yaml"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = yaml.safe_load(result.stdout)["data"]["notes"]
    for secret in INLINE_SECRETS:
        assert secret not in text
    snippet = yaml.safe_load(text[text.index("hub:\n") : text.index("   z2jh then")])
    assert snippet == {
        "hub": {"services": {"ngshare": {"url": "http://ngshare-s3:8080", "oauth_no_confirm": True, "display": True}}}
    }
    assert "helm test ngshare-s3" in text


# Selectors and networking -----------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_SETS, ids=values_id)
def test_selectors_match_the_pods(rendered: dict[str, list[dict[str, Any]]], values_file: Path) -> None:
    manifests = rendered[values_file.stem]
    workload = deployment(manifests)
    labels = workload["spec"]["template"]["metadata"]["labels"]
    selector = workload["spec"]["selector"]["matchLabels"]
    assert selects(selector, labels)
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                "app.kubernetes.io/managed-by", "helm.sh/chart"):
        assert key in labels and all(key in document["metadata"]["labels"] for document in manifests)
    service = one(manifests, "Service")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["type"] == "ClusterIP"
    assert {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"} in service["spec"]["ports"]
    for policy in [document for document in manifests if document["kind"] == "NetworkPolicy"]:
        assert policy["spec"]["podSelector"]["matchLabels"] == selector
    for budget in [document for document in manifests if document["kind"] == "PodDisruptionBudget"]:
        assert budget["spec"]["selector"]["matchLabels"] == selector
    for constraint in pod_spec(manifests).get("topologySpreadConstraints", []):
        assert constraint["topologyKey"] == "kubernetes.io/hostname"
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
        assert constraint["labelSelector"]["matchLabels"] == selector
    # The test pod reaches the Service but is not one of its endpoints.
    assert not selects(service["spec"]["selector"], helm_test_pod(manifests)["metadata"]["labels"])


def ingress_peers(policy: dict[str, Any], port: int) -> list[dict[str, Any]]:
    return [
        peer
        for rule in policy["spec"]["ingress"]
        if any(each["port"] == port for each in rule["ports"])
        for peer in rule["from"]
    ]


def test_network_policy_admits_z2jhs_proxy_and_hub(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["mongodb-s3"]
    policy = one(manifests, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    peers = ingress_peers(policy, 8080)
    selectors = [peer["podSelector"]["matchLabels"] for peer in peers]
    for component in ("proxy", "hub"):
        assert any(selects(selector, z2jh.pod_labels(component)) for selector in selectors), component
    # Nothing else of z2jh's, and no user pod, unless allowed.
    assert not any(selects(selector, z2jh.pod_labels("singleuser-server")) for selector in selectors)
    assert not any(selects(selector, z2jh.pod_labels("autohttps")) for selector in selectors)
    assert all("namespaceSelector" not in peer and "ipBlock" not in peer for peer in peers)
    # The helm test pod is let in.
    assert any(selects(selector, helm_test_pod(manifests)["metadata"]["labels"]) for selector in selectors)


def test_network_policy_egress(rendered: dict[str, list[dict[str, Any]]]) -> None:
    rules = one(rendered["mongodb-s3"], "NetworkPolicy")["spec"]["egress"]
    ports = {(each["port"], each["protocol"]) for rule in rules for each in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (8081, "TCP"), (27017, "TCP"), (443, "TCP"), (9000, "TCP")} <= ports
    hub_rules = [rule for rule in rules if any(each["port"] == 8081 for each in rule["ports"])]
    assert len(hub_rules) == 1
    assert any(selects(peer["podSelector"]["matchLabels"], z2jh.pod_labels("hub")) for peer in hub_rules[0]["to"])
    assert not any(selects(peer["podSelector"]["matchLabels"], z2jh.pod_labels("proxy")) for peer in hub_rules[0]["to"])
    embedded_rules = one(rendered["embedded"], "NetworkPolicy")["spec"]["egress"]
    embedded_ports = {each["port"] for rule in embedded_rules for each in rule["ports"]}
    assert embedded_ports == {53, 8081}


def test_network_policy_narrowed_to_one_z2jh_release(rendered: dict[str, list[dict[str, Any]]]) -> None:
    policy = one(rendered["irsa"], "NetworkPolicy")
    peers = ingress_peers(policy, 8080)
    selectors = [peer["podSelector"]["matchLabels"] for peer in peers]
    for component in ("proxy", "hub", "singleuser-server"):
        assert any(selects(selector, z2jh.pod_labels(component, release="jhub")) for selector in selectors)
        assert not any(selects(selector, z2jh.pod_labels(component, release="other")) for selector in selectors)
    jupyterhub_peers = [peer for peer in peers if "release" in peer["podSelector"]["matchLabels"]]
    assert all(
        peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "jhub"}} for peer in jupyterhub_peers
    )
    assert [each["port"] for rule in policy["spec"]["egress"] for each in rule["ports"] if each["port"] == 443] == [443]


def test_metrics_port_and_its_network_rule(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["mongodb-s3"]
    assert env(manifests)["NGSHARE_S3_METRICS_PORT"]["value"] == "9090"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container(manifests)["ports"]
    assert any(port["name"] == "metrics" and port["port"] == 9090 for port in one(manifests, "Service")["spec"]["ports"])
    peers = ingress_peers(one(manifests, "NetworkPolicy"), 9090)
    assert peers and all(peer.get("podSelector") or peer.get("namespaceSelector") for peer in peers)
    assert not any(selects(peer.get("podSelector", {}).get("matchLabels", {}), z2jh.pod_labels("proxy")) for peer in peers)
    annotations = deployment(manifests)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9090"


def test_network_policy_and_metrics_port_can_be_turned_off(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["no-network-policy"]
    assert "NetworkPolicy" not in kube_tools.kinds(manifests)
    assert "NGSHARE_S3_METRICS_PORT" not in env(manifests)
    assert [port["name"] for port in one(manifests, "Service")["spec"]["ports"]] == ["http"]


# Replicas, updates, storage ----------------------------------------------------------------------


def test_embedded_mode_is_one_pod_on_a_volume(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["embedded"]
    workload = deployment(manifests)
    assert workload["spec"]["replicas"] == 1
    assert workload["spec"]["strategy"] == {"type": "Recreate"}
    assert "PodDisruptionBudget" not in kube_tools.kinds(manifests)
    claim = one(manifests, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volumes = {volume["name"]: volume for volume in pod_spec(manifests)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert {"name": "data", "mountPath": "/srv/ngshare"} in container(manifests)["volumeMounts"]
    variables = env(manifests)
    assert variables["NGSHARE_S3_DATABASE"]["value"] == "sqlite:////srv/ngshare/ngshare_s3.db"
    assert variables["NGSHARE_S3_STORAGE"]["value"] == "/srv/ngshare/ngshare_s3_files/"
    assert variables["NGSHARE_S3_ADMINS"]["value"] == "admin"


def test_embedded_mode_on_an_existing_claim(helm: Path) -> None:
    manifests = documents(
        render(helm, [CI_VALUES / "embedded.yaml"], {"storage.persistence.existingClaim": "exchange-data"})
    )
    assert "PersistentVolumeClaim" not in kube_tools.kinds(manifests)
    volumes = {volume["name"]: volume for volume in pod_spec(manifests)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "exchange-data"


def test_replicated_mode_rolls_without_losing_the_last_ready_pod(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["mongodb-s3"]
    workload = deployment(manifests)
    assert workload["spec"]["replicas"] == 3
    assert workload["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert one(manifests, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 1,
        "selector": workload["spec"]["selector"],
    }
    assert "PersistentVolumeClaim" not in kube_tools.kinds(manifests)
    assert env(manifests)["NGSHARE_S3_STORAGE"]["value"] == "s3://nbgrader-exchange/courses/2026"
    budget = one(rendered["existing-secrets"], "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget
    assert deployment(rendered["existing-secrets"])["spec"]["replicas"] == 2


def test_one_replica_has_no_disruption_budget(helm: Path) -> None:
    manifests = documents(render(helm, [CI_VALUES / "existing-secrets.yaml"], {"replicas": "1"}))
    assert deployment(manifests)["spec"]["replicas"] == 1
    assert "PodDisruptionBudget" not in kube_tools.kinds(manifests)


# Shutdown and the upload spool --------------------------------------------------------------------


@pytest.mark.parametrize("pre_stop, grace", [(5, 30), (12, 90)])
def test_termination_grace_covers_pre_stop_and_drain(helm: Path, pre_stop: int, grace: int) -> None:
    manifests = documents(
        render(helm, [CI_VALUES / "mongodb-s3.yaml"], {"shutdown.preStopDelay": str(pre_stop), "shutdown.gracePeriod": str(grace)})
    )
    spec = pod_spec(manifests)
    main = container(manifests)
    assert main["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", str(pre_stop)]}}
    assert env(manifests)["NGSHARE_S3_GRACE_PERIOD"]["value"] == str(grace)
    assert spec["terminationGracePeriodSeconds"] > pre_stop + grace


@pytest.mark.parametrize("max_body_size", [1073741824, 104857600, 5 * 2**30])
def test_spool_size_follows_the_body_limit(helm: Path, max_body_size: int) -> None:
    manifests = documents(render(helm, [CI_VALUES / "embedded.yaml"], {"maxBodySize": str(max_body_size)}))
    assert env(manifests)["NGSHARE_S3_MAX_BODY_SIZE"]["value"] == str(max_body_size)
    assert env(manifests)["TMPDIR"]["value"] == "/tmp"
    assert {"name": "spool", "mountPath": "/tmp"} in container(manifests)["volumeMounts"]
    volumes = {volume["name"]: volume for volume in pod_spec(manifests)["volumes"]}
    size = quantity_bytes(volumes["spool"]["emptyDir"]["sizeLimit"])
    assert 2 * max_body_size < size <= 2 * max_body_size + 128 * 2**20


def test_spool_size_can_be_set(helm: Path) -> None:
    manifests = documents(render(helm, [CI_VALUES / "embedded.yaml"], {"spool.sizeLimit": "20Gi"}))
    volumes = {volume["name"]: volume for volume in pod_spec(manifests)["volumes"]}
    assert volumes["spool"]["emptyDir"]["sizeLimit"] == "20Gi"


# Worker processes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, workers",
    [
        ({}, "1"),  # the default CPU request, 100m
        ({"resources.limits.cpu": "1500m"}, "2"),
        ({"resources.limits.cpu": "2"}, "2"),
        ({"resources.limits.cpu": "2.5", "resources.requests.cpu": "1"}, "3"),
        ({"resources.requests.cpu": "2"}, "2"),
        ({"resources.requests.cpu": "250m", "resources.limits.cpu": "4000m"}, "4"),
        ({"workers": "6", "resources.limits.cpu": "2"}, "6"),
        ({"resources.requests.cpu": "null"}, None),  # no CPU given: the service counts the container's
    ],
)
def test_workers_follow_the_cpu_given_to_the_pod(helm: Path, settings: dict[str, str], workers: str | None) -> None:
    manifests = documents(render(helm, [CI_VALUES / "mongodb-s3.yaml"], settings))
    assert env(manifests).get("NGSHARE_S3_WORKERS", {}).get("value") == workers


# helm test ---------------------------------------------------------------------------------------


def test_helm_test_pod_checks_both_endpoints_through_the_service(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["mongodb-s3"]
    pod = helm_test_pod(manifests)
    service = one(manifests, "Service")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert f"http://{service['metadata']['name']}:8080" in script
    assert '"/livez", "/healthz"' in script
    assert pod["spec"]["containers"][0]["image"] == container(manifests)["image"]
    ast.parse(script)


# The z2jh values snippet ---------------------------------------------------------------------------


def test_z2jh_snippet_points_at_the_charts_service(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Installed as documented (`helm install ngshare-s3 k8s/ngshare-s3`), the Service answers
    at the URL the snippet registers, and z2jh's token key is the one the pods read."""
    values = z2jh.values()
    service_values = values["hub"]["services"]["ngshare"]
    manifests = rendered["mongodb-s3"]  # rendered as release "ngshare-s3"
    service = one(manifests, "Service")
    assert service_values["url"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert service_values["oauth_no_confirm"] is True and service_values["display"] is True
    assert "api_token" not in service_values and "apiToken" not in service_values
    assert secret_ref(env(manifests)["JUPYTERHUB_API_TOKEN"]) == (z2jh.HUB_SECRET, z2jh.secret_key("ngshare"))


def test_z2jh_snippet_network_rules_select_the_charts_pods(rendered: dict[str, list[dict[str, Any]]]) -> None:
    values = z2jh.values()
    labels = deployment(rendered["mongodb-s3"])["spec"]["template"]["metadata"]["labels"]
    for rules in (values["hub"]["networkPolicy"]["egress"], values["proxy"]["chp"]["networkPolicy"]["egress"]):
        assert [each["port"] for rule in rules for each in rule["ports"]] == [8080]
        assert all(selects(peer["podSelector"]["matchLabels"], labels) for rule in rules for peer in rule["to"])


def test_z2jh_snippet_fits_z2jh_4_schema() -> None:
    """The parts of z2jh 4.x's values.schema.yaml the snippet uses: singleuser.image needs name
    and tag (strings) and nothing else; an extraFiles entry needs mountPath and exactly one of
    data/stringData/binaryData; hub.services and hub.loadRoles are maps."""
    values = z2jh.values()
    assert set(values) <= {"hub", "proxy", "singleuser"}
    assert set(values["hub"]) <= {"services", "loadRoles", "networkPolicy"}
    assert set(values["hub"]["networkPolicy"]) == {"egress"}
    assert set(values["proxy"]) == {"chp"} and set(values["proxy"]["chp"]) == {"networkPolicy"}
    image = values["singleuser"]["image"]
    assert set(image) == {"name", "tag"} and all(isinstance(value, str) for value in image.values())
    for entry in values["singleuser"]["extraFiles"].values():
        assert set(entry) - {"mode"} in ({"mountPath", "stringData"}, {"mountPath", "data"}, {"mountPath", "binaryData"})
        assert entry["mountPath"].startswith("/")


def test_z2jh_snippet_nbgrader_config_uses_the_exchange_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets.config import Config

    monkeypatch.syspath_prepend(str(kube_tools.REPOSITORY / "client"))
    import ngshare_s3_exchange

    entry = z2jh.values()["singleuser"]["extraFiles"]["nbgrader-config"]
    assert entry["mountPath"] == "/etc/jupyter/nbgrader_config.py"
    config = Config()
    exec(compile(entry["stringData"], "nbgrader_config.py", "exec"), {"get_config": lambda: config})
    assert config.ExchangeFactory.exchange == "ngshare_s3_exchange.Exchange"
    assert config.ExchangeFactory.submit == "ngshare_s3_exchange.ExchangeSubmit"
    exchange = ngshare_s3_exchange.Exchange(config=config)
    assert exchange.service_url() == "http://proxy-public/services/ngshare/"
    assert config.CourseDirectory.course_id == "*"


def test_kubernetes_guide_quotes_the_z2jh_snippet_verbatim() -> None:
    guide = (kube_tools.REPOSITORY / "docs" / "kubernetes.rst").read_text()
    snippet = kube_tools.Z2JH_VALUES.read_text()
    quoted = "".join(("    " + line) if line.strip() else "\n" for line in snippet.splitlines(keepends=True))
    assert quoted in guide
