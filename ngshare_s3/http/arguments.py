"""Request arguments with tornado's get_argument rules, which ngshare's clients rely on
(spec §1.3): query and form body merged, the last occurrence wins, values stripped, and
control characters turned into spaces."""

from __future__ import annotations

import re

from aiohttp import web
from multidict import MultiDictProxy

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return CONTROL_CHARACTERS.sub(" ", value).strip()


def _last(values: MultiDictProxy, name: str) -> str | None:
    found = [value for value in values.getall(name, []) if isinstance(value, str)]
    return _clean(found[-1]) if found else None


class Arguments:
    def __init__(self, query: MultiDictProxy, body: MultiDictProxy):
        self._query = query
        self._body = body

    @classmethod
    async def of(cls, request: web.Request) -> "Arguments":
        return cls(request.query, await request.post())

    def get(self, name: str) -> str | None:
        """Body first (it comes last in tornado's merge), then the query string."""
        value = _last(self._body, name)
        return value if value is not None else _last(self._query, name)

    def body(self, name: str) -> str | None:
        return _last(self._body, name)

    def query(self, name: str) -> str | None:
        return _last(self._query, name)

    def flag(self, name: str) -> bool:
        """True only for the exact string 'true', like ngshare's list_only."""
        return self.get(name) == "true"
