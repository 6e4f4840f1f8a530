from pathlib import Path

from nbgrader.exchange.abc import ExchangeReleaseAssignment as ABCExchangeReleaseAssignment

from .exchange import Exchange


class ExchangeReleaseAssignment(Exchange, ABCExchangeReleaseAssignment):
    """Release the generated assignment (release/<assignment>) to the course's students."""

    def init_src(self):
        course_id, assignment_id = self.one_course(), self.one_assignment()
        self.src_path = Path(self.coursedir.format_path(self.coursedir.release_directory, '.', assignment_id))
        if not self.src_path.is_dir():
            source = Path(self.coursedir.format_path(self.coursedir.source_directory, '.', assignment_id))
            if source.is_dir():
                self.fail(f"Assignment found in '{source}' but not '{self.src_path}', run `nbgrader generate_assignment` first.")
            self.fail(f'Assignment not found: {self.src_path}')
        self.course_id, self.assignment_id = course_id, assignment_id

    def init_dest(self):
        released = self.api('GET', f'/assignments/{self.course_id}')['assignments']
        if self.assignment_id in released:
            if not self.force:
                self.fail(f'Already released, add --force to replace it: {self.course_id} {self.assignment_id}')
            self.refuse_to_delete_submissions(self.course_id, self.assignment_id, 'release again')
            self.api('DELETE', f'/assignment/{self.course_id}/{self.assignment_id}')
            self.log.info(f'Removed the earlier release: {self.course_id} {self.assignment_id}')

    def copy_files(self):
        self.log.info(f'Source: {self.src_path}')
        files = self.encode(self.src_path)
        self.api('POST', f'/assignment/{self.course_id}/{self.assignment_id}', data={'files': files})
        self.log.info(f'Released as: {self.course_id} {self.assignment_id}')
