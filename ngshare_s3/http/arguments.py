"""Request arguments with tornado's get_argument rules, which ngshare's clients rely on
(spec §1.3): query and form body merged, the last occurrence wins, text values stripped, and
control characters turned into spaces."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from ..exchange.errors import BadRequest
from ..exchange.files import DecodedFiles
from .forms import NotUtf8, parse_query, read_form
from .app_keys import SETTINGS

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0e-\x1f]")

Value = str | DecodedFiles


def _last(values: Mapping, name: str) -> Value | None:
    found = [value for value in values.getall(name, []) if isinstance(value, (str, DecodedFiles, NotUtf8))]
    if any(isinstance(value, NotUtf8) for value in found):
        raise BadRequest(f"Invalid unicode in {name}")
    if not found:
        return None
    value = found[-1]
    return CONTROL_CHARACTERS.sub(" ", value).strip() if isinstance(value, str) else value


class Arguments:
    def __init__(self, query: Mapping, body: Mapping):
        self._query = query
        self._body = body

    @classmethod
    async def of(cls, request: web.Request) -> "Arguments":
        return cls(parse_query(request), await read_form(request, request.app[SETTINGS].max_body_size))

    def get(self, name: str) -> Value | None:
        """Body first (it comes last in tornado's merge), then the query string."""
        value = _last(self._body, name)
        return value if value is not None else _last(self._query, name)

    def body(self, name: str) -> Value | None:
        return _last(self._body, name)

    def query(self, name: str) -> Value | None:
        return _last(self._query, name)

    def flag(self, name: str) -> bool:
        """True only for the exact string 'true', like ngshare's list_only."""
        return self.get(name) == "true"
