"""`ngshare-s3 fsck`: check the two stores against each other and, with --repair, clear away
what interrupted writes and deletes left behind. Exit status: 0 consistent (or repaired),
1 problems remain, 2 misconfiguration."""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
import time
from datetime import timedelta

from . import settings
from .exchange import fsck
from .stores import opened_stores
from .stores.errors import StoreConfigError, StoreUnavailable
from .stores.metadata.base import Assignment, Member
from .stores.objects.base import ObjectStore

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"(\d+)([smhd]?)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ngshare-s3 fsck",
        description="Find objects no record references, records nothing live reaches, and records "
        "whose objects are missing. Changes nothing unless --repair is given.",
    )
    settings.add_store_arguments(parser)
    parser.add_argument(
        "--repair",
        action="store_true",
        help="delete unreachable records, then unreferenced objects older than the grace period",
    )
    parser.add_argument(
        "--grace-period",
        default=format_duration(fsck.DEFAULT_GRACE_PERIOD),
        metavar="DURATION",
        help="leave younger objects alone, as uploads may still be in flight: seconds, "
        "or a number with s, m, h or d (default %(default)s)",
    )
    return parser


def parse_duration(text: str) -> timedelta:
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise settings.SettingsError(f"--grace-period must be like 3600, 90s, 30m, 2h or 1d, got {text!r}")
    return timedelta(seconds=int(match[1]) * UNITS[match[2]])


def stale_temporary_files(objects: ObjectStore, grace_period: timedelta) -> list[str]:
    return objects.stale_leftovers(older_than=time.time() - grace_period.total_seconds())


def _fields(**values: str | None) -> str:
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in values.items() if value is not None)


def describe_record(unreachable: fsck.UnreachableRecord) -> str:
    r = unreachable.record
    if isinstance(r, Member):
        text = "member " + _fields(course=r.course_id, user=r.user_id, role=r.role)
    elif isinstance(r, Assignment):
        text = "assignment " + _fields(course=r.course_id, assignment=r.assignment_id, release=r.release_id)
    else:
        text = "submission " + _fields(
            course=r.course_id, assignment=r.assignment_id, student=r.student_id,
            timestamp=r.timestamp, release=r.release_id,
        )
    return f"{text}: {unreachable.reason}"


def describe_missing(m: fsck.MissingObject) -> str:
    return f"{m.kind} " + _fields(
        course=m.course_id, assignment=m.assignment_id, student=m.student_id,
        timestamp=m.timestamp, path=m.path, key=m.key,
    )


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit in "dhm":
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def consistent(report: fsck.FsckReport, temporaries: list[str]) -> bool:
    return report.consistent and (report.repaired or not temporaries)


def print_report(report: fsck.FsckReport, temporaries: list[str], grace_period: timedelta, repair: bool) -> None:
    grace = format_duration(grace_period)
    removed = " (removed)" if repair else ""
    mode = "" if repair else " (dry run: nothing is changed)"
    print(f"Checked {report.records} records and {report.objects} objects{mode}.")
    sections = [
        (f"Unreferenced objects older than {grace}{removed}", [i.key for i in report.unreferenced]),
        (f"Unreferenced objects younger than {grace}, left alone", [i.key for i in report.young]),
        (f"Unreachable records{removed}", [describe_record(u) for u in report.unreachable]),
        (f"Courses whose delete stopped halfway{removed}", report.closed_courses),
        ("Records whose objects are missing", [describe_missing(m) for m in report.missing]),
        (f"Temporary files older than {grace}{removed}", temporaries),
    ]
    for heading, lines in sections:
        print(f"{heading}: {len(lines)}")
        for line in lines:
            print(f"  {line}")
    if report.missing:
        print("Missing objects are never repaired: restore them from a backup.")
    if not repair and (report.unreferenced or report.unreachable or report.closed_courses or temporaries):
        print(
            "Run again with --repair to remove the unreferenced objects, unreachable records, "
            "courses whose delete stopped halfway and temporary files."
        )
    if consistent(report, temporaries):
        print("Consistent.")


async def run(database: str, storage: str, grace_period: timedelta, repair: bool) -> int:
    async with opened_stores(database, storage) as (metadata, objects):
        report = await fsck.check(metadata, objects, grace_period)
        temporaries = stale_temporary_files(objects, grace_period)
        if repair:
            await fsck.repair(metadata, objects, report)
            objects.remove_leftovers(temporaries)
    print_report(report, temporaries, grace_period, repair)
    return 0 if consistent(report, temporaries) else 1


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    try:
        grace_period = parse_duration(args.grace_period)
        code = asyncio.run(run(args.database, args.storage, grace_period, args.repair))
    except (settings.SettingsError, StoreConfigError, StoreUnavailable, fsck.RepairRefused) as error:
        print(f"ngshare-s3: {error}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)
