"""The permission module against the spec's matrix (§1.6), row by row.

Columns: admin, instructor, student, other user. 'y' allowed, '-' refused, 's' allowed only when
the route's user is the caller.
"""

import pytest

from ngshare_s3.exchange.errors import Forbidden
from ngshare_s3.exchange.permissions import Action, Standing, authorize, is_allowed

MATRIX = """
CREATE_COURSE             y - - -
DELETE_COURSE             y - - -
UPDATE_INSTRUCTOR         y y - -
GET_INSTRUCTOR            y y y -
DELETE_INSTRUCTOR         y - - -
LIST_INSTRUCTORS          y y y -
PUT_STUDENT               y y - -
GET_STUDENT               y y s s
DELETE_STUDENT            y y - -
PUT_STUDENTS              y y - -
LIST_STUDENTS             y y - -
LIST_ASSIGNMENTS          y y y -
GET_ASSIGNMENT            y y y -
RELEASE_ASSIGNMENT        y y - -
DELETE_ASSIGNMENT         y y - -
LIST_SUBMISSIONS          y y - -
LIST_STUDENT_SUBMISSIONS  y y s s
SUBMIT                    y y y -
GET_SUBMISSION            y y - -
UPLOAD_FEEDBACK           y y - -
GET_FEEDBACK              y y s s
LIST_EVENTS               y y y -
"""
CALLERS = {
    "admin": Standing("root", is_admin=True),
    "instructor": Standing("teacher", is_admin=False, role="instructor"),
    "student": Standing("pupil", is_admin=False, role="student"),
    "other": Standing("stranger", is_admin=False),
}
ROWS = [
    (Action[name], caller, cell)
    for name, *cells in (line.split() for line in MATRIX.strip().splitlines())
    for caller, cell in zip(CALLERS, cells)
]


def test_matrix_names_every_action():
    assert {action for action, _, _ in ROWS} == set(Action)


@pytest.mark.parametrize("action, caller, cell", ROWS, ids=[f"{a.name}-{c}" for a, c, _ in ROWS])
def test_matrix(action, caller, cell):
    standing = CALLERS[caller]
    assert is_allowed(action, standing, target_user="someone else") is (cell == "y")
    assert is_allowed(action, standing, target_user=standing.user) is (cell in {"y", "s"})


@pytest.mark.parametrize(
    "action, suffix",
    [(Action.CREATE_COURSE, "not admin"), (Action.PUT_STUDENT, "not course instructor"),
     (Action.SUBMIT, "not related to course")],
)
def test_refusal_names_the_reason_only_in_debug_mode(action, suffix):
    with pytest.raises(Forbidden) as plain:
        authorize(action, CALLERS["other"])
    assert plain.value.message == "Permission denied"
    with pytest.raises(Forbidden) as detailed:
        authorize(action, CALLERS["other"], debug=True)
    assert detailed.value.message == f"Permission denied ({suffix})"
