"""The application factory: settings in, a ready aiohttp application out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .exchange.context import Exchange
from .http.auth import make_hub_auth
from .http.errors import error_middleware
from .http.keys import EXCHANGE, HUB_AUTH, SETTINGS
from .http.routes import add_routes
from .settings import Settings
from .stores import open_metadata_store, open_object_store


async def open_stores(app: web.Application) -> AsyncIterator[None]:
    """Open both stores for the application's lifetime and close them on shutdown."""
    settings = app[SETTINGS]
    metadata = await open_metadata_store(settings.database)
    try:
        objects = await open_object_store(settings.storage)
    except BaseException:
        await metadata.close()
        raise
    app[EXCHANGE] = Exchange(metadata, objects, settings.debug)
    yield
    await objects.close()
    await metadata.close()


def make_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_size, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[HUB_AUTH] = make_hub_auth(settings)
    app.cleanup_ctx.append(open_stores)
    add_routes(app, settings.prefix)
    return app
