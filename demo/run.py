"""Run a local JupyterHub with ngshare_s3 as its exchange service, to try nbgrader against it.

    make demo                          # installs what it needs, then runs this file
    .venv/bin/python demo/run.py --reset   # the same, starting from an empty .demo/
    .venv/bin/python demo/run.py --production   # make demo DEMO_ARGS=--production

With --production the exchange runs as a deployment would run it: MongoDB (FerretDB) and
MinIO (built by `make install`), two ngshare_s3 replicas behind one address, MinIO's console
on 127.0.0.1:9001 and a read-only auditor account (see demo/production.py).

All state lives in .demo/: the Hub's database and cookie secret, the exchange's database
(ngshare.db) and files (files/) or, with --production, its servers' data (production/), and
each user's home (home/<user>). Ctrl-C stops the Hub,
which stops its proxy, the exchange service and the users' servers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".demo"
HUB_URL = "http://127.0.0.1:8000"
HUB_API = "http://127.0.0.1:8081/hub/api"
EXCHANGE_URL = f"{HUB_URL}/services/ngshare"
PASSWORD = "demo"
COURSE = "course101"
USERS = ["admin", "instructor1", "student1", "student2"]
PORTS = {8000: "the Hub's proxy", 8001: "the proxy's API", 8081: "the Hub", 10101: "ngshare_s3"}

NBGRADER_CONFIG = f"""\
from ngshare_exchange import configureExchange

c = get_config()
configureExchange(c, {EXCHANGE_URL!r})
c.CourseDirectory.course_id = {COURSE!r}
"""


def grader_cell(source: str, **nbgrader: object) -> nbformat.NotebookNode:
    meta = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False}
    return new_code_cell(source, metadata={"nbgrader": {**meta, **nbgrader}})


def sample_assignment() -> nbformat.NotebookNode:
    """One answer cell and one test cell: enough for generate, autograde and feedback."""
    notebook = new_notebook(
        cells=[
            new_markdown_cell("Write `squares(n)`, the list of the squares of 1 to n."),
            grader_cell(
                "def squares(n):\n"
                "    ### BEGIN SOLUTION\n"
                "    return [i * i for i in range(1, n + 1)]\n"
                "    ### END SOLUTION",
                grade_id="squares",
                solution=True,
            ),
            grader_cell(
                "assert squares(3) == [1, 4, 9]",
                grade_id="test_squares",
                grade=True,
                locked=True,
                points=1,
            ),
        ]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def prepare_homes() -> None:
    for user in USERS:
        home = STATE / "home" / user
        home.mkdir(parents=True, exist_ok=True)
        (home / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    source = STATE / "home" / "instructor1" / "source" / "ps1" / "squares.ipynb"
    if not source.exists():
        source.parent.mkdir(parents=True)
        nbformat.write(sample_assignment(), source)


def busy_ports(ports: dict[int, str]) -> list[str]:
    busy = []
    for port, what in ports.items():
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(f"127.0.0.1:{port} ({what})")
    return busy


def call(method: str, url: str, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, data, timeout=10) as response:
        return json.load(response)


def wait_for(url: str, hub: subprocess.Popen, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            call("GET", url)
            return True
        except (OSError, ValueError):
            time.sleep(0.5)
    return False


def user_tokens(launcher_token: str) -> dict[str, str]:
    """A fresh API token per user, for running nbgrader from a terminal outside the Hub."""
    return {
        user: call(
            "POST",
            f"{HUB_API}/users/{user}/tokens",
            launcher_token,
            {"note": "nbgrader from a terminal (demo)"},
        )["token"]
        for user in USERS
    }


def stop_orphaned_proxy() -> None:
    """The Hub removes the proxy's pid file when it stops the proxy; if the Hub exits early
    (e.g. its managed service failed), the file is left and names a proxy still running."""
    pid_file = STATE / "jupyterhub-proxy.pid"
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"configurable-http-proxy" in cmdline:
        os.kill(pid, signal.SIGTERM)
    pid_file.unlink()


def recipe(tokens: dict[str, str], production: str = "") -> str:
    venv_bin = Path(sys.executable).parent
    shells = "\n".join(
        f"  {user}:\n"
        f"    cd {STATE / 'home' / user} && export HOME=$PWD PATH={venv_bin}:$PATH "
        f"JUPYTERHUB_USER={user} JUPYTERHUB_API_TOKEN={token}"
        for user, token in tokens.items()
    )
    return f"""
========================================================================================
The demo is running.

  JupyterHub  {HUB_URL}   users: {", ".join(USERS)}   password: {PASSWORD}
  ngshare_s3  {EXCHANGE_URL}/   (health check: {EXCHANGE_URL}/healthz)
  state       {STATE}   (start again with --reset to wipe it)
{production}
Try nbgrader against the exchange, as several users. Either log in as each user at
{HUB_URL} and open a Terminal (File > New > Terminal; it is already set up), or open
one terminal per user on this machine and paste that user's line:

{shells}

Then run, each as the user on the left (instructor1 has a sample assignment, ps1):

  admin        ngshare-course-management create_course {COURSE} instructor1
  instructor1  ngshare-course-management add_student {COURSE} student1
  instructor1  ngshare-course-management add_student {COURSE} student2
  instructor1  nbgrader generate_assignment ps1
  instructor1  nbgrader release_assignment ps1
  student1     nbgrader list
  student1     nbgrader fetch_assignment ps1      (then edit ps1/squares.ipynb if you like)
  student1     nbgrader submit ps1
  instructor1  nbgrader list --inbound
  instructor1  nbgrader collect ps1
  instructor1  nbgrader autograde ps1
  instructor1  nbgrader generate_feedback ps1
  instructor1  nbgrader release_feedback ps1
  student1     nbgrader fetch_feedback ps1        (feedback lands in ps1/feedback/)

Ctrl-C stops everything.
========================================================================================
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reset", action="store_true", help="wipe .demo/ first")
    parser.add_argument(
        "--production",
        action="store_true",
        help="run the exchange on MinIO + FerretDB, two replicas behind one address, "
        "with MinIO's console and a read-only auditor account",
    )
    args = parser.parse_args()

    ports = dict(PORTS)
    if args.production:
        from production import CONSOLE_PORT

        del ports[10101]
        ports[CONSOLE_PORT] = "MinIO's console"
    busy = busy_ports(ports)
    if busy:
        print("The demo needs these ports, which are in use:", *busy, sep="\n  ", file=sys.stderr)
        return 1
    if args.reset and STATE.exists():
        shutil.rmtree(STATE)
    STATE.mkdir(exist_ok=True)
    prepare_homes()

    launcher_token = secrets.token_hex(32)
    env = dict(os.environ, DEMO_LAUNCHER_TOKEN=launcher_token)
    stack = None
    service_url = "http://127.0.0.1:10101"
    if args.production:
        from production import Stack
        from servers import ServerUnavailable

        stack = Stack(STATE / "production", secrets.token_hex(32), HUB_API)
        try:
            stack.start()
        except (ServerUnavailable, RuntimeError, subprocess.CalledProcessError) as error:
            stack.stop()
            print(f"The production-like exchange did not start: {error}", file=sys.stderr)
            return 1
        service_url = stack.exchange_url
        env.update(DEMO_EXCHANGE_URL=service_url, DEMO_EXCHANGE_TOKEN=stack.service_token)
    # The proxy and nbgrader's commands must be found however this file was started.
    env["PATH"] = os.pathsep.join(
        [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), env.get("PATH", "")]
    )
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "demo" / "jupyterhub_config.py")],
        cwd=STATE,
        env=env,
        start_new_session=True,  # Ctrl-C reaches this process only; it stops the Hub once
    )

    def stop(signum: int, frame: object) -> None:
        # Once only: a second signal (make forwards SIGTERM too) would start a second cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        # The Hub's API, then the service it starts, then the proxy's route to that service.
        ready = (
            wait_for(f"{HUB_API}/", hub, 60)
            and wait_for(f"{service_url}/healthz", hub, 15)
            and wait_for(f"{EXCHANGE_URL}/healthz", hub, 15)
        )
        if ready:
            print(recipe(user_tokens(launcher_token), stack.recipe() if stack else ""), flush=True)
        elif hub.poll() is None:
            print(f"{EXCHANGE_URL}/healthz does not answer: see the log above.", file=sys.stderr)
        status = hub.wait()
        if status:
            print(f"JupyterHub exited with status {status}: see its log above.", file=sys.stderr)
        return status
    finally:
        if hub.poll() is None:
            hub.terminate()
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:
                hub.kill()
        stop_orphaned_proxy()
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
