"""What each request leaves behind for operators: one access log line (who, which route, status,
time, bytes in and out) and the request metrics. Routes are logged by their template, never by
the path or query, so no course, student or token ends up in logs or metric labels."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..logs import FIELDS
from . import api
from .app_keys import METRICS, USER

access_log = logging.getLogger("ngshare_s3.access")

UPLOAD_HANDLERS = frozenset({api.release_assignment, api.submit, api.upload_feedback})


def _match_info(request: web.BaseRequest) -> web.UrlMappingMatchInfo | None:
    """None for a request that never reached the router: one aiohttp could not parse, whose
    match_info and app it asserts are not there."""
    try:
        return getattr(request, "match_info", None)
    except AssertionError:
        return None


def route_template(request: web.BaseRequest) -> str:
    match_info = _match_info(request)
    if match_info is None:
        return "unparsed"
    resource = match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def count_uploads(request: web.Request, handler) -> web.StreamResponse:
    if request.match_info.handler not in UPLOAD_HANDLERS:
        return await handler(request)
    in_flight = request.app[METRICS].uploads_in_flight
    in_flight.inc()
    try:
        return await handler(request)
    finally:
        in_flight.dec()


class AccessLogger(AbstractAccessLogger):
    """Called by aiohttp once a response is sent, with the time the request took."""

    @property
    def enabled(self) -> bool:
        return True  # the metrics are recorded even when the log level hides the line

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_template(request)
        received, sent = request.content.total_bytes, response.body_length
        match_info = _match_info(request)
        if match_info is not None:
            metrics = match_info.current_app[METRICS]
            metrics.requests.labels(request.method, route, str(response.status)).observe(time)
            metrics.bytes_received.labels(route).inc(received)
            metrics.bytes_sent.labels(route).inc(sent)
        fields = {
            "user": request.get(USER),
            "method": request.method,
            "route": route,
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
            "bytes_in": received,
            "bytes_out": sent,
        }
        access_log.info(
            "%s %s %s %.1fms in=%d out=%d user=%s",
            request.method, route, response.status, time * 1000, received, sent, fields["user"] or "-",
            extra={FIELDS: fields},
        )
