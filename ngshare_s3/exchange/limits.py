"""Name lengths that keep every object key within S3's 1,024 bytes and every file-system name
within 255, measured on the escaped form that reaches the store."""

from __future__ import annotations

from .errors import BadRequest
from .keys import escape

MAX_ID_LENGTH = 128
MAX_PATH_LENGTH = 250
PATH_TOO_LONG = f"Path too long (at most {MAX_PATH_LENGTH} characters once URL-escaped)"


def check_id(kind: str, value: str) -> None:
    if len(escape(value)) > MAX_ID_LENGTH:
        raise BadRequest(f"{kind} too long (at most {MAX_ID_LENGTH} characters once URL-escaped)")


def check_path(path: str) -> None:
    if len(escape(path)) > MAX_PATH_LENGTH:
        raise BadRequest(PATH_TOO_LONG)
