"""The docker compose trial stack's topology on 127.0.0.1, configured from docker-compose.yml.

The same processes as the Kubernetes topology (test_deployment_topology.py), but every setting
comes from the compose file as Docker Compose resolves it (compose-go, with .env.example):
- FerretDB as `mongodb` and MinIO as `minio`, the session's servers;
- the `init` service's entrypoint script with its environment: the bucket and the auditor;
- `ngshare-1` and `ngshare-2` with their environment, one round-robin address in front of them
  standing in for their shared network alias;
- a real JupyterHub loading docker/hub/jupyterhub_config.py with the `hub` service's
  environment, and users whose nbgrader (0.9 with ngshare-s3-exchange, the hub image's
  single-user environment) reads docker/singleuser/nbgrader_config.py.
Only what differs outside containers changes: the hosts mongodb, minio and hub become
127.0.0.1 ports, the S3 credentials and database are the session servers', the bucket is new.

The story's steps are the Kubernetes topology's (imported below and run here against this
stack): courses set up, a release fetched, a replica stopped with SIGTERM mid-submission,
collection and feedback through the survivor. Then the auditor the init step created can read
the submissions and cannot change them.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from . import client_envs
from . import test_deployment_topology as kubernetes
from .conftest import (
    ADMIN_SERVICE,
    LOOPBACK,
    PROVISIONING_ROLE,
    REPO_ROOT,
    SERVICE_NAME,
    Classroom,
    HubAddresses,
    admin_service,
    free_loopback_port,
    jupyterhub_programs,
    make_classroom,
    start_jupyterhub,
    wait_until_serving,
)
from .test_deployment_topology import PEOPLE, REPLICA_START_TIMEOUT, USER_ENVIRONMENT, Deployment
from .topology import Replica, RoundRobinBalancer, container_environment
from .z2jh import redirect_url

sys.path.insert(0, str(REPO_ROOT / 'tests' / 'compose'))
import compose_project  # noqa: E402  (tests/compose is not a package)

pytestmark = pytest.mark.steps

HUB_CONFIG = REPO_ROOT / 'docker' / 'hub' / 'jupyterhub_config.py'
USER_CONFIG = REPO_ROOT / 'docker' / 'singleuser' / 'nbgrader_config.py'
REPLICAS = ('ngshare-1', 'ngshare-2')
# Where users' servers reach the proxy in the hub container.
PUBLIC_IN_CONTAINER = 'http://127.0.0.1:8000'


def on_loopback(environment: dict[str, str], *, database: str, bucket: str, s3, hub: HubAddresses | None) -> dict[str, str]:
    """A service's compose environment with the compose network's hosts replaced by the
    session's servers on 127.0.0.1 (each replaced value is checked to name that host first)."""
    local = dict(environment)
    if 'NGSHARE_S3_DATABASE' in local:
        assert urlsplit(local['NGSHARE_S3_DATABASE']).hostname == 'mongodb', local['NGSHARE_S3_DATABASE']
        local['NGSHARE_S3_DATABASE'] = database
    assert urlsplit(local['AWS_ENDPOINT_URL']).hostname == 'minio', local['AWS_ENDPOINT_URL']
    assert local['NGSHARE_S3_STORAGE'].startswith('s3://')
    local.update(
        NGSHARE_S3_STORAGE=f's3://{bucket}/{local["NGSHARE_S3_STORAGE"].removeprefix("s3://").partition("/")[2]}',
        AWS_ENDPOINT_URL=s3.endpoint_url, AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
    )
    if hub is not None:
        assert urlsplit(local['JUPYTERHUB_API_URL']).hostname == 'hub', local['JUPYTERHUB_API_URL']
        local['JUPYTERHUB_API_URL'] = redirect_url(local['JUPYTERHUB_API_URL'], hub.hub_api_url)
    return local


def run_init(service: dict, environment: dict[str, str], folder: Path) -> str:
    """The init service's entrypoint, `sh <script>`, where the script is the file the service
    mounts at that path."""
    shell, mounted = service['entrypoint']
    (volume,) = [v for v in service['volumes'] if v['target'] == mounted]
    assert shell == 'sh' and volume['type'] == 'bind' and volume.get('read_only')
    folder.mkdir()
    result = subprocess.run([shell, volume['source']], env=container_environment(folder, environment), cwd=folder,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f'the init step failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout


def write_hub_config(folder: Path, addresses: HubAddresses, proxy: str, admin_token: str) -> Path:
    """docker/hub/jupyterhub_config.py itself, then only what differs on 127.0.0.1 (addresses,
    the database file, the proxy program) and the test's own API service."""
    config = folder / 'jupyterhub_config.py'
    config.write_text(
        f'exec(compile(open({str(HUB_CONFIG)!r}).read(), {str(HUB_CONFIG)!r}, "exec"))\n'
        f'c.JupyterHub.bind_url = {addresses.public_url!r}\n'
        f'c.JupyterHub.hub_bind_url = "http://{LOOPBACK}:{addresses.hub_port}"\n'
        f'c.JupyterHub.hub_connect_url = "http://{LOOPBACK}:{addresses.hub_port}"\n'
        f'c.ConfigurableHTTPProxy.api_url = "http://{LOOPBACK}:{addresses.proxy_api_port}"\n'
        f'c.ConfigurableHTTPProxy.command = [{proxy!r}]\n'
        f'c.JupyterHub.db_url = "sqlite:///{folder}/jupyterhub.sqlite"\n'
        f'c.JupyterHub.services.append({admin_service(admin_token)!r})\n'
        f'c.JupyterHub.load_roles.append({PROVISIONING_ROLE!r})\n'
        f'c.JupyterHub.load_roles.append({{"name": "service-inspection", "scopes": ["read:services"], '
        f'"services": [{ADMIN_SERVICE!r}]}})\n'
    )
    return config


@pytest.fixture(scope='module')
def deployment(tmp_path_factory, mongodb, minio_server):
    hub_program, proxy_program = jupyterhub_programs()
    project = compose_project.resolved()
    services = project['services']
    folder = tmp_path_factory.mktemp('compose')
    addresses = HubAddresses.pick()
    admin_token = secrets.token_hex(32)
    bucket = minio_server.new_bucket_name()
    local = dict(database=mongodb.new_database_url(), bucket=bucket, s3=minio_server)

    init_output = run_init(services['init'], on_loopback(services['init']['environment'], hub=None, **local),
                           folder / 'init')
    minio_server.created_buckets.append(bucket)

    environments = [services[name]['environment'] for name in REPLICAS]
    assert environments[0] == environments[1]
    replicas = []
    for name in REPLICAS:
        replica_folder = folder / name
        replica_folder.mkdir()
        port = free_loopback_port()
        variables = on_loopback(services[name]['environment'], hub=addresses, **local)
        variables.update(NGSHARE_S3_HOST=LOOPBACK, NGSHARE_S3_PORT=str(port))
        replicas.append(Replica(name, port, container_environment(replica_folder, variables), replica_folder, '/healthz'))

    balancer = RoundRobinBalancer([replica.port for replica in replicas])
    hub = None
    try:
        balancer.start()
        for replica in replicas:
            replica.start(REPLICA_START_TIMEOUT)
        hub_environment = dict(services['hub']['environment'])
        assert urlsplit(hub_environment['NGSHARE_URL']).hostname == SERVICE_NAME
        hub_environment['NGSHARE_URL'] = redirect_url(hub_environment['NGSHARE_URL'], balancer.url)
        config = write_hub_config(folder, addresses, proxy_program, admin_token)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in hub_environment.items():
                patch.setenv(key, value)
            hub = start_jupyterhub(hub_program, proxy_program, folder, config, addresses.public_url, admin_token)
        wait_until_serving(hub)
        grace = float(environments[0]['NGSHARE_S3_GRACE_PERIOD'])
        yield Deployment(hub, balancer, replicas, {}, [], grace,
                         {'project': project, 'bucket': bucket, 'init output': init_output, 's3': minio_server})
    finally:
        if hub is not None:
            hub.stop()
        for replica in replicas:
            replica.stop()
        balancer.stop()


@pytest.fixture(scope='module')
def classroom(deployment, tmp_path_factory) -> Classroom:
    """Users whose nbgrader reads the image's /etc/jupyter/nbgrader_config.py (here in
    ~/.jupyter), with the proxy's address in the container replaced by the Hub's."""
    text = USER_CONFIG.read_text()
    assert f'{PUBLIC_IN_CONTAINER}/services/{SERVICE_NAME}' in text
    text = text.replace(PUBLIC_IN_CONTAINER, deployment.hub.public_url)

    def configure(home: Path, course_id: str) -> None:
        (home / '.jupyter').mkdir()
        (home / '.jupyter' / 'nbgrader_config.py').write_text(text)
        (home / 'nbgrader_config.py').write_text(f'c = get_config()\nc.CourseDirectory.course_id = {course_id!r}\n')

    # The configuration's Hub admin exists from the start; make_classroom creates every user
    # itself, so it is removed first (the exchange's admin comes from NGSHARE_S3_ADMINS anyway).
    admin = deployment.hub.hub_api('GET', '/users/admin')
    assert admin.status_code == 200 and admin.json()['admin'] is True, admin.text
    assert deployment.hub.hub_api('DELETE', '/users/admin').status_code == 204
    return make_classroom(
        deployment.hub, PEOPLE, tmp_path_factory.mktemp('homes'), configure, client_envs.programs(USER_ENVIRONMENT)
    )


def auditor_client(deployment):
    s3 = deployment.facts['s3']
    init = deployment.facts['project']['services']['init']['environment']
    auditor = type(s3)(s3.name, s3.endpoint_url, init['AUDITOR_USER'], init['AUDITOR_PASSWORD'], s3.region)
    return auditor.client()


def test_1_hub_replicas_and_init_are_configured_as_the_compose_file_says(deployment, classroom):
    # The Hub knows the service from docker/hub/jupyterhub_config.py, at the one address.
    response = deployment.hub.hub_api('GET', f'/services/{SERVICE_NAME}')
    assert response.status_code == 200, response.text
    described = response.json()
    assert described['url'] == deployment.balancer.url and described['prefix'] == f'/services/{SERVICE_NAME}/'
    for replica in deployment.replicas:
        identity = requests.get(f'{deployment.hub.public_url}/hub/api/user', timeout=30,
                                headers={'Authorization': f'token {replica.environment["JUPYTERHUB_API_TOKEN"]}'})
        assert identity.status_code == 200 and identity.json()['name'] == SERVICE_NAME, identity.text
        assert replica.environment['JUPYTERHUB_SERVICE_PREFIX'] == described['prefix']
    health = requests.get(f'{deployment.hub.exchange_url}/healthz', timeout=30)
    assert health.status_code == 200 and health.json()['success'] is True, health.text

    # The init step made the bucket and an auditor who can list it (empty so far).
    assert f'Created bucket {deployment.facts["bucket"]}.' in deployment.facts['init output']
    listing = auditor_client(deployment).list_objects_v2(Bucket=deployment.facts['bucket'])
    assert listing.get('KeyCount', 0) == 0


# The Kubernetes topology's steps, run against this stack. Imported here, after step 1, because
# pytest runs a module's tests in the order their names appear in it.
from .test_deployment_topology import (  # noqa: E402,F401
    test_2_admin_sets_up_the_course,
    test_3_instructor_releases_and_students_fetch,
    test_4_submissions_outlive_a_replica_stopping,
    test_5_instructor_collects_grades_and_returns_feedback_through_the_survivor,
)


def test_6_the_auditor_reads_the_submissions_and_cannot_change_them(deployment, classroom):
    auditor, bucket = auditor_client(deployment), deployment.facts['bucket']
    keys = [item['Key'] for page in auditor.get_paginator('list_objects_v2').paginate(Bucket=bucket)
            for item in page.get('Contents', [])]
    for name in kubernetes.STUDENTS:
        submitted = [key for key in keys if f'/submissions/{name}/' in key and key.endswith(kubernetes.DATA_FILE)]
        assert len(submitted) == 1, (name, keys)
        body = auditor.get_object(Bucket=bucket, Key=submitted[0])['Body'].read()
        assert hashlib.sha256(body).hexdigest() == deployment.facts['data sha256'][name]
    for attempt in (lambda: auditor.put_object(Bucket=bucket, Key='courses/forged.txt', Body=b'x'),
                    lambda: auditor.delete_object(Bucket=bucket, Key=keys[0])):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response['Error']['Code'] == 'AccessDenied'


