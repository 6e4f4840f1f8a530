"""Folders to and from the API's file trees: lists of {"path", "content" (base64)}."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

Ignore = Callable[[str, list], Iterable[str]]


def encode_folder(folder: Path, ignore: Ignore | None = None) -> str:
    """The files under `folder` (minus what `ignore`, a shutil.copytree-style function, leaves
    out) as the JSON text of the API's `files` field, paths relative and with '/'."""
    files = []
    for directory, subfolders, names in os.walk(folder):
        ignored = set(ignore(directory, subfolders + names)) if ignore else set()
        subfolders[:] = sorted(name for name in subfolders if name not in ignored)
        for name in sorted(names):
            if name in ignored:
                continue
            path = Path(directory, name)
            files.append({
                'path': path.relative_to(folder).as_posix(),
                'content': base64.b64encode(path.read_bytes()).decode('ascii'),
            })
    return json.dumps(files)


def safe_relative_path(path: str) -> PurePosixPath:
    """The path as the service gave it, refused if it would leave the destination folder."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or not relative.parts or '..' in relative.parts or '\\' in path:
        raise ValueError(f'the exchange sent a file with an unsafe path: {path!r}')
    return relative


def safe_folder_name(name: str, what: str) -> str:
    """A name the service gave (a timestamp, a student id) for one local folder, refused if it is not one."""
    if name in ('', '.', '..') or '/' in name or '\\' in name:
        raise ValueError(f'the exchange sent an unsafe {what}: {name!r}')
    return name


def write_files(files: list[dict], destination: Path, only_missing: bool = False) -> list[Path]:
    """Write the API's files under `destination`; return the paths written. With only_missing,
    files already on disk are kept as they are. Every path is checked before anything is
    written, so a tree with an unsafe path leaves nothing behind."""
    targets = [destination.joinpath(*safe_relative_path(entry['path']).parts) for entry in files]
    written = []
    for entry, target in zip(files, targets):
        if only_missing and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(entry['content']))
        written.append(target)
    return written


def notebook_names(paths: Iterable[str]) -> list[str]:
    """The notebooks at the top of an assignment (nbgrader's notebook ids), sorted."""
    return sorted(
        PurePosixPath(path).stem for path in paths if '/' not in path and path.endswith('.ipynb')
    )
