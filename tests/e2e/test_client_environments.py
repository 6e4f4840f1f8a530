"""The virtualenvs the exchange client is tested from hold what they claim: the pinned nbgrader
and Jupyter versions, consistent as `pip check` sees them, the client from this repository, and
nothing of the service's, so a client that needed the server's packages would fail in them."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import clients
from clients import ClientEnvironment

from .client_envs import ENVIRONMENTS, programs

CLIENT_DISTRIBUTION = 'ngshare-s3-exchange'
CLIENT_PACKAGE = 'ngshare_s3_exchange'

# Versions a report on the environments quotes, besides the pins.
REPORTED = (
    'nbgrader', 'jupyterlab', 'notebook', 'jupyter_server', 'jupyter_core', 'jupyter_client', 'traitlets', 'requests'
)

# The service and the dependencies of its own that no nbgrader installation needs: distribution
# name -> module name.
SERVER_PACKAGES = {
    'ngshare_s3': 'ngshare_s3',
    'jupyterhub': 'jupyterhub',
    'aiohttp': 'aiohttp',
    'aiosqlite': 'aiosqlite',
    'boto3': 'boto3',
    'botocore': 'botocore',
    'pymongo': 'pymongo',
    'minio': 'minio',
    'pybase64': 'pybase64',
}

# Server dependencies a Jupyter package of an environment brings in itself, and which package:
# JupyterLab 3.6's collaboration backend (jupyter_server_ydoc -> ypy-websocket) stores documents
# with aiosqlite.
BROUGHT_BY_JUPYTER = {
    'nbgrader-0.8': {'aiosqlite': 'ypy-websocket'},
}

# Runs inside an environment's python: what is installed, what each distribution requires, where
# the client came from, and where the given modules would be imported from.
PROBE = r'''
import importlib.metadata, importlib.util, json, sys
distributions = {}
for distribution in importlib.metadata.distributions():
    distributions[distribution.metadata['Name']] = {
        'version': distribution.version,
        'requires': distribution.requires or [],
        'direct_url': distribution.read_text('direct_url.json'),
    }
modules = {}
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    modules[name] = None if spec is None else [spec.origin, list(spec.submodule_search_locations or [])]
json.dump({'distributions': distributions, 'modules': modules}, sys.stdout)
'''


@functools.cache
def probe(environment: ClientEnvironment, folder: Path) -> dict:
    """What the environment's own python sees, isolated (-I) and run outside the repository so
    that neither PYTHONPATH nor the working directory can make the service importable."""
    modules = [CLIENT_PACKAGE, *SERVER_PACKAGES.values()]
    result = subprocess.run(
        [str(programs(environment.name) / 'python'), '-I', '-c', PROBE, *modules],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f'probing {environment.name} failed:\n{result.stderr}'
    found = json.loads(result.stdout)
    found['distributions'] = {canonicalize_name(name): info for name, info in found['distributions'].items()}
    return found


@pytest.fixture(params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> ClientEnvironment:
    return clients.environment(request.param)


@pytest.fixture
def installed(tmp_path_factory: pytest.TempPathFactory, environment: ClientEnvironment) -> dict:
    return probe(environment, tmp_path_factory.getbasetemp())


def versions_line(environment: ClientEnvironment, distributions: dict) -> str:
    """'nbgrader-0.9: nbgrader 0.9.6, jupyterlab 4.6.6, ...', for a report to quote."""
    versions = [
        f'{name} {distributions.get(canonicalize_name(name), {}).get("version", "(missing)")}' for name in REPORTED
    ]
    return f'{environment.name}: {", ".join(versions)}'


def test_pip_check_is_clean(environment: ClientEnvironment) -> None:
    result = subprocess.run(
        [str(programs(environment.name) / 'python'), '-m', 'pip', 'check'], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f'`pip check` in {environment.name}:\n{result.stdout}{result.stderr}'
    assert 'No broken requirements found' in result.stdout


def test_installed_versions_match_the_pins(environment: ClientEnvironment, installed: dict) -> None:
    distributions = installed['distributions']
    report = versions_line(environment, distributions)
    print(f'\n{report}')
    for pin in environment.pins:
        requirement = Requirement(pin)
        version = distributions.get(canonicalize_name(requirement.name), {}).get('version')
        assert version is not None, f'{requirement.name} is not installed; {report}'
        assert requirement.specifier.contains(version, prereleases=True), f'{pin} but {version} installed; {report}'
    nbgrader_line = environment.name.removeprefix('nbgrader-')
    assert distributions['nbgrader']['version'].startswith(f'{nbgrader_line}.'), report


def test_the_client_is_installed_editable_from_this_repository(
    environment: ClientEnvironment, installed: dict
) -> None:
    client = installed['distributions'].get(CLIENT_DISTRIBUTION)
    assert client is not None, f'{CLIENT_DISTRIBUTION} is not installed in {environment.name}'
    assert client['direct_url'], f'{CLIENT_DISTRIBUTION} in {environment.name} was not installed from a folder'
    origin = json.loads(client['direct_url'])
    assert origin.get('dir_info', {}).get('editable') is True, origin
    assert Path(unquote(urlsplit(origin['url']).path)).resolve() == clients.CLIENT, origin
    # The package may still be empty, but wherever it is imported from must be client/.
    spec = installed['modules'][CLIENT_PACKAGE]
    if spec is not None:
        origin_file, search_locations = spec
        places = [Path(place).resolve() for place in [*search_locations, *([origin_file] if origin_file else [])]]
        assert places and all(place.is_relative_to(clients.CLIENT) for place in places), spec


def test_the_client_declares_no_server_dependency(environment: ClientEnvironment, installed: dict) -> None:
    requires = installed['distributions'][CLIENT_DISTRIBUTION]['requires']
    declared = {canonicalize_name(Requirement(line).name) for line in requires}
    server = {canonicalize_name(name) for name in SERVER_PACKAGES}
    assert not declared & server, f'{CLIENT_DISTRIBUTION} requires {sorted(declared & server)}'


def test_no_server_package_is_installed(environment: ClientEnvironment, installed: dict) -> None:
    distributions = installed['distributions']
    allowed = BROUGHT_BY_JUPYTER.get(environment.name, {})
    found = []
    for name, module in SERVER_PACKAGES.items():
        if name in allowed and canonicalize_name(name) in distributions:
            # Present only because the named Jupyter package requires it.
            requirer = distributions.get(canonicalize_name(allowed[name]))
            assert requirer is not None, f'{name} is installed in {environment.name} but {allowed[name]} is not'
            required = {canonicalize_name(Requirement(line).name) for line in requirer['requires']}
            assert canonicalize_name(name) in required, f'{allowed[name]} no longer requires {name}'
        elif canonicalize_name(name) in distributions:
            found.append(f'{name} {distributions[canonicalize_name(name)]["version"]} is installed')
        elif installed['modules'][module] is not None:
            found.append(f'{module} is importable from {installed["modules"][module]}')
    assert not found, f'in {environment.name}: {"; ".join(found)}'
