"""ngshare-s3-exchange when the exchange fails: the nbgrader command stops and says why.

For each command that changes something (release_assignment as the instructor; submit,
fetch_assignment and fetch_feedback as a student) and each way the exchange can fail, the command
exits non-zero, prints the reason, and changes nothing: no file or folder appears or changes in
the user's home (so no half-fetched assignment and no submission-cache entry), and the
exchange's courses, assignments and submissions are as they were. Every attempt would change
something if it worked, so a failure that went unnoticed would show.

The failures are real: the service's own refusals (403, 404) on both storage backends; and,
independent of the store, a closed loopback port, the Hub proxy's 503 for a service whose
target is down, and a socket that accepts connections and never answers. Those addresses are
given on the command line (--Exchange.ngshare_url), which wins over the exchange URL in the
user's nbgrader_config.py (an NGSHARE_URL in the environment would not).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import servers
from . import client_envs
from .conftest import (
    LOOPBACK, STORAGE_BACKENDS, Classroom, CommandResult, ExchangeUser, ServiceStorage, make_classroom,
)
from .course_story import ASSIGNMENT, COURSE, NOTEBOOK, OTHER_COURSE, cached_submissions
from .test_exchange_client import write_client_config

NEW_ASSIGNMENT = 'ps2'  # generated and not yet released
UNKNOWN_ASSIGNMENT = 'ps9'
UNKNOWN_COURSE = 'course999'
# The outsider and the visitor are students of the other course; the visitor has a copy of ps1.
PEOPLE = {
    'admin': COURSE, 'instructor1': COURSE, 'student1': COURSE, 'student2': COURSE,
    'outsider': OTHER_COURSE, 'visitor': OTHER_COURSE,
}
UNREACHABLE_SERVICE = 'unreachable'  # a Hub service whose URL nothing listens on
TIMEOUT = 2  # seconds, for --Exchange.timeout and --Exchange.connect_timeout
# Longer than a failing nbgrader command takes on a busy machine, well short of the default 120 s.
PATIENCE = 60
NBGRADER_LOG = '.nbgrader.log'  # nbgrader appends to it on every run
NOTEBOOK_BYTES = json.dumps({'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}).encode()


# --------------------------------------------------------------------------------------------
# What each command would change if it worked
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """An nbgrader command run by one of PEOPLE."""

    user: str
    arguments: tuple[str, ...]


# The attempts that work when the exchange does: each one would release, submit or write files.
WORKING = {
    'release_assignment': Attempt('instructor1', ('release_assignment', NEW_ASSIGNMENT)),
    'submit': Attempt('student1', ('submit', ASSIGNMENT)),
    'fetch_assignment': Attempt('student2', ('fetch_assignment', ASSIGNMENT)),
    'fetch_feedback': Attempt('student1', ('fetch_feedback', ASSIGNMENT)),
}

# The same commands, refused by the service: by whom, what, and the service's message.
REFUSED = [
    pytest.param(Attempt('student1', ('release_assignment', NEW_ASSIGNMENT)), 'Permission denied', id='release_assignment-403'),
    pytest.param(Attempt('visitor', ('submit', ASSIGNMENT, '--course', COURSE)), 'Permission denied', id='submit-403'),
    pytest.param(Attempt('outsider', ('fetch_assignment', ASSIGNMENT, '--course', COURSE)), 'Permission denied', id='fetch_assignment-403'),
    pytest.param(  # the service goes by the token, not by the name the client gives
        Attempt('student2', ('fetch_feedback', ASSIGNMENT, '--Exchange.username=student1')), 'Permission denied', id='fetch_feedback-403',
    ),
    pytest.param(
        Attempt('instructor1', ('release_assignment', NEW_ASSIGNMENT, '--course', UNKNOWN_COURSE)),
        'Course not found', id='release_assignment-404-course',
    ),
    pytest.param(Attempt('student1', ('submit', ASSIGNMENT, '--course', UNKNOWN_COURSE)), 'Course not found', id='submit-404-course'),
    pytest.param(
        Attempt('student2', ('fetch_assignment', ASSIGNMENT, '--course', UNKNOWN_COURSE)), 'Course not found', id='fetch_assignment-404-course',
    ),
    pytest.param(
        Attempt('student1', ('fetch_feedback', ASSIGNMENT, '--course', UNKNOWN_COURSE)), 'Course not found', id='fetch_feedback-404-course',
    ),
    pytest.param(Attempt('student1', ('submit', UNKNOWN_ASSIGNMENT)), 'Assignment not found', id='submit-404-assignment'),
    pytest.param(Attempt('student2', ('fetch_assignment', UNKNOWN_ASSIGNMENT)), 'Assignment not found', id='fetch_assignment-404-assignment'),
    pytest.param(Attempt('student1', ('fetch_feedback', UNKNOWN_ASSIGNMENT)), 'Assignment not found', id='fetch_feedback-404-assignment'),
    pytest.param(
        Attempt('outsider', ('fetch_feedback', ASSIGNMENT, '--course', COURSE)), 'Student not found', id='fetch_feedback-404-student',
    ),
]


# --------------------------------------------------------------------------------------------
# Places that do not answer as an exchange does
# --------------------------------------------------------------------------------------------


class SilentServer:
    """A loopback socket that accepts connections and never answers them."""

    def __init__(self):
        self.socket = socket.create_server((LOOPBACK, 0))
        self.port = self.socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)

    def close(self) -> None:
        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, which then ends
        except OSError:
            pass
        self.socket.close()
        self.thread.join(timeout=5)
        for connection in self.connections:
            connection.close()


@pytest.fixture(scope='module')
def unreachable_port() -> int:
    return servers.free_port()


@pytest.fixture(scope='module', params=client_envs.ENVIRONMENTS)
def client_environment(request) -> str:
    """The client virtualenv nbgrader runs from."""
    return request.param


@pytest.fixture(scope='module', params=STORAGE_BACKENDS)
def service_storage(request, client_environment, tmp_path_factory) -> ServiceStorage:
    """As in conftest, and once per client environment too: each one gets a Hub and an exchange
    of its own, as the classroom creates the same users and courses every time."""
    return request.param(request, tmp_path_factory.mktemp('service-data'))


@pytest.fixture(scope='module')
def extra_hub_services(unreachable_port) -> list[dict]:
    """An external service the Hub's proxy routes to a port nothing listens on, so the proxy
    answers its requests with 503; a short timeout, so the Hub does not wait for it at start."""
    return [{'name': UNREACHABLE_SERVICE, 'url': f'http://{LOOPBACK}:{unreachable_port}', 'timeout': 1}]


@pytest.fixture(scope='module')
def silent_server():
    server = SilentServer()
    yield server
    server.close()


# --------------------------------------------------------------------------------------------
# The course as the failing commands find it
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def classroom(client_environment, jupyterhub, tmp_path_factory) -> Classroom:
    """course101 with ps1 released, in student1's home and submitted, with feedback on the
    submission; ps2 in the instructor's release folder, not released. Set up through the API and
    by writing files, as only the failing commands are under test."""
    programs = client_envs.programs(client_environment)
    classroom = make_classroom(
        jupyterhub, PEOPLE, tmp_path_factory.mktemp('homes'), write_client_config(jupyterhub.exchange_url), programs
    )
    admin, instructor, student1 = classroom['admin'], classroom['instructor1'], classroom['student1']
    admin.api_ok('POST', f'/course/{COURSE}', data={'instructors': json.dumps(['instructor1'])})
    admin.api_ok('POST', f'/course/{OTHER_COURSE}')
    for course, student in [(COURSE, 'student1'), (COURSE, 'student2'), (OTHER_COURSE, 'outsider'), (OTHER_COURSE, 'visitor')]:
        admin.api_ok('POST', f'/student/{course}/{student}', data={'first_name': '', 'last_name': '', 'email': ''})
    instructor.api_ok('POST', f'/assignment/{COURSE}/{ASSIGNMENT}', data={'files': files_field({NOTEBOOK: NOTEBOOK_BYTES})})
    timestamp = student1.api_ok('POST', f'/submission/{COURSE}/{ASSIGNMENT}', data={'files': files_field({NOTEBOOK: NOTEBOOK_BYTES})})['timestamp']
    instructor.api_ok(
        'POST', f'/feedback/{COURSE}/{ASSIGNMENT}/student1',
        data={'timestamp': timestamp, 'files': files_field({f'{ASSIGNMENT}.html': b'<html>3 / 3</html>'})},
    )
    # Local folders the commands start from, also where a refusal comes before any local check.
    write_notebook(instructor.home / 'release' / NEW_ASSIGNMENT / f'{NEW_ASSIGNMENT}.ipynb')
    write_notebook(student1.home / 'release' / NEW_ASSIGNMENT / f'{NEW_ASSIGNMENT}.ipynb')
    write_notebook(student1.home / ASSIGNMENT / NOTEBOOK)
    write_notebook(student1.home / UNKNOWN_ASSIGNMENT / f'{UNKNOWN_ASSIGNMENT}.ipynb')
    write_notebook(classroom['visitor'].home / ASSIGNMENT / NOTEBOOK)
    return classroom


def files_field(files: dict[str, bytes]) -> str:
    return json.dumps([{'path': path, 'content': base64.b64encode(body).decode()} for path, body in files.items()])


def write_notebook(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(NOTEBOOK_BYTES)


# --------------------------------------------------------------------------------------------
# "Nothing changed"
# --------------------------------------------------------------------------------------------


def home_contents(user: ExchangeUser) -> dict[str, str]:
    """Every folder and file under the user's home (a file with its content's hash), except
    nbgrader's log."""
    contents = {}
    for path in sorted(user.home.rglob('*')):
        name = path.relative_to(user.home).as_posix()
        if path.name == NBGRADER_LOG:
            continue
        contents[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else 'folder'
    return contents


def exchange_contents(admin: ExchangeUser) -> dict[str, dict]:
    """Each course's released assignments with their files and submissions, as the exchange
    lists them to its admin."""
    contents = {}
    for course in admin.api_ok('GET', '/courses')['courses']:
        contents[course] = {
            assignment: (
                admin.api_ok('GET', f'/assignment/{course}/{assignment}', params={'list_only': 'true'})['files'],
                admin.api_ok('GET', f'/submissions/{course}/{assignment}')['submissions'],
            )
            for assignment in admin.api_ok('GET', f'/assignments/{course}')['assignments']
        }
    return contents


@dataclass
class Outcome:
    result: CommandResult
    seconds: float


def attempt_and_check_nothing_changed(classroom: Classroom, attempt: Attempt, *options: str) -> Outcome:
    """Run the attempt; assert it failed and that neither the user's home nor the exchange
    changed. The exit status and output are for the caller to judge."""
    user, admin = classroom[attempt.user], classroom['admin']
    home_before, exchange_before, cache_before = home_contents(user), exchange_contents(admin), cached_submissions(user)
    started = time.monotonic()
    result = user.nbgrader(*attempt.arguments, *options)
    seconds = time.monotonic() - started
    assert result.returncode != 0, str(result)
    assert 'Traceback' not in result.output, str(result)
    assert home_contents(user) == home_before, f'the failed command changed files in the home folder\n{result}'
    assert cached_submissions(user) == cache_before, str(result)
    assert exchange_contents(admin) == exchange_before, f'the failed command changed the exchange\n{result}'
    return Outcome(result, seconds)


# --------------------------------------------------------------------------------------------
# The failures
# --------------------------------------------------------------------------------------------


# Refusals come from the service: they run on every storage backend, from one client environment.
# A connection that fails is the client's to handle: those run from every client environment,
# against one storage backend (which they never reach).
ONE_CLIENT = pytest.mark.parametrize('client_environment', client_envs.ENVIRONMENTS[:1], indirect=True)
ONE_BACKEND = pytest.mark.parametrize('service_storage', STORAGE_BACKENDS[:1], indirect=True)


@ONE_CLIENT
@pytest.mark.parametrize('attempt, message', REFUSED)
def test_a_refusal_of_the_service_stops_the_command_and_changes_nothing(classroom, attempt, message):
    outcome = attempt_and_check_nothing_changed(classroom, attempt)
    assert message in outcome.result.output, str(outcome.result)
    assert 'The exchange refused' in outcome.result.output, str(outcome.result)



@ONE_BACKEND
@pytest.mark.parametrize('operation', WORKING)
def test_a_server_that_is_down_stops_the_command_and_changes_nothing(classroom, unreachable_port, operation):
    url = f'http://{LOOPBACK}:{unreachable_port}/services/ngshare/'
    outcome = attempt_and_check_nothing_changed(classroom, WORKING[operation], f'--Exchange.ngshare_url={url}')
    output = outcome.result.output
    assert f'The exchange at {url.rstrip("/")} cannot be reached' in output and 'Connection refused' in output, str(outcome.result)


@ONE_BACKEND
@pytest.mark.parametrize('operation', WORKING)
def test_a_proxy_error_stops_the_command_and_changes_nothing(classroom, operation):
    url = f'{classroom.hub.public_url}/services/{UNREACHABLE_SERVICE}'
    outcome = attempt_and_check_nothing_changed(classroom, WORKING[operation], f'--Exchange.ngshare_url={url}')
    assert f'The exchange at {url} answered' in outcome.result.output, str(outcome.result)
    assert 'with HTTP 503' in outcome.result.output, str(outcome.result)


@ONE_BACKEND
@pytest.mark.parametrize('operation', WORKING)
def test_a_server_that_never_answers_stops_the_command_after_the_timeout(classroom, silent_server, operation):
    url = f'http://{LOOPBACK}:{silent_server.port}'
    connections_before = len(silent_server.connections)
    outcome = attempt_and_check_nothing_changed(
        classroom, WORKING[operation],
        f'--Exchange.ngshare_url={url}', f'--Exchange.timeout={TIMEOUT}', f'--Exchange.connect_timeout={TIMEOUT}',
    )
    assert len(silent_server.connections) > connections_before, 'the command never connected'
    assert f'The exchange at {url} did not answer' in outcome.result.output, str(outcome.result)
    assert f'within {TIMEOUT} s' in outcome.result.output, str(outcome.result)
    assert TIMEOUT <= outcome.seconds < PATIENCE, f'returned after {outcome.seconds:.1f} s\n{outcome.result}'


def classrooms_above() -> list:
    """The client environments and storage backends the tests above run with, together."""
    pairs = [(client_envs.ENVIRONMENTS[0], backend) for backend in STORAGE_BACKENDS]
    pairs += [(environment, STORAGE_BACKENDS[0]) for environment in client_envs.ENVIRONMENTS[1:]]
    return [pytest.param(e.values[0], b.values[0], id=f'{e.id}-{b.id}') for e, b in pairs]


@pytest.mark.parametrize('client_environment, service_storage', classrooms_above(), indirect=True)
def test_the_attempts_would_change_something(classroom):
    """The premise of the other tests: each attempt works when the exchange does, and changes
    something. Last in the module, as it changes what the others find."""
    admin = classroom['admin']
    for operation, attempt in WORKING.items():
        user = classroom[attempt.user]
        home_before, exchange_before = home_contents(user), exchange_contents(admin)
        result = user.nbgrader(*attempt.arguments)
        assert result.returncode == 0 and 'CRITICAL' not in result.output, str(result)
        assert home_contents(user) != home_before or exchange_contents(admin) != exchange_before, f'{operation} changed nothing\n{result}'
    assert (classroom['student2'].home / ASSIGNMENT / NOTEBOOK).read_bytes() == NOTEBOOK_BYTES
    assert list(classroom['student1'].home.glob(f'{ASSIGNMENT}/feedback/*/{ASSIGNMENT}.html'))
    assert len(cached_submissions(classroom['student1'])) == 1
    assert admin.api_ok('GET', f'/assignments/{COURSE}')['assignments'] == [ASSIGNMENT, NEW_ASSIGNMENT]
