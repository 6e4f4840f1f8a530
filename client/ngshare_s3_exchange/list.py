import hashlib
from pathlib import Path

from nbgrader.exchange.abc import ExchangeList as ABCExchangeList
from traitlets.config import Application

from .exchange import Exchange, one_or_none
from .trees import notebook_names


class ListingFailed(RuntimeError):
    """A listing for nbgrader's Assignments panel that could not be made. The panel shows the
    text of other errors but replaces that of an ExchangeError with a note about a shared folder,
    so its listings fail with this one and the panel shows what the exchange said."""


def within_an_application(configurable) -> bool:
    """Whether an application (nbgrader's command line, the Jupyter server of the formgrader)
    made this object, rather than the Assignments panel's handlers, which make listers on their own."""
    parent = configurable.parent
    while parent is not None:
        if isinstance(parent, Application):
            return True
        parent = parent.parent
    return False


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class ExchangeList(Exchange, ABCExchangeList):
    """What nbgrader's `list`, the Assignments panel and the formgrader's "unrelease" show:
    released assignments (and whether they were fetched), submissions as the exchange keeps them
    (--inbound, for instructors) or as this user sent them (--cached), with feedback status."""

    def fail(self, msg):
        """An ExchangeError where nbgrader's applications expect one: the formgrader lists before
        every request, carries on without the exchange after an ExchangeError, and answers every
        request with HTTP 500 after any other error."""
        if within_an_application(self):
            super().fail(msg)
        self.log.fatal(msg)
        raise ListingFailed(msg) from None  # the message says it all; the panel shows the traceback

    # -- which courses and assignments ---------------------------------------------------------

    def courses(self) -> list:
        """The course asked for; with none or a wildcard (nbgrader's '*'), all of the user's."""
        course_id = one_or_none(self.coursedir.course_id)
        return [course_id] if course_id else self.api('GET', '/courses')['courses']

    def assignments_of(self, course_id: str) -> list:
        released = self.api('GET', f'/assignments/{course_id}')['assignments']
        wanted = one_or_none(self.coursedir.assignment_id)
        return [a for a in released if not wanted or a == wanted]

    def released(self) -> list:
        return [(c, a) for c in self.courses() for a in self.assignments_of(c)]

    # -- outbound -----------------------------------------------------------------------------

    def outbound_info(self, course_id: str, assignment_id: str) -> dict:
        info = {'course_id': course_id, 'assignment_id': assignment_id}
        local = self.assignment_folder(course_id, assignment_id)
        if local.is_dir():
            info.update(status='fetched', path=str(local.resolve()))
            info['notebooks'] = [
                {'notebook_id': path.stem, 'path': str(path.resolve())} for path in sorted(local.glob('*.ipynb'))
            ]
        else:
            answer = self.api('GET', f'/assignment/{course_id}/{assignment_id}', params={'list_only': 'true'})
            info.update(status='released', path='')
            info['notebooks'] = [
                {'notebook_id': name, 'path': ''} for name in notebook_names(f['path'] for f in answer['files'])
            ]
        if self.remove:
            info['status'] = 'removed'
        return info

    # -- submissions --------------------------------------------------------------------------

    def inbound_submissions(self):
        """(course, student, assignment, timestamp, notebook ids) of the exchange's submissions."""
        student = one_or_none(self.coursedir.student_id)
        for course_id, assignment_id in self.released():
            route = f'/submissions/{course_id}/{assignment_id}' + (f'/{student}' if student else '')
            for submission in self.api('GET', route)['submissions']:
                answer = self.api(
                    'GET',
                    f'/submission/{course_id}/{assignment_id}/{submission["student_id"]}',
                    params={'list_only': 'true', 'timestamp': submission['timestamp']},
                )
                notebooks = notebook_names(f['path'] for f in answer['files'])
                yield course_id, submission['student_id'], assignment_id, submission['timestamp'], notebooks

    def cached_submissions(self):
        """The same, for the copies this user's submit kept in the submission cache:
        <cache>/<course>/<student>+<assignment>+<timestamp>/."""
        course = one_or_none(self.coursedir.course_id) or '*'
        assignment = one_or_none(self.coursedir.assignment_id) or '*'
        for copy in sorted(Path(self.cache).glob(f'{course}/*+{assignment}+*')):
            parts = copy.name.rsplit('+', 2)
            if copy.is_dir() and len(parts) == 3:
                student, assignment_id, timestamp = parts
                notebooks = sorted(path.stem for path in copy.glob('*.ipynb'))
                yield copy.parent.name, student, assignment_id, timestamp, notebooks

    def submission_info(self, course_id, student, assignment_id, timestamp, notebooks) -> dict:
        feedback = self.api(
            'GET',
            f'/feedback/{course_id}/{assignment_id}/{student}',
            params={'list_only': 'true', 'timestamp': timestamp},
        )['files']
        on_exchange = {f['path']: f['checksum'] for f in feedback}
        local_folder = self.assignment_folder(course_id, assignment_id) / 'feedback' / timestamp
        info = {
            'course_id': course_id,
            'student_id': student,
            'assignment_id': assignment_id,
            'timestamp': timestamp,
            'status': 'submitted',
            'path': '',
            'notebooks': [],
        }
        for notebook_id in notebooks:
            page = f'{notebook_id}.html'
            local = local_folder / page
            entry = {
                'notebook_id': notebook_id,
                'path': '',
                'has_local_feedback': local.is_file(),
                'has_exchange_feedback': page in on_exchange,
                'local_feedback_path': str(local) if local.is_file() else None,
                'feedback_updated': False,
            }
            if entry['has_local_feedback'] and entry['has_exchange_feedback']:
                entry['feedback_updated'] = md5_of(local) != on_exchange[page]
            info['notebooks'].append(entry)
        pages = info['notebooks']
        info['has_local_feedback'] = bool(pages) and all(nb['has_local_feedback'] for nb in pages)
        info['has_exchange_feedback'] = bool(pages) and all(nb['has_exchange_feedback'] for nb in pages)
        info['feedback_updated'] = any(nb['feedback_updated'] for nb in pages)
        info['local_feedback_path'] = str(local_folder.resolve()) if info['has_local_feedback'] else None
        return info

    def grouped(self, submissions) -> list:
        """nbgrader's shape: one entry per (course, student, assignment), submissions oldest first."""
        groups = {}
        for info in submissions:
            key = (info['course_id'], info['student_id'], info['assignment_id'])
            groups.setdefault(key, []).append(info)
        return [
            {
                'course_id': course_id,
                'student_id': student,
                'assignment_id': assignment_id,
                'status': 'submitted',
                'submissions': sorted(infos, key=lambda info: info['timestamp']),
            }
            for (course_id, student, assignment_id), infos in sorted(groups.items())
        ]

    # -- nbgrader's entry points --------------------------------------------------------------

    def listing(self) -> list:
        if self.inbound or self.cached:
            found = self.inbound_submissions() if self.inbound else self.cached_submissions()
            return self.grouped([self.submission_info(*submission) for submission in found])
        return [self.outbound_info(c, a) for c, a in self.released()]

    def list_files(self):
        assignments = self.listing()
        if self.inbound or self.cached:
            self.log.info('Submitted assignments:')
            for assignment in assignments:
                for info in assignment['submissions']:
                    self.log.info(format_submission(info))
        else:
            self.log.info('Released assignments:')
            for info in assignments:
                self.log.info(format_released(info))
        return assignments

    def remove_files(self):
        if self.inbound or self.cached:
            self.fail('Only released assignments can be removed from the exchange.')
        assignments = self.listing()
        for info in assignments:
            self.refuse_to_delete_submissions(info['course_id'], info['assignment_id'], 'unrelease')
        self.log.info('Removing released assignments:')
        for info in assignments:
            self.api('DELETE', f'/assignment/{info["course_id"]}/{info["assignment_id"]}')
            self.log.info(format_released(info))
        return assignments


def format_released(info: dict) -> str:
    text = f'{info["course_id"]} {info["assignment_id"]}'
    return text + ' (already downloaded)' if info['status'] == 'fetched' else text


def format_submission(info: dict) -> str:
    text = f'{info["course_id"]} {info["student_id"]} {info["assignment_id"]} {info["timestamp"]}'
    if info['has_local_feedback'] and not info['feedback_updated']:
        return text + ' (feedback already fetched)'
    if info['has_exchange_feedback']:
        return text + ' (feedback ready to be fetched)'
    return text + ' (no feedback available)'
