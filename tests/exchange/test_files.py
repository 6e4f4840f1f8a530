"""Decoding the `files` field: ngshare's leniency, our strictness on malformed shapes."""

import base64
import hashlib
import json

import pytest

from ngshare_s3.exchange.errors import BadRequest
from ngshare_s3.exchange.files import decode_files, is_legal_path


def encoded(*entries):
    return json.dumps([{"path": p, "content": c} for p, c in entries])


@pytest.mark.parametrize("path", [".hidden", "a/.b", "...", "a b", "a\\b", "a//b", "a///b", "é/ü.txt"])
def test_legal_paths(path):
    assert is_legal_path(path)


@pytest.mark.parametrize("path", ["", "/a", "//a", "a/", ".", "..", "./a", "a/./b", "a/.", "../etc", "a/../b", None, 0])
def test_illegal_paths(path):
    assert not is_legal_path(path)


def test_content_is_decoded_leniently_and_checksummed():
    data = bytes(range(256))
    lenient = base64.encodebytes(data).decode().replace("A", "A!")
    [decoded] = decode_files(encoded(("f", lenient)))
    assert decoded.data == data
    assert decoded.md5 == hashlib.md5(data).hexdigest()
    assert decode_files(encoded(("f", "!!!!")))[0].data == b""


@pytest.mark.parametrize(
    "field, message",
    [
        (None, "Please supply files"),
        ("", "Files cannot be JSON decoded"),
        ("{", "Files cannot be JSON decoded"),
        ('{"path": "a"}', "Files cannot be JSON decoded"),
        ("[1]", "Illegal path"),
        ('[{"content": ""}]', "Illegal path"),
        (encoded(("../x", "")), "Illegal path"),
        ('[{"path": "a"}]', "Content cannot be base64 decoded"),
        ('[{"path": "a", "content": 5}]', "Content cannot be base64 decoded"),
        (encoded(("a", "YQ")), "Content cannot be base64 decoded"),
        (encoded(("a", "a")), "Content cannot be base64 decoded"),
        (encoded(("a" * 300, "")), "Path too long (at most 250 characters once URL-escaped)"),
    ],
)
def test_bad_fields_name_the_first_problem(field, message):
    with pytest.raises(BadRequest) as raised:
        decode_files(field)
    assert raised.value.message == message


def test_path_check_comes_before_content_check_element_by_element():
    with pytest.raises(BadRequest) as raised:
        decode_files(encoded(("ok", "YQ"), ("/bad", "")))
    assert raised.value.message == "Content cannot be base64 decoded"
