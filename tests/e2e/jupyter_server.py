"""A user's own Jupyter server, run from a client environment the way their single-user server
runs it: their home as root folder, their Hub name and token in the environment, on 127.0.0.1
with a token. nbgrader's server extensions (the Assignments panel's /assignments routes and the
formgrader's /formgrader/api) are enabled in the environment's jupyter_server_config.d."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

import servers  # tests/ is on the path (tests/conftest.py)

from .conftest import LOOPBACK, ExchangeUser, stop_process_group, tail

START_TIMEOUT = 90  # seconds, on a busy two-core machine
REQUEST_TIMEOUT = 180  # an exchange operation behind one request can run nbgrader's converters
NBGRADER_EXTENSIONS = ('assignment_list', 'formgrader')


@dataclass
class JupyterServer:
    """A running `jupyter server` and an HTTP session that authenticates with its token, as the
    JupyterLab front end does (token-authenticated requests need no XSRF cookie)."""

    user: ExchangeUser
    process: subprocess.Popen
    url: str
    token: str
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def start(cls, user: ExchangeUser, log_path: Path, program: str = 'jupyter-server') -> JupyterServer:
        """Start `program` (jupyter-server, or jupyter-lab for the Lab front end) and wait for it."""
        port, token = servers.free_port(), secrets.token_hex(16)
        command = [
            str(user.programs / program), '--no-browser',
            f'--ServerApp.ip={LOOPBACK}', f'--ServerApp.port={port}', '--ServerApp.port_retries=0',
            f'--ServerApp.root_dir={user.home}', f'--ServerApp.token={token}',
        ]
        if os.geteuid() == 0:  # test containers often run as root, which Jupyter refuses by default
            command.append('--allow-root')
        with open(log_path, 'wb') as log:
            process = subprocess.Popen(
                command, cwd=user.home, env=user.environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        server = cls(user, process, f'http://{LOOPBACK}:{port}', token, log_path)
        server.session.headers['Authorization'] = f'token {token}'
        try:
            server.wait_until_serving()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_until_serving(self) -> None:
        """Wait for /api/status, then check that nbgrader's extensions were loaded."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f'jupyter server exited with {self.process.returncode}\n{self.log()}')
            try:
                if self.session.get(f'{self.url}/api/status', timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f'jupyter server at {self.url} did not answer in {START_TIMEOUT} s\n{self.log()}')
            time.sleep(0.25)
        log = self.log_path.read_text(errors='replace')
        for extension in NBGRADER_EXTENSIONS:
            loaded = f'nbgrader.server_extensions.{extension} | extension was successfully loaded'
            assert loaded in log, f'nbgrader\'s {extension} server extension is not enabled\n{self.log()}'

    def call(self, method: str, route: str, **kwargs) -> dict:
        """A request to one of the server's JSON routes; the answer must be HTTP 200 with JSON."""
        response = self.session.request(method, self.url + route, timeout=REQUEST_TIMEOUT, **kwargs)
        what = f'{method} {route} as {self.user.name}: HTTP {response.status_code}'
        assert response.status_code == 200, f'{what}\n{response.text[:2000]}\n{self.log()}'
        return response.json()

    def log(self) -> str:
        return tail(self.log_path.read_text(errors='replace'), 150) if self.log_path.exists() else ''

    def failure_sections(self) -> list[tuple[str, str]]:
        return [(f'{self.process.args[0]} log of {self.user.name}', self.log())]

    def stop(self) -> None:
        stop_process_group(self.process)
