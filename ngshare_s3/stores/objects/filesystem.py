"""The embedded object backend: one file per key under a root folder.

A body is written to a temporary file inside the root's `.tmp` folder, checked against its MD5,
flushed to disk and only then renamed into place, so a reader (or a crash) never sees half a
file. All file I/O runs in worker threads so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import BinaryIO

from ..errors import ChecksumMismatch, ObjectNotFound, StoreConfigError, StoreRefused, StoreUnavailable
from .base import (
    CHUNK_SIZE,
    NO_METADATA,
    PARALLEL_PUTS,
    NewObject,
    ObjectInfo,
    ObjectStore,
    encode_metadata,
    key_segments,
    prefix_segments,
)

TEMP_FOLDER = ".tmp"

# A put may lose a race with a delete that removes the (then empty) folder it is writing into.
MAKEDIRS_ATTEMPTS = 5

# Errors that mean the storage itself is unusable right now, not that the request was bad.
UNAVAILABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.ENOENT, errno.ENOTDIR}

# Errors that mean the service's user may not use the folder: a fault of the configuration.
REFUSED_ERRNOS = {errno.EACCES, errno.EPERM}


def _outside_temp_folder(segments: list[str], key: str) -> list[str]:
    if segments and segments[0] == TEMP_FOLDER:
        raise ValueError(f"invalid object key {key!r}")
    return segments


def _fsync(path: str) -> None:
    """Sync a folder, or a file written and closed earlier, through a descriptor of its own."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_chunk(file: BinaryIO, digest: hashlib._Hash, chunk: bytes) -> None:
    file.write(chunk)
    digest.update(chunk)


def _read_chunk(file: BinaryIO) -> bytes:
    return file.read(CHUNK_SIZE)


class FilesystemObjectStore(ObjectStore):
    """Objects as plain files laid out like their keys, so an administrator can browse them."""

    keeps_metadata = False

    def __init__(self, root: str) -> None:
        self.root = root
        self._temp = os.path.join(root, TEMP_FOLDER)

    @classmethod
    async def open(cls, root: str) -> FilesystemObjectStore:
        """Create the root if missing; StoreConfigError if it cannot be used."""
        root = os.path.abspath(root)
        try:
            await asyncio.to_thread(cls._prepare, root)
        except OSError as e:
            reason = e.strerror or e
            raise StoreConfigError(f"cannot use the storage folder {root}: {reason}") from None
        return cls(root)

    @staticmethod
    def _prepare(root: str) -> None:
        """Create the folders and prove a file can be written there."""
        os.makedirs(os.path.join(root, TEMP_FOLDER), exist_ok=True)
        with tempfile.TemporaryFile(dir=os.path.join(root, TEMP_FOLDER)):
            pass

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *_outside_temp_folder(key_segments(key), key))

    def _failure(self, error: OSError) -> StoreUnavailable:
        """The store error an OS error about the storage folder means; raise it from `error`."""
        reason = error.strerror or str(error)
        if error.errno in REFUSED_ERRNOS:
            return StoreRefused(f"storage folder {self.root}: {reason}", "permission denied")
        return StoreUnavailable(f"storage folder {self.root} is missing or unusable: {reason}")

    def _check_folder(self) -> None:
        """A storage folder that is gone (an unmounted volume, say) makes the store unavailable,
        rather than every object seem absent."""
        try:
            os.stat(self._temp)
        except OSError as e:
            raise self._failure(e) from e

    def _prove_writable(self) -> None:
        try:
            with tempfile.TemporaryFile(dir=self._temp):
                pass
        except OSError as e:
            raise self._failure(e) from e

    async def ping(self) -> None:
        await asyncio.to_thread(self._prove_writable)

    async def close(self) -> None:
        pass

    async def put(
        self, key: str, body: AsyncIterable[bytes], md5: str, metadata: Mapping[str, str] = NO_METADATA
    ) -> None:
        """The metadata is not kept: nobody browses this folder in an object console, and the
        database already records everything it would say. It is checked all the same, so a
        put that one backend refuses is refused by every backend."""
        await self.put_many([NewObject(key, body, md5, metadata)])

    async def put_many(self, objects: Sequence[NewObject]) -> None:
        """Each body goes to a temporary file, checked against its MD5; once all are written,
        one pass makes the tree durable: every file synced, renamed into place, and then each
        folder that gained an entry synced once, however many files it gained. Nothing is moved
        into place unless every body was whole, so a failed tree leaves no object behind."""
        for new in objects:  # refused before anything is written
            encode_metadata(new.metadata)
        paths = [self._path(new.key) for new in objects]
        temps: list[str] = []
        limit = asyncio.Semaphore(PARALLEL_PUTS)

        async def write(new: NewObject) -> str:
            async with limit:
                return await self._write_temporary(new, temps)

        try:
            written = await asyncio.gather(*(write(new) for new in objects), return_exceptions=True)
            for result in written:
                if isinstance(result, BaseException):
                    raise result
            await asyncio.to_thread(self._make_durable, list(zip(written, paths)))  # type: ignore[arg-type]
        except OSError as e:
            await asyncio.to_thread(self._remove_all_quietly, temps)
            if e.errno in UNAVAILABLE_ERRNOS | REFUSED_ERRNOS:
                raise self._failure(e) from e
            raise
        except BaseException:
            await asyncio.to_thread(self._remove_all_quietly, temps)
            raise

    async def _write_temporary(self, new: NewObject, temps: list[str]) -> str:
        """The body in a temporary file of its own (listed in `temps` as soon as it exists),
        written but not yet synced."""
        fd, temp = await asyncio.to_thread(tempfile.mkstemp, dir=self._temp)
        temps.append(temp)
        with os.fdopen(fd, "wb") as file:
            digest = hashlib.md5()
            async for chunk in new.body:
                await asyncio.to_thread(_write_chunk, file, digest, chunk)
            if digest.hexdigest() != new.md5.lower():
                raise ChecksumMismatch(f"{new.key}: body MD5 {digest.hexdigest()}, expected {new.md5}")
        return temp

    def _make_durable(self, moves: list[tuple[str, str]]) -> None:
        """Sync every body, then rename each into place, then sync once, deepest first, each
        file's folder and every folder above it up to the store's root: that covers the
        folders made for the files, and folders another tree may have made a moment ago and
        not yet synced (a folder with nothing new syncs in microseconds). When this returns,
        the whole tree survives a crash."""
        for temp, _ in moves:
            _fsync(temp)
        folders: set[str] = set()
        for temp, path in moves:
            self._move_into_place(temp, path)
            folder = os.path.dirname(path)
            while folder not in folders:
                folders.add(folder)
                if folder == self.root:
                    break
                folder = os.path.dirname(folder)
        for folder in sorted(folders, key=lambda f: f.count(os.sep), reverse=True):
            _fsync(folder)

    def _move_into_place(self, temp: str, path: str) -> None:
        """Rename the finished file to its key, making its folders as needed."""
        folder = os.path.dirname(path)
        for attempt in range(MAKEDIRS_ATTEMPTS):
            self._make_folders(folder)
            try:
                os.replace(temp, path)
                return
            except FileNotFoundError:
                # A concurrent delete removed the folder after we made it; make it again.
                if attempt == MAKEDIRS_ATTEMPTS - 1:
                    raise

    def _make_folders(self, folder: str) -> None:
        """Create folder and missing parents."""
        missing = []
        current = folder
        while current != self.root and not os.path.isdir(current):
            missing.append(current)
            current = os.path.dirname(current)
        for path in reversed(missing):
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except FileNotFoundError:
                # A concurrent delete pruned a parent made a moment ago.
                os.makedirs(path, exist_ok=True)

    @classmethod
    def _remove_all_quietly(cls, paths: list[str]) -> None:
        for path in paths:
            cls._remove_quietly(path)

    @staticmethod
    def _remove_quietly(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _open_for_reading(self, path: str, key: str) -> tuple[BinaryIO, int, bytes]:
        """The open file, its size and its first chunk."""
        try:
            file = open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._check_folder()
            raise ObjectNotFound(key) from None
        except OSError as e:
            raise self._failure(e) from e
        try:
            return file, os.fstat(file.fileno()).st_size, _read_chunk(file)
        except BaseException:
            file.close()
            raise

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """The body in chunks. Opening and the first chunk are one trip to a thread, and reading
        stops at the size the file had when opened (an object never changes once in place), so
        a body of one chunk costs one trip, not four."""
        path = self._path(key)
        file, left, chunk = await asyncio.to_thread(self._open_for_reading, path, key)
        try:
            while chunk:
                yield chunk
                left -= len(chunk)
                if left <= 0:
                    break
                chunk = await asyncio.to_thread(_read_chunk, file)
        finally:
            file.close()  # opened for reading: closing writes nothing back, so it does not block

    async def metadata(self, key: str) -> dict[str, str]:
        """None is kept (see put); the object must exist all the same."""
        path = self._path(key)
        if not await asyncio.to_thread(os.path.isfile, path):
            await asyncio.to_thread(self._check_folder)
            raise ObjectNotFound(key)
        return {}

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [self._path(key) for key in keys]
        await asyncio.to_thread(self._delete_paths, paths)

    def _delete_paths(self, paths: list[str]) -> None:
        self._check_folder()
        for path in paths:
            try:
                self._remove_quietly(path)
            except OSError as e:
                raise self._failure(e) from e
            self._prune_folders(os.path.dirname(path))

    def _prune_folders(self, folder: str) -> None:
        """Remove folders left empty, up to (not including) the root; best effort."""
        while folder != self.root and folder.startswith(self.root + os.sep):
            try:
                os.rmdir(folder)
            except OSError:  # not empty, or already gone: either way, stop here
                return
            folder = os.path.dirname(folder)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        start = os.path.join(self.root, *_outside_temp_folder(prefix_segments(prefix), prefix))
        for info in await asyncio.to_thread(self._scan, start, prefix):
            yield info

    def _scan(self, start: str, prefix: str) -> list[ObjectInfo]:
        """Every file under start whose key begins with prefix, sorted by key."""
        self._check_folder()
        found = []
        for folder, subfolders, files in os.walk(start):
            if folder == self.root and TEMP_FOLDER in subfolders:
                subfolders.remove(TEMP_FOLDER)
            relative = os.path.relpath(folder, self.root)
            for name in files:
                key = name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
                if not key.startswith(prefix):
                    continue
                try:
                    stat = os.stat(os.path.join(folder, name))
                except FileNotFoundError:  # deleted while we were looking
                    continue
                modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
                found.append(ObjectInfo(key, stat.st_size, modified))
        found.sort(key=lambda info: info.key)
        return found

    def stale_leftovers(self, older_than: float) -> list[str]:
        """Temporary files of puts whose process died (a put removes its temporary file on every
        failure it lives through, but not on a crash), last written before `older_than`."""
        try:
            entries = list(os.scandir(self._temp))
        except FileNotFoundError:
            return []
        return sorted(e.path for e in entries if e.is_file(follow_symlinks=False) and e.stat().st_mtime < older_than)

    def remove_leftovers(self, leftovers: Iterable[str]) -> None:
        for path in leftovers:
            self._remove_quietly(path)
