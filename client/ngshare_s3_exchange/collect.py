import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.abc import ExchangeCollect as ABCExchangeCollect
from nbgrader.utils import parse_utc

from .exchange import Exchange
from .trees import safe_folder_name, write_files


class ExchangeCollect(Exchange, ABCExchangeCollect):
    """Download each student's latest submission (or, with before_duedate, the latest one
    before the due date) into submitted/<student>/<assignment>, with its timestamp.txt."""

    def init_src(self):
        self.course_id, self.assignment_id = self.one_course(), self.one_assignment()
        submissions = self.api('GET', f'/submissions/{self.course_id}/{self.assignment_id}')['submissions']
        wanted = self.coursedir.student_id or '*'
        by_student: dict[str, list] = {}
        for submission in submissions:
            student, timestamp = submission['student_id'], submission['timestamp']
            if fnmatch(student, wanted):
                try:  # it names the folder the submission is collected into
                    safe_folder_name(student, 'student id')
                except ValueError as error:
                    self.fail(str(error))
                by_student.setdefault(student, []).append((parse_utc(timestamp), timestamp))
        duedate = self.duedate() if self.before_duedate else None
        self.chosen = {}
        for student, timestamps in sorted(by_student.items()):
            in_time = [t for t in timestamps if duedate is None or t[0] <= duedate]
            self.chosen[student] = max(in_time or timestamps)

    def duedate(self):
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                return gradebook.find_assignment(self.assignment_id).duedate
            except MissingEntry:
                return None

    def copy_files(self):
        if not self.chosen:
            self.log.warning(f"No submissions of '{self.assignment_id}' for course '{self.course_id}' to collect")
            return
        self.log.info(f"Processing {len(self.chosen)} submissions of '{self.assignment_id}' for course '{self.course_id}'")
        for student, (timestamp, as_sent) in self.chosen.items():
            dest_path = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, self.assignment_id))
            if dest_path.is_dir():
                existing = self.coursedir.get_existing_timestamp(str(dest_path))
                newer = self.update and (existing is None or timestamp > existing)
                other = self.before_duedate and existing != timestamp
                if not (newer or other):
                    if self.update:
                        self.log.info(f'No newer submission to collect: {student} {self.assignment_id}')
                    continue
                self.log.info(f'Updating submission: {student} {self.assignment_id}')
            else:
                self.log.info(f'Collecting submission: {student} {self.assignment_id}')
            self.download(student, as_sent, dest_path)

    def download(self, student: str, timestamp: str, dest_path: Path) -> None:
        """Fetch one submission into a sibling folder, then put it in place of any earlier one."""
        answer = self.api(
            'GET',
            f'/submission/{self.course_id}/{self.assignment_id}/{student}',
            params={'timestamp': timestamp},
        )
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f'.{self.assignment_id}-', dir=dest_path.parent))
        try:
            write_files(answer['files'], staging)
            (staging / 'timestamp.txt').write_text(answer['timestamp'])
            if dest_path.exists():
                shutil.rmtree(dest_path)
            staging.rename(dest_path)
        except ValueError as error:
            self.fail(f'{student}: {error}')
        finally:
            shutil.rmtree(staging, ignore_errors=True)
