"""The API routes of ngshare 0.6 (spec §2): parse the request, call the exchange, render."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..exchange import assignments, courses, events, feedback, maintenance, rosters, submissions
from ..exchange.permissions import Caller
from .arguments import Arguments
from .auth import authenticated
from .app_keys import EXCHANGE, RELEASE_CACHE
from .trees import send_release, send_tree


def ok(**fields: Any) -> web.Response:
    return web.json_response({"success": True, **fields})


def ids(request: web.Request, *names: str) -> list[str]:
    return [request.match_info[name] for name in names]


@authenticated
async def list_courses(request: web.Request, caller: Caller) -> web.Response:
    return ok(courses=await courses.list_courses(request.app[EXCHANGE], caller))


@authenticated
async def create_course(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    await courses.create_course(request.app[EXCHANGE], caller, *ids(request, "course"), args.get("instructors"))
    return ok()


@authenticated
async def delete_course(request: web.Request, caller: Caller) -> web.Response:
    await courses.delete_course(request.app[EXCHANGE], caller, *ids(request, "course"))
    return ok()


@authenticated
async def update_instructor(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    await rosters.update_instructor(
        request.app[EXCHANGE], caller, *ids(request, "course", "user"),
        args.get("first_name"), args.get("last_name"), args.get("email"),
    )
    return ok()


@authenticated
async def get_instructor(request: web.Request, caller: Caller) -> web.Response:
    return ok(**await rosters.get_instructor(request.app[EXCHANGE], caller, *ids(request, "course", "user")))


@authenticated
async def delete_instructor(request: web.Request, caller: Caller) -> web.Response:
    await rosters.delete_instructor(request.app[EXCHANGE], caller, *ids(request, "course", "user"))
    return ok()


@authenticated
async def list_instructors(request: web.Request, caller: Caller) -> web.Response:
    return ok(instructors=await rosters.list_instructors(request.app[EXCHANGE], caller, *ids(request, "course")))


@authenticated
async def put_student(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    await rosters.put_student(
        request.app[EXCHANGE], caller, *ids(request, "course", "user"),
        args.get("first_name"), args.get("last_name"), args.get("email"),
    )
    return ok()


@authenticated
async def get_student(request: web.Request, caller: Caller) -> web.Response:
    return ok(**await rosters.get_student(request.app[EXCHANGE], caller, *ids(request, "course", "user")))


@authenticated
async def delete_student(request: web.Request, caller: Caller) -> web.Response:
    await rosters.delete_student(request.app[EXCHANGE], caller, *ids(request, "course", "user"))
    return ok()


@authenticated
async def put_students(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    status = await rosters.put_students(request.app[EXCHANGE], caller, *ids(request, "course"), args.get("students"))
    return ok(status=status)


@authenticated
async def list_students(request: web.Request, caller: Caller) -> web.Response:
    return ok(students=await rosters.list_students(request.app[EXCHANGE], caller, *ids(request, "course")))


@authenticated
async def list_assignments(request: web.Request, caller: Caller) -> web.Response:
    found = await assignments.list_assignments(request.app[EXCHANGE], caller, *ids(request, "course"))
    return ok(assignments=found)


@authenticated
async def get_assignment(request: web.Request, caller: Caller) -> web.StreamResponse:
    args = await Arguments.of(request)
    exchange = request.app[EXCHANGE]
    tree = await assignments.get_assignment(exchange, caller, *ids(request, "course", "assignment"))
    if args.flag("list_only"):
        return await send_tree(request, exchange, tree, list_only=True)
    return await send_release(request, exchange, tree, request.app[RELEASE_CACHE])


@authenticated
async def release_assignment(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    await assignments.release_assignment(
        request.app[EXCHANGE], caller, *ids(request, "course", "assignment"), args.get("files")
    )
    return ok()


@authenticated
async def delete_assignment(request: web.Request, caller: Caller) -> web.Response:
    await assignments.delete_assignment(request.app[EXCHANGE], caller, *ids(request, "course", "assignment"))
    return ok()


@authenticated
async def list_submissions(request: web.Request, caller: Caller) -> web.Response:
    found = await submissions.list_submissions(request.app[EXCHANGE], caller, *ids(request, "course", "assignment"))
    return ok(submissions=found)


@authenticated
async def list_student_submissions(request: web.Request, caller: Caller) -> web.Response:
    found = await submissions.list_student_submissions(
        request.app[EXCHANGE], caller, *ids(request, "course", "assignment", "user")
    )
    return ok(submissions=found)


@authenticated
async def submit(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    timestamp = await submissions.submit(
        request.app[EXCHANGE], caller, *ids(request, "course", "assignment"), args.body("files")
    )
    return ok(timestamp=timestamp)


@authenticated
async def get_submission(request: web.Request, caller: Caller) -> web.StreamResponse:
    args = await Arguments.of(request)
    exchange = request.app[EXCHANGE]
    tree, timestamp = await submissions.get_submission(
        exchange, caller, *ids(request, "course", "assignment", "user"), args.get("timestamp")
    )
    return await send_tree(request, exchange, tree, args.flag("list_only"), timestamp=timestamp)


@authenticated
async def upload_feedback(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    await feedback.upload_feedback(
        request.app[EXCHANGE], caller, *ids(request, "course", "assignment", "user"),
        args.body("timestamp"), args.body("files"),
    )
    return ok()


@authenticated
async def get_feedback(request: web.Request, caller: Caller) -> web.StreamResponse:
    args = await Arguments.of(request)
    exchange = request.app[EXCHANGE]
    tree, timestamp = await feedback.get_feedback(
        exchange, caller, *ids(request, "course", "assignment", "user"), args.query("timestamp")
    )
    return await send_tree(request, exchange, tree, args.flag("list_only"), timestamp=timestamp)


@authenticated
async def list_events(request: web.Request, caller: Caller) -> web.Response:
    """Not in ngshare: the course's audit trail, a page at a time."""
    args = await Arguments.of(request)
    page = await events.list_events(
        request.app[EXCHANGE], caller, *ids(request, "course"),
        args.get("assignment"), args.get("student"), args.get("limit"), args.get("before"),
    )
    return ok(**page)


@authenticated
async def debug_endpoint(request: web.Request, caller: Caller) -> web.Response:
    args = await Arguments.of(request)
    return ok(**await maintenance.debug_action(request.app[EXCHANGE], caller, args.get("action")))
