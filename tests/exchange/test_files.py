"""Decoding the `files` field: ngshare's leniency, our strictness on malformed shapes."""

import base64
import hashlib
import json

import pytest

from ngshare_s3.exchange.errors import BadRequest
from ngshare_s3.exchange import files
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
    assert decoded.body.read() == data
    assert decoded.size == len(data)
    assert decoded.md5 == hashlib.md5(data).hexdigest()
    assert decode_files(encoded(("f", "!!!!")))[0].size == 0


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
        ('[{"path": "\\ud800", "content": ""}]', "Illegal path"),
        ('[{"path": "a", "content": ""}] x', "Files cannot be JSON decoded"),
        ('[{"path": "/bad", "content": ""}, ', "Files cannot be JSON decoded"),
        ('[{"path": "a", "content": ""},]', "Files cannot be JSON decoded"),
        (encoded(("a" * 300, "")), "Path too long (at most 250 characters once URL-escaped)"),
    ],
)
def test_bad_fields_name_the_first_problem(field, message):
    with pytest.raises(BadRequest) as raised:
        decode_files(field)
    assert raised.value.message == message


def test_a_lone_surrogate_in_content_is_dropped_like_any_stray_character():
    assert decode_files('[{"path": "a", "content": "YWI=\\ud800"}]')[0].body.read() == b"ab"


def test_path_check_comes_before_content_check_element_by_element():
    with pytest.raises(BadRequest) as raised:
        decode_files(encoded(("ok", "YQ"), ("/bad", "")))
    assert raised.value.message == "Content cannot be base64 decoded"


DOCUMENTS = [
    '[{"path": "a", "content": "aGk="}, {"content": "", "path": "b", "extra": [1, 2.5e3, null, true]}]',
    ' \n[ {"path":"n/ü\\u00e9\\"q\\"","content":"YQ==\\n"} ,{"path":"x","content":"YWJj"} ] \r\n',
    "[]",
    "[ ]",
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("document", DOCUMENTS)
def test_streamed_decoding_agrees_with_json_loads_whatever_the_read_size(monkeypatch, chunk, document):
    monkeypatch.setattr(files, "CHUNK_SIZE", chunk)
    decoded = decode_files(document)
    expected = json.loads(document)
    assert [f.path for f in decoded] == [e["path"] for e in expected]
    assert [f.body.read() for f in decoded] == [base64.b64decode(e["content"]) for e in expected]


@pytest.mark.parametrize("chunk", [1, 3, 64])
@pytest.mark.parametrize("document", ['[{"path": "a", "content": ""}', '[1 2]', "[] []", '{"a": 1}', '"x"', "[12", "[tru]"])
def test_streamed_decoding_refuses_what_json_loads_refuses_or_is_no_list(monkeypatch, chunk, document):
    monkeypatch.setattr(files, "CHUNK_SIZE", chunk)
    with pytest.raises(BadRequest) as raised:
        decode_files(document)
    assert raised.value.message == "Files cannot be JSON decoded"
