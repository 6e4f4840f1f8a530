"""`ngshare-s3 import-ngshare`: bring an ngshare 0.6 installation (its database and storage
folder) into the stores named by --database and --storage. The source is only read. Exit
status: 0 everything in the source is in the stores, 1 something was skipped (each named),
2 the import could not run or stopped (run it again to resume)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from . import settings
from .exchange.exchange import Exchange
from .exchange.errors import ExchangeError
from .migration.importer import NgshareImport, Tally
from .migration.ngshare_database import SourceCourse, SourceError, read_ngshare_database
from .stores import opened_stores
from .stores.errors import DuplicateKey, StoreConfigError, StoreUnavailable

NGSHARE_DATABASE = "sqlite:////srv/ngshare/ngshare.db"  # ngshare's own defaults
NGSHARE_STORAGE = "/srv/ngshare/files/"
KINDS = (("courses", "course"), ("members", "member"), ("assignments", "assignment"),
         ("submissions", "submission"), ("feedback", "feedback set"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngshare-s3 import-ngshare",
        description="Import an ngshare 0.6 installation: courses, instructors and students, released "
        "assignments, every submission with its timestamp, and feedback. ngshare's database and files "
        "are only read. Run it again to resume an interrupted import; it adds only what is missing.",
    )
    parser.add_argument(
        "--from-database", default=NGSHARE_DATABASE, metavar="URL",
        help="ngshare's --database: an SQLAlchemy URL (default %(default)s, ngshare's default)",
    )
    parser.add_argument(
        "--from-storage", default=NGSHARE_STORAGE, metavar="FOLDER",
        help="ngshare's --storage folder (default %(default)s, ngshare's default)",
    )
    settings.add_store_arguments(parser)
    parser.add_argument(
        "--dry-run", action="store_true",
        help="read and check everything, print what would be imported, write nothing",
    )
    return parser


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def counts(counter: dict[str, int]) -> str:
    return ", ".join(plural(counter.get(kind, 0), noun) for kind, noun in KINDS)


def payload(counter: dict[str, int]) -> str:
    return f"{plural(counter.get('files', 0), 'file')}, {plural(counter.get('bytes', 0), 'byte')}"


def course_line(course_id: str, tally: Tally, dry_run: bool) -> str:
    verb = "would import" if dry_run else "imported"
    line = f"{course_id}: {verb} {counts(tally.imported)} ({payload(tally.imported)})"
    if tally.present:
        line += f"; already here: {counts(tally.present)}"
    if tally.skipped:
        line += f"; skipped: {counts(tally.skipped)}"
    return line


def summary(total: Tally, courses: int, dry_run: bool) -> str:
    nothing_new = not any(total.imported.get(kind) for kind, _ in KINDS)
    if dry_run:
        head = "Dry run, nothing written: would import"
    else:
        head = "Imported nothing new:" if nothing_new else "Imported"
    line = f"{head} {counts(total.imported)} ({payload(total.imported)}) from {plural(courses, 'course')} of ngshare"
    line += f"; already here: {counts(total.present)}"
    skipped = sum(total.skipped.values())
    line += f"; skipped: {plural(skipped, 'record')}" + (" (listed above)." if skipped else ".")
    return line


async def run(args: argparse.Namespace, courses: list[SourceCourse]) -> Tally:
    storage = Path(args.from_storage)
    if not storage.is_dir():
        raise SourceError(f"--from-storage {str(storage)!r} is not a folder")
    total = Tally()
    async with opened_stores(args.database, args.storage) as (metadata, objects):
        with tqdm(total=sum(c.records for c in courses), unit="record", disable=None, leave=False) as bar:
            importer = NgshareImport(Exchange(metadata, objects, debug=False), storage, args.dry_run, bar.write, bar.update)
            for course in courses:
                tally = await importer.course(course)
                bar.write(course_line(course.course_id, tally, args.dry_run))
                total.add(tally)
    return total


class OneLine(logging.Formatter):
    """A warning of the stores' (e.g. bodies left for fsck) as one line among the report's."""

    def format(self, record: logging.LogRecord) -> str:
        return f"ngshare-s3: {record.getMessage()}"


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(OneLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    try:
        courses = read_ngshare_database(args.from_database)
        total = asyncio.run(run(args, courses))
    except (settings.SettingsError, StoreConfigError, SourceError) as error:
        print(f"ngshare-s3: {error}", file=sys.stderr)
        sys.exit(2)
    except (StoreUnavailable, ExchangeError, DuplicateKey) as error:
        cause = error.__cause__ if isinstance(error, ExchangeError) and error.__cause__ else error
        print(
            f"ngshare-s3: the import stopped: {cause or type(cause).__name__}. What was imported stays; "
            "nothing is half-written. "
            "Run the same command again to go on.",
            file=sys.stderr,
        )
        sys.exit(2)
    print(summary(total, len(courses), args.dry_run))
    sys.exit(1 if sum(total.skipped.values()) else 0)
