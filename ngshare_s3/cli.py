"""`ngshare-s3` / `python -m ngshare_s3`: start the service, or stop with one clear line.
`ngshare-s3 fsck ...` checks and repairs the stores instead (see fsck_command)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from . import fsck_command
from .app import make_app
from .settings import Settings, SettingsError, parse_settings
from .stores.errors import StoreConfigError, StoreUnavailable

log = logging.getLogger("ngshare_s3")


async def serve(settings: Settings) -> None:
    runner = web.AppRunner(make_app(settings), access_log=log)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as error:
            raise SettingsError(f"cannot listen on {settings.host}:{settings.port}: {error.strerror}") from error
        log.info("ngshare_s3 serving %s on http://%s:%d", settings.prefix, settings.host, settings.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fsck"]:
        fsck_command.main(argv[1:])
        return
    logging.basicConfig(level=logging.INFO, format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s")
    try:
        settings = parse_settings(argv)
        if settings.debug:
            logging.getLogger().setLevel(logging.DEBUG)
        asyncio.run(serve(settings))
    except (SettingsError, StoreConfigError, StoreUnavailable) as error:
        print(f"ngshare-s3: {error}", file=sys.stderr)
        sys.exit(2)
