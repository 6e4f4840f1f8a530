"""Input built to break the service: JSON fields nested past the parser's depth, bytes that are
not UTF-8 in form values and URL segments. Each is answered with the 400 of its kind and
changes nothing."""

from __future__ import annotations

import json

import pytest

from .support import ADMIN, INSTRUCTOR, STUDENT, failure

# Far past the recursion limit, whatever the depth the parser is called at.
DEEP = 100_000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [10, DEEP])
async def test_deeply_nested_instructors_are_not_json(api, depth):
    status, body = await api.post(ADMIN, "course/c1", instructors=nested(depth))
    assert (status, body) == (400, failure("Instructors cannot be JSON decoded"))
    assert await api.courses() == []


@pytest.mark.parametrize("depth", [10, DEEP])
async def test_deeply_nested_students_are_not_json(api, classroom, depth):
    status, body = await api.post(INSTRUCTOR, "students/c1", students=f"[{nested(depth)}]")
    expected = "Incorrect request format" if depth == 10 else "Students cannot be JSON decoded"
    assert (status, body) == (400, failure(expected))
    assert sorted(await api.students("c1")) == ["student1", "student2"]


@pytest.mark.parametrize("depth", [10, DEEP])
@pytest.mark.parametrize("where", ["element", "content"])
async def test_deeply_nested_files_are_not_json(api, classroom, depth, where):
    inner = nested(depth)
    files = f"[{inner}]" if where == "element" else '[{"path": "a.txt", "content": %s}]' % inner
    status, body = await api.post(STUDENT, "submission/c1/a1", files=files, user=STUDENT)
    if depth == 10:
        expected = "Illegal path" if where == "element" else "Content cannot be base64 decoded"
    else:
        expected = "Files cannot be JSON decoded"
    assert (status, body) == (400, failure(expected))
    assert await api.submissions("c1", "a1") == []
