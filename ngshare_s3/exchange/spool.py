"""The decoded bodies of one upload, back to back in one unnamed temporary file.

An upload is checked whole before anything is stored, so its bodies must wait somewhere: on
disk (the system's temporary directory, TMPDIR), never in memory. Each body is a window onto
the file, read with pread so that windows read concurrently do not disturb one another. The
file is gone when the spool is closed, or when the last window is let go.
"""

from __future__ import annotations

import io
import os
import tempfile


class Spool:
    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.size += len(data)

    def truncate(self, size: int) -> None:
        """Forget everything written after `size` bytes (a body that will not be kept)."""
        self._file.seek(size)
        self._file.truncate()
        self.size = size

    def flush(self) -> None:
        """Before the windows are read."""
        self._file.flush()

    def window(self, start: int, size: int) -> SpoolWindow:
        return SpoolWindow(self, start, size)

    def read_at(self, offset: int, size: int) -> bytes:
        return os.pread(self._file.fileno(), size, offset)

    def close(self) -> None:
        self._file.close()
        self.size = 0

    @property
    def closed(self) -> bool:
        return self._file.closed


class SpoolWindow(io.RawIOBase):
    """`size` bytes of the spool from `start`, as a read-only file of its own."""

    def __init__(self, spool: Spool, start: int, size: int):
        super().__init__()
        self._spool = spool
        self._start = start
        self._size = size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        data = self._spool.read_at(self._start + self._position, wanted)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        """One pread, without the copy RawIOBase.read would add."""
        left = self._size - self._position
        size = left if size is None or size < 0 else min(size, left)
        if size <= 0:
            return b""
        data = self._spool.read_at(self._start + self._position, size)
        self._position += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def tell(self) -> int:
        return self._position
