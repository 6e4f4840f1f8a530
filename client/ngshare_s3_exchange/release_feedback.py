import glob
from pathlib import Path

from nbgrader.exchange.abc import ExchangeReleaseFeedback as ABCExchangeReleaseFeedback

from .exchange import Exchange
from .trees import encode_folder


class ExchangeReleaseFeedback(Exchange, ABCExchangeReleaseFeedback):
    """Send each student's generated feedback (feedback/<student>/<assignment>/*.html) to the
    exchange, attached to the submission that was graded (its timestamp.txt)."""

    def init_src(self):
        self.course_id, self.assignment_id = self.one_course(), self.one_assignment()
        pattern = self.coursedir.format_path(self.coursedir.feedback_directory, self.coursedir.student_id or '*', self.assignment_id)
        self.folders = sorted(path for path in map(Path, glob.glob(pattern)) if path.is_dir())
        if not self.folders:
            self.log.warning(f'No feedback to release for {self.course_id} {self.assignment_id}: nothing matches {pattern}')

    def copy_files(self):
        for folder in self.folders:
            student = self.student_of(folder)
            stamp = folder / 'timestamp.txt'
            if not stamp.is_file():
                self.fail(f'{stamp} is missing: generate the feedback again from the collected submission')
            timestamp = stamp.read_text().strip()
            files = encode_folder(folder, only_html_pages)
            self.log.info(f"Releasing feedback for student '{student}' on assignment '{self.course_id}/{self.assignment_id}' ({timestamp})")
            self.api(
                'POST',
                f'/feedback/{self.course_id}/{self.assignment_id}/{student}',
                data={'timestamp': timestamp, 'files': files},
            )

    def student_of(self, folder: Path) -> str:
        """The student a feedback folder belongs to, read back through the course's path format."""
        for candidate in folder.parts:
            if Path(self.coursedir.format_path(self.coursedir.feedback_directory, candidate, self.assignment_id)) == folder:
                return candidate
        self.fail(f'Cannot tell whose feedback {folder} is')



def only_html_pages(directory: str, names: list) -> list:
    """The feedback folder's own pages are what students get; anything else stays behind."""
    return [name for name in names if not name.endswith('.html') or Path(directory, name).is_dir()]
