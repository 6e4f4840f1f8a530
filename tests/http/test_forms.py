"""The streaming form parsers agree with the standard ones, however the body's chunks fall."""

import asyncio
import json
from urllib.parse import parse_qsl, urlencode

import pytest

from ngshare_s3.exchange.errors import BadRequest
from ngshare_s3.exchange.files import DecodedFiles
from ngshare_s3.http.form_fields import FieldsTooLarge, FormFields, NotUtf8
from ngshare_s3.http.multipart import MultipartFormParser, boundary_of
from ngshare_s3.http.upload_memory import ByteBudget
from ngshare_s3.http.urlencoded import UrlencodedParser, percent_decode

AWKWARD = "a+b %25 %2 100% & = ü € \U0001f600 \x01 " + "%41" * 50
CHUNK_SIZES = [1, 2, 3, 4, 5, 7, 64, 4096]
LIMIT = 1 << 20


def parsed(parser, body: bytes, chunk_size: int):
    for start in range(0, len(body), chunk_size):
        parser.write(body[start : start + chunk_size])
    return parser.finish().fields


def urlencoded(body: bytes, chunk_size: int = 4096, limit: int = LIMIT):
    return parsed(UrlencodedParser(FormFields(limit)), body, chunk_size)


def multipart(body: bytes, chunk_size: int = 4096, limit: int = LIMIT):
    return parsed(MultipartFormParser(b"b", FormFields(limit)), body, chunk_size)


def part(name: str, value: bytes, extra: str = "") -> bytes:
    return f'--b\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode() + value + b"\r\n"


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_a_value_decodes_as_the_standard_does_whatever_the_chunks(chunk_size):
    encoded = urlencode({"v": AWKWARD}).encode() + b"%2" + b"%" + b"%zz" + b"\\x41"
    [(_, expected)] = parse_qsl(encoded.decode(), keep_blank_values=True)
    assert urlencoded(encoded, chunk_size)["v"] == expected.replace("\x01", " ").strip()


@pytest.mark.parametrize("raw", [b"%41%4a%4A+%2B", b"%", b"%4", b"%zz%41", b"\\x41%5C", b"plain"])
def test_percent_decoding_matches_the_standard_library(raw):
    from urllib.parse import unquote_to_bytes

    assert percent_decode(raw) == unquote_to_bytes(raw.replace(b"+", b" "))


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_fields_text_values_and_last_occurrence(chunk_size):
    fields = urlencoded(b"user=u1&first_name=A%20B&empty=&bare&first_name=C+D&&=v&x=%01y%0A", chunk_size)
    assert fields.getall("first_name") == ["A B", "C D"]
    assert fields["empty"] == "" and fields["bare"] == "" and fields["user"] == "u1" and fields[""] == "v"
    assert fields["x"] == "y", "control characters become spaces, then the value is stripped"


@pytest.mark.parametrize("chunk_size", [1, 3, 4096])
def test_the_files_field_is_decoded_on_the_way(chunk_size):
    files = [{"path": "a&b=c.txt", "content": "aGk="}, {"path": "x+y", "content": ""}]
    decoded = urlencoded(urlencode({"user": "u", "files": json.dumps(files)}).encode(), chunk_size)["files"]
    assert isinstance(decoded, DecodedFiles)
    assert [(f.path, f.body.read()) for f in decoded.result()] == [("a&b=c.txt", b"hi"), ("x+y", b"")]


def test_only_the_last_files_field_is_kept():
    first = urlencode({"files": json.dumps([{"path": "a", "content": "aGk="}])})
    last = urlencode({"files": json.dumps([{"path": "b", "content": ""}])})
    fields = urlencoded(f"{first}&{last}".encode())
    assert [f.path for f in fields["files"].result()] == ["b"] and len(fields.getall("files")) == 1


def test_a_bad_files_field_keeps_its_error_for_later():
    decoded = urlencoded(b"files=%5B1")["files"]
    assert decoded.files == [] and decoded.error.message == "Files cannot be JSON decoded"


@pytest.mark.parametrize("encoded", [b"files=%5B%22%FF%22%5D", b"files=%5B%22%C3", b"files=%5B1,%5D%FF"])
def test_files_that_are_not_utf8_keep_their_error_for_later(encoded):
    decoded = urlencoded(encoded)["files"]
    assert decoded.files == [] and decoded.error.message == "Invalid unicode in files"


def test_text_values_that_are_not_utf8_are_marked_not_replaced():
    fields = urlencoded(b"a=%FF&a=ok&b=%C3%A9")
    assert isinstance(fields.getall("a")[0], NotUtf8) and fields.getall("a")[1] == "ok" and fields["b"] == "é"


@pytest.mark.parametrize(
    "body",
    [b"students=" + b"x" * 2000, b"n" * 2000 + b"=v", b"a&" * 400, b"a=" + b"%41" * 1500],
    ids=["a long value", "a long name", "many fields", "a value long once decoded"],
)
def test_text_fields_past_the_cap_are_refused(body):
    with pytest.raises(FieldsTooLarge) as refused:
        urlencoded(body, chunk_size=100, limit=1000)
    assert refused.value.status == 413 and "at most 1000 bytes" in refused.value.message


def test_the_files_field_does_not_count_against_the_cap():
    files = json.dumps([{"path": "big", "content": "QUFB" * 1000}])
    decoded = urlencoded(urlencode({"files": files}).encode(), chunk_size=100, limit=1000)["files"]
    assert decoded.result()[0].size == 3000


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_multipart_fields_whatever_the_chunks(chunk_size):
    files = json.dumps([{"path": "a.txt", "content": "aGk="}])
    body = (
        part("first_name", b" A\x01B ")
        + part("files", files.encode(), extra="")
        + part("upload", b"ignored", extra='; filename="f.bin"')
        + b'--b\r\nContent-Disposition: form-data\r\n\r\nno name\r\n'
        + part("last_name", b"\xff")
        + part("email", b"e\r\n--", extra="") + b"--b--\r\n"
    )
    fields = multipart(body, chunk_size)
    assert fields["first_name"] == "A B" and fields["email"] == "e\r\n--"
    assert isinstance(fields["last_name"], NotUtf8)
    assert [(f.path, f.body.read()) for f in fields["files"].result()] == [("a.txt", b"hi")]
    assert "upload" not in fields and len(fields) == 4


@pytest.mark.parametrize("body", [part("a", b"1"), b"garbage", part("a", b"1") + b"--c--\r\n"])
def test_a_multipart_body_without_its_closing_boundary_is_a_bad_request(body):
    with pytest.raises(BadRequest) as refused:
        multipart(body)
    assert refused.value.message == "Invalid multipart/form-data body"


def test_multipart_text_fields_past_the_cap_are_refused():
    with pytest.raises(FieldsTooLarge):
        multipart(part("students", b"x" * 2000) + b"--b--\r\n", chunk_size=100, limit=1000)


def test_the_boundary_comes_from_the_content_type():
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    with pytest.raises(BadRequest):
        boundary_of("multipart/form-data")


async def test_the_byte_budget_makes_later_takers_wait_in_order():
    budget = ByteBudget(10)
    assert await budget.acquire(50) == 10, "never more than the whole budget"
    budget.release(10)
    assert await budget.acquire(6) == 6
    order = []

    async def take(name, size):
        await budget.acquire(size)
        order.append(name)

    first = asyncio.create_task(take("first", 8))
    second = asyncio.create_task(take("second", 1))
    await asyncio.sleep(0)
    assert order == [] and budget.held == 6, "a small taker does not pass one waiting before it"
    budget.release(6)
    await asyncio.gather(first, second)
    assert order == ["first", "second"] and budget.held == 9


async def test_a_cancelled_wait_gives_its_place_up():
    budget = ByteBudget(10)
    await budget.acquire(10)
    waiting = asyncio.create_task(budget.acquire(5))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    budget.release(10)
    assert budget.held == 0 and await budget.acquire(10) == 10
