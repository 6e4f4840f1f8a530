"""Who may do what: the permission matrix of the spec (§1.6), in one table.

Every course-level action needs one level of standing in the course. Admins pass every check;
some reads are also open to the user they are about ("self"), member or not: whether that user
is on the roster is a lookup that comes after, with its own 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import Forbidden


class Level(Enum):
    """The least standing an action needs, with the suffix debug mode adds to a refusal."""

    ADMIN = "not admin"
    INSTRUCTOR = "not course instructor"
    MEMBER = "not related to course"


class Action(Enum):
    CREATE_COURSE = "POST course"
    DELETE_COURSE = "DELETE course"
    UPDATE_INSTRUCTOR = "POST instructor"
    GET_INSTRUCTOR = "GET instructor"
    DELETE_INSTRUCTOR = "DELETE instructor"
    LIST_INSTRUCTORS = "GET instructors"
    PUT_STUDENT = "POST student"
    GET_STUDENT = "GET student"
    DELETE_STUDENT = "DELETE student"
    PUT_STUDENTS = "POST students"
    LIST_STUDENTS = "GET students"
    LIST_ASSIGNMENTS = "GET assignments"
    GET_ASSIGNMENT = "GET assignment"
    RELEASE_ASSIGNMENT = "POST assignment"
    DELETE_ASSIGNMENT = "DELETE assignment"
    LIST_SUBMISSIONS = "GET submissions"
    LIST_STUDENT_SUBMISSIONS = "GET submissions of a student"
    SUBMIT = "POST submission"
    GET_SUBMISSION = "GET submission"
    UPLOAD_FEEDBACK = "POST feedback"
    GET_FEEDBACK = "GET feedback"
    LIST_EVENTS = "GET events"


@dataclass(frozen=True)
class Rule:
    level: Level
    self_allowed: bool = False


RULES: dict[Action, Rule] = {
    Action.CREATE_COURSE: Rule(Level.ADMIN),
    Action.DELETE_COURSE: Rule(Level.ADMIN),
    Action.UPDATE_INSTRUCTOR: Rule(Level.INSTRUCTOR),
    Action.GET_INSTRUCTOR: Rule(Level.MEMBER),
    Action.DELETE_INSTRUCTOR: Rule(Level.ADMIN),
    Action.LIST_INSTRUCTORS: Rule(Level.MEMBER),
    Action.PUT_STUDENT: Rule(Level.INSTRUCTOR),
    Action.GET_STUDENT: Rule(Level.INSTRUCTOR, self_allowed=True),
    Action.DELETE_STUDENT: Rule(Level.INSTRUCTOR),
    Action.PUT_STUDENTS: Rule(Level.INSTRUCTOR),
    Action.LIST_STUDENTS: Rule(Level.INSTRUCTOR),
    Action.LIST_ASSIGNMENTS: Rule(Level.MEMBER),
    Action.GET_ASSIGNMENT: Rule(Level.MEMBER),
    Action.RELEASE_ASSIGNMENT: Rule(Level.INSTRUCTOR),
    Action.DELETE_ASSIGNMENT: Rule(Level.INSTRUCTOR),
    Action.LIST_SUBMISSIONS: Rule(Level.INSTRUCTOR),
    Action.LIST_STUDENT_SUBMISSIONS: Rule(Level.INSTRUCTOR, self_allowed=True),
    Action.SUBMIT: Rule(Level.MEMBER),
    Action.GET_SUBMISSION: Rule(Level.INSTRUCTOR),
    Action.UPLOAD_FEEDBACK: Rule(Level.INSTRUCTOR),
    Action.GET_FEEDBACK: Rule(Level.INSTRUCTOR, self_allowed=True),
    # Not in ngshare: members pass, and a student then sees only the events about themselves.
    Action.LIST_EVENTS: Rule(Level.MEMBER),
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: their Hub username, and whether they administer the whole exchange."""

    name: str
    is_admin: bool = False


@dataclass(frozen=True)
class Standing:
    """The caller as a permission check sees them: admin or not, and their role in the course."""

    user: str
    is_admin: bool
    role: str | None = None  # "instructor", "student" or None

    def meets(self, level: Level) -> bool:
        if self.is_admin:
            return True
        if level is Level.INSTRUCTOR:
            return self.role == "instructor"
        if level is Level.MEMBER:
            return self.role is not None
        return False


def is_allowed(action: Action, standing: Standing, target_user: str | None = None) -> bool:
    rule = RULES[action]
    if rule.self_allowed and target_user == standing.user:
        return True
    return standing.meets(rule.level)


def authorize(action: Action, standing: Standing, target_user: str | None = None, *, debug: bool = False) -> None:
    """Raise 403 'Permission denied' (with ngshare's reason in debug mode) unless allowed."""
    if not is_allowed(action, standing, target_user):
        message = "Permission denied"
        if debug:
            message += f" ({RULES[action].level.value})"
        raise Forbidden(message)
