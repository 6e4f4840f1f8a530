"""The deployment's topology as processes on 127.0.0.1, for end-to-end tests.

In a cluster, ngshare_s3 runs as several replicas behind one Service address, each configured
only through its environment. Here each replica is a `python -m ngshare_s3` process with the
environment the deployment gives its container, and `RoundRobinBalancer` stands in for the
Service: a plain TCP (layer 4) forwarder that spreads connections over the replicas and skips a
replica that refuses connections, as endpoint removal does for a pod that is shutting down.
The balancer also notes where each HTTP request and response began, so a test can tell which
replica served what and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

LOOPBACK = '127.0.0.1'
HTTP_METHODS = (b'GET ', b'POST ', b'PUT ', b'DELETE ', b'HEAD ', b'PATCH ', b'OPTIONS ')
CONTENT_LENGTH = re.compile(rb'\r\ncontent-length:\s*(\d+)', re.IGNORECASE)
CHUNK = 256 * 1024


# --------------------------------------------------------------------------------------------
# One address in front of the replicas
# --------------------------------------------------------------------------------------------


@dataclass
class Connection:
    """One client connection as the balancer forwarded it to one replica.

    `requests` and `responses` hold (monotonic time, first line) for every forwarded chunk
    that starts an HTTP request or response: enough to see which replica answered what, and
    whether an answer came before or after a moment of interest."""

    backend: int
    opened_at: float
    requests: list[tuple[float, bytes]] = field(default_factory=list)
    responses: list[tuple[float, bytes]] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0
    closed_at: float | None = None
    # What is left of the request body being forwarded (None: no request known to be open).
    _remaining: int | None = None
    _pending: list[Watch] = field(default_factory=list)


@dataclass
class Watch:
    """Calls `action(connection)` on the balancer's thread the moment a request whose first
    line contains `marker` has been forwarded in full (head and body) to a replica."""

    marker: bytes
    action: Callable[[Connection], None]
    fired: threading.Event = field(default_factory=threading.Event)
    connection: Connection | None = None
    error: BaseException | None = None

    def wait(self, timeout: float) -> Connection:
        if not self.fired.wait(timeout):
            raise AssertionError(f'no request containing {self.marker!r} was forwarded within {timeout:.0f} s')
        if self.error is not None:
            raise AssertionError(f'the action on {self.marker!r} failed') from self.error
        assert self.connection is not None
        return self.connection


def first_line(chunk: bytes) -> bytes:
    end = chunk.find(b'\r\n')
    return chunk[: end if 0 <= end < 300 else 300]


class RoundRobinBalancer:
    """A TCP forwarder on 127.0.0.1 over `backends` (ports on 127.0.0.1), one connection at a
    time round robin; a backend that refuses is skipped for that connection (the next one is
    tried), as a Service does once a pod that stopped listening is no longer an endpoint.

    It runs its own event loop on a thread, serves at most `max_connections` clients at once
    (more are closed at once), and `stop()` closes everything it opened."""

    def __init__(self, backends: list[int], *, max_connections: int = 256, connect_timeout: float = 10.0):
        self.backends = list(backends)
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.port = 0
        self.refused = [0] * len(self.backends)
        self._connections: list[Connection] = []
        self._watches: list[Watch] = []
        self._lock = threading.Lock()
        self._next = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name='balancer', daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # Lifecycle, called from the test's thread.

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self.port = future.result(timeout=30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> RoundRobinBalancer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f'http://{LOOPBACK}:{self.port}'

    # What the test reads.

    def connections(self) -> list[Connection]:
        with self._lock:
            return list(self._connections)

    def served(self) -> list[int]:
        """Connections each backend accepted so far."""
        counts = [0] * len(self.backends)
        for connection in self.connections():
            counts[connection.backend] += 1
        return counts

    def answered(self, since: float = 0.0) -> list[list[tuple[float, bytes]]]:
        """Per backend, the responses (time, status line) that began at or after `since`."""
        result: list[list[tuple[float, bytes]]] = [[] for _ in self.backends]
        for connection in self.connections():
            with self._lock:
                responses = list(connection.responses)
            result[connection.backend].extend(r for r in responses if r[0] >= since)
        return [sorted(r) for r in result]

    def watch(self, marker: bytes, action: Callable[[Connection], None]) -> Watch:
        """Arrange `action` for the first request (forwarded from now on) whose first line
        contains `marker`; it runs once, on the balancer's thread, as soon as the request's
        body has been forwarded, before the replica can have answered."""
        watch = Watch(marker, action)
        with self._lock:
            self._watches.append(watch)
        return watch

    # The event loop's side.

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0, backlog=self.max_connections)
        return self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            if len(self._tasks) > self.max_connections:
                return
            upstream = await self._connect()
            if upstream is None:
                return
            backend, (replica_reader, replica_writer) = upstream
            connection = Connection(backend, time.monotonic())
            with self._lock:
                self._connections.append(connection)
            try:
                await asyncio.gather(
                    self._pipe(client_reader, replica_writer, connection, upstream=True),
                    self._pipe(replica_reader, client_writer, connection, upstream=False),
                )
            finally:
                connection.closed_at = time.monotonic()
                replica_writer.close()
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            client_writer.close()
            self._tasks.discard(task)

    async def _connect(self):
        """The next backend in turn that accepts a connection, or None if all refuse."""
        first = next(self._next)
        for offset in range(len(self.backends)):
            backend = (first + offset) % len(self.backends)
            try:
                streams = await asyncio.wait_for(
                    asyncio.open_connection(LOOPBACK, self.backends[backend]), self.connect_timeout
                )
                return backend, streams
            except (OSError, asyncio.TimeoutError):
                with self._lock:
                    self.refused[backend] += 1
        return None

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection, upstream: bool
    ) -> None:
        """Copy one direction until end of stream, then pass the end on (half-close)."""
        try:
            while chunk := await reader.read(CHUNK):
                now = time.monotonic()
                writer.write(chunk)
                await writer.drain()
                if upstream:
                    self._saw_request_bytes(connection, chunk, now)
                else:
                    connection.bytes_down += len(chunk)
                    if chunk.startswith(b'HTTP/1.'):
                        with self._lock:
                            connection.responses.append((now, first_line(chunk)))
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()

    def _saw_request_bytes(self, connection: Connection, chunk: bytes, now: float) -> None:
        connection.bytes_up += len(chunk)
        if chunk.startswith(HTTP_METHODS):
            line = first_line(chunk)
            with self._lock:
                connection.requests.append((now, line))
                connection._pending = [w for w in self._watches if w.marker in line]
                for watch in connection._pending:
                    self._watches.remove(watch)
            head_end = chunk.find(b'\r\n\r\n')
            length = CONTENT_LENGTH.search(chunk, 0, head_end) if head_end >= 0 else None
            connection._remaining = head_end + 4 + int(length.group(1)) - len(chunk) if length else 0
        elif connection._remaining is not None:
            connection._remaining -= len(chunk)
        if connection._remaining is not None and connection._remaining <= 0:
            connection._remaining = None
            pending, connection._pending = connection._pending, []
            for watch in pending:
                try:
                    watch.action(connection)
                except BaseException as error:  # reported by Watch.wait
                    watch.error = error
                watch.connection = connection
                watch.fired.set()


# --------------------------------------------------------------------------------------------
# The replicas
# --------------------------------------------------------------------------------------------


@dataclass
class Replica:
    """One ngshare_s3 process with a fixed port and environment; it can be stopped with
    SIGTERM (as the kubelet stops a container) and started again on the same port."""

    name: str
    port: int
    environment: dict[str, str]
    folder: Path
    ready_path: str  # what the readiness probe asks for
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.folder / f'{self.name}.log'

    def url(self, path: str) -> str:
        return f'http://{LOOPBACK}:{self.port}{path}'

    def start(self, timeout: float) -> None:
        """Start the process and return once its readiness probe's path answers 200."""
        assert self.process is None or self.process.poll() is not None, f'{self.name} is running'
        self.starts += 1
        with open(self.log_path, 'ab') as log:
            log.write(f'--- start {self.starts} ---\n'.encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, '-m', 'ngshare_s3'],
                cwd=self.folder,
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        last = 'no answer'
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f'{self.name} exited with {self.process.returncode} while starting\n{self.log()}')
            try:
                response = requests.get(self.url(self.ready_path), timeout=5)
                if response.status_code == 200:
                    return
                last = f'{response.status_code} {response.text[:200]}'
            except requests.RequestException as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise RuntimeError(f'{self.name} not ready after {timeout:.0f} s (last: {last})\n{self.log()}')
            time.sleep(0.1)

    def terminate(self) -> float:
        """Send SIGTERM; returns the monotonic time it was sent."""
        assert self.process is not None and self.process.poll() is None, f'{self.name} is not running'
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        return sent

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Make sure the process is gone (SIGTERM, then SIGKILL after a while)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors='replace') if self.log_path.exists() else ''
        return '\n'.join(text.splitlines()[-lines:])


def container_environment(folder: Path, variables: dict[str, str]) -> dict[str, str]:
    """A process environment holding only what a container would have: a PATH, the
    deployment's variables, and TMPDIR (the upload spool, an emptyDir in a pod) in a folder of
    the replica's own."""
    spool = folder / 'tmp'
    spool.mkdir(parents=True, exist_ok=True)
    return {
        'PATH': os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '/usr/bin:/bin')]),
        'HOME': str(folder),
        'LANG': 'C.UTF-8',
        'PYTHONUNBUFFERED': '1',
        **variables,
        'TMPDIR': str(spool),
    }
