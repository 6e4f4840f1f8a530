"""The application factory: settings in, a ready aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .exchange.exchange import Exchange
from .http import pages
from .http.auth import make_hub_auth
from .http.errors import error_middleware
from .http.draining import RequestsInFlight
from .http.app_keys import (
    EXCHANGE, HUB_AUTH, IN_FLIGHT, METRICS, RELEASE_CACHE, SETTINGS, UPLOAD_MEMORY,
)
from .http.observe import AccessLogger, count_uploads
from .http.release_cache import ReleaseCache
from .http.routes import add_routes, utf8_segments
from .http.upload_memory import ByteBudget
from .logs import UnparsedRequestLog
from .metrics import Metrics, ObservedStore, new_metrics
from .settings import Settings
from .stores import opened_stores


async def open_stores(app: web.Application) -> AsyncIterator[None]:
    """Open both stores for the application's lifetime and close them on shutdown."""
    settings = app[SETTINGS]
    async with opened_stores(settings.database, settings.storage) as (metadata, objects):
        app[EXCHANGE] = Exchange(
            ObservedStore(metadata, "database", app[METRICS]),
            ObservedStore(objects, "storage", app[METRICS]),
            settings.debug,
        )
        yield


def make_app(settings: Settings) -> web.Application:
    in_flight = RequestsInFlight()
    app = web.Application(
        client_max_size=settings.max_body_size,
        middlewares=[in_flight.middleware, error_middleware, utf8_segments, count_uploads],
    )
    app[IN_FLIGHT] = in_flight
    app[SETTINGS] = settings
    app[HUB_AUTH] = make_hub_auth(settings)
    app[METRICS] = new_metrics(shared=settings.workers > 1)
    app[UPLOAD_MEMORY] = ByteBudget(settings.upload_memory)
    app[RELEASE_CACHE] = ReleaseCache(settings.release_cache_size, app[METRICS].release_cache)
    app.cleanup_ctx.append(open_stores)
    add_routes(app, settings.prefix, metrics=settings.metrics_port is None)
    return app


def make_metrics_app(metrics: Metrics) -> web.Application:
    """/metrics alone, for --metrics-port: scrapers reach it without reaching the API."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", pages.metrics, allow_head=False)
    return app


# After the grace period, how long aiohttp gives what is still running before cancelling it.
CUT_OFF_SECONDS = 1.0


def make_runner(app: web.Application) -> web.AppRunner:
    return web.AppRunner(
        app,
        access_log_class=AccessLogger,
        logger=UnparsedRequestLog(),
        handle_signals=False,
        shutdown_timeout=CUT_OFF_SECONDS,
    )


async def stop_gracefully(runner: web.AppRunner, grace_period: float) -> bool:
    """Stop listening, then give the requests in flight up to `grace_period` seconds to finish,
    bodies still arriving included; the caller's runner.cleanup() then closes the rest and the
    stores. False if some requests were still running."""
    for site in list(runner.sites):
        await site.stop()
    return await runner.app[IN_FLIGHT].drain(grace_period)
