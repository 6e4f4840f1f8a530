"""What every exchange operation shares: where the service is, who is asking, and how to ask."""

from __future__ import annotations

import os
import pwd
from functools import cached_property
from pathlib import Path
from textwrap import dedent

from jupyter_core.paths import jupyter_data_dir
from nbgrader.exchange.abc import Exchange as ABCExchange
from nbgrader.utils import ignore_patterns
from traitlets import Bool, Float, Unicode, default

from .service import ExchangeService, ServiceError
from .trees import encode_folder

URL_VARIABLE = 'NGSHARE_URL'
KUBERNETES_URL = 'http://proxy-public/services/ngshare/'
WILDCARDS = set('*?[')


def one_or_none(value: str):
    """A single course, assignment or student id, or None for nothing or a wildcard."""
    return value if value and not WILDCARDS & set(value) else None


class Exchange(ABCExchange):
    """nbgrader's exchange, kept by an ngshare or ngshare_s3 service instead of a shared folder."""

    ngshare_url = Unicode(
        '',
        help=dedent(f"""
            Base URL of the exchange service, e.g. http://proxy-public/services/ngshare/.
            When unset: the {URL_VARIABLE} environment variable, then on Kubernetes
            (PROXY_PUBLIC_SERVICE_HOST set) {KUBERNETES_URL}.
            """),
    ).tag(config=True)

    _ngshare_url = Unicode('', help='The name ngshare_exchange gave ngshare_url; still read.').tag(config=True)

    api_token = Unicode(help='JupyterHub API token sent with every request; JUPYTERHUB_API_TOKEN by default.').tag(config=True)

    username = Unicode(help='Who the exchange is used as: JUPYTERHUB_USER, else the OS account.').tag(config=True)

    connect_timeout = Float(10.0, help='Seconds to wait for a connection to the exchange.').tag(config=True)

    timeout = Float(120.0, help='Seconds to wait for each answer of the exchange.').tag(config=True)

    cache = Unicode(help='Where submissions are copied as they are sent; $JUPYTER_DATA_DIR/nbgrader_cache by default.').tag(config=True)

    path_includes_course = Bool(
        False, help='Keep assignments in ./<course>/<assignment> rather than ./<assignment>.'
    ).tag(config=True)

    delete_submissions = Bool(
        False,
        help=dedent("""
            Let an unrelease (nbgrader list --remove, the formgrader's "unrelease") and
            release_assignment --force go ahead when the assignment has submissions. The exchange
            deletes an assignment together with all its submissions and feedback.
            """),
    ).tag(config=True)

    @default('api_token')
    def _api_token_default(self):
        return os.environ.get('JUPYTERHUB_API_TOKEN', '')

    @default('username')
    def _username_default(self):
        if os.environ.get('JUPYTERHUB_USER'):
            return os.environ['JUPYTERHUB_USER']
        try:
            return pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            return ''

    @default('cache')
    def _cache_default(self):
        return os.path.join(jupyter_data_dir(), 'nbgrader_cache')

    def service_url(self) -> str:
        url = self.ngshare_url or self._ngshare_url or os.environ.get(URL_VARIABLE, '')
        if not url and 'PROXY_PUBLIC_SERVICE_HOST' in os.environ:
            url = KUBERNETES_URL
        if not url:
            self.fail(
                'No exchange URL is configured: call configureExchange(c, url) in '
                f'nbgrader_config.py, set c.Exchange.ngshare_url, or set {URL_VARIABLE}.'
            )
        return url

    @cached_property
    def service(self) -> ExchangeService:
        return ExchangeService(self.service_url(), self.api_token, self.connect_timeout, self.timeout)

    def api(self, method: str, route: str, **request) -> dict:
        """One call to the exchange; a failure ends the operation with the service's message."""
        try:
            return self.service.call(method, route, **request)
        except ServiceError as error:
            self.fail(str(error))

    def user(self) -> str:
        if not self.username:
            self.fail('Cannot tell who you are: set JUPYTERHUB_USER or c.Exchange.username.')
        return self.username

    def one_course(self) -> str:
        """The course this operation works on; a wildcard or nothing is refused, by name."""
        course_id = one_or_none(self.coursedir.course_id)
        if not course_id:
            self.fail(
                f'This needs one course, not {self.coursedir.course_id or "none"!r}: pass --course COURSE or '
                'set c.CourseDirectory.course_id in nbgrader_config.py.'
            )
        return course_id

    def one_assignment(self) -> str:
        assignment_id = one_or_none(self.coursedir.assignment_id)
        if not assignment_id:
            self.fail(f'This needs one assignment, not {self.coursedir.assignment_id or "none"!r}.')
        return assignment_id

    def assignment_folder(self, course_id: str, assignment_id: str) -> Path:
        """Where a student's copy of the assignment lives."""
        parts = [course_id, assignment_id] if self.path_includes_course else [assignment_id]
        return Path(self.assignment_dir, *parts)

    def ignored_files(self):
        """What the course directory's ignore, include and max_file_size settings leave out,
        as a shutil.copytree ignore function."""
        return ignore_patterns(
            exclude=self.coursedir.ignore,
            include=self.coursedir.include,
            max_file_size=self.coursedir.max_file_size,
            log=self.log,
        )

    def encode(self, folder: Path) -> str:
        """The folder's files as the API's `files`."""
        return encode_folder(folder, self.ignored_files())

    def submission_count(self, course_id: str, assignment_id: str) -> int:
        return len(self.api('GET', f'/submissions/{course_id}/{assignment_id}')['submissions'])

    def refuse_to_delete_submissions(self, course_id: str, assignment_id: str, action: str) -> None:
        """Deleting an assignment deletes its submissions too; do it only when told to."""
        count = self.submission_count(course_id, assignment_id)
        if count and not self.delete_submissions:
            self.fail(
                f'Refusing to {action} {course_id} {assignment_id}: the exchange would delete its '
                f'{count} submission{"s" if count != 1 else ""} and their feedback with it. '
                'Collect them first; to delete them, pass --Exchange.delete_submissions=True.'
            )

    def init_src(self):
        pass

    def init_dest(self):
        pass

    def copy_files(self):
        pass
