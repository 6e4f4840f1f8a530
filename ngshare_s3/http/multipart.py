"""multipart/form-data bodies, parsed chunk by chunk as they arrive (python-multipart).

As in tornado, a part named in its Content-Disposition is a field unless it has a filename
(tornado keeps file parts apart, where the API never looks), whatever its Content-Type; a part
without a name is skipped; a body that breaks the format, or ends before its closing boundary,
is a 400.
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..exchange.errors import BadRequest
from .form_fields import FormFields, IgnoredField, StreamedFiles, TextField

INVALID = "Invalid multipart/form-data body"


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a Content-Type header, or a 400."""
    _, parameters = parse_options_header(content_type)
    boundary = parameters.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary")
    return boundary


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class MultipartFormParser:
    def __init__(self, boundary: bytes, form: FormFields):
        self._form = form
        try:
            self._parser = MultipartParser(boundary, callbacks={
                "on_part_begin": self._part_begins,
                "on_header_field": self._header_name,
                "on_header_value": self._header_value,
                "on_header_end": self._header_ends,
                "on_headers_finished": self._headers_end,
                "on_part_data": self._data,
                "on_part_end": self._part_ends,
                "on_end": self._body_ends,
            })
        except ValueError as error:  # a boundary too long
            raise BadRequest(INVALID) from error
        self._headers: dict[str, bytes] = {}
        self._name = bytearray()
        self._value = bytearray()
        self._field: TextField | StreamedFiles | IgnoredField = IgnoredField()
        self._ended = False

    def write(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as error:
            raise BadRequest(INVALID) from error

    def finish(self) -> FormFields:
        if not self._ended:
            raise BadRequest(INVALID)
        return self._form

    def abandon(self) -> None:
        self._form.abandon()

    def _part_begins(self) -> None:
        self._headers = {}

    def _header_name(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_ends(self) -> None:
        self._headers[_text(self._name).lower()] = bytes(self._value)
        self._name, self._value = bytearray(), bytearray()

    def _headers_end(self) -> None:
        disposition, parameters = parse_options_header(self._headers.get("content-disposition", b"").decode("latin-1"))
        name = parameters.get(b"name")
        if disposition != b"form-data" or not name or parameters.get(b"filename"):
            self._field = IgnoredField()
        else:
            self._field = self._form.field(_text(name))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._field.write(data[start:end])

    def _part_ends(self) -> None:
        self._field.close()
        self._field = IgnoredField()

    def _body_ends(self) -> None:
        self._ended = True
