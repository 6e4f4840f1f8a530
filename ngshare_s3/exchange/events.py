"""The audit trail of a course, an addition to ngshare's API: who released, submitted,
collected, gave feedback or changed the roster, and when. Instructors and admins read all of a
course's events; a student reads only those they did or that are about them."""

from __future__ import annotations

from typing import Any

from ..stores.metadata.base import MAX_EVENT_PAGE, Event, EventQuery, InvalidCursor
from .exchange import Exchange
from .errors import BadRequest
from .permissions import Action, Caller, Level

DEFAULT_PAGE = 100


def page_size(text: str | None) -> int:
    """The `limit` parameter: a whole number from 1 to MAX_EVENT_PAGE, DEFAULT_PAGE if absent."""
    if not text:
        return DEFAULT_PAGE
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_EVENT_PAGE:
        raise BadRequest(f"Invalid limit: expected a whole number from 1 to {MAX_EVENT_PAGE}")
    return int(text)


def describe(event: Event) -> dict[str, Any]:
    return {
        "timestamp": event.at,
        "user": event.user_id,
        "action": event.action,
        "course_id": event.course_id,
        "assignment_id": event.assignment_id,
        "student_id": event.student_id,
        "detail": event.detail,
    }


async def list_events(
    ex: Exchange,
    caller: Caller,
    course_id: str,
    assignment_id: str | None = None,
    student_id: str | None = None,
    limit: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """One page of the course's events, newest first, and the cursor of the next page (None
    after the last). Empty filters count as absent."""
    await ex.require_course(course_id)
    standing = await ex.authorize(Action.LIST_EVENTS, caller, course_id)
    query = EventQuery(
        course_id,
        assignment_id=assignment_id or None,
        student_id=student_id or None,
        involving=None if standing.meets(Level.INSTRUCTOR) else caller.name,
        limit=page_size(limit),
        before=before or None,
    )
    try:
        page = await ex.metadata.page_events(query)
    except InvalidCursor as error:
        raise BadRequest("Invalid before: pass the `next` value of a previous page") from error
    return {"events": [describe(e) for e in page.events], "next": page.next}
