"""One place that turns every failure into ngshare's answer: the JSON envelope with the
domain's status and message, 413 for an oversized body, 503 while a store or the Hub is down,
ngshare's plain 404 page for unknown routes, and a logged 500 for anything unexpected.

A client that goes away mid-request is not a failure of ours: one line at info, a count of its
own, and 499 (nginx's "client closed request") in the access log and request metrics."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..exchange.errors import ExchangeError
from .app_keys import METRICS, SETTINGS
from .observe import route_template

log = logging.getLogger(__name__)

NOT_FOUND_PAGE = "<h1>404 Not Found</h1>\n"

CLIENT_CLOSED_REQUEST = 499


def envelope(status: int, message: str) -> web.Response:
    return web.json_response({"success": False, "message": message}, status=status)


def causes(error: BaseException) -> str:
    """The chain of causes behind an error, on one line: what each layer saw."""
    found = []
    cause = error.__cause__
    while cause is not None:
        found.append(f"{type(cause).__name__}: {' '.join(str(cause).split())}")
        cause = cause.__cause__
    return " <- ".join(found) or "no cause recorded"


def client_gone(request: web.Request) -> bool:
    """The connection is lost: aiohttp drops the transport when the peer goes away."""
    return request.transport is None or request.transport.is_closing()


def count_disconnect(request: web.Request, error: BaseException) -> None:
    route = route_template(request)
    request.app[METRICS].client_disconnects.labels(route).inc()
    log.info("Client went away during %s %s (%s)", request.method, route, type(error).__name__)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncio.CancelledError as error:  # aiohttp cancels a handler whose client left
        if client_gone(request):
            count_disconnect(request, error)
        raise
    except ExchangeError as error:
        if error.status >= 500:
            log.warning(
                "%s %s answered %d: %s; cause: %s",
                request.method, route_template(request), error.status, error.message, causes(error),
            )
        return envelope(error.status, error.message)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_size
        return envelope(413, f"Request body too large (at most {limit} bytes)")
    except web.HTTPNotFound:
        if request.method != "GET":
            return envelope(405, f"Method {request.method} not allowed")
        return web.Response(status=404, text=NOT_FOUND_PAGE, content_type="text/html")
    except web.HTTPMethodNotAllowed as error:
        answer = envelope(405, f"Method {error.method} not allowed")
        answer.headers["Allow"] = ", ".join(sorted(error.allowed_methods))
        return answer
    except web.HTTPException:
        raise
    except Exception as error:
        if isinstance(error, ConnectionError) and client_gone(request):
            count_disconnect(request, error)
            return web.Response(status=CLIENT_CLOSED_REQUEST)  # never sent: logged and counted
        log.exception("Unhandled error in %s %s", request.method, request.path)
        return envelope(500, "Internal server error")
