"""Several worker processes on one port, so that the service uses every CPU it is given.

The process started (the supervisor) binds the listening sockets and forks the workers. Each
worker builds the application and opens its stores after the fork, so no connection or thread of
a store crosses a fork, and serves the sockets it inherited. The main port has one socket per
worker (SO_REUSEPORT), among which the kernel spreads new connections evenly; on one shared
socket, whichever worker woke first would accept a whole burst of them (asyncio accepts up to
its backlog at once), leaving the other workers idle while its requests queue. A worker's
socket stays open in the supervisor, so connections that reach it while its worker is being
replaced wait for the replacement.

SIGTERM or SIGINT to the supervisor goes on to every worker, which drains as a single process
does; the supervisor exits once they all have. A worker that dies is replaced, but one that
cannot start (it exits with STARTUP_FAILURE, e.g. its database cannot be opened) stops them all,
since its replacement would fail the same way. A worker whose supervisor was killed outright
(SIGKILL) stops as after SIGTERM rather than serve on alone."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from . import metrics
from .settings import Settings, SettingsError

log = logging.getLogger("ngshare_s3")

STARTUP_FAILURE = 2  # the exit status of a worker, like the service's, that could not start
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A worker that dies sooner than this after its start is replaced only after this long, so that
# one failing at once every time does not make the supervisor fork in a tight loop.
RESTART_DELAY = 1.0
BACKLOG = 128  # aiohttp's own default


@dataclass(frozen=True)
class Listeners:
    """The sockets one worker serves: its own on the main port, and the metrics port's (shared
    by all: it sees little traffic) if there is one."""

    main: socket.socket
    metrics: socket.socket | None = None


def bind(host: str, port: int, *, share_port: bool = False) -> socket.socket:
    """A listening socket on host:port (SO_REUSEADDR set, as aiohttp sets it); with
    `share_port`, one of a group of sockets on the same port (SO_REUSEPORT)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        return socket.create_server(address, family=family, backlog=BACKLOG, reuse_port=share_port)
    except OSError as error:
        raise SettingsError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def bind_all(settings: Settings) -> list[socket.socket]:
    """The main port's socket of every worker, then the metrics port's; all closed on failure."""
    sockets = [bind(settings.host, settings.port, share_port=True)]
    try:
        port = sockets[0].getsockname()[1]  # the port chosen, when asked for port 0
        sockets += [bind(settings.host, port, share_port=True) for _ in range(settings.workers - 1)]
        if settings.metrics_port is not None:
            sockets.append(bind(settings.host, settings.metrics_port))
    except SettingsError:
        for listening in sockets:
            listening.close()
        raise
    return sockets


def supervise(settings: Settings, run_worker: Callable[[Listeners], int]) -> int:
    """Serve with `settings.workers` processes, each running `run_worker` on its sockets and
    returning its exit status, until SIGTERM or SIGINT. The supervisor's exit status."""
    sockets = bind_all(settings)
    mains, extra = sockets[: settings.workers], sockets[settings.workers :]
    folder = tempfile.mkdtemp(prefix="ngshare-s3-metrics-")
    try:
        metrics.share_between_processes(folder)
        return Supervisor([Listeners(main, *extra) for main in mains], sockets, run_worker).run()
    finally:
        for listening in sockets:
            listening.close()
        shutil.rmtree(folder, ignore_errors=True)


class Supervisor:
    def __init__(self, slots: list[Listeners], sockets: list[socket.socket],
                 run_worker: Callable[[Listeners], int]):
        self.slots = slots  # one per worker: what the worker in that slot serves
        self.sockets = sockets  # all of them, to close when stopping
        self.run_worker = run_worker
        self.started_at: dict[int, float] = {}  # pid → monotonic time, of every live worker
        self.slot_of: dict[int, Listeners] = {}  # pid → its slot
        self.stopping = False
        self.previous_handlers: dict[int, object] = {}

    def run(self) -> int:
        self.previous_handlers = {signum: signal.signal(signum, self.stop) for signum in STOP_SIGNALS}
        try:
            for slot in self.slots:
                self.start(slot)
            log.info("Started %d worker processes: %s", len(self.slots), " ".join(map(str, self.started_at)))
            return self.watch()
        finally:
            for signum, handler in self.previous_handlers.items():
                signal.signal(signum, handler)

    def watch(self) -> int:
        """Wait for the workers to exit, replacing those that die, until none is left."""
        status = 0
        while self.started_at:
            pid, wait_status = os.wait()  # a signal runs stop() meanwhile, and the wait goes on
            lived = time.monotonic() - self.started_at.pop(pid, 0.0)
            slot = self.slot_of.pop(pid, None)
            metrics.worker_stopped(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if code == STARTUP_FAILURE:
                status = STARTUP_FAILURE
                if not self.stopping:
                    log.error("Worker %d could not start (its reason is above); stopping the others", pid)
                    self.stop(signal.SIGTERM)
            elif self.stopping:
                if code not in (0, -signal.SIGTERM, -signal.SIGINT):  # a signal: stopped while starting
                    log.warning("Worker %d stopped with %s", pid, describe(code))
                    status = status or 1
            else:
                log.error("Worker %d exited unexpectedly with %s; starting another", pid, describe(code))
                if lived < RESTART_DELAY:
                    time.sleep(RESTART_DELAY)
                if slot is not None:
                    self.start(slot)
        if status == 0:
            log.info("Every worker has stopped")
        return status

    def start(self, slot: Listeners) -> None:
        # Stop signals wait until the new worker is in started_at, so none misses them.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            if self.stopping:
                return
            pid = os.fork()
            if pid == 0:
                self.work(slot)
            self.started_at[pid] = time.monotonic()
            self.slot_of[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def work(self, slot: Listeners) -> NoReturn:
        """In a new worker: serve its slot's sockets (closing its copies of the others'), then
        exit without running the supervisor's clean-up."""
        code = 1
        try:
            for signum, handler in self.previous_handlers.items():
                signal.signal(signum, handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            stop_without(os.getppid())
            for listening in self.sockets:
                if listening not in (slot.main, slot.metrics):
                    listening.close()
            code = self.run_worker(slot)
        except BaseException:
            log.exception("Worker %d failed", os.getpid())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def stop(self, signum: int, frame: object = None) -> None:
        """Pass the signal on to every worker. The supervisor's own copies of the sockets close
        at once, so the port refuses connections as soon as the workers have stopped listening."""
        if not self.stopping:
            self.stopping = True
            for listening in self.sockets:
                listening.close()
        for pid in list(self.started_at):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # exited, not yet waited for
                pass


def stop_without(supervisor: int) -> None:
    """SIGTERM this worker once `supervisor` is gone (the worker then has another parent)."""

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def describe(code: int) -> str:
    """An exit status as os.waitstatus_to_exitcode gives it: negative for a signal."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
