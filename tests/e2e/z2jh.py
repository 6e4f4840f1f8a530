"""Zero to JupyterHub's translation of Helm values into JupyterHub settings, for the parts an
ngshare_s3 deployment adds (hub.services and hub.loadRoles), so a test can configure a real
JupyterHub exactly as z2jh configures its Hub from the documented values snippet.

Source, z2jh 4.x: jupyterhub/files/hub/jupyterhub_config.py (jupyterhub/zero-to-jupyterhub-k8s)

    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    ...  # the idle culler's service and role when cull.enabled
    for key, service in get_config("hub.services", {}).items():
        # c.JupyterHub.services is a list of dicts, but
        # hub.services is a dict of dicts to make the config mergable
        service.setdefault("name", key)

        # As the api_token could be exposed in hub.existingSecret, we need to read
        # it it from there or fall back to the chart managed k8s Secret's value.
        service.pop("apiToken", None)
        service["api_token"] = get_secret_value(f"hub.services.{key}.apiToken")

        c.JupyterHub.services.append(service)

    for key, role in get_config("hub.loadRoles", {}).items():
        # c.JupyterHub.load_roles is a list of dicts, but
        # hub.loadRoles is a dict of dicts to make the config mergable
        role.setdefault("name", key)

        c.JupyterHub.load_roles.append(role)

Every other key of a service or role passes through unchanged: no camelCase conversion, so
`oauth_no_confirm` must be spelt that way in the values (JupyterHub refuses unknown service
keys at start-up, which the Hub under test would show).

The token comes from z2jh's Secret `hub`, key `hub.services.<key>.apiToken`, which
jupyterhub/templates/hub/secret.yaml fills with the `jupyterhub.hub.services.get_api_token`
helper (jupyterhub/templates/hub/_helpers-passwords.tpl): the value's `api_token` or
`apiToken` if set, else the value already in the Secret (kept across upgrades), else 64 random
hex digits.

The idle culler z2jh adds by default (cull.enabled) manages user servers, which the test's Hub
does not spawn; it is left out.
"""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from deploy.z2jh_facts import HUB_SECRET, secret_key  # noqa: F401 (HUB_SECRET is re-exported)


def load_values(path: Path) -> dict:
    values = yaml.safe_load(path.read_text())
    assert isinstance(values, dict), f'{path} is not a YAML mapping'
    return values


def merge_values(*layers: dict) -> dict:
    """Helm's merge of several values files (`-f a.yaml -f b.yaml`): maps merge key by key,
    anything else in a later layer replaces the earlier value."""
    merged: dict = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge_values(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def hub_secret(values: dict, existing: dict[str, str] | None = None) -> dict[str, str]:
    """The `hub.services.<key>.apiToken` entries of z2jh's Secret `hub`, as its
    get_api_token helper renders them."""
    existing = existing or {}
    secret = {}
    for key, service in (values.get('hub', {}).get('services') or {}).items():
        name = secret_key(key)
        explicit = (service or {}).get('api_token') or (service or {}).get('apiToken')
        secret[name] = explicit or existing.get(name) or secrets.token_hex(32)
    return secret


def jupyterhub_services(values: dict, secret: dict[str, str]) -> list[dict]:
    """c.JupyterHub.services as z2jh builds it from hub.services (see the module's docstring)."""
    services = []
    for key, service in copy.deepcopy(values.get('hub', {}).get('services') or {}).items():
        service.setdefault('name', key)
        service.pop('apiToken', None)
        service['api_token'] = secret[secret_key(key)]
        services.append(service)
    return services


def jupyterhub_load_roles(values: dict) -> list[dict]:
    """c.JupyterHub.load_roles as z2jh builds it from hub.loadRoles."""
    roles = []
    for key, role in copy.deepcopy(values.get('hub', {}).get('loadRoles') or {}).items():
        role.setdefault('name', key)
        roles.append(role)
    return roles


def redirect_url(url: str, base: str) -> str:
    """`url` with its scheme, host and port taken from `base` (where the cluster's DNS name
    would resolve), its path kept."""
    target, original = urlsplit(base), urlsplit(url)
    return urlunsplit(original._replace(scheme=target.scheme, netloc=target.netloc))
