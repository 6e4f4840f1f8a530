"""ngshare-s3-exchange behind the Jupyter server routes that nbgrader's Assignments panel
(JupyterLab, Notebook 7) and its formgrader call, in each client environment.

Each of these routes answers HTTP 200 and says in its JSON whether the exchange operation worked
(`success`), with the reason in `value` (Assignments panel) or `error` and `log` (formgrader).
The story: an exchange admin sets up course101 through the API; instructor1 generates and
releases ps1 from the formgrader; student1 lists, fetches and submits twice from the Assignments
panel's routes; the formgrader refuses to unrelease ps1 over those submissions, then collects,
autogrades and releases feedback; student1 fetches the feedback. Last, the exchange's address
stops answering: the panel's routes must say so instead of answering success, and the formgrader
must keep working and say so for what needs the exchange.
Each user has one `jupyter server` of their own, started from the client environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import servers

from . import client_envs
from .conftest import Classroom, make_classroom
from .course_story import (
    ASSIGNMENT,
    CORRECT_ANSWER,
    COURSE,
    INSTRUCTOR_NAMES,
    MAX_SCORE,
    NOTEBOOK,
    OTHER_COURSE,
    STUDENTS_CSV,
    WRONG_ANSWER,
    answer_assignment,
    decoded,
    feedback_score,
    write_ps1_source,
    solution_source,
)
from .jupyter_server import JupyterServer
from .test_exchange_client import CLIENT_MATRIX, write_client_config

pytestmark = [
    pytest.mark.steps,
    pytest.mark.parametrize(
        ('service_storage', 'client_environment'), CLIENT_MATRIX, indirect=['service_storage'], scope='module'
    ),
]

PEOPLE = {'admin': COURSE, 'instructor1': COURSE, 'student1': COURSE}
STUDENT = STUDENTS_CSV[0]['student_id']
FORMGRADER = f'/formgrader/api/assignment/{ASSIGNMENT}'
PS1 = {'course_id': COURSE, 'assignment_id': ASSIGNMENT}


@pytest.fixture(scope='module')
def classroom(client_environment, jupyterhub, tmp_path_factory) -> Classroom:
    programs = client_envs.programs(client_environment)
    return make_classroom(
        jupyterhub, PEOPLE, tmp_path_factory.mktemp('homes'), write_client_config(jupyterhub.exchange_url), programs
    )


class JupyterServers:
    """One Jupyter server per user, started when first asked for and stopped with the module."""

    def __init__(self, classroom: Classroom, logs: Path):
        self.classroom, self.logs, self.running = classroom, logs, {}

    def __getitem__(self, name: str) -> JupyterServer:
        if name not in self.running:
            self.running[name] = JupyterServer.start(self.classroom[name], self.logs / f'{name}.log')
        return self.running[name]

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()

    def failure_sections(self) -> list[tuple[str, str]]:
        return [(f'jupyter server log of {name}', server.log()) for name, server in self.running.items()]


@pytest.fixture(scope='module')
def jupyter(classroom, tmp_path_factory):
    started = JupyterServers(classroom, tmp_path_factory.mktemp('jupyter-server-logs'))
    try:
        yield started
    finally:
        started.stop()


def succeeded(answer: dict) -> dict:
    assert answer['success'] is True, json.dumps(answer, indent=1)
    return answer


def failed(answer: dict, key: str, *phrases: str) -> str:
    """The answer says the operation failed, and its `key` text names each phrase."""
    assert answer['success'] is False, json.dumps(answer, indent=1)
    for phrase in phrases:
        assert phrase in answer[key], json.dumps(answer, indent=1)
    return answer[key]


def listed(answer: dict) -> tuple[list, list]:
    """An Assignments panel listing, split into released/fetched assignments and submissions."""
    entries = succeeded(answer)['value']
    released = [entry for entry in entries if entry['status'] != 'submitted']
    return released, [entry for entry in entries if entry['status'] == 'submitted']


def submission_timestamps(submitted: list) -> list[str]:
    (entry,) = submitted
    assert (entry['course_id'], entry['student_id'], entry['assignment_id']) == (COURSE, STUDENT, ASSIGNMENT)
    return [submission['timestamp'] for submission in entry['submissions']]


def test_1_instructor_generates_and_releases_from_the_formgrader(classroom, jupyter):
    admin, instructor = classroom['admin'], classroom['instructor1']
    admin.api_ok('POST', f'/course/{COURSE}', data={'instructors': json.dumps([instructor.name])})
    admin.api_ok('POST', f'/instructor/{COURSE}/{instructor.name}', data=INSTRUCTOR_NAMES)
    names = {key: STUDENTS_CSV[0][key] for key in ('first_name', 'last_name', 'email')}
    admin.api_ok('POST', f'/student/{COURSE}/{STUDENT}', data=names)

    write_ps1_source(instructor)
    formgrader = jupyter['instructor1']
    succeeded(formgrader.call('POST', f'{FORMGRADER}/assign'))
    released = instructor.home / 'release' / ASSIGNMENT / NOTEBOOK
    assert released.is_file()

    succeeded(formgrader.call('POST', f'{FORMGRADER}/release'))
    files = instructor.api_ok('GET', f'/assignment/{COURSE}/{ASSIGNMENT}')['files']
    assert decoded(files) == {NOTEBOOK: released.read_bytes()}
    again = formgrader.call('POST', f'{FORMGRADER}/release')
    failed(again, 'error', f'Already released, add --force to replace it: {COURSE} {ASSIGNMENT}')
    classroom.facts['released notebook'] = released.read_bytes()


def test_2_student_lists_fetches_and_submits_from_the_assignments_panel(classroom, jupyter):
    student, panel = classroom[STUDENT], jupyter[STUDENT]

    # A course the student is not in: the service's refusal reaches the panel.
    elsewhere = panel.call('GET', '/assignments', params={'course_id': OTHER_COURSE})
    failed(elsewhere, 'value', f'/assignments/{OTHER_COURSE}: Course not found')

    released, submitted = listed(panel.call('GET', '/assignments', params={'course_id': COURSE}))
    # nbgrader's panel shows notebook ids as names; paths only once fetched, relative to the home.
    assert released == [{**PS1, 'status': 'released', 'path': '', 'notebooks': [{'notebook_id': ASSIGNMENT, 'path': ''}]}]
    assert submitted == []

    released, _ = listed(panel.call('POST', '/assignments/fetch', json=PS1))
    notebooks = [{'notebook_id': ASSIGNMENT, 'path': f'{ASSIGNMENT}/{NOTEBOOK}'}]
    fetched = {**PS1, 'status': 'fetched', 'path': ASSIGNMENT, 'notebooks': notebooks}
    assert released == [fetched]
    assert (student.home / ASSIGNMENT / NOTEBOOK).read_bytes() == classroom.facts['released notebook']
    assert listed(panel.call('GET', '/assignments', params={'course_id': COURSE}))[0] == [fetched]

    timestamps = []
    for answer in (WRONG_ANSWER, CORRECT_ANSWER):
        answer_assignment(student, answer)
        released, submitted = listed(panel.call('POST', '/assignments/submit', json=PS1))
        assert released == [fetched]
        new = [timestamp for timestamp in submission_timestamps(submitted) if timestamp not in timestamps]
        assert len(new) == 1, submitted
        timestamps += new
    assert submission_timestamps(submitted) == timestamps

    on_the_service = classroom['instructor1'].api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']
    assert sorted((s['student_id'], s['timestamp']) for s in on_the_service) == [(student.name, t) for t in timestamps]
    classroom.facts['timestamps'] = timestamps


def test_3_formgrader_refuses_to_unrelease_over_submissions_then_collects_and_releases_feedback(classroom, jupyter):
    instructor, formgrader = classroom['instructor1'], jupyter['instructor1']
    first, latest = classroom.facts['timestamps']

    failed(
        formgrader.call('POST', f'{FORMGRADER}/unrelease'), 'error',
        f'Refusing to unrelease {COURSE} {ASSIGNMENT}: the exchange would delete its 2 submissions',
    )
    assert instructor.api_ok('GET', f'/assignments/{COURSE}')['assignments'] == [ASSIGNMENT]
    assert len(instructor.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']) == 2

    succeeded(formgrader.call('POST', f'{FORMGRADER}/collect'))
    collected = instructor.home / 'submitted' / STUDENT / ASSIGNMENT
    assert (collected / 'timestamp.txt').read_text() == latest
    assert solution_source(collected / NOTEBOOK) == CORRECT_ANSWER

    succeeded(formgrader.call('POST', f'/formgrader/api/submission/{ASSIGNMENT}/{STUDENT}/autograde'))
    succeeded(formgrader.call('POST', f'{FORMGRADER}/generate_feedback'))
    succeeded(formgrader.call('POST', f'{FORMGRADER}/release_feedback'))
    page = instructor.home / 'feedback' / STUDENT / ASSIGNMENT / f'{ASSIGNMENT}.html'
    answer = instructor.api_ok('GET', f'/feedback/{COURSE}/{ASSIGNMENT}/{STUDENT}', params={'timestamp': latest})
    assert decoded(answer['files']) == {page.name: page.read_bytes()}


def test_4_student_fetches_feedback_from_the_assignments_panel(classroom, jupyter):
    student, panel = classroom[STUDENT], jupyter[STUDENT]
    first, latest = classroom.facts['timestamps']

    _, submitted = listed(panel.call('POST', '/assignments/fetch_feedback', json=PS1))
    assert submission_timestamps(submitted) == [first, latest]
    submissions = submitted[0]['submissions']
    feedback = {s['timestamp']: (s['has_exchange_feedback'], s['has_local_feedback']) for s in submissions}
    assert feedback == {first: (False, False), latest: (True, True)}
    page = student.home / ASSIGNMENT / 'feedback' / latest / f'{ASSIGNMENT}.html'
    assert feedback_score(page) == (MAX_SCORE, MAX_SCORE)
    assert sorted(student.home.joinpath(ASSIGNMENT, 'feedback').iterdir()) == [page.parent]


def point_at_a_closed_port(user) -> str:
    """Change the exchange's address in the user's nbgrader_config.py to a loopback port nobody
    listens on; return the start of the error that names it. nbgrader's server extensions read
    the configuration again for each request, so the running server needs no restart."""
    unreachable = f'http://127.0.0.1:{servers.free_port()}/services/ngshare'
    config = user.home / '.jupyter' / 'nbgrader_config.py'
    text = config.read_text()
    assert repr(user.hub.exchange_url) in text, text
    config.write_text(text.replace(repr(user.hub.exchange_url), repr(unreachable)))
    return f'The exchange at {unreachable} cannot be reached'


def test_5_the_assignments_panel_says_when_the_exchange_does_not_answer(classroom, jupyter):
    panel = jupyter[STUDENT]
    problem = point_at_a_closed_port(classroom[STUDENT])

    text = failed(panel.call('GET', '/assignments', params={'course_id': COURSE}), 'value', problem)
    assert 'exchange directory does not exist' not in text
    failed(panel.call('POST', '/assignments/submit', json=PS1), 'value', problem)
    assert len(classroom['instructor1'].api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']) == 2


def test_6_the_formgrader_keeps_working_and_says_when_the_exchange_does_not_answer(classroom, jupyter):
    """The formgrader lists the exchange before every request and carries on without it when
    that fails with an ExchangeError; any other error would make every request a crash."""
    formgrader = jupyter['instructor1']
    problem = point_at_a_closed_port(classroom['instructor1'])

    assignments = formgrader.call('GET', '/formgrader/api/assignments')
    assert [assignment['name'] for assignment in assignments] == [ASSIGNMENT]
    assert [student['id'] for student in formgrader.call('GET', '/formgrader/api/students')] == [STUDENT]
    failed(formgrader.call('POST', f'{FORMGRADER}/release'), 'error', problem)
    failed(formgrader.call('POST', f'{FORMGRADER}/collect'), 'error', problem)
