"""`ngshare-s3` / `python -m ngshare_s3`: start the service, or stop with one clear line.
`ngshare-s3 fsck ...` checks and repairs the stores instead (see fsck_command);
`ngshare-s3 auditor ...` sets up a read-only account on the bucket (see auditor_command);
`ngshare-s3 import-ngshare ...` brings an ngshare installation over (see import_command)."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import socket
import sys

from aiohttp import web

from . import __version__, auditor_command, fsck_command, workers
from .app import make_app, make_metrics_app, make_runner, stop_gracefully
from .http.app_keys import METRICS
from .logs import UnparsedRequestLog, configure_logging
from .settings import Settings, SettingsError, parse_settings
from .stores.errors import StoreConfigError, StoreUnavailable

log = logging.getLogger("ngshare_s3")


async def listen(runner: web.AppRunner, host: str, port: int, bound: socket.socket | None = None) -> None:
    """Serve on host:port, or on the socket a supervisor `bound` there for all its workers."""
    if bound is not None:
        await web.SockSite(runner, bound).start()
        return
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        raise SettingsError(f"cannot listen on {host}:{port}: {error.strerror}") from error


async def serve(settings: Settings, listeners: workers.Listeners | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (see stop_gracefully); as one of
    several workers, on the supervisor's `listeners`."""
    app = make_app(settings)
    runners = [make_runner(app)]
    if settings.metrics_port is not None:
        runners.append(web.AppRunner(
            make_metrics_app(app[METRICS]), access_log=None, logger=UnparsedRequestLog(), handle_signals=False
        ))
    await runners[0].setup()  # opens the stores
    try:
        await listen(runners[0], settings.host, settings.port, listeners and listeners.main)
        for runner in runners[1:]:
            await runner.setup()
            await listen(runner, settings.host, settings.metrics_port, listeners and listeners.metrics)
        log.info("ngshare_s3 %s serving %s on http://%s:%d", __version__, settings.prefix, settings.host, settings.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("Shutting down: no new connections; requests in flight get up to %g s", settings.grace_period)
        if not await stop_gracefully(runners[0], settings.grace_period):
            log.warning("Requests still in flight after %g s are cut off", settings.grace_period)
    finally:
        for runner in runners:
            await runner.cleanup()
    log.info("Stopped")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fsck"]:
        fsck_command.main(argv[1:])
        return
    if argv[:1] == ["auditor"]:
        auditor_command.main(argv[1:])
        return
    if argv[:1] == ["import-ngshare"]:
        from . import import_command  # SQLAlchemy and tqdm: loaded for this command only

        import_command.main(argv[1:])
        return
    configure_logging("text", debug=False)
    try:
        settings = parse_settings(argv)
        configure_logging(settings.log_format, settings.debug)
        if settings.workers > 1:
            sys.exit(workers.supervise(settings, functools.partial(run_worker, settings)))
    except SettingsError as error:
        sys.exit(start_failed(error))
    sys.exit(run_worker(settings))


def run_worker(settings: Settings, listeners: workers.Listeners | None = None) -> int:
    """Serve, alone or as one worker of several (on the supervisor's `listeners`); the exit
    status, after saying why if the service could not start."""
    try:
        asyncio.run(serve(settings, listeners))
    except (SettingsError, StoreConfigError, StoreUnavailable) as error:
        return start_failed(error)
    return 0


def start_failed(error: Exception) -> int:
    print(f"ngshare-s3: {error}", file=sys.stderr)
    return workers.STARTUP_FAILURE
