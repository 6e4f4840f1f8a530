"""A real JupyterHub with ngshare_s3 as its managed service, and the people who use it.

The end-to-end suite starts JupyterHub 6 with the real configurable-http-proxy, registers
ngshare_s3 as the managed service at /services/ngshare/, creates Hub users with their own API
tokens, and gives each user a home folder with an nbgrader_config.py that points the
ngshare_exchange plugin at the service through the proxy, exactly as a deployment does.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest
import requests

import servers  # tests/ is on the path (tests/conftest.py)

from . import client_envs

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LOOPBACK = '127.0.0.1'
SERVICE_NAME = 'ngshare'
EXCHANGE_ADMIN = 'admin'
HUB_START_TIMEOUT = 90
COMMAND_TIMEOUT = 180


# --------------------------------------------------------------------------------------------
# Storage backends of the service: each one is a set of command-line arguments (and environment)
# for ngshare_s3. Adding a backend here runs the whole suite once more against it. One more,
# ngshare_0_6, replaces ngshare_s3 by the original ngshare for the stories that ask for it.
# --------------------------------------------------------------------------------------------


def ngshare_s3_program() -> list[str]:
    return [sys.executable, '-m', 'ngshare_s3']


@dataclass(frozen=True)
class ServiceStorage:
    """Where the service keeps its metadata and file bodies, as its command line says, and the
    program that serves the exchange (ngshare_s3 unless told otherwise)."""

    arguments: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    program: list[str] = field(default_factory=ngshare_s3_program)


def sqlite_and_local_files(request: pytest.FixtureRequest, folder: Path) -> ServiceStorage:
    """The embedded backends: an SQLite database and a plain directory of file bodies."""
    return ServiceStorage(
        arguments=[
            '--database', f'sqlite:///{folder / "ngshare.db"}',
            '--storage', str(folder / 'files'),
        ]
    )


def mongodb_and_minio(request: pytest.FixtureRequest, folder: Path) -> ServiceStorage:
    """The production backends on real servers: FerretDB (or MONGODB_URL) and MinIO (or
    AWS_ENDPOINT_URL), reached through the standard AWS environment."""
    mongodb, minio = request.getfixturevalue('mongodb'), request.getfixturevalue('minio_server')
    return ServiceStorage(
        arguments=['--database', mongodb.new_database_url(), '--storage', minio.new_location()],
        environment=minio.environment(),
    )


def ngshare_0_6(request: pytest.FixtureRequest, folder: Path) -> ServiceStorage:
    """The original ngshare 0.6.0 (from the virtualenv tests/clients.py builds) on SQLite and a
    directory, in place of ngshare_s3: it takes the same --admins, --database and --storage. It
    listens on 0.0.0.0 at the port of JUPYTERHUB_SERVICE_URL, whatever it is told."""
    python = client_envs.programs('ngshare-0.6.0') / 'python'
    return ServiceStorage(
        arguments=[
            '--database', f'sqlite:///{folder / "ngshare.db"}',
            '--storage', str(folder / 'files'),
        ],
        program=[str(python), '-m', 'ngshare'],
    )


STORAGE_BACKENDS = [
    pytest.param(sqlite_and_local_files, id='sqlite+files'),
    pytest.param(mongodb_and_minio, id='mongodb+minio'),
]


def ngshare_service_command(storage: ServiceStorage) -> list[str]:
    """The managed-service command line, as an administrator would put it in the Hub config."""
    return [*storage.program, '--admins', EXCHANGE_ADMIN, *storage.arguments]


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def free_loopback_port() -> int:
    """An unused port, chosen so that parallel runs and other services never collide."""
    return servers.free_port()


def find_program(name: str, *preferred: Path) -> str | None:
    """The first existing candidate, else whatever PATH offers."""
    for candidate in preferred:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def tail(text: str, lines: int = 300) -> str:
    return '\n'.join(text.splitlines()[-lines:])


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM to a process started in a session of its own and everything in its group; SIGKILL
    if it is still there after 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --------------------------------------------------------------------------------------------
# JupyterHub
# --------------------------------------------------------------------------------------------


@dataclass
class JupyterHub:
    """A running JupyterHub process (with its proxy and managed ngshare_s3) and its Hub API."""

    folder: Path
    public_url: str
    admin_token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def exchange_url(self) -> str:
        """The base URL users' nbgrader talks to: the service behind the public proxy."""
        return f'{self.public_url}/services/{SERVICE_NAME}'

    def log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the Hub REST API as the test-admin service (admin:users and tokens scopes)."""
        return requests.request(
            method,
            f'{self.public_url}/hub/api{path}',
            headers={'Authorization': f'token {self.admin_token}'},
            timeout=30,
            **kwargs,
        )

    def create_users(self, names: list[str]) -> None:
        response = self.hub_api('POST', '/users', json={'usernames': names})
        assert response.status_code == 201, f'creating Hub users failed: {response.status_code} {response.text}'
        assert sorted(user['name'] for user in response.json()) == sorted(names)

    def new_token(self, name: str) -> str:
        """A token of the user's own, scoped like a single-user server's token: no
        access:services, so the service must accept any valid Hub token."""
        response = self.hub_api(
            'POST',
            f'/users/{name}/tokens',
            json={'note': 'nbgrader exchange client', 'scopes': ['users:activity!user']},
        )
        assert response.status_code == 201, f'creating a token for {name} failed: {response.text}'
        return response.json()['token']

    def who_owns(self, token: str) -> str:
        response = requests.get(
            f'{self.public_url}/hub/api/user',
            headers={'Authorization': f'token {token}'},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()['name']

    def stop(self) -> None:
        """Stop the Hub, then anything it started that outlived it (proxy, managed service).

        The proxy and the managed service run in sessions of their own, so signalling the Hub's
        process group alone would not reach them; they are found as the Hub's descendants."""
        try:
            descendants = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        stop_process_group(self.process)
        for process in descendants:
            try:
                process.terminate()
            except psutil.NoSuchProcess:
                pass
        _, still_running = psutil.wait_procs(descendants, timeout=10)
        for process in still_running:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


@dataclass(frozen=True)
class HubAddresses:
    """Where the Hub's processes listen on 127.0.0.1: the public proxy, the proxy's REST API
    and the Hub itself (whose API services call)."""

    public_port: int
    proxy_api_port: int
    hub_port: int

    @classmethod
    def pick(cls) -> HubAddresses:
        return cls(free_loopback_port(), free_loopback_port(), free_loopback_port())

    @property
    def public_url(self) -> str:
        return f'http://{LOOPBACK}:{self.public_port}'

    @property
    def hub_api_url(self) -> str:
        """What JUPYTERHUB_API_URL says to a service that calls the Hub directly."""
        return f'http://{LOOPBACK}:{self.hub_port}/hub/api'


ADMIN_SERVICE = 'test-admin'
# The API-only service the tests create users and tokens with.
PROVISIONING_ROLE = {'name': 'user-provisioning', 'scopes': ['admin:users', 'tokens'], 'services': [ADMIN_SERVICE]}
USER_ROLE = {'name': 'user', 'scopes': ['self', f'access:services!service={SERVICE_NAME}']}


def admin_service(admin_token: str) -> dict:
    return {'name': ADMIN_SERVICE, 'api_token': admin_token}


def write_jupyterhub_config(
    folder: Path, addresses: HubAddresses, proxy: str, services: list[dict], load_roles: list[dict]
) -> Path:
    """A jupyterhub_config.py on 127.0.0.1 with the dummy authenticator and the given
    c.JupyterHub.services and c.JupyterHub.load_roles (both plain JSON data)."""
    settings = {
        'public_port': addresses.public_port,
        'proxy_api_port': addresses.proxy_api_port,
        'hub_port': addresses.hub_port,
        'proxy': proxy,
        'folder': str(folder),
        'services': services,
        'load_roles': load_roles,
    }
    config = folder / 'jupyterhub_config.py'
    config.write_text(
        textwrap.dedent(
            f'''\
            import json
            settings = json.loads({json.dumps(json.dumps(settings))})
            c = get_config()
            c.JupyterHub.ip = {LOOPBACK!r}
            c.JupyterHub.port = settings['public_port']
            c.JupyterHub.hub_ip = {LOOPBACK!r}
            c.JupyterHub.hub_port = settings['hub_port']
            c.ConfigurableHTTPProxy.api_url = 'http://{LOOPBACK}:%d' % settings['proxy_api_port']
            c.ConfigurableHTTPProxy.command = [settings['proxy']]
            c.JupyterHub.db_url = 'sqlite:///' + settings['folder'] + '/jupyterhub.sqlite'
            c.JupyterHub.cookie_secret_file = settings['folder'] + '/jupyterhub_cookie_secret'
            c.JupyterHub.authenticator_class = 'dummy'
            c.Authenticator.allow_all = True
            c.JupyterHub.services = settings['services']
            c.JupyterHub.load_roles = settings['load_roles']
            '''
        )
    )
    return config


def write_hub_config(
    folder: Path, storage: ServiceStorage, admin_token: str, proxy: str, extra_services: list[dict] = ()
) -> tuple[Path, str]:
    """A jupyterhub_config.py with the exchange (`storage.program`) as managed service, an
    API-only admin service and any `extra_services` (more c.JupyterHub.services entries)."""
    addresses = HubAddresses.pick()
    service_port = free_loopback_port()
    service_folder = folder / 'service'
    service_folder.mkdir(exist_ok=True)  # a Hub restarted on the same folder keeps it
    service = {
        'name': SERVICE_NAME,
        'url': f'http://{LOOPBACK}:{service_port}',
        'command': ngshare_service_command(storage),
        'cwd': str(service_folder),
        'environment': storage.environment,
        'timeout': HUB_START_TIMEOUT,
        'oauth_no_confirm': True,
    }
    config = write_jupyterhub_config(
        folder, addresses, proxy, [service, admin_service(admin_token), *extra_services], [PROVISIONING_ROLE, USER_ROLE]
    )
    return config, addresses.public_url


def wait_until_serving(hub: JupyterHub) -> None:
    """Wait for the Hub API and then the service's health check, both through the proxy."""
    deadline = time.monotonic() + HUB_START_TIMEOUT
    checks = [
        (f'{hub.public_url}/hub/api/', lambda r: r.status_code == 200),
        (
            f'{hub.exchange_url}/healthz',
            lambda r: r.status_code == 200 and r.json().get('success') is True,
        ),
    ]
    for url, is_ready in checks:
        last = 'no answer'
        while True:
            if hub.process.poll() is not None:
                raise RuntimeError(
                    f'JupyterHub exited with {hub.process.returncode} while waiting for {url}\n'
                    + tail(hub.log())
                )
            try:
                response = requests.get(url, timeout=5)
                if is_ready(response):
                    break
                last = f'{response.status_code} {response.text[:200]}'
            except (requests.ConnectionError, requests.Timeout, ValueError) as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f'{url} not ready after {HUB_START_TIMEOUT} s (last: {last})\n' + tail(hub.log())
                )
            time.sleep(0.25)


@pytest.fixture(scope='module', params=STORAGE_BACKENDS)
def service_storage(request, tmp_path_factory) -> ServiceStorage:
    """The service's --database/--storage settings; one run of the suite per backend."""
    make_storage: Callable[[pytest.FixtureRequest, Path], ServiceStorage] = request.param
    return make_storage(request, tmp_path_factory.mktemp('service-data'))


def jupyterhub_programs() -> tuple[str, str]:
    """The jupyterhub and configurable-http-proxy programs, or skip saying which is missing."""
    hub_program = find_program('jupyterhub', VENV_BIN / 'jupyterhub')
    proxy_program = find_program(
        'configurable-http-proxy', REPO_ROOT / 'node_modules' / '.bin' / 'configurable-http-proxy'
    )
    programs = {'jupyterhub': hub_program, 'configurable-http-proxy': proxy_program}
    missing = [name for name, found in programs.items() if not found]
    if missing:
        reason = f'end-to-end tests need {" and ".join(missing)} (`make install` provides them)'
        print(f'\nSKIPPED: {reason}')
        pytest.skip(reason)
    return hub_program, proxy_program


def start_jupyterhub(
    hub_program: str, proxy_program: str, folder: Path, config: Path, public_url: str, admin_token: str
) -> JupyterHub:
    """Start the Hub (which starts its proxy) in a session of its own; wait_until_serving next."""
    log_path = folder / 'jupyterhub.log'
    env = dict(os.environ)
    env['PATH'] = os.pathsep.join([str(VENV_BIN), str(Path(proxy_program).parent), env.get('PATH', '')])
    with open(log_path, 'wb') as log_file:
        process = subprocess.Popen(
            [hub_program, '-f', str(config)],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return JupyterHub(folder, public_url, admin_token, process, log_path)


@pytest.fixture(scope='module')
def extra_hub_services() -> list[dict]:
    """More c.JupyterHub.services entries for the module's Hub; a test module that needs some
    overrides this fixture."""
    return []


@contextlib.contextmanager
def serving_jupyterhub(
    folder: Path, storage: ServiceStorage, admin_token: str, extra_services: list[dict] = ()
) -> Iterator[JupyterHub]:
    """JupyterHub in `folder` with the exchange on `storage` as its managed service, serving
    until the block ends. A Hub started again on the same folder keeps its users and tokens."""
    hub_program, proxy_program = jupyterhub_programs()
    config, public_url = write_hub_config(folder, storage, admin_token, proxy_program, extra_services)
    hub = start_jupyterhub(hub_program, proxy_program, folder, config, public_url, admin_token)
    try:
        wait_until_serving(hub)
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope='module')
def jupyterhub(service_storage, extra_hub_services, tmp_path_factory):
    """JupyterHub 6 + configurable-http-proxy + ngshare_s3 as managed service, torn down after."""
    folder = tmp_path_factory.mktemp('jupyterhub')
    with serving_jupyterhub(folder, service_storage, secrets.token_hex(32), extra_hub_services) as hub:
        yield hub


# --------------------------------------------------------------------------------------------
# Users of the exchange
# --------------------------------------------------------------------------------------------


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    output: str

    def __str__(self) -> str:
        return f'$ {" ".join(self.argv)}  (exit {self.returncode})\n{self.output}'


@dataclass
class ExchangeUser:
    """A Hub user with their own token and home folder, driving nbgrader as a subprocess."""

    name: str
    token: str
    home: Path
    hub: JupyterHub
    transcript: list[CommandResult]
    programs: Path = VENV_BIN  # the bin folder of the environment nbgrader runs from

    def environment(self) -> dict[str, str]:
        """What a single-user server gives nbgrader: the user's name and token, their own home."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(('JUPYTER', 'XDG_', 'PYTHONPATH', 'CONFIGPROXY'))
        }
        env.update(
            HOME=str(self.home),
            USER=self.name,
            JUPYTERHUB_USER=self.name,
            JUPYTERHUB_API_TOKEN=self.token,
            PATH=os.pathsep.join([str(self.programs), env.get('PATH', '')]),
            PYDEVD_DISABLE_FILE_VALIDATION='1',
        )
        return env

    def run(self, *argv: str) -> CommandResult:
        """Run a command in the user's home folder; the result is kept for failure reports."""
        completed = subprocess.run(
            list(argv),
            cwd=self.home,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        result = CommandResult([Path(argv[0]).name, *argv[1:]], completed.returncode, completed.stdout)
        self.transcript.append(result)
        return result

    def nbgrader(self, *args: str) -> CommandResult:
        return self.run(str(self.programs / 'nbgrader'), *args)

    def course_management(self, *args: str) -> CommandResult:
        return self.run(str(self.programs / 'ngshare-course-management'), *args)

    def api(self, method: str, route: str, **kwargs) -> requests.Response:
        """Call the exchange API directly with this user's token, as ngshare_exchange does."""
        return requests.request(
            method,
            f'{self.hub.exchange_url}{route}',
            headers={'Authorization': f'token {self.token}'},
            timeout=30,
            **kwargs,
        )

    def api_ok(self, method: str, route: str, **kwargs) -> dict:
        """An API call that must succeed; returns the decoded envelope."""
        response = self.api(method, route, **kwargs)
        assert response.status_code == 200, f'{method} {route} as {self.name}: {response.status_code} {response.text[:500]}'
        body = response.json()
        assert body['success'] is True, f'{method} {route} as {self.name}: {body}'
        return body


def write_nbgrader_config(home: Path, exchange_url: str, course_id: str) -> None:
    """The configuration a deployment gives each user: ngshare_exchange pointed at the proxy."""
    (home / 'nbgrader_config.py').write_text(
        textwrap.dedent(
            f'''\
            from ngshare_exchange import configureExchange
            c = get_config()
            configureExchange(c, {exchange_url!r})
            c.CourseDirectory.course_id = {course_id!r}
            '''
        )
    )


@dataclass
class Classroom:
    """Everybody taking part, by name, plus what the shared steps learned along the way."""

    hub: JupyterHub
    users: dict[str, ExchangeUser]
    transcript: list[CommandResult]
    facts: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> ExchangeUser:
        return self.users[name]


# Who plays which part, and which course their nbgrader_config.py names.
PEOPLE = {
    EXCHANGE_ADMIN: 'course101',
    'instructor1': 'course101',
    'student1': 'course101',
    'student2': 'course101',
    'outsider': 'course202',
}


def make_classroom(
    hub: JupyterHub,
    people: dict[str, str],
    homes: Path,
    configure: Callable[[Path, str], None] | None = None,
    programs: Path = VENV_BIN,
) -> Classroom:
    """Hub users (created through the Hub REST API), each with a token and a home folder that
    `configure(home, course_id)` prepares; by default an nbgrader_config.py pointing at the
    service behind the Hub's public proxy and naming the course `people` gives them. Their
    nbgrader runs from the environment whose bin folder is `programs`."""
    hub.create_users(list(people))
    transcript: list[CommandResult] = []
    users = {}
    for name, course_id in people.items():
        token = hub.new_token(name)
        assert hub.who_owns(token) == name
        home = homes / name
        home.mkdir()
        if configure is None:
            write_nbgrader_config(home, hub.exchange_url, course_id)
        else:
            configure(home, course_id)
        users[name] = ExchangeUser(name, token, home, hub, transcript, programs)
    return Classroom(hub, users, transcript)


@pytest.fixture(scope='module')
def classroom(jupyterhub, tmp_path_factory) -> Classroom:
    """Hub users (created through the Hub REST API), each with a token and a home folder."""
    return make_classroom(jupyterhub, PEOPLE, tmp_path_factory.mktemp('homes'))


# --------------------------------------------------------------------------------------------
# Reporting: steps run in order and stop at the first failure; failures show the Hub's log
# and the last commands users ran.
# --------------------------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line('markers', 'steps: tests of a module are consecutive steps of one story')


_failed_step: dict[tuple, str] = {}


def _story_key(item) -> tuple:
    callspec = getattr(item, 'callspec', None)
    return (item.module.__name__, callspec.id if callspec else '')


def pytest_runtest_setup(item):
    if item.get_closest_marker('steps'):
        failed = _failed_step.get(_story_key(item))
        if failed:
            pytest.skip(f'an earlier step failed: {failed}')


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        if item.get_closest_marker('steps') and call.when != 'teardown':
            _failed_step.setdefault(_story_key(item), item.name)
        classroom = item.funcargs.get('classroom')
        if classroom is not None and classroom.transcript:
            report.sections.append(
                ('last commands', '\n\n'.join(str(result) for result in classroom.transcript[-6:]))
            )
        hub = item.funcargs.get('jupyterhub') or (classroom.hub if classroom else None)
        if hub is not None:
            report.sections.append(('JupyterHub log (with the service and proxy)', tail(hub.log())))
        for value in item.funcargs.values():
            failure_sections = getattr(value, 'failure_sections', None)
            if callable(failure_sections):
                report.sections.extend(failure_sections())
    return report
