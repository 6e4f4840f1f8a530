"""ngshare-s3-exchange, the nbgrader plugin of this repository, through a whole course term.

The same story as test_nbgrader_exchange.py (course set-up, release, fetch, two submissions,
collect, autograde, feedback), driven from the command line of separate virtualenvs that pip
resolved around the plugin: nbgrader 0.9 with JupyterLab 4 and Notebook 7, and nbgrader 0.8
with their predecessors. Each user has their own Hub token, home folder and
~/.jupyter/nbgrader_config.py. Beyond the happy path it checks what the plugin promises: a
failure exits non-zero with the service's message, `--course '*'` lists across courses and is
refused where one course is needed, and nothing that would delete submissions happens unless
asked for.
"""

from __future__ import annotations

import csv
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from . import client_envs
from .conftest import Classroom, make_classroom, mongodb_and_minio, ngshare_0_6, sqlite_and_local_files
from .course_story import (
    ASSIGNMENT,
    CORRECT_ANSWER,
    COURSE,
    INSTRUCTOR_NAMES,
    MAX_SCORE,
    NOTEBOOK,
    OTHER_COURSE,
    PARTIAL_ANSWER,
    PARTIAL_SCORE,
    STUDENTS_CSV,
    WRONG_ANSWER,
    assert_succeeded,
    cached_submissions,
    decoded,
    feedback_score,
    html_files,
    write_ps1_source,
    solution_source,
    submit,
)


@dataclass(frozen=True)
class StorageFor:
    """A backend pair as the storage parameter of one client environment. pytest keeps a
    module-scoped fixture for an equal parameter, so with the bare backend function two
    environments would share one Hub and service and meet each other's users and courses."""

    make_storage: Callable
    client_environment: str

    def __call__(self, request, folder):
        return self.make_storage(request, folder)


def client_row(make_storage: Callable, client_environment: str, backends: str):
    return pytest.param(
        StorageFor(make_storage, client_environment), client_environment, id=f'{client_environment}-{backends}'
    )


# Each client environment against the embedded backends, and the newest against MongoDB + MinIO
# as well: the service sees the same requests from both nbgrader versions. The newest also runs
# against the original ngshare 0.6.0 as the Hub's service, which the plugin must work with too.
CLIENT_MATRIX = [
    client_row(sqlite_and_local_files, 'nbgrader-0.9', 'sqlite+files'),
    client_row(mongodb_and_minio, 'nbgrader-0.9', 'mongodb+minio'),
    client_row(sqlite_and_local_files, 'nbgrader-0.8', 'sqlite+files'),
    client_row(ngshare_0_6, 'nbgrader-0.9', 'ngshare-0.6.0'),
]

pytestmark = [
    pytest.mark.steps,
    pytest.mark.parametrize(
        ('service_storage', 'client_environment'), CLIENT_MATRIX, indirect=['service_storage'], scope='module'
    ),
]

OTHER_ASSIGNMENT = 'intro'
PEOPLE = {'admin': COURSE, 'instructor1': COURSE, 'student1': COURSE, 'student2': COURSE, 'outsider': OTHER_COURSE}


def write_client_config(exchange_url: str):
    """What a deployment puts in each user's ~/.jupyter/nbgrader_config.py, where nbgrader 0.9's
    formgrader still finds it after changing into a course directory."""

    def configure(home: Path, course_id: str) -> None:
        folder = home / '.jupyter'
        folder.mkdir()
        (folder / 'nbgrader_config.py').write_text(textwrap.dedent(f'''\
            from ngshare_s3_exchange import configureExchange
            c = get_config()
            configureExchange(c, {exchange_url!r})
            c.CourseDirectory.course_id = {course_id!r}
            '''))

    return configure


@pytest.fixture(scope='module')
def classroom(client_environment, jupyterhub, tmp_path_factory) -> Classroom:
    programs = client_envs.programs(client_environment)
    return make_classroom(
        jupyterhub, PEOPLE, tmp_path_factory.mktemp('homes'), write_client_config(jupyterhub.exchange_url), programs
    )


def assert_failed(result, message: str) -> None:
    """Failed loudly: a non-zero exit and the reason in the output."""
    assert result.returncode != 0, str(result)
    assert message in result.output, str(result)


def log_lines(result) -> list[str]:
    """nbgrader's log messages without their '[App | LEVEL]' prefixes."""
    return [re.sub(r'^\[\w+ \| \w+\] ', '', line) for line in result.output.splitlines()]


def test_1_admin_sets_up_courses_with_course_management(classroom):
    admin = classroom['admin']
    result = admin.course_management('create_course', COURSE, 'instructor1')
    assert_succeeded(result)
    assert f'Successfully created {COURSE}' in result.output

    result = admin.course_management(
        'add_instructor', COURSE, 'instructor1',
        '-f', INSTRUCTOR_NAMES['first_name'], '-l', INSTRUCTOR_NAMES['last_name'], '-e', INSTRUCTOR_NAMES['email'],
    )
    assert_succeeded(result)

    roster = admin.home / 'students.csv'
    with roster.open('w', newline='') as file:
        writer = csv.DictWriter(file, fieldnames=['student_id', 'first_name', 'last_name', 'email'])
        writer.writeheader()
        writer.writerows(STUDENTS_CSV)
    result = admin.course_management('add_students', COURSE, str(roster))
    assert_succeeded(result)
    for row in STUDENTS_CSV:
        assert f'{row["student_id"]} was successfully added to {COURSE}' in result.output, str(result)

    assert_succeeded(admin.course_management('create_course', OTHER_COURSE))
    for student in ('outsider', 'student1'):
        assert_succeeded(admin.course_management('add_student', OTHER_COURSE, student, '-f', 'F', '-l', 'L', '-e', 'e@x.edu'))
    # The other course has one released assignment, so that listings span two courses.
    intro = {'path': f'{OTHER_ASSIGNMENT}.ipynb', 'content': 'e30='}
    admin.api_ok('POST', f'/assignment/{OTHER_COURSE}/{OTHER_ASSIGNMENT}', data={'files': json.dumps([intro])})

    assert admin.api_ok('GET', f'/instructors/{COURSE}')['instructors'] == [{'username': 'instructor1', **INSTRUCTOR_NAMES}]
    assert [s['username'] for s in admin.api_ok('GET', f'/students/{COURSE}')['students']] == ['student1', 'student2']
    assert classroom['student1'].api_ok('GET', '/courses')['courses'] == [COURSE, OTHER_COURSE]

    # A student is no exchange admin: the command fails and says why.
    result = classroom['student1'].course_management('create_course', 'course303')
    assert_failed(result, 'Permission denied')
    assert admin.api_ok('GET', '/courses')['courses'] == [COURSE, OTHER_COURSE]


def test_2_instructor_releases_once_and_is_stopped_the_second_time(classroom):
    instructor = classroom['instructor1']
    write_ps1_source(instructor)
    assert_succeeded(instructor.nbgrader('generate_assignment', ASSIGNMENT))
    released = instructor.home / 'release' / ASSIGNMENT / NOTEBOOK

    result = instructor.nbgrader('release_assignment', ASSIGNMENT)
    assert_succeeded(result)
    assert f'Released as: {COURSE} {ASSIGNMENT}' in log_lines(result), str(result)
    files = instructor.api_ok('GET', f'/assignment/{COURSE}/{ASSIGNMENT}')['files']
    assert decoded(files) == {NOTEBOOK: released.read_bytes()}

    result = instructor.nbgrader('release_assignment', ASSIGNMENT)
    assert_failed(result, f'Already released, add --force to replace it: {COURSE} {ASSIGNMENT}')
    classroom.facts['released notebook'] = released.read_bytes()


def test_3_students_list_fetch_and_submit(classroom):
    student1, student2 = classroom['student1'], classroom['student2']
    for student in (student1, student2):
        result = student.nbgrader('list')
        assert_succeeded(result)
        assert f'{COURSE} {ASSIGNMENT}' in log_lines(result), str(result)

        assert_succeeded(student.nbgrader('fetch_assignment', ASSIGNMENT))
        assert (student.home / ASSIGNMENT / NOTEBOOK).read_bytes() == classroom.facts['released notebook']
        result = student.nbgrader('list')
        assert f'{COURSE} {ASSIGNMENT} (already downloaded)' in log_lines(result), str(result)

        result = student.nbgrader('fetch_assignment', ASSIGNMENT)
        assert_failed(result, 'You already have a copy of the assignment')

    first = submit(student1, WRONG_ANSWER)
    latest = submit(student1, CORRECT_ANSWER)
    partial = submit(student2, PARTIAL_ANSWER)
    assert first < latest
    classroom.facts.update({'student1 first': first, 'student1 latest': latest, 'student2 latest': partial})

    submissions = classroom['instructor1'].api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']
    assert sorted((s['student_id'], s['timestamp']) for s in submissions) == sorted(
        [('student1', first), ('student1', latest), ('student2', partial)]
    )
    result = student1.nbgrader('list', '--cached')
    assert_succeeded(result)
    for timestamp in (first, latest):
        assert f'{COURSE} student1 {ASSIGNMENT} {timestamp} (no feedback available)' in log_lines(result), str(result)


def test_4_course_wildcard_lists_every_course_and_is_refused_where_one_is_needed(classroom):
    student1 = classroom['student1']
    result = student1.nbgrader('list', '--course', '*')
    assert_succeeded(result)
    lines = log_lines(result)
    assert f'{COURSE} {ASSIGNMENT} (already downloaded)' in lines and f'{OTHER_COURSE} {OTHER_ASSIGNMENT}' in lines, str(result)

    result = student1.nbgrader('fetch_assignment', OTHER_ASSIGNMENT, '--course', '*')
    assert_failed(result, "This needs one course, not '*'")
    assert not (student1.home / OTHER_ASSIGNMENT).exists()

    outsider = classroom['outsider']
    result = outsider.nbgrader('fetch_assignment', ASSIGNMENT, '--course', COURSE)
    assert_failed(result, 'Permission denied')
    assert not (outsider.home / ASSIGNMENT).exists()
    result = outsider.nbgrader('list', '--course', COURSE)
    assert_failed(result, 'Permission denied')


def test_5_nothing_deletes_submissions_unless_told_to(classroom):
    instructor = classroom['instructor1']
    before = instructor.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']

    result = instructor.nbgrader('release_assignment', ASSIGNMENT, '--force')
    assert_failed(result, f'Refusing to release again {COURSE} {ASSIGNMENT}: the exchange would delete its 3 submissions')
    result = instructor.nbgrader('list', '--remove', '--course', COURSE)
    assert_failed(result, f'Refusing to unrelease {COURSE} {ASSIGNMENT}: the exchange would delete its 3 submissions')

    assert instructor.api_ok('GET', f'/assignments/{COURSE}')['assignments'] == [ASSIGNMENT]
    assert instructor.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions'] == before


def test_6_instructor_collects_autogrades_and_releases_feedback(classroom):
    instructor = classroom['instructor1']
    facts = classroom.facts

    result = instructor.nbgrader('list', '--inbound')
    assert_succeeded(result)
    for student, key in [('student1', 'student1 first'), ('student1', 'student1 latest'), ('student2', 'student2 latest')]:
        assert f'{COURSE} {student} {ASSIGNMENT} {facts[key]} (no feedback available)' in log_lines(result), str(result)

    assert_succeeded(instructor.nbgrader('collect', ASSIGNMENT))
    submitted = instructor.home / 'submitted'
    assert sorted(p.name for p in submitted.iterdir()) == ['student1', 'student2']
    assert solution_source(submitted / 'student1' / ASSIGNMENT / NOTEBOOK) == CORRECT_ANSWER
    assert (submitted / 'student1' / ASSIGNMENT / 'timestamp.txt').read_text() == facts['student1 latest']
    assert (submitted / 'student2' / ASSIGNMENT / 'timestamp.txt').read_text() == facts['student2 latest']
    assert solution_source(submitted / 'student2' / ASSIGNMENT / NOTEBOOK) == PARTIAL_ANSWER

    assert_succeeded(instructor.nbgrader('autograde', ASSIGNMENT))
    assert_succeeded(instructor.nbgrader('generate_feedback', ASSIGNMENT))
    assert_succeeded(instructor.nbgrader('release_feedback', ASSIGNMENT))
    for student in ('student1', 'student2'):
        page = instructor.home / 'feedback' / student / ASSIGNMENT / f'{ASSIGNMENT}.html'
        answer = instructor.api_ok(
            'GET', f'/feedback/{COURSE}/{ASSIGNMENT}/{student}', params={'timestamp': facts[f'{student} latest']}
        )
        assert decoded(answer['files']) == {f'{ASSIGNMENT}.html': page.read_bytes()}

    result = instructor.nbgrader('list', '--inbound')
    assert_succeeded(result)
    lines = log_lines(result)
    for student in ('student1', 'student2'):
        assert f'{COURSE} {student} {ASSIGNMENT} {facts[student + " latest"]} (feedback ready to be fetched)' in lines, str(result)
    assert f'{COURSE} student1 {ASSIGNMENT} {facts["student1 first"]} (no feedback available)' in lines, str(result)


def test_7_students_fetch_their_feedback(classroom):
    facts = classroom.facts
    for name, score in [('student1', MAX_SCORE), ('student2', PARTIAL_SCORE)]:
        student = classroom[name]
        assert_succeeded(student.nbgrader('fetch_feedback', ASSIGNMENT))
        page = student.home / ASSIGNMENT / 'feedback' / facts[f'{name} latest'] / f'{ASSIGNMENT}.html'
        assert html_files(student.home) == [page]
        assert feedback_score(page) == (score, MAX_SCORE)

        result = student.nbgrader('list', '--cached')
        assert_succeeded(result)
        assert f'{COURSE} {name} {ASSIGNMENT} {facts[name + " latest"]} (feedback already fetched)' in log_lines(result), str(result)
    assert cached_submissions(classroom['student1']) == sorted([facts['student1 first'], facts['student1 latest']])


def test_8_unrelease_with_submissions_when_told_to(classroom):
    instructor = classroom['instructor1']
    result = instructor.nbgrader('list', '--remove', '--course', COURSE, '--Exchange.delete_submissions=True')
    assert_succeeded(result)
    assert instructor.api_ok('GET', f'/assignments/{COURSE}')['assignments'] == []
    # The collected copies stay with the instructor.
    assert (instructor.home / 'submitted' / 'student1' / ASSIGNMENT / NOTEBOOK).is_file()
