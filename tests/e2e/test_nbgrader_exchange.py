"""One term of a course, end to end, through a real JupyterHub and the real nbgrader clients.

An administrator sets up courses with ngshare-course-management; the instructor releases a
notebook assignment; students fetch, answer and submit it (student1 twice); the instructor
collects, autogrades and releases feedback; students fetch their own feedback; a student of
another course is kept out. Each step checks both what the users' folders hold and what the
service answers. The steps share state and run in file order; after a failure the rest are
skipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from .course_story import (
    assert_succeeded,
    COURSE,
    OTHER_COURSE,
    ASSIGNMENT,
    NOTEBOOK,
    STUDENTS_CSV,
    INSTRUCTOR_NAMES,
    CORRECT_ANSWER,
    WRONG_ANSWER,
    PARTIAL_ANSWER,
    MAX_SCORE,
    PARTIAL_SCORE,
    write_ps1_source,
    solution_source,
    submit,
    decoded,
    feedback_score,
    html_files,
)

pytestmark = pytest.mark.steps

# --------------------------------------------------------------------------------------------
# The story
# --------------------------------------------------------------------------------------------


def test_1_admin_creates_courses_with_course_management_cli(classroom):
    admin = classroom['admin']

    result = admin.course_management('create_course', COURSE, 'instructor1')
    assert result.returncode == 0 and f'Successfully created {COURSE}' in result.output, str(result)

    result = admin.course_management(
        'add_instructor', COURSE, 'instructor1',
        '-f', INSTRUCTOR_NAMES['first_name'], '-l', INSTRUCTOR_NAMES['last_name'], '-e', INSTRUCTOR_NAMES['email'],
    )
    assert result.returncode == 0 and f'Successfully added instructor1 as an instructor to {COURSE}' in result.output, str(result)

    roster = admin.home / 'students.csv'
    with roster.open('w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['student_id', 'first_name', 'last_name', 'email'])
        writer.writeheader()
        writer.writerows(STUDENTS_CSV)
    result = admin.course_management('add_students', COURSE, str(roster), '--no-gb')
    assert result.returncode == 0, str(result)
    for row in STUDENTS_CSV:
        assert f'{row["student_id"]} was successfully added to {COURSE}' in result.output, str(result)

    result = admin.course_management('create_course', OTHER_COURSE)
    assert result.returncode == 0, str(result)
    result = admin.course_management(
        'add_student', OTHER_COURSE, 'outsider', '-f', 'Otto', '-l', 'Side', '-e', 'otto@example.edu', '--no-gb'
    )
    assert result.returncode == 0 and f'Successfully added/updated outsider on {OTHER_COURSE}' in result.output, str(result)

    # The service's view of it.
    assert admin.api_ok('GET', '/courses')['courses'] == [COURSE, OTHER_COURSE]
    assert admin.api_ok('GET', f'/instructors/{COURSE}')['instructors'] == [
        {'username': 'instructor1', **INSTRUCTOR_NAMES}
    ]
    assert admin.api_ok('GET', f'/students/{COURSE}')['students'] == [
        {'username': r['student_id'], 'first_name': r['first_name'], 'last_name': r['last_name'], 'email': r['email']}
        for r in STUDENTS_CSV
    ]
    assert [s['username'] for s in admin.api_ok('GET', f'/students/{OTHER_COURSE}')['students']] == ['outsider']
    for name, courses in [('instructor1', [COURSE]), ('student1', [COURSE]), ('student2', [COURSE]), ('outsider', [OTHER_COURSE])]:
        assert classroom[name].api_ok('GET', '/courses')['courses'] == courses, name

    # The exchange admin is an admin only of the exchange: a student cannot create courses.
    result = classroom['student1'].course_management('create_course', 'course303')
    assert result.returncode != 0 and 'Permission denied' in result.output, str(result)
    assert admin.api_ok('GET', '/courses')['courses'] == [COURSE, OTHER_COURSE]


def test_2_instructor_generates_and_releases_ps1(classroom):
    instructor = classroom['instructor1']
    write_ps1_source(instructor)

    assert_succeeded(instructor.nbgrader('generate_assignment', ASSIGNMENT))
    released = instructor.home / 'release' / ASSIGNMENT / NOTEBOOK
    assert released.is_file()
    assert 'return x * x' not in solution_source(released), 'the solution must be stripped from the release'

    result = instructor.nbgrader('release_assignment', ASSIGNMENT)
    assert_succeeded(result)
    assert f'Successfully released {ASSIGNMENT}' in result.output, str(result)

    assert instructor.api_ok('GET', f'/assignments/{COURSE}')['assignments'] == [ASSIGNMENT]
    files = instructor.api_ok('GET', f'/assignment/{COURSE}/{ASSIGNMENT}')['files']
    assert decoded(files) == {NOTEBOOK: released.read_bytes()}
    classroom.facts['released notebook'] = released.read_bytes()


def test_3_students_list_fetch_and_submit(classroom):
    student1, student2 = classroom['student1'], classroom['student2']

    for student in (student1, student2):
        result = student.nbgrader('list')
        assert_succeeded(result)
        assert f'{COURSE} {ASSIGNMENT}' in result.output, str(result)
        assert '(already downloaded)' not in result.output, str(result)

        assert_succeeded(student.nbgrader('fetch_assignment', ASSIGNMENT))
        assert (student.home / ASSIGNMENT / NOTEBOOK).read_bytes() == classroom.facts['released notebook']

        result = student.nbgrader('list')
        assert f'{COURSE} {ASSIGNMENT} (already downloaded)' in result.output, str(result)

    first = submit(student1, WRONG_ANSWER)
    latest = submit(student1, CORRECT_ANSWER)
    partial = submit(student2, PARTIAL_ANSWER)
    assert first < latest, 'a later submission must get a later timestamp'
    classroom.facts.update(
        {'student1 first': first, 'student1 latest': latest, 'student2 latest': partial}
    )

    # The service keeps every submission, by its owner, with the timestamps the clients cached.
    instructor = classroom['instructor1']
    submissions = instructor.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']
    assert sorted((s['student_id'], s['timestamp']) for s in submissions) == sorted(
        [('student1', first), ('student1', latest), ('student2', partial)]
    )
    own = student1.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}/student1')['submissions']
    assert sorted(s['timestamp'] for s in own) == [first, latest]
    earlier = instructor.api_ok('GET', f'/submission/{COURSE}/{ASSIGNMENT}/student1', params={'timestamp': first})
    assert solution_source(decoded(earlier['files'])[NOTEBOOK]) == WRONG_ANSWER


def test_4_instructor_collects_autogrades_and_releases_feedback(classroom):
    instructor = classroom['instructor1']
    facts = classroom.facts

    result = instructor.nbgrader('list', '--inbound')
    assert_succeeded(result)
    for student, timestamp in [('student1', facts['student1 first']), ('student1', facts['student1 latest']), ('student2', facts['student2 latest'])]:
        assert f'{COURSE} {student} {ASSIGNMENT} {timestamp} (no feedback available)' in result.output, str(result)

    assert_succeeded(instructor.nbgrader('collect', ASSIGNMENT))
    submitted = instructor.home / 'submitted'
    assert sorted(p.name for p in submitted.iterdir()) == ['student1', 'student2']
    collected = submitted / 'student1' / ASSIGNMENT
    assert solution_source(collected / NOTEBOOK) == CORRECT_ANSWER, 'collect must take the latest submission'
    server_latest = instructor.api_ok('GET', f'/submission/{COURSE}/{ASSIGNMENT}/student1')
    assert server_latest['timestamp'] == facts['student1 latest']
    assert (collected / 'timestamp.txt').read_text() == server_latest['timestamp']
    assert (collected / NOTEBOOK).read_bytes() == decoded(server_latest['files'])[NOTEBOOK]
    assert (submitted / 'student2' / ASSIGNMENT / 'timestamp.txt').read_text() == facts['student2 latest']
    assert solution_source(submitted / 'student2' / ASSIGNMENT / NOTEBOOK) == PARTIAL_ANSWER

    assert_succeeded(instructor.nbgrader('autograde', ASSIGNMENT))
    for student in ('student1', 'student2'):
        assert (instructor.home / 'autograded' / student / ASSIGNMENT / NOTEBOOK).is_file()

    assert_succeeded(instructor.nbgrader('generate_feedback', ASSIGNMENT))
    feedback = {s: instructor.home / 'feedback' / s / ASSIGNMENT / f'{ASSIGNMENT}.html' for s in ('student1', 'student2')}
    assert all(path.is_file() for path in feedback.values())

    assert_succeeded(instructor.nbgrader('release_feedback', ASSIGNMENT))
    for student, path in feedback.items():
        answer = instructor.api_ok(
            'GET', f'/feedback/{COURSE}/{ASSIGNMENT}/{student}', params={'timestamp': facts[f'{student} latest']}
        )
        assert decoded(answer['files']) == {f'{ASSIGNMENT}.html': path.read_bytes()}
    earlier = instructor.api_ok(
        'GET', f'/feedback/{COURSE}/{ASSIGNMENT}/student1', params={'timestamp': facts['student1 first']}
    )
    assert earlier['files'] == [], 'feedback belongs to the graded submission only'

    result = instructor.nbgrader('list', '--inbound')
    assert_succeeded(result)
    for student in ('student1', 'student2'):
        assert f'{COURSE} {student} {ASSIGNMENT} {facts[student + " latest"]} (feedback ready to be fetched)' in result.output, str(result)
    assert f'{COURSE} student1 {ASSIGNMENT} {facts["student1 first"]} (no feedback available)' in result.output, str(result)


def test_5_students_fetch_only_their_own_feedback(classroom):
    student1, student2 = classroom['student1'], classroom['student2']
    facts = classroom.facts
    for student in (student1, student2):
        assert_succeeded(student.nbgrader('fetch_feedback', ASSIGNMENT))

    feedback_root = Path(ASSIGNMENT) / 'feedback'
    student1_html = student1.home / feedback_root / facts['student1 latest'] / f'{ASSIGNMENT}.html'
    student2_html = student2.home / feedback_root / facts['student2 latest'] / f'{ASSIGNMENT}.html'
    assert html_files(student1.home) == [student1_html]
    assert html_files(student2.home) == [student2_html]

    assert feedback_score(student1_html) == (MAX_SCORE, MAX_SCORE)
    assert feedback_score(student2_html) == (PARTIAL_SCORE, MAX_SCORE)
    instructor_feedback = classroom['instructor1'].home / 'feedback'
    assert student1_html.read_bytes() == (instructor_feedback / 'student1' / ASSIGNMENT / f'{ASSIGNMENT}.html').read_bytes()
    assert student2_html.read_bytes() == (instructor_feedback / 'student2' / ASSIGNMENT / f'{ASSIGNMENT}.html').read_bytes()

    # Another student's feedback stays out of reach, even asked for directly.
    response = student2.api(
        'GET', f'/feedback/{COURSE}/{ASSIGNMENT}/student1', params={'timestamp': facts['student1 latest']}
    )
    assert response.status_code == 403, response.text
    assert response.json() == {'success': False, 'message': 'Permission denied'}
    response = student2.api('GET', f'/submission/{COURSE}/{ASSIGNMENT}/student1')
    assert response.status_code == 403, response.text


def test_6_student_of_another_course_is_refused(classroom):
    outsider = classroom['outsider']
    admin = classroom['admin']
    submissions_before = admin.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions']

    result = outsider.nbgrader('fetch_assignment', ASSIGNMENT, '--course', COURSE)
    assert 'Permission denied' in result.output, str(result)
    assert not (outsider.home / ASSIGNMENT).exists(), 'nothing of the assignment may reach the outsider'

    result = outsider.nbgrader('list', '--course', COURSE)
    assert f'{COURSE} {ASSIGNMENT}' not in result.output, str(result)

    for method, route, kwargs in [
        ('GET', f'/assignments/{COURSE}', {}),
        ('GET', f'/assignment/{COURSE}/{ASSIGNMENT}', {}),
        ('GET', f'/submissions/{COURSE}/{ASSIGNMENT}', {}),
        ('POST', f'/submission/{COURSE}/{ASSIGNMENT}', {'data': {'user': 'outsider', 'files': '[]'}}),
        ('GET', f'/students/{COURSE}', {}),
    ]:
        response = outsider.api(method, route, **kwargs)
        assert response.status_code == 403, f'{method} {route}: {response.status_code} {response.text[:300]}'
        assert response.json() == {'success': False, 'message': 'Permission denied'}, f'{method} {route}'

    assert admin.api_ok('GET', f'/submissions/{COURSE}/{ASSIGNMENT}')['submissions'] == submissions_before
