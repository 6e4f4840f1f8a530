import shutil
from pathlib import Path

from nbgrader.exchange.abc import ExchangeSubmit as ABCExchangeSubmit

from .exchange import Exchange
from .trees import notebook_names


class ExchangeSubmit(Exchange, ABCExchangeSubmit):
    """Send the student's copy of an assignment as a new submission, and keep a copy of what
    was sent in the local submission cache (which `nbgrader list --cached` shows)."""

    def init_src(self):
        self.course_id, self.assignment_id = self.one_course(), self.one_assignment()
        self.user()  # known before anything is sent, for the copy kept afterwards
        self.src_path = self.assignment_folder(self.course_id, self.assignment_id)
        if not self.src_path.is_dir():
            self.fail(f'Assignment not found: {self.src_path}')

    def init_dest(self):
        self.check_notebooks()

    def check_notebooks(self):
        """Compare the notebooks with the released ones; a missing one fails in strict mode."""
        released = self.api('GET', f'/assignment/{self.course_id}/{self.assignment_id}', params={'list_only': 'true'})
        expected = set(notebook_names(entry['path'] for entry in released['files']))
        present = {path.stem for path in self.src_path.glob('*.ipynb')}
        missing = sorted(expected - present)
        if missing:
            message = f'Notebooks missing from {self.src_path}: {", ".join(name + ".ipynb" for name in missing)}'
            if self.strict:
                self.fail(message)
            self.log.warning(message)

    def copy_files(self):
        self.log.info(f'Source: {self.src_path}')
        files = self.encode(self.src_path)
        answer = self.api('POST', f'/submission/{self.course_id}/{self.assignment_id}', data={'files': files})
        timestamp = answer['timestamp']
        self.keep_a_copy(timestamp)
        self.log.info(f'Submitted as: {self.course_id} {self.assignment_id} {timestamp}')

    def keep_a_copy(self, timestamp: str) -> None:
        copy = Path(self.cache, self.course_id, f'{self.user()}+{self.assignment_id}+{timestamp}')
        shutil.copytree(self.src_path, copy, ignore=self.ignored_files())
        (copy / 'timestamp.txt').write_text(timestamp)
