"""Submission timestamps as ngshare emits and accepts them (spec §1.8).

Emitted: 'YYYY-MM-DD HH:MM:SS.ffffff', UTC without a zone suffix. Fixed width, so string order
is time order, and no '+' (the client splits cached folder names on it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EMITTED_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
ACCEPTED_FORMATS = ("%Y-%m-%d %H:%M:%S.%f %Z", EMITTED_FORMAT)


def now() -> str:
    return format_timestamp(datetime.now(timezone.utc))


def format_timestamp(moment: datetime) -> str:
    return moment.strftime(EMITTED_FORMAT)


def parse_timestamp(text: str) -> str | None:
    """The canonical form of a client's timestamp, or None if it is not one.

    Same rules as ngshare's strptime: an optional zone name after the time is ignored.
    """
    for pattern in ACCEPTED_FORMATS:
        try:
            return format_timestamp(datetime.strptime(text, pattern))
        except ValueError:
            continue
    return None


def later(timestamp: str, microseconds: int = 1) -> str:
    """A timestamp just after this one, to make two submissions of one student distinct."""
    return format_timestamp(datetime.strptime(timestamp, EMITTED_FORMAT) + timedelta(microseconds=microseconds))
