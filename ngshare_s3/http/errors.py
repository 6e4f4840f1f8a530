"""One place that turns every failure into ngshare's answer: the JSON envelope with the
domain's status and message, 413 for an oversized body, 503 while a store or the Hub is down,
ngshare's plain 404 page for unknown routes, and a logged 500 for anything unexpected."""

from __future__ import annotations

import logging

from aiohttp import web

from ..exchange.errors import ExchangeError
from ..stores.errors import StoreUnavailable
from .keys import SETTINGS

log = logging.getLogger(__name__)

NOT_FOUND_PAGE = "<h1>404 Not Found</h1>\n"


def envelope(status: int, message: str) -> web.Response:
    return web.json_response({"success": False, "message": message}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ExchangeError as error:
        return envelope(error.status, error.message)
    except StoreUnavailable as error:
        log.warning("Store unavailable during %s %s: %s", request.method, request.path, error)
        return envelope(503, f"The exchange's {error.store} is unavailable; try again shortly")
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_size
        return envelope(413, f"Request body too large (at most {limit} bytes)")
    except web.HTTPNotFound:
        if request.method != "GET":
            return envelope(405, f"Method {request.method} not allowed")
        return web.Response(status=404, text=NOT_FOUND_PAGE, content_type="text/html")
    except web.HTTPMethodNotAllowed as error:
        return envelope(405, f"Method {error.method} not allowed")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("Unhandled error in %s %s", request.method, request.path)
        return envelope(500, "Internal server error")
