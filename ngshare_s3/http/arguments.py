"""Request arguments with tornado's get_argument rules, which ngshare's clients rely on
(spec §1.3): query and form body merged, the last occurrence wins. Text values arrive stripped
and with control characters turned into spaces (form_fields.py)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ..exchange.errors import BadRequest
from ..exchange.files import DecodedFiles
from .form_fields import NotUtf8
from .forms import parse_query, read_form
from .app_keys import SETTINGS, UPLOAD_MEMORY

Value = str | DecodedFiles


def _last(values: Mapping, name: str) -> Value | None:
    found = values.getall(name, [])
    if any(isinstance(value, NotUtf8) for value in found):
        raise BadRequest(f"Invalid unicode in {name}")
    if not found:
        return None
    return found[-1]


class Arguments:
    def __init__(self, query: Mapping, body: Mapping):
        self._query = query
        self._body = body

    @classmethod
    async def of(cls, request: web.Request) -> "Arguments":
        settings = request.app[SETTINGS]
        body = await read_form(request, settings.max_body_size, settings.max_field_size, request.app[UPLOAD_MEMORY])
        return cls(parse_query(request), body)

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
