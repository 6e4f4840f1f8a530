from nbgrader.exchange.abc import ExchangeFetchFeedback as ABCExchangeFetchFeedback

from .exchange import Exchange
from .trees import safe_folder_name, write_files


class ExchangeFetchFeedback(Exchange, ABCExchangeFetchFeedback):
    """Download the feedback on each of the student's submissions of an assignment into
    <assignment>/feedback/<timestamp>/. The submissions are the exchange's list, not the local
    cache, so feedback reaches a student whose cache was lost."""

    def init_src(self):
        self.course_id, self.assignment_id = self.one_course(), self.one_assignment()
        self.student = self.user()
        route = f'/submissions/{self.course_id}/{self.assignment_id}/{self.student}'
        submissions = self.api('GET', route)['submissions']
        try:  # each names a local folder: checked before anything is fetched
            self.timestamps = sorted({safe_folder_name(s['timestamp'], 'submission timestamp') for s in submissions})
        except ValueError as error:
            self.fail(str(error))

    def copy_files(self):
        folder = self.assignment_folder(self.course_id, self.assignment_id) / 'feedback'
        fetched = 0
        for timestamp in self.timestamps:
            answer = self.api(
                'GET',
                f'/feedback/{self.course_id}/{self.assignment_id}/{self.student}',
                params={'timestamp': timestamp},
            )
            try:
                written = write_files(answer['files'], folder / timestamp)
            except ValueError as error:
                self.fail(str(error))
            for path in written:
                self.log.info(f'Fetched feedback: {path}')
            fetched += len(written)
        if not fetched:
            self.log.info(f'No feedback available yet for {self.course_id} {self.assignment_id}')
