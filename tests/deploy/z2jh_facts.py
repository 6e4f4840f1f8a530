"""Facts about Zero to JupyterHub 4.x that the chart relies on: where it keeps a service's API
token and which labels its pods carry, so the chart tests check selectors and secret references
against what a z2jh deployment actually has. (tests/e2e/z2jh.py turns the values snippet into
JupyterHub settings.)

Facts taken from z2jh's source (jupyterhub/zero-to-jupyterhub-k8s):
- files/hub/jupyterhub_config.py: for each `hub.services.<key>`, `name` defaults to the key,
  `apiToken` is dropped and `api_token` is read from the hub Secret's `hub.services.<key>.apiToken`;
  each `hub.loadRoles.<key>` becomes a role whose `name` defaults to the key.
- templates/hub/secret.yaml and templates/hub/_helpers-passwords.tpl: that Secret (named `hub`
  unless fullnameOverride is set) holds `hub.services.<key>.apiToken`, taken from the values if
  given, else from the existing Secret, else generated: stable across upgrades.
- templates/_helpers.tpl: pods carry the legacy labels component/app/release (app is
  "jupyterhub") and, since 4.1, app.kubernetes.io/component/name/instance as well; KubeSpawner
  labels user pods component=singleuser-server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

VALUES = Path(__file__).resolve().parent.parent.parent / "k8s" / "z2jh-values.yaml"
HUB_SECRET = "hub"


def values(path: Path = VALUES) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def secret_key(service_key: str) -> str:
    """The key of a service's API token in z2jh's hub Secret."""
    return f"hub.services.{service_key}.apiToken"


def pod_labels(component: str, release: str = "jhub") -> dict[str, str]:
    """The labels z2jh 4.1+ gives the proxy (component "proxy") and hub ("hub") pods; user pods
    ("singleuser-server") carry the legacy three."""
    labels = {"component": component, "app": "jupyterhub", "release": release}
    if component != "singleuser-server":
        labels |= {
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/name": "jupyterhub",
            "app.kubernetes.io/instance": release,
        }
    return labels
