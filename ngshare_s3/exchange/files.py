"""The `files` field of uploads: a JSON list of {path, content} (spec §1.9, §1.10).

The whole list is validated and decoded before anything is stored, so a bad upload changes
nothing. Decoding is as lenient as ngshare's (base64.decodebytes); the checksum is ours.
"""

from __future__ import annotations

import binascii
import hashlib
import json
from dataclasses import dataclass

from .errors import BadRequest
from .limits import check_path

ILLEGAL_PATH = "Illegal path"
BAD_CONTENT = "Content cannot be base64 decoded"


@dataclass(frozen=True)
class UploadedFile:
    path: str
    data: bytes
    md5: str


def is_legal_path(path: object) -> bool:
    """Relative, no trailing slash, no '.' or '..' component; 'a//b' is allowed as in ngshare."""
    if not isinstance(path, str) or not path or path.startswith("/") or path.endswith("/"):
        return False
    return not any(part in {".", ".."} for part in path.split("/"))


def decode_content(content: object) -> bytes:
    if not isinstance(content, str):
        raise BadRequest(BAD_CONTENT)
    try:
        return binascii.a2b_base64(content.encode("utf-8"))
    except binascii.Error as error:
        raise BadRequest(BAD_CONTENT) from error


def decode_files(field: str | None) -> list[UploadedFile]:
    if field is None:
        raise BadRequest("Please supply files")
    try:
        entries = json.loads(field)
    except ValueError as error:
        raise BadRequest("Files cannot be JSON decoded") from error
    if not isinstance(entries, list):
        raise BadRequest("Files cannot be JSON decoded")
    files = []
    for entry in entries:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not is_legal_path(path):
            raise BadRequest(ILLEGAL_PATH)
        check_path(path)
        data = decode_content(entry.get("content"))
        files.append(UploadedFile(path, data, hashlib.md5(data).hexdigest()))
    return files
