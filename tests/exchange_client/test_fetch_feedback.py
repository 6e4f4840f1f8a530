"""fetch_feedback writes each submission's feedback into <assignment>/feedback/<timestamp>/, the
timestamp as the exchange sends it: one that would lead out of that folder is refused, and
nothing is written."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc.exchange import ExchangeError

from ngshare_s3_exchange import ExchangeFetchFeedback

from .local_server import Handler, serving

COURSE, ASSIGNMENT, STUDENT = 'course101', 'ps1', 'student1'
PAGE = b'<html>3 / 3</html>'
SAFE_TIMESTAMP = '2026-12-03 10:00:00.000000'  # as the service writes them


def exchange_with_submissions(*timestamps: str) -> type[Handler]:
    """An exchange that lists the student's submissions with these timestamps, and has
    feedback on each."""

    class Submissions(Handler):
        def answer(self):
            url = urlsplit(self.path)
            if url.path == f'/submissions/{COURSE}/{ASSIGNMENT}/{STUDENT}':
                submissions = [{'student_id': STUDENT, 'timestamp': timestamp} for timestamp in timestamps]
                self.send_json(200, {'success': True, 'submissions': submissions})
            elif url.path == f'/feedback/{COURSE}/{ASSIGNMENT}/{STUDENT}':
                (timestamp,) = parse_qs(url.query, keep_blank_values=True)['timestamp']
                files = [{'path': f'{ASSIGNMENT}.html', 'content': base64.b64encode(PAGE).decode()}]
                self.send_json(200, {'success': True, 'timestamp': timestamp, 'files': files})
            else:
                self.send_json(404, {'success': False, 'message': 'Submission not found'})

    return Submissions


def fetch_feedback(url: str, home) -> None:
    coursedir = CourseDirectory(root=str(home), course_id=COURSE, assignment_id=ASSIGNMENT)
    ExchangeFetchFeedback(
        coursedir=coursedir, authenticator=Authenticator(), ngshare_url=url, username=STUDENT, assignment_dir=str(home)
    ).start()


def everything_under(folder) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob('*'))


def test_feedback_lands_in_the_submissions_folder(tmp_path):
    timestamp = SAFE_TIMESTAMP
    with serving(exchange_with_submissions(timestamp)) as url:
        fetch_feedback(url, tmp_path)
    assert (tmp_path / ASSIGNMENT / 'feedback' / timestamp / f'{ASSIGNMENT}.html').read_bytes() == PAGE


@pytest.mark.parametrize('timestamp', ['../../escaped', '..', '{tmp}/escaped', 'a/../../../escaped', 'a/b', '', '.'])
def test_a_timestamp_that_leads_elsewhere_is_refused(tmp_path, timestamp):
    timestamp = timestamp.format(tmp=tmp_path)  # an absolute path, inside the test's folder
    home = tmp_path / 'home'
    home.mkdir()
    with serving(exchange_with_submissions(SAFE_TIMESTAMP, timestamp)) as url:  # the safe one is not fetched either
        with pytest.raises(ExchangeError) as raised:
            fetch_feedback(url, home)
    assert str(raised.value) == f'the exchange sent an unsafe submission timestamp: {timestamp!r}'
    assert everything_under(tmp_path) == ['home']
