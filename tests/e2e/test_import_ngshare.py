"""Moving an ngshare 0.6 installation to ngshare_s3 changes nothing its users can read.

A real JupyterHub runs the original ngshare 0.6.0 as its managed service; the story of
tests/ngshare_source.py fills it through the Hub's proxy with the users' own Hub tokens, and
every GET answer for every user is recorded. The Hub stops, `ngshare-s3 import-ngshare` copies
ngshare's database and storage folder into the backend pair under test, and the Hub starts again
on the same folder and database, so the same tokens still work, with ngshare_s3 as its service on
the imported stores. Every GET answer must be the same, apart from DOCUMENTED_DIFFERENCES.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from ngshare_source import ADMIN, COURSES, USERS, StoryOutcome, api_over_http, diff_recordings, populate, record_answers

from .conftest import JupyterHub, ServiceStorage, ngshare_0_6, serving_jupyterhub, tail

pytestmark = pytest.mark.steps

# Where ngshare_s3 may answer differently from ngshare 0.6 after an import: a pattern matching the
# lines of diff_recordings it explains, and the reason. None today: every answer is the same.
DOCUMENTED_DIFFERENCES: dict[str, str] = {}

IMPORT_TIMEOUT = 600


def documented(difference: str) -> bool:
    return any(re.search(pattern, difference) for pattern in DOCUMENTED_DIFFERENCES)


def exchange_api(hub: JupyterHub, tokens: dict[str, str]):
    """The story's way of calling the exchange: as `user`, with their own Hub token, through the
    Hub's public proxy."""
    return api_over_http(hub.exchange_url, tokens.__getitem__)


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with the MD5 of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob('*'))
        if path.is_file()
    }


def told(storage: ServiceStorage) -> dict[str, str]:
    """The service's --database and --storage settings, by option name."""
    return dict(zip(storage.arguments[::2], storage.arguments[1::2]))


@dataclass
class Migration:
    """One Hub folder that serves ngshare 0.6 first and ngshare_s3 after the import, and what was
    learned on the way; failure reports show the Hubs' logs and the import's output."""

    hub_folder: Path
    source_folder: Path
    source: ServiceStorage
    target: ServiceStorage
    admin_token: str = field(default_factory=lambda: secrets.token_hex(32))
    tokens: dict[str, str] = field(default_factory=dict)
    story: StoryOutcome | None = None
    ngshare_answers: dict = field(default_factory=dict)
    hub_logs: dict[str, str] = field(default_factory=dict)
    import_output: str = ''

    @contextlib.contextmanager
    def serving(self, storage: ServiceStorage, name: str) -> Iterator[JupyterHub]:
        """The Hub on its one folder with `storage`'s program as the service, until the block
        ends; its log is kept under `name` (the next Hub on the folder overwrites the file)."""
        with serving_jupyterhub(self.hub_folder, storage, self.admin_token) as hub:
            try:
                yield hub
            finally:
                self.hub_logs[name] = hub.log()

    def failure_sections(self) -> list[tuple[str, str]]:
        sections = [(f'JupyterHub log with {name}', tail(log)) for name, log in self.hub_logs.items()]
        if self.import_output:
            sections.append(('import-ngshare output', tail(self.import_output)))
        return sections


@pytest.fixture(scope='module')
def migration(request, service_storage, tmp_path_factory) -> Migration:
    """ngshare 0.6 on SQLite and a folder, to be imported into the backend pair under test."""
    source_folder = tmp_path_factory.mktemp('ngshare-0.6-data')
    return Migration(
        hub_folder=tmp_path_factory.mktemp('jupyterhub'),
        source_folder=source_folder,
        source=ngshare_0_6(request, source_folder),
        target=service_storage,
    )


def test_1_ngshare_0_6_serves_the_story(migration):
    with migration.serving(migration.source, 'ngshare 0.6.0') as hub:
        hub.create_users(USERS)
        for user in USERS:
            migration.tokens[user] = hub.new_token(user)
        api = exchange_api(hub, migration.tokens)
        migration.story = populate(api)
        migration.ngshare_answers = record_answers(api, USERS)
    courses = migration.ngshare_answers[f'{ADMIN} GET /courses']
    assert sorted(courses['json']['courses']) == sorted(COURSES), courses


def test_2_import_copies_everything_and_leaves_the_source_alone(migration):
    source = told(migration.source)
    before = folder_digest(migration.source_folder)
    command = [
        sys.executable, '-m', 'ngshare_s3', 'import-ngshare',
        '--from-database', source['--database'], '--from-storage', source['--storage'],
        *migration.target.arguments,
    ]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        env={**os.environ, **migration.target.environment},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT,
    )
    migration.import_output = (
        f'$ {" ".join(command)}  (exit {completed.returncode}, {time.monotonic() - started:.1f} s)\n'
        f'{completed.stdout}{completed.stderr}'
    )
    assert completed.returncode == 0, migration.import_output
    summary = completed.stdout.splitlines()[-1]
    submissions = len(migration.story.submissions)
    assert summary.startswith(f'Imported {len(COURSES)} courses, '), summary
    assert f' {submissions} submissions, ' in summary and summary.endswith('skipped: 0 records.'), summary
    assert folder_digest(migration.source_folder) == before


def test_3_ngshare_s3_answers_every_read_as_ngshare_did(migration):
    with migration.serving(migration.target, 'ngshare_s3') as hub:
        for user, token in migration.tokens.items():
            assert hub.who_owns(token) == user
        answers = record_answers(exchange_api(hub, migration.tokens), USERS)
    undocumented = [line for line in diff_recordings(migration.ngshare_answers, answers) if not documented(line)]
    assert not undocumented, f'{len(undocumented)} answers differ:\n' + '\n'.join(undocumented[:100])
