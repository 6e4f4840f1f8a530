"""The pushed `files` decoder gives what json.loads and base64.decodebytes give, however the
document is cut, and holds no more memory for a large upload than for a small one."""

import base64
import binascii
import hashlib
import json
import random
import tracemalloc

import pytest

from ngshare_s3.exchange import streamed_json
from ngshare_s3.exchange.errors import BadRequest
from ngshare_s3.exchange.files import FilesDecoder, _lenient_base64, is_legal_path
from ngshare_s3.exchange.limits import check_path
from ngshare_s3.exchange.streamed_base64 import IncompleteBase64, LenientBase64


def reference(document: bytes):
    """ngshare's reading of a `files` field: tornado decodes, json.loads, decodebytes."""
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        return "Invalid unicode in files"
    try:
        elements = json.loads(text)
    except (ValueError, RecursionError):
        return "Files cannot be JSON decoded"
    if not isinstance(elements, list):
        return "Files cannot be JSON decoded"
    files = []
    for element in elements:
        path = element.get("path") if isinstance(element, dict) else None
        if not is_legal_path(path):
            return "Illegal path"
        try:
            check_path(path)
        except BadRequest as error:
            return error.message
        content = element.get("content")
        if not isinstance(content, str):
            return "Content cannot be base64 decoded"
        try:
            data = base64.decodebytes(content.encode("ascii", "ignore"))
        except binascii.Error:
            return "Content cannot be base64 decoded"
        files.append((path, data))
    return files


def decoded(pieces):
    decoder = FilesDecoder()
    for piece in pieces:
        decoder.feed(piece)
    outcome = decoder.finish()
    try:
        if outcome.error is not None:
            return outcome.error.message
        files = outcome.result()
        bodies = [file.body.read() for file in files]
        for file, body in zip(files, bodies):
            assert (file.size, file.md5) == (len(body), hashlib.md5(body).hexdigest())
        return [(file.path, body) for file, body in zip(files, bodies)]
    finally:
        outcome.close()


def cut(document: bytes, points):
    bounds = [0, *sorted(points), len(document)]
    return [document[a:b] for a, b in zip(bounds, bounds[1:])]


# random documents, written by hand so that white space, escapes and key order vary


def space(rng):
    return rng.choice(["", "", "", " ", "\n  ", "\t", "\r\n", "  "])


def string(text, rng):
    out = ['"']
    for character in text:
        code = ord(character)
        choice = rng.random()
        if character in '"\\':
            out.append("\\" + character if choice < 0.8 else f"\\u{code:04x}")
        elif character in "\n\r\t\b\f":
            out.append(json.dumps(character)[1:-1] if choice < 0.8 else f"\\u{code:04X}")
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif character == "/" and choice < 0.3:
            out.append("\\/")
        elif code > 0xFFFF and choice < 0.3:
            high, low = json.dumps(character)[1:-1].split("\\")[1:]
            out.append(f"\\{high}\\{low}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif choice < 0.05:
            out.append(f"\\u{code:04x}")
        else:
            out.append(character)
    out.append('"')
    return "".join(out)


def scalar(rng):
    return rng.choice(["0", "-0", "12", "-3.25", "1e5", "2.5E-3", "1E+2", "true", "false", "null", "NaN",
                       "Infinity", "-Infinity", '""', '"x"'])


def junk(rng, depth=0):
    if depth > 3 or rng.random() < 0.5:
        return scalar(rng)
    if rng.random() < 0.5:
        items = [junk(rng, depth + 1) for _ in range(rng.randrange(3))]
        return "[" + space(rng) + ("," + space(rng)).join(items) + space(rng) + "]"
    members = [string(rng.choice(["k", "path", "content", "é"]), rng) + ":" + junk(rng, depth + 1)
               for _ in range(rng.randrange(3))]
    return "{" + ",".join(members) + "}"


PATHS = ["a", "dir/file.ipynb", "é/ü €.txt", "a//b", "x\\y", 'q"uote', "emoji 😀", "/abs", "a/../b", "", "a/",
         ".", "tab\there", "\ud800", "l" * 251]


def content(rng):
    data = rng.randbytes(rng.choice([0, 1, 2, 3, 5, 40, 100, 700]))
    text = rng.choice([base64.b64encode, base64.encodebytes])(data).decode()
    mutation = rng.random()
    if mutation < 0.1 and text:
        text = text.rstrip("=\n")  # padding lost
    elif mutation < 0.2 and text:
        at = rng.randrange(len(text))
        text = text[:at] + rng.choice(["!", " ", "é", "=", "==", "\x00", "😀", "\ud800", "A"]) + text[at:]
    elif mutation < 0.25:
        text += rng.choice(["A", "AB", "AB=", "ABC", "=", "YQ==YQ=="])
    return text


def element(rng):
    kind = rng.random()
    if kind < 0.08:
        return junk(rng)
    members = []
    if rng.random() < 0.95:
        members.append(string("path", rng) + space(rng) + ":" + space(rng) + string(rng.choice(PATHS[:6] * 8 + PATHS), rng))
    if rng.random() < 0.95:
        value = string(content(rng), rng) if rng.random() < 0.95 else scalar(rng)
        members.append(string("content", rng) + space(rng) + ":" + space(rng) + value)
    for _ in range(rng.choice([0, 0, 1, 2])):
        members.append(string(rng.choice(["extra", "path", "content", "pa", "contents"]), rng) + ":" + junk(rng))
    rng.shuffle(members)
    return "{" + space(rng) + ("," + space(rng)).join(members) + space(rng) + "}"


def document(rng) -> bytes:
    elements = [element(rng) for _ in range(rng.randrange(4))]
    text = space(rng) + "[" + space(rng) + ("," + space(rng)).join(elements) + space(rng) + "]" + space(rng)
    raw = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.25:  # break it
        at = rng.randrange(len(raw) + 1)
        raw = rng.choice([
            lambda: raw[:at] + raw[at + 1:],
            lambda: raw[:at],
            lambda: raw[:at] + rng.choice([b'"', b"{", b"]", b",", b":", b"\\", b"\\u12", b"0", b"-", b"e", b"\n", b"\x01", b"x"]) + raw[at:],
            lambda: raw[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f"]) + raw[at:],
            lambda: raw + rng.choice([b" 1", b"[]", b"\xef\xbb\xbf"]),
        ])()
    return raw


SEEDS = range(400)


@pytest.fixture(params=["whole small elements", "every element followed part by part"])
def whole_element(request, monkeypatch):
    """Small elements are parsed by json's parser, the others part by part: both are tried."""
    if request.param != "whole small elements":
        monkeypatch.setattr(streamed_json, "WHOLE_ELEMENT", 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_documents_decode_as_json_loads_and_decodebytes_whatever_the_cuts(seed, whole_element):
    rng = random.Random(seed)
    raw = document(rng)
    expected = reference(raw)
    assert decoded([raw]) == expected
    assert decoded([raw[i : i + 1] for i in range(len(raw))]) == expected
    for _ in range(8):
        points = rng.sample(range(len(raw) + 1), min(len(raw) + 1, rng.randrange(1, 6)))
        assert decoded(cut(raw, points)) == expected


def test_the_references_errors_all_occur():
    """The random documents reach every outcome, so the agreement above means something."""
    outcomes = [reference(document(random.Random(seed))) for seed in SEEDS]
    messages = {o for o in outcomes if isinstance(o, str)}
    assert messages >= {"Invalid unicode in files", "Files cannot be JSON decoded", "Illegal path",
                        "Content cannot be base64 decoded", "Path too long (at most 250 characters once URL-escaped)"}
    assert sum(1 for o in outcomes if isinstance(o, list) and o) > 20


SMALL = [
    b'[{"path": "a", "content": "YWJj\\nZGVm\\n"}]',
    b'[{"content": "YW\\u004ajZGVm", "path": "d\\/e\\u00e9"}]',
    b'[{"path": "a", "content": "YQ==", "content": "Yg=="}, {"path": "b", "path": "c", "content": ""}]',
    b'[{"path": "a", "content": "YQ==YWJj"}, {"path": "b", "content": "Y\\"Q==", "x": {"y": [1, -2e5]}}]',
    b' [ {"path" : "a\\ud83d\\ude00" , "content" : "YWJj\\r\\n\\t\\/\\/\\/\\/"} ] ',
    b'[{"path": "a", "content": "YWJj\\\\nYWJj"}]',
    b'[{"path": "a", "content": "\\u0059\\u0051\\u003d\\u003d"}, 1e5]',
    b'[{"path": "a", "content": "YQ=="}, {"path": "b", "content": "YQ="}, [1, {"a": "\\"]"}]]',
    b'[{"path": "a", "content": "YQ=="}, {"path": "b", "content": "Y\x01Q=="}]',
    b'[{"path": "a", "content": "YQ==\\x"}]',
    b'[{"path": "a", "content": "YQ==\\u00zz"}]',
    b'[{"path": "a", "content": "YQ=="}, {"path": "a", "content": "YQ=="} 1]',
    b'[-0.5e-7, {"path": 1}, 01]',
    b'["' + "é".encode() + b'", 1]',
]


@pytest.mark.parametrize("raw", SMALL)
def test_every_cut_of_small_documents_decodes_as_the_reference(raw, whole_element):
    expected = reference(raw)
    for first in range(len(raw) + 1):
        assert decoded([raw[:first], raw[first:]]) == expected, first
        for second in range(first, min(first + 8, len(raw) + 1)):
            assert decoded(cut(raw, [first, second])) == expected, (first, second)


@pytest.mark.parametrize("raw, message", [
    (b"[" * 1000 + b"]" * 1000, "Files cannot be JSON decoded"),
    (b'[{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}]", "Files cannot be JSON decoded"),
    (b"[" * 800 + b"]" * 800, "Illegal path"),
    (b"[" + b"1" * 5000 + b"]", "Files cannot be JSON decoded"),
    (b'[{"path": "' + b"a" * 70_000 + b'", "content": ""}]', "Path too long (at most 250 characters once URL-escaped)"),
    (b'[{"path": "/' + b"a" * 70_000 + b'", "content": ""}]', "Path too long (at most 250 characters once URL-escaped)"),
    (b'[{"path": "a", "' + b"k" * 70_000 + b'": 1, "content": ""}]', None),
])
def test_extremes(raw, message, whole_element):
    """Deep nesting, integers past Python's digit limit, and paths over the cap (too long
    whatever they say); a long key is checked and ignored."""
    outcome = decoded(cut(raw, range(0, len(raw), 1000)))
    assert outcome == (message if message else [("a", b"")])
    if not raw.startswith(b'[{"path": "/'):  # the one place where the reference differs
        assert outcome == reference(raw)


def test_an_abandoned_decoder_lets_its_spool_go():
    decoder = FilesDecoder()
    decoder.feed(b'[{"path": "a", "content": "' + base64.b64encode(b"x" * 3000))
    decoder.close()
    assert decoder._spool.closed


def _big_document(files: int, size: int, md5s: list):
    """A `files` document produced 1 MiB at a time; the MD5 of each body goes to `md5s`."""
    block = random.Random(files).randbytes(3 << 18)
    text = base64.b64encode(block)
    yield b"["
    for index in range(files):
        digest = hashlib.md5()
        yield (b"," if index else b"") + b'{"path": "f%d", "content": "' % index
        for start in range(0, size, len(block)):
            part = block[: size - start]
            digest.update(part)
            yield text[: len(part) * 4 // 3]  # whole groups: len(part) is a multiple of 3
        md5s.append(digest.hexdigest())
        yield b'"}'
    yield b"]"


@pytest.mark.parametrize("files, size", [(1, 300 << 20), (500, 999_999)])
def test_memory_stays_flat_whatever_the_size_and_number_of_files(files, size):
    md5s = []
    tracemalloc.start()
    try:
        decoder = FilesDecoder()
        for piece in _big_document(files, size, md5s):
            decoder.feed(piece)
        outcome = decoder.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        uploaded = outcome.result()
        assert [(f.size, f.md5) for f in uploaded] == [(size, md5) for md5 in md5s]
        assert peak < 8 << 20, f"peak {peak / 1e6:.1f} MB"
    finally:
        outcome.close()


def _a2b(text: bytes):
    try:
        return binascii.a2b_base64(text)
    except binascii.Error:
        return None


def test_streamed_and_whole_base64_decode_as_binascii_whatever_the_pads_and_cuts():
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice("AQYw+/==! \n") for _ in range(rng.randrange(14))).encode()
        expected = _a2b(text)
        out = []
        streamed = LenientBase64(out.append)
        try:
            for piece in cut(text, rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(4)))):
                streamed.feed(piece)
            streamed.finish()
            assert b"".join(out) == expected, text
        except IncompleteBase64:
            assert expected is None, text
        try:
            assert _lenient_base64(text.decode()) == expected, text
        except BadRequest:
            assert expected is None, text
