import shutil
import tempfile
from pathlib import Path

from nbgrader.exchange.abc import ExchangeFetchAssignment as ABCExchangeFetchAssignment

from .exchange import Exchange
from .trees import write_files


class ExchangeFetchAssignment(Exchange, ABCExchangeFetchAssignment):
    """Download a released assignment into the student's assignment folder."""

    def init_src(self):
        self.course_id, self.assignment_id = self.one_course(), self.one_assignment()

    def init_dest(self):
        self.dest_path = self.assignment_folder(self.course_id, self.assignment_id)
        if self.dest_path.exists() and not self.replace_missing_files:
            self.fail(f'You already have a copy of the assignment in this directory: {self.dest_path}')

    def copy_files(self):
        files = self.api('GET', f'/assignment/{self.course_id}/{self.assignment_id}')['files']
        if self.dest_path.exists():
            for path in write_files(files, self.dest_path, only_missing=True):
                self.log.warning(f"Replacing missing file '{path.relative_to(self.dest_path)}'")
        else:
            self._write_whole(files)
        self.log.info(f'Destination: {self.dest_path}')
        self.log.info(f'Fetched as: {self.course_id} {self.assignment_id}')

    def _write_whole(self, files):
        """Write into a sibling folder first, so a failure leaves no half-fetched assignment."""
        self.dest_path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f'.{self.assignment_id}-', dir=self.dest_path.parent))
        try:
            write_files(files, staging)
            staging.rename(self.dest_path)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, ValueError):
                self.fail(str(error))
            raise
