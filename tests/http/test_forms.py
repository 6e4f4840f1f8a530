"""The spooled form parser agrees with the standard one, however its reads fall."""

import io
import json
from urllib.parse import parse_qsl, urlencode

import pytest

from ngshare_s3.exchange.files import DecodedFiles
from ngshare_s3.http.forms import FieldValue, NotUtf8, parse_form

AWKWARD = "a+b %25 %2 100% & = ü € \U0001f600 \x01 " + "%41" * 50


@pytest.mark.parametrize("read_size", [1, 2, 3, 4, 5, 7, 64, 4096])
def test_a_value_decodes_the_same_whatever_the_read_size(read_size):
    encoded = urlencode({"v": AWKWARD}).encode() + b"%2" + b"%" + b"%zz"
    body = io.BytesIO(encoded)
    reader = FieldValue(body, 2, len(encoded))
    parts = []
    while part := reader.read(read_size):
        parts.append(part)
    [(_, expected)] = parse_qsl(encoded.decode(), keep_blank_values=True)
    assert b"".join(parts).decode("utf-8", "replace") == expected


def test_fields_text_values_and_last_occurrence():
    encoded = b"user=u1&first_name=A%20B&empty=&bare&first_name=C+D&&"
    fields = parse_form(io.BytesIO(encoded))
    assert fields.getall("first_name") == ["A B", "C D"]
    assert fields["empty"] == "" and fields["bare"] == "" and fields["user"] == "u1"


def test_the_files_field_is_decoded_on_the_way():
    files = [{"path": "a&b=c.txt", "content": "aGk="}, {"path": "x+y", "content": ""}]
    encoded = urlencode({"user": "u", "files": json.dumps(files)}).encode()
    decoded = parse_form(io.BytesIO(encoded))["files"]
    assert isinstance(decoded, DecodedFiles)
    assert [(f.path, f.body.read()) for f in decoded.result()] == [("a&b=c.txt", b"hi"), ("x+y", b"")]


def test_a_bad_files_field_keeps_its_error_for_later():
    decoded = parse_form(io.BytesIO(b"files=%5B1"))["files"]
    assert decoded.files == [] and decoded.error.message == "Files cannot be JSON decoded"


@pytest.mark.parametrize("encoded", [b"files=%5B%22%FF%22%5D", b"files=%5B%22%C3", b"files=%5B1,%5D%FF"])
def test_files_that_are_not_utf8_keep_their_error_for_later(encoded):
    decoded = parse_form(io.BytesIO(encoded))["files"]
    assert decoded.files == [] and decoded.error.message == "Invalid unicode in files"


def test_text_values_that_are_not_utf8_are_marked_not_replaced():
    fields = parse_form(io.BytesIO(b"a=%FF&a=ok&b=%C3%A9"))
    assert isinstance(fields.getall("a")[0], NotUtf8) and fields.getall("a")[1] == "ok" and fields["b"] == "é"
