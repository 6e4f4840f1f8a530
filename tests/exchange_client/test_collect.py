"""collect writes each student's latest submission into submitted/<student>/<assignment>/, the
student id as the exchange sends it: one that would lead out of that folder is refused, and
nothing is written."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc.exchange import ExchangeError

from ngshare_s3_exchange import ExchangeCollect

from .local_server import Handler, serving

COURSE, ASSIGNMENT = 'course101', 'ps1'
EARLIER, LATER = '2026-12-03 10:00:00.000000', '2026-12-03 11:00:00.000000'


def exchange_with_submissions(*students: str) -> type[Handler]:
    """An exchange on which each of these students submitted twice; a submission's notebook
    holds its timestamp."""

    class Submissions(Handler):
        def answer(self):
            url = urlsplit(self.path)
            if url.path == f'/submissions/{COURSE}/{ASSIGNMENT}':
                listed = [{'student_id': s, 'timestamp': t} for s in students for t in (EARLIER, LATER)]
                self.send_json(200, {'success': True, 'submissions': listed})
            elif url.path.startswith(f'/submission/{COURSE}/{ASSIGNMENT}/'):
                (timestamp,) = parse_qs(url.query, keep_blank_values=True)['timestamp']
                files = [{'path': f'{ASSIGNMENT}.ipynb', 'content': base64.b64encode(timestamp.encode()).decode()}]
                self.send_json(200, {'success': True, 'timestamp': timestamp, 'files': files})
            else:
                self.send_json(404, {'success': False, 'message': 'Submission not found'})

    return Submissions


def collect(url: str, root) -> None:
    coursedir = CourseDirectory(root=str(root), course_id=COURSE, assignment_id=ASSIGNMENT)
    ExchangeCollect(coursedir=coursedir, authenticator=Authenticator(), ngshare_url=url).start()


def test_the_latest_submission_of_each_student_is_collected_with_its_timestamp(tmp_path):
    with serving(exchange_with_submissions('student1', 'student2')) as url:
        collect(url, tmp_path)
    for student in ('student1', 'student2'):
        folder = tmp_path / 'submitted' / student / ASSIGNMENT
        assert (folder / f'{ASSIGNMENT}.ipynb').read_text() == LATER
        assert (folder / 'timestamp.txt').read_text() == LATER
    assert sorted(path.name for path in (tmp_path / 'submitted').iterdir()) == ['student1', 'student2']


@pytest.mark.parametrize('student', ['..', '../escaped', 'a/b', '.'])
def test_a_student_id_that_leads_elsewhere_is_refused(tmp_path, student):
    root = tmp_path / 'course'
    root.mkdir()
    with serving(exchange_with_submissions('student1', student)) as url:  # student1 is not collected either
        with pytest.raises(ExchangeError) as raised:
            collect(url, root)
    assert str(raised.value) == f'the exchange sent an unsafe student id: {student!r}'
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob('*')) == ['course']
