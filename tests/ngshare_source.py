"""An ngshare 0.6.0 installation to move over, made the way its users made theirs: through its
API. Three parts, usable apart:

- `start_ngshare` runs the real ngshare 0.6.0 (from the virtualenv tests/clients.py builds) in
  its stand-alone `--vngshare` mode on a loopback port, with its SQLite database and storage
  folder in one folder. ngshare 0.6.0 still asks a Hub who owns each request's token, even in
  that mode (its `?user=` convention is shadowed by its own handler methods), so a stand-in Hub
  answers `/hub/api/user` for tokens made by `token_for(user)`.
- `populate(api)` plays the course story through any transport: an `api(user, method, route,
  data=None, params=None) -> requests.Response` callable, where `route` is the unescaped route
  after the API prefix (e.g. '/course/course101') and the transport percent-escapes it as
  ngshare_exchange does (`quote(route, safe='/')`). The same story runs against ngshare behind
  a real JupyterHub.
- `record_answers(api, users)` asks every GET route of the API, for every user, and keeps each
  status code and JSON body; `diff_recordings` lists how two recordings differ.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

import clients
import servers

Api = Callable[..., requests.Response]

NGSHARE = "ngshare-0.6.0"
API_PREFIX = "/api/"
REQUEST_TIMEOUT = 60

# The people of the story. JupyterHub usernames: lowercase, no spaces.
ADMIN = "admin"
ADA = "ada"  # instructor of course101 and of the unusual course
GRACE = "grace"  # instructor of course101 whose names are updated, once by the admin, once by herself
LINUS = "linus"  # instructor named when course101 was created, names never set (null)
HEDY = "hedy"  # teaches physics-2, takes course101
IVAN = "ivan"  # added to physics-2 as a student, then made an instructor there by the admin
BOB = "bob"  # takes every course, submits often
CARLA = "carla"  # removed from course101 and added again
DMITRI = "dmitri"  # removed from course101 for good, after submitting
EMMA = "emma"  # empty names and email
FATIMA = "fatima"  # unicode names
MALLORY = "mallory"  # in no course at all
USERS = [ADMIN, ADA, GRACE, LINUS, HEDY, IVAN, BOB, CARLA, DMITRI, EMMA, FATIMA, MALLORY]

COURSE = "course101"
# Spaces, accents, a Greek letter, '+', '%' and parentheses: ngshare takes them all in a path
# segment (it percent-decodes each segment as UTF-8 and does not turn '+' into a space).
UNUSUAL_COURSE = "Algèbre 2 + Ω 100% (été)"
PHYSICS = "physics-2"
EMPTY_COURSE = "empty course"  # no members, no assignments
GONE_COURSE = "gone-course"  # created, used and deleted: nothing of it may come back
COURSES = [COURSE, UNUSUAL_COURSE, PHYSICS, EMPTY_COURSE]

PS1 = "ps1"  # released, submitted to, deleted, released again with other files
PS2 = "ps2"  # released with no files at all
LAB = "Lab 1 – Übung + 50%"
HW1 = "hw1"


# Running ngshare 0.6.0 ----------------------------------------------------------------------------


class NgshareUnavailable(RuntimeError):
    """ngshare 0.6.0's virtualenv is missing or out of date; the message says how to build it."""


def ngshare_python() -> Path:
    """The python of ngshare 0.6.0's virtualenv, or NgshareUnavailable saying why there is none."""
    try:
        return clients.bin_folder(clients.environment(NGSHARE)) / "python"
    except clients.ClientUnavailable as reason:
        raise NgshareUnavailable(str(reason)) from reason


def token_for(user: str) -> str:
    """The token the stand-in Hub says belongs to `user` (any username, ASCII in a header)."""
    return base64.urlsafe_b64encode(user.encode()).decode()


def _user_of(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (ValueError, UnicodeError):
        return None


class _HubUserHandler(BaseHTTPRequestHandler):
    """Answers `GET /hub/api/user` as JupyterHub does: the model of the token's owner, or 403."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        header = self.headers.get("Authorization", "")
        user = _user_of(header.removeprefix("token ").strip()) if header.startswith("token ") else None
        if self.path != "/hub/api/user" or not user:
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps({"kind": "user", "name": user, "admin": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StandInHub:
    """The one Hub endpoint ngshare calls for API requests, on a loopback port, in a thread."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _HubUserHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hub/api"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def api_over_http(base_url: str, token_of: Callable[[str], str]) -> Api:
    """The story's transport: each call as `user` with `token_of(user)`, the route escaped as
    ngshare_exchange escapes it and appended to `base_url`."""

    def api(
        user: str, method: str, route: str, data: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> requests.Response:
        return requests.request(
            method,
            base_url + quote(route, safe="/"),
            headers={"Authorization": f"token {token_of(user)}"},
            data=data,
            params=params,
            allow_redirects=False,
            timeout=REQUEST_TIMEOUT,
        )

    return api


@dataclasses.dataclass
class NgshareFolder:
    """Where an ngshare installation keeps its data: `database` (the SQLAlchemy URL),
    `database_file` and `storage` (the folder of file bodies)."""

    folder: Path

    @property
    def database_file(self) -> Path:
        return self.folder / "ngshare.db"

    @property
    def database(self) -> str:
        return f"sqlite:///{self.database_file}"

    @property
    def storage(self) -> Path:
        return self.folder / "files"


@dataclasses.dataclass
class NgshareSource(NgshareFolder):
    """A running ngshare 0.6.0 on its folder, called through `api`."""

    server: servers.Server
    hub: StandInHub

    @property
    def api(self) -> Api:
        return api_over_http(f"http://127.0.0.1:{self.server.port}{API_PREFIX.rstrip('/')}", token_for)

    def stop(self) -> None:
        self.server.stop()
        self.hub.stop()


def _ngshare_answers(server: servers.Server) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_ngshare(folder: Path, admins: str = ADMIN) -> NgshareSource:
    """ngshare 0.6.0 in `--vngshare` mode keeping its data in `folder` (ngshare.db and files/),
    answering once it serves; raises NgshareUnavailable or servers.ServerUnavailable."""
    python = ngshare_python()
    folder.mkdir(parents=True, exist_ok=True)
    hub = StandInHub()
    environment = {
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": "unused-service-token",
        "JUPYTERHUB_CLIENT_ID": "service-ngshare",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/ngshare/",
    }

    def command(port: int) -> list[str]:
        return [
            str(python), "-m", "ngshare", "--vngshare",
            "--database", f"sqlite:///{folder / 'ngshare.db'}",
            "--storage", f"{folder / 'files'}/",
            "--admins", admins,
            "--host", "127.0.0.1", "--port", str(port),
            "--prefix", API_PREFIX,
        ]

    try:
        server = servers.start("ngshare", folder, command, _ngshare_answers, environment)
    except BaseException:
        hub.stop()
        raise
    return NgshareSource(folder, server, hub)


# The story ----------------------------------------------------------------------------------------


class StoryError(AssertionError):
    """A call of the story did not answer as ngshare answers it."""


def call(api: Api, user: str, method: str, route: str, data: dict | None = None, params: dict | None = None) -> dict:
    """One call that must succeed: 200 and `success` true; its JSON body."""
    response = api(user, method, route, data=data, params=params)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or body.get("success") is not True:
        raise StoryError(f"{user} {method} {route}: {response.status_code} {response.text[:300]!r}")
    return body


def files_field(files: list[tuple[str, bytes]]) -> str:
    """The `files` form field: the encoded tree in upload order, duplicates kept."""
    return json.dumps([{"path": path, "content": base64.b64encode(content).decode()} for path, content in files])


def feedback_field(files: list[tuple[str, bytes]]) -> str:
    """Feedback as ngshare_exchange sends it: base64 with a newline every 76 characters."""
    return json.dumps([{"path": path, "content": base64.encodebytes(content).decode()} for path, content in files])


def notebook(title: str, answer: str = "") -> bytes:
    """A small nbformat-4 notebook, as bytes on disk."""
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": [f"# {title}"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [answer]},
    ]
    document = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document, indent=1, ensure_ascii=False).encode()


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def first_release_of_ps1() -> list[tuple[str, bytes]]:
    return [
        ("ps1.ipynb", notebook("Problem set 1, first draft")),
        ("data/old values.csv", b"x,y\n1,2\n"),
    ]


def second_release_of_ps1() -> list[tuple[str, bytes]]:
    """Odd but legal paths: spaces, unicode, nested folders, an empty file, a binary file, a
    repeated path, a doubled slash, a backslash, a dotfile, a long extension."""
    return [
        ("ps1.ipynb", notebook("Problem set 1")),
        ("problem two.ipynb", notebook("Problem 2 — ünïcödé")),
        ("data/nested/deep/values.csv", b"x,y\n1,2\n3,4\n"),
        ("données/résumé ü.txt", "Résumé: ça marche, 東京, 🙂\n".encode()),
        ("empty.txt", b""),
        ("bin/blob.bin", bytes(range(256)) * 3 + random_bytes(1, 5000)),
        ("readme.md", b"first copy\n"),
        ("readme.md", b"second copy, same path\n"),
        ("notes//double slash.txt", b"two slashes\n"),
        ("back\\slash.txt", b"a backslash is a plain name\n"),
        (".hidden", b"dotfile\n"),
        ("archive.averyveryverylongextension", random_bytes(2, 300)),
        ("big/large.bin", random_bytes(3, 300_000)),
    ]


def submission_files(student: str, attempt: int, release: int = 2) -> list[tuple[str, bytes]]:
    answer = f"answer of {student}, attempt {attempt}"
    files = [("ps1.ipynb", notebook("Problem set 1", answer))]
    if release == 2:
        files += [
            ("problem two.ipynb", notebook("Problem 2", answer + " — ✓")),
            ("données/résumé ü.txt", f"{student} {attempt}\n".encode()),
        ]
        if attempt % 2 == 0:
            files += [("empty.txt", b""), ("bin/blob.bin", random_bytes(100 + attempt, 2000))]
    return files


def feedback_files(student: str, attempt: int, version: int = 1) -> list[tuple[str, bytes]]:
    html = f"<html><body>Feedback for {student}, attempt {attempt}, version {version} — très bien</body></html>"
    return [("ps1.html", html.encode()), ("problem two.html", html.encode() + b"\n")]


@dataclasses.dataclass
class StoryOutcome:
    """What the story left behind, as it uploaded it: per submission (course, assignment,
    student, timestamp) its files, and the feedback that stands for it (None if none). It
    covers every submission, also those the API no longer shows to anyone (removed students)."""

    submissions: dict[tuple[str, str, str, str], list[tuple[str, bytes]]] = dataclasses.field(default_factory=dict)
    feedback: dict[tuple[str, str, str, str], list[tuple[str, bytes]] | None] = dataclasses.field(default_factory=dict)
    releases: dict[tuple[str, str], list[tuple[str, bytes]]] = dataclasses.field(default_factory=dict)

    def forget_assignment(self, course: str, assignment: str) -> None:
        self.releases.pop((course, assignment), None)
        for table in (self.submissions, self.feedback):
            for key in [k for k in table if k[:2] == (course, assignment)]:
                del table[key]


class _Story:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.outcome = StoryOutcome()

    def ok(self, user: str, method: str, route: str, data: dict | None = None, params: dict | None = None) -> dict:
        return call(self.api, user, method, route, data, params)

    def course(self, course: str, instructors: list[str] = ()) -> None:
        self.ok(ADMIN, "POST", f"/course/{course}", {"instructors": json.dumps(list(instructors))})

    def instructor(self, by: str, course: str, user: str, first: str, last: str, email: str) -> None:
        names = {"first_name": first, "last_name": last, "email": email}
        self.ok(by, "POST", f"/instructor/{course}/{user}", names)

    def student(self, by: str, course: str, user: str, first: str, last: str, email: str) -> None:
        names = {"first_name": first, "last_name": last, "email": email}
        self.ok(by, "POST", f"/student/{course}/{user}", names)

    def release(self, by: str, course: str, assignment: str, files: list[tuple[str, bytes]]) -> None:
        self.ok(by, "POST", f"/assignment/{course}/{assignment}", {"files": files_field(files)})
        self.outcome.releases[(course, assignment)] = files

    def delete_assignment(self, by: str, course: str, assignment: str) -> None:
        self.ok(by, "DELETE", f"/assignment/{course}/{assignment}")
        self.outcome.forget_assignment(course, assignment)

    def submit(self, user: str, course: str, assignment: str, files: list[tuple[str, bytes]]) -> str:
        answer = self.ok(user, "POST", f"/submission/{course}/{assignment}", {"files": files_field(files)})
        timestamp = answer["timestamp"]
        key = (course, assignment, user, timestamp)
        if key in self.outcome.submissions:
            raise StoryError(f"two submissions of {user} share the timestamp {timestamp}")
        self.outcome.submissions[key] = files
        self.outcome.feedback[key] = None
        return timestamp

    def give_feedback(self, by: str, course: str, assignment: str, student: str, timestamp: str,
                      files: list[tuple[str, bytes]]) -> None:
        data = {"timestamp": timestamp, "files": feedback_field(files)}
        self.ok(by, "POST", f"/feedback/{course}/{assignment}/{student}", data)
        self.outcome.feedback[(course, assignment, student, timestamp)] = files


def populate(api: Api) -> StoryOutcome:
    """Plays the whole story; every call must succeed. Returns what was uploaded."""
    story = _Story(api)
    ok = story.ok

    # Courses and rosters.
    story.course(COURSE, [ADA, GRACE, LINUS])
    story.course(UNUSUAL_COURSE, [ADA])
    story.course(PHYSICS, [HEDY])
    story.course(EMPTY_COURSE)
    story.course(GONE_COURSE, [ADA])

    story.instructor(ADMIN, COURSE, ADA, "Ada", "Lovelace", "ada@example.edu")
    story.instructor(ADMIN, COURSE, GRACE, "Grace", "Hopper", "grace@example.edu")
    story.instructor(GRACE, COURSE, GRACE, "Grace Brewster", "Murray Hopper", "g.hopper@navy.example")
    story.instructor(ADMIN, UNUSUAL_COURSE, ADA, "Ада", "Лавлейс", "ада@пример.рф")
    story.instructor(ADMIN, PHYSICS, HEDY, "Hedy", "Lamarr", "")

    story.student(ADA, COURSE, BOB, "Bob", "Builder", "bob@example.edu")
    story.student(ADA, COURSE, CARLA, "Carla", "Bruni", "carla@example.edu")
    story.student(ADA, COURSE, DMITRI, "Dmitri", "Mendeleev", "dmitri@example.edu")
    story.student(GRACE, COURSE, HEDY, "Hedy", "Kiesler", "hedy@example.edu")
    students = [
        {"username": EMMA, "first_name": "", "last_name": "", "email": ""},
        {"username": FATIMA, "first_name": "Fāṭima", "last_name": "al-Fihrī 🎓", "email": "fatima@例え.jp"},
        {"username": ADA, "first_name": "Not", "last_name": "Allowed", "email": "x@example.edu"},
        {"username": EMMA, "first_name": "", "last_name": "", "email": ""},
    ]
    status = ok(ADA, "POST", f"/students/{COURSE}", {"students": json.dumps(students)})["status"]
    expected_status = [True, True, False, True]
    if [entry["success"] for entry in status] != expected_status:
        raise StoryError(f"bulk add answered {status}")

    story.student(ADA, UNUSUAL_COURSE, BOB, "Bob", "Builder", "bob+algebra@example.edu")
    story.student(ADA, UNUSUAL_COURSE, FATIMA, "Fāṭima", "al-Fihrī", "")

    story.student(HEDY, PHYSICS, IVAN, "Ivan", "Pavlov", "ivan@example.edu")
    story.student(HEDY, PHYSICS, BOB, "Bob", "Builder", "bob@example.edu")
    story.instructor(ADMIN, PHYSICS, IVAN, "Ivan", "Pavlov", "ivan@physics.example.edu")

    # Assignments: ps1 released, submitted to, deleted, released again with other files.
    story.release(ADA, COURSE, PS1, first_release_of_ps1())
    early = story.submit(BOB, COURSE, PS1, submission_files(BOB, 0, release=1))
    story.give_feedback(ADA, COURSE, PS1, BOB, early, feedback_files(BOB, 0))
    story.submit(CARLA, COURSE, PS1, submission_files(CARLA, 0, release=1))
    story.delete_assignment(GRACE, COURSE, PS1)
    story.release(GRACE, COURSE, PS1, second_release_of_ps1())
    story.release(ADA, COURSE, PS2, [])

    bob = [story.submit(BOB, COURSE, PS1, submission_files(BOB, attempt)) for attempt in (1, 2, 3)]
    carla = [story.submit(CARLA, COURSE, PS1, submission_files(CARLA, 1))]
    dmitri = [story.submit(DMITRI, COURSE, PS1, submission_files(DMITRI, attempt)) for attempt in (1, 2)]
    emma = [story.submit(EMMA, COURSE, PS1, submission_files(EMMA, attempt)) for attempt in (1, 2)]
    hedy = [story.submit(HEDY, COURSE, PS1, submission_files(HEDY, 1))]
    story.submit(GRACE, COURSE, PS1, submission_files(GRACE, 1))  # instructors may submit too
    story.submit(ADMIN, COURSE, PS1, submission_files(ADMIN, 1))  # admins too, member or not
    story.submit(FATIMA, COURSE, PS2, [])

    story.give_feedback(ADA, COURSE, PS1, BOB, bob[0], feedback_files(BOB, 1))
    story.give_feedback(ADA, COURSE, PS1, BOB, bob[1], feedback_files(BOB, 2, version=1))
    story.give_feedback(GRACE, COURSE, PS1, BOB, bob[1], feedback_files(BOB, 2, version=2))  # replaces
    story.give_feedback(ADA, COURSE, PS1, EMMA, emma[1], feedback_files(EMMA, 2))
    story.give_feedback(ADA, COURSE, PS1, HEDY, hedy[0], feedback_files(HEDY, 1))
    story.give_feedback(ADA, COURSE, PS1, DMITRI, dmitri[0], feedback_files(DMITRI, 1))
    story.give_feedback(ADA, COURSE, PS1, CARLA, carla[0], [])  # feedback set, then cleared...
    story.give_feedback(ADMIN, COURSE, PS1, EMMA, emma[0], feedback_files(EMMA, 1))
    story.give_feedback(ADMIN, COURSE, PS1, EMMA, emma[0], [])  # ... or cleared after it stood

    # Roster changes after the work: carla leaves and comes back (she moves to the end of the
    # list), dmitri leaves for good (his submissions stay listed, unreachable one by one).
    ok(ADA, "DELETE", f"/student/{COURSE}/{CARLA}")
    story.student(ADA, COURSE, CARLA, "Carla", "Bruni-Sarkozy", "carla@example.edu")
    ok(ADA, "DELETE", f"/student/{COURSE}/{DMITRI}")

    # The unusual course's lab, with a path as unusual as its name.
    lab = "Übung 1/aufgabe + lösung 100%"
    story.release(ADA, UNUSUAL_COURSE, LAB, [(f"{lab}.ipynb", notebook("Übung 1")), ("a b/c d/e f.txt", b"spaces\n")])
    lab_bob = story.submit(BOB, UNUSUAL_COURSE, LAB, [(f"{lab}.ipynb", notebook("Übung 1", "42"))])
    story.submit(FATIMA, UNUSUAL_COURSE, LAB, [(f"{lab}.ipynb", notebook("Übung 1", "٤٢"))])
    story.submit(FATIMA, UNUSUAL_COURSE, LAB, [(f"{lab}.ipynb", notebook("Übung 1", "43"))])
    story.give_feedback(ADA, UNUSUAL_COURSE, LAB, BOB, lab_bob, [(f"{lab}.html", b"<p>gut</p>")])

    # Physics: a course whose instructor takes course101, and whose former student teaches.
    story.release(HEDY, PHYSICS, HW1, [("hw1.ipynb", notebook("Homework 1"))])
    story.submit(BOB, PHYSICS, HW1, [("hw1.ipynb", notebook("Homework 1", "F = m a"))])
    story.submit(IVAN, PHYSICS, HW1, [("hw1.ipynb", notebook("Homework 1", "instructor's try"))])

    # A course used, then deleted: its records go, its files stay on ngshare's disk.
    story.release(ADA, GONE_COURSE, HW1, [("gone.ipynb", notebook("Gone"))])
    ok(ADMIN, "DELETE", f"/course/{GONE_COURSE}")
    story.outcome.forget_assignment(GONE_COURSE, HW1)
    return story.outcome


# Recording every GET ------------------------------------------------------------------------------

NO_SUCH_COURSE = "no-such-course"
NO_SUCH_ASSIGNMENT = "no-such-assignment"
NO_SUCH_TIMESTAMP = "2001-01-01 00:00:00.000000"


def answer_of(response: requests.Response) -> dict[str, Any]:
    """What a client sees of one answer: the status and the JSON body (or the text if none)."""
    try:
        return {"status": response.status_code, "json": response.json()}
    except ValueError:
        return {"status": response.status_code, "text": response.text}


def request_name(user: str, route: str, params: dict[str, str] | None = None) -> str:
    query = "&".join(f"{name}={value}" for name, value in (params or {}).items())
    return f"{user} GET {route}" + (f"?{query}" if query else "")


def _body(answer: dict[str, Any]) -> dict[str, Any]:
    if answer["status"] != 200:
        raise StoryError(f"the admin could not read the installation: {answer}")
    return answer["json"]


def record_answers(api: Api, users: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The answer of every GET route for every user in `users`, keyed by a readable name
    ('bob GET /submission/course101/ps1/bob?timestamp=…'). What exists is learnt from the
    admin's answers. Each user asks about every person the installation knows, every
    submission by its timestamp, and once each about a course, an assignment and a timestamp
    that do not exist."""
    users = list(users)
    recording: dict[str, dict[str, Any]] = {}

    def get(user: str, route: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        answer = answer_of(api(user, "GET", route, params=params))
        recording[request_name(user, route, params)] = answer
        return answer

    courses = _body(get(ADMIN, "/courses"))["courses"]
    listed: dict[tuple[str, str], list[dict[str, str]]] = {}
    people = list(users)
    students: list[str] = []
    for course in courses:
        instructors = [m["username"] for m in _body(get(ADMIN, f"/instructors/{course}"))["instructors"]]
        students += [m["username"] for m in _body(get(ADMIN, f"/students/{course}"))["students"]]
        people += [person for person in instructors + students if person not in people]
        for assignment in _body(get(ADMIN, f"/assignments/{course}"))["assignments"]:
            listed[course, assignment] = _body(get(ADMIN, f"/submissions/{course}/{assignment}"))["submissions"]
            people += [s["student_id"] for s in listed[course, assignment] if s["student_id"] not in people]
    someone = [*students, *people][0]

    for user in users:
        get(user, "/courses")
        for course in [*courses, NO_SUCH_COURSE]:
            get(user, f"/instructors/{course}")
            get(user, f"/students/{course}")
            get(user, f"/assignments/{course}")
            for person in people if course != NO_SUCH_COURSE else [someone]:
                get(user, f"/instructor/{course}/{person}")
                get(user, f"/student/{course}/{person}")
            for (known_course, assignment), submissions in listed.items():
                if known_course == course:
                    _record_assignment(get, user, course, assignment, people, submissions, someone)
            _record_assignment(get, user, course, NO_SUCH_ASSIGNMENT, [someone], [], someone)
    return recording


def _record_assignment(
    get: Callable[..., Any],
    user: str,
    course: str,
    assignment: str,
    people: list[str],
    submissions: list[dict[str, str]],
    someone: str,
) -> None:
    get(user, f"/assignment/{course}/{assignment}")
    get(user, f"/assignment/{course}/{assignment}", {"list_only": "true"})
    get(user, f"/submissions/{course}/{assignment}")
    for person in people:
        get(user, f"/submissions/{course}/{assignment}/{person}")
        get(user, f"/submission/{course}/{assignment}/{person}")
        get(user, f"/submission/{course}/{assignment}/{person}", {"list_only": "true"})
    asked = [(s["student_id"], s["timestamp"]) for s in submissions]
    if submissions:
        asked.append((submissions[0]["student_id"], NO_SUCH_TIMESTAMP))
    else:
        asked.append((someone, NO_SUCH_TIMESTAMP))
    for person, timestamp in asked:
        route = f"{course}/{assignment}/{person}"
        get(user, f"/submission/{route}", {"timestamp": timestamp})
        get(user, f"/submission/{route}", {"timestamp": timestamp, "list_only": "true"})
        get(user, f"/feedback/{route}", {"timestamp": timestamp})
        get(user, f"/feedback/{route}", {"timestamp": timestamp, "list_only": "true"})


def diff_recordings(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    """Every difference between two recordings, one readable line each ('' list: identical)."""
    differences = []
    for name in sorted(expected.keys() | actual.keys()):
        if name not in actual:
            differences.append(f"{name}: asked only of the first server")
        elif name not in expected:
            differences.append(f"{name}: asked only of the second server")
        else:
            differences += [f"{name}: {line}" for line in _diff(expected[name], actual[name], "")]
    return differences


def _diff(expected: Any, actual: Any, where: str) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in sorted(expected.keys() | actual.keys(), key=str):
            inner = f"{where}.{key}" if where else str(key)
            if key not in actual:
                lines.append(f"{inner} missing (expected {_short(expected[key])})")
            elif key not in expected:
                lines.append(f"{inner} unexpected ({_short(actual[key])})")
            else:
                lines += _diff(expected[key], actual[key], inner)
        return lines
    if isinstance(expected, list) and isinstance(actual, list):
        lines = []
        if len(expected) != len(actual):
            lines.append(f"{where}: {len(expected)} items expected, {len(actual)} found")
        for index, (left, right) in enumerate(zip(expected, actual)):
            lines += _diff(left, right, f"{where}[{index}]")
        return lines
    if expected != actual or type(expected) is not type(actual):
        return [f"{where or 'answer'}: expected {_short(expected)}, found {_short(actual)}"]
    return []


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters, md5 {hashlib.md5(text.encode()).hexdigest()})"
