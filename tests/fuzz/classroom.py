"""A live exchange for the fuzz run: a real JupyterHub with ngshare_s3 as its managed service on
the embedded backends (SQLite + a folder), Hub users with their own tokens for each role, and a
course with a roster, a released assignment, a submission and its feedback, so that generated
requests reach past the 404s into the code that reads and writes."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import requests

from e2e.conftest import (
    EXCHANGE_ADMIN,
    LOOPBACK,
    PROVISIONING_ROLE,
    SERVICE_NAME,
    USER_ROLE,
    HubAddresses,
    JupyterHub,
    admin_service,
    free_loopback_port,
    jupyterhub_programs,
    make_classroom,
    ngshare_service_command,
    sqlite_and_local_files,
    start_jupyterhub,
    wait_until_serving,
    write_jupyterhub_config,
)

PREFIX = f"/services/{SERVICE_NAME}/"
COURSE = "course101"
ASSIGNMENT = "ps1"
INSTRUCTOR = "instructor1"
STUDENT = "student1"
OUTSIDER = "outsider"
ROLES = {"admin": EXCHANGE_ADMIN, "instructor": INSTRUCTOR, "student": STUDENT, "outsider": OUTSIDER}
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def files_field(*entries: tuple[str, bytes]) -> str:
    """`files` as ngshare_exchange sends it."""
    return json.dumps([{"path": path, "content": base64.b64encode(data).decode()} for path, data in entries])


RELEASE = files_field(("ps1.ipynb", NOTEBOOK), ("data/table.csv", b"a,b\n1,2\n"))
SUBMISSION = files_field(("ps1.ipynb", NOTEBOOK))
FEEDBACK = files_field(("ps1.html", b"<p>well done</p>"))


@dataclass
class LiveExchange:
    """The service, addressed directly (its root routes are not behind the Hub's proxy)."""

    hub: JupyterHub
    service_url: str
    tokens: dict[str, str]
    facts: dict = field(default_factory=dict)

    def call(self, role: str, method: str, route: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.service_url}{PREFIX}{route}",
            headers={"Authorization": f"token {self.tokens[role]}"}, timeout=30, **kwargs,
        )

    def expect(self, statuses: set[int], role: str, method: str, route: str, **kwargs) -> dict:
        response = self.call(role, method, route, **kwargs)
        assert response.status_code in statuses, f"{method} {route} as {role}: {response.status_code} {response.text[:300]}"
        return response.json()

    def restore(self) -> None:
        """Put the course back as the fuzz run expects it, whatever the generated calls changed:
        the course, instructor1 teaching it, student1 in it, the outsider outside it, the
        assignment released and student1's submission with feedback."""
        names = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
        self.expect({200, 409}, "admin", "POST", f"course/{COURSE}")
        for user in (STUDENT, OUTSIDER):
            self.expect({200, 404}, "admin", "DELETE", f"instructor/{COURSE}/{user}")
        self.expect({200, 404}, "admin", "DELETE", f"student/{COURSE}/{OUTSIDER}")
        self.expect({200, 404}, "admin", "DELETE", f"student/{COURSE}/{INSTRUCTOR}")
        self.expect({200}, "admin", "POST", f"instructor/{COURSE}/{INSTRUCTOR}", data=names)
        self.expect({200}, "admin", "POST", f"student/{COURSE}/{STUDENT}", data=names)
        self.expect({200, 409}, "instructor", "POST", f"assignment/{COURSE}/{ASSIGNMENT}", data={"files": RELEASE})
        listed = self.expect({200}, "admin", "GET", f"submissions/{COURSE}/{ASSIGNMENT}/{STUDENT}")["submissions"]
        if listed:
            timestamp = listed[-1]["timestamp"]
        else:
            timestamp = self.expect({200}, "student", "POST", f"submission/{COURSE}/{ASSIGNMENT}", data={"files": SUBMISSION})["timestamp"]
        self.expect({200}, "instructor", "POST", f"feedback/{COURSE}/{ASSIGNMENT}/{STUDENT}",
                    data={"timestamp": timestamp, "files": FEEDBACK})
        self.facts["timestamp"] = timestamp


def start_live_exchange(folder: Path) -> LiveExchange:
    """JupyterHub, its proxy and ngshare_s3 (sqlite + folder); the caller stops `hub`."""
    hub_program, proxy_program = jupyterhub_programs()
    addresses, service_port = HubAddresses.pick(), free_loopback_port()
    (folder / "service-data").mkdir()
    storage = sqlite_and_local_files(None, folder / "service-data")
    service = {
        "name": SERVICE_NAME,
        "url": f"http://{LOOPBACK}:{service_port}",
        "command": ngshare_service_command(storage),
        "cwd": str(folder),
        "oauth_no_confirm": True,
    }
    admin_token = secrets.token_hex(32)
    hub_folder = folder / "jupyterhub"
    hub_folder.mkdir()
    config = write_jupyterhub_config(
        hub_folder, addresses, proxy_program, [service, admin_service(admin_token)], [PROVISIONING_ROLE, USER_ROLE]
    )
    hub = start_jupyterhub(hub_program, proxy_program, hub_folder, config, addresses.public_url, admin_token)
    try:
        wait_until_serving(hub)
        homes = folder / "homes"
        homes.mkdir()
        people = make_classroom(hub, {name: COURSE for name in ROLES.values()}, homes, configure=lambda home, course: None)
        tokens = {role: people[name].token for role, name in ROLES.items()}
        exchange = LiveExchange(hub, service["url"], tokens)
        exchange.restore()
        return exchange
    except BaseException:
        hub.stop()
        raise
