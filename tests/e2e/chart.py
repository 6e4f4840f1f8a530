"""The ngshare-s3 chart as a process needs it: `helm template` renders the chart in k8s/ with
the given values, and the Deployment's container environment is resolved the way the kubelet
resolves it (plain values, and secretKeyRef from the rendered Secrets or from Secrets other
releases own, such as z2jh's `hub`). An end-to-end test then starts each replica with exactly
that environment, changing only what differs on 127.0.0.1 (addresses, ports, the spool)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers  # tests/ is on sys.path (tests/conftest.py)
from deploy import kube_tools

RELEASE = 'ngshare-s3'
NAMESPACE = 'jhub'


@dataclass
class RenderedChart:
    manifests: list[dict[str, Any]]

    def one(self, kind: str) -> dict[str, Any]:
        return kube_tools.one(self.manifests, kind)

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.one('Deployment')['spec']['template']['spec']['containers']
        return container

    @property
    def replicas(self) -> int:
        return self.one('Deployment')['spec']['replicas']

    def secrets(self) -> dict[str, dict[str, str]]:
        """The rendered Secrets' contents by name, decoded."""
        found = {}
        for manifest in self.manifests:
            if manifest['kind'] == 'Secret':
                data = {key: base64.b64decode(value).decode() for key, value in (manifest.get('data') or {}).items()}
                data.update(manifest.get('stringData') or {})
                found[manifest['metadata']['name']] = data
        return found

    def environment(self, other_secrets: dict[str, dict[str, str]]) -> dict[str, str]:
        """The container's env as the kubelet resolves it. `other_secrets` are Secrets in the
        namespace that this chart does not render (by name, then key)."""
        secrets = {**other_secrets, **self.secrets()}
        assert 'envFrom' not in self.container, 'envFrom is not resolved here'
        environment = {}
        for variable in self.container.get('env', []):
            name = variable['name']
            if 'value' in variable:
                environment[name] = str(variable['value'])
                continue
            reference = variable.get('valueFrom', {}).get('secretKeyRef')
            assert reference, f'{name}: only values and secretKeyRef are resolved here, not {variable}'
            secret = secrets.get(reference['name'])
            assert secret is not None, f'{name} refers to Secret {reference["name"]!r}, which no one provides'
            assert reference['key'] in secret, f'{name} refers to key {reference["key"]!r} of Secret {reference["name"]!r}, which has {sorted(secret)}'
            environment[name] = secret[reference['key']]
        return environment

    def probe_path(self, probe: str) -> str:
        return self.container[probe]['httpGet']['path']


def render(values: dict[str, Any], folder: Path) -> RenderedChart:
    """`helm template` of the chart with `values` (as one values file); skips, saying why,
    when helm is not built."""
    try:
        helm = kube_tools.tool(servers.HELM)
    except servers.ServerUnavailable as reason:
        print(f'\nSKIPPED: {reason}')
        pytest.skip(str(reason))
    values_file = folder / 'chart-values.yaml'
    values_file.write_text(yaml.safe_dump(values))
    manifests = kube_tools.render(helm, [values_file], release=RELEASE, namespace=NAMESPACE)
    return RenderedChart(kube_tools.documents(manifests))
