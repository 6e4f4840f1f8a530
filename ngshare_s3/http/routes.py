"""The route table: every path of the spec under the configured prefix, and the decoding of
its segments."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from aiohttp import web

from ..exchange.errors import BadRequest
from . import api, pages
from .login import oauth_callback

SEGMENT = "[^/]+"


def _decodes(raw_path: str) -> bool:
    try:
        unquote_to_bytes(raw_path.encode("utf-8", "surrogateescape")).decode("utf-8")
    except UnicodeError:
        return False
    return True


@web.middleware
async def utf8_segments(request: web.Request, handler) -> web.StreamResponse:
    """A route's segments are UTF-8 once percent-decoded (spec §1.2), checked before anything
    else as tornado does. aiohttp keeps an escape that is not UTF-8 as literal text, which would
    make `a%FFb` and `a%25FFb` the same id. Unknown routes keep their 404."""
    if request.match_info.http_exception is None and not _decodes(request.rel_url.raw_path):
        raise BadRequest("Invalid unicode in URL")
    return await handler(request)


def add_routes(app: web.Application, prefix: str, metrics: bool) -> None:
    """`metrics`: serve /metrics here too (not when it has a port of its own)."""

    def path(route: str) -> str:
        for name in ("course", "assignment", "user"):
            route = route.replace("{%s}" % name, "{%s:%s}" % (name, SEGMENT))
        return prefix + route

    router = app.router
    router.add_get("/livez", pages.livez, allow_head=False)
    router.add_get("/healthz", pages.healthz, allow_head=False)
    if metrics:
        router.add_get("/metrics", pages.metrics, allow_head=False)
    router.add_get(path("healthz"), pages.healthz, allow_head=False)
    router.add_get(prefix, pages.home, allow_head=False)
    router.add_get(path("openapi.json"), pages.openapi, allow_head=False)
    router.add_get(path("oauth_callback"), oauth_callback, allow_head=False)
    router.add_get(path("initialize-Data6ase"), api.debug_endpoint, allow_head=False)

    router.add_get(path("courses"), api.list_courses, allow_head=False)
    router.add_post(path("course/{course}"), api.create_course)
    router.add_delete(path("course/{course}"), api.delete_course)
    router.add_post(path("instructor/{course}/{user}"), api.update_instructor)
    router.add_get(path("instructor/{course}/{user}"), api.get_instructor, allow_head=False)
    router.add_delete(path("instructor/{course}/{user}"), api.delete_instructor)
    router.add_get(path("instructors/{course}"), api.list_instructors, allow_head=False)
    router.add_post(path("student/{course}/{user}"), api.put_student)
    router.add_get(path("student/{course}/{user}"), api.get_student, allow_head=False)
    router.add_delete(path("student/{course}/{user}"), api.delete_student)
    router.add_post(path("students/{course}"), api.put_students)
    router.add_get(path("students/{course}"), api.list_students, allow_head=False)
    router.add_get(path("assignments/{course}"), api.list_assignments, allow_head=False)
    router.add_get(path("assignment/{course}/{assignment}"), api.get_assignment, allow_head=False)
    router.add_post(path("assignment/{course}/{assignment}"), api.release_assignment)
    router.add_delete(path("assignment/{course}/{assignment}"), api.delete_assignment)
    router.add_get(path("submissions/{course}/{assignment}"), api.list_submissions, allow_head=False)
    router.add_get(path("submissions/{course}/{assignment}/{user}"), api.list_student_submissions, allow_head=False)
    router.add_post(path("submission/{course}/{assignment}"), api.submit)
    router.add_get(path("submission/{course}/{assignment}/{user}"), api.get_submission, allow_head=False)
    router.add_post(path("feedback/{course}/{assignment}/{user}"), api.upload_feedback)
    router.add_get(path("feedback/{course}/{assignment}/{user}"), api.get_feedback, allow_head=False)
    # An addition to ngshare's API, which its clients never call.
    router.add_get(path("events/{course}"), api.list_events, allow_head=False)
