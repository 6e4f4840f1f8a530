"""The non-API routes: the home page a signed-in browser sees, the health checks, metrics and
the API's OpenAPI description."""

from __future__ import annotations

import functools
import html
import json
from importlib import resources

from aiohttp import web

from .. import __version__
from ..exchange import courses
from ..exchange.permissions import Caller
from .auth import authenticated
from .app_keys import EXCHANGE, METRICS, SETTINGS

DESCRIBED_PREFIX = "/services/ngshare/"
ROOT_ONLY_PATHS = ("/metrics",)

HOME_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ngshare_s3</title></head>
<body>
<h1>nbgrader exchange</h1>
<p>Signed in as <b>{user}</b>{admin}.</p>
<h2>Your courses</h2>
{courses}
<p>This service is used by nbgrader through the <code>ngshare_exchange</code> plugin;
its API lives under <code>{prefix}</code>.</p>
<p><small>ngshare_s3 {version}</small></p>
</body></html>
"""


@authenticated
async def home(request: web.Request, caller: Caller) -> web.Response:
    names = await courses.list_courses(request.app[EXCHANGE], caller)
    listing = "".join(f"<li>{html.escape(name)}</li>" for name in names)
    page = HOME_PAGE.format(
        user=html.escape(caller.name),
        admin=" (exchange administrator)" if caller.is_admin else "",
        courses=f"<ul>{listing}</ul>" if names else "<p>You are not in any course yet.</p>",
        prefix=html.escape(request.app[SETTINGS].prefix),
        version=__version__,
    )
    return web.Response(text=page, content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    """Readiness: 200 while both stores answer, 503 naming the one that does not."""
    health = await request.app[EXCHANGE].health()
    healthy = all(state == "ok" for state in health.values())
    body = {"success": healthy, **health}
    if not healthy:
        body["message"] = "A store is unavailable"
    return web.json_response(body, status=200 if healthy else 503)


async def livez(request: web.Request) -> web.Response:
    """Liveness: answers while the event loop does, whatever the stores' state, so that an
    outage of MongoDB or S3 does not make Kubernetes restart every replica."""
    return web.json_response({"success": True})


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})


@functools.cache
def api_description(prefix: str, metrics: bool) -> bytes:
    """openapi.json as this service answers: its API paths moved from the prefix the file is
    written for to the configured one, /metrics left out when it has a port of its own."""
    document = json.loads(resources.files(__package__).joinpath("openapi.json").read_text("utf-8"))
    paths = {}
    for path, operations in document["paths"].items():
        if path in ROOT_ONLY_PATHS and not metrics:
            continue
        if path.startswith(DESCRIBED_PREFIX):
            path = prefix + path[len(DESCRIBED_PREFIX):]
        paths[path] = operations
    document["paths"] = paths
    return json.dumps(document).encode()


async def openapi(request: web.Request) -> web.Response:
    """The API's OpenAPI description, for anyone: it holds nothing a reader of the docs lacks."""
    settings = request.app[SETTINGS]
    body = api_description(settings.prefix, settings.metrics_port is None)
    return web.Response(body=body, content_type="application/json")
