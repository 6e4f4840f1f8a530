"""Input built to break the service: JSON fields nested past the parser's depth, bytes that are
not UTF-8 in form values and URL segments, requests HTTP cannot parse. Each is answered with
the 400 of its kind, changes nothing, and leaves no token in the log."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from traceback import format_exception

import aiohttp
import pytest

from ngshare_s3.http import trees

from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, PREFIX, STUDENT, failure, set_up_classroom

WAIT = 30.0
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


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_a_form_value_that_is_not_utf8_is_refused(api, classroom):
    reply = await api.raw(
        "POST", api.prefix + "student/c1/s3", caller=INSTRUCTOR, headers=FORM,
        data=b"first_name=A%FFB&last_name=L&email=e",
    )
    assert (reply.status, reply.json) == (400, failure("Invalid unicode in first_name"))
    assert sorted(await api.students("c1")) == ["student1", "student2"]


async def test_a_query_value_that_is_not_utf8_is_refused(api, classroom):
    reply = await api.raw("GET", api.prefix + f"feedback/c1/a1/{STUDENT}?timestamp=%FF", caller=STUDENT)
    assert (reply.status, reply.json) == (400, failure("Invalid unicode in timestamp"))


async def test_a_field_the_route_does_not_read_may_hold_anything(api):
    """As in ngshare (tornado decodes a field when it is asked for), and the clients' extra
    `user` field is never read."""
    reply = await api.raw("POST", api.prefix + "course/c1", caller=ADMIN, headers=FORM, data=b"user=%FF&instructors=%5B%5D")
    assert (reply.status, reply.json) == (200, {"success": True})


async def test_files_that_are_not_utf8_are_refused(api, classroom):
    files = b'%5B%7B%22path%22%3A+%22a%FF.txt%22%2C+%22content%22%3A+%22%22%7D%5D'
    reply = await api.raw(
        "POST", api.prefix + "submission/c1/a1", caller=STUDENT, headers=FORM, data=b"files=" + files
    )
    assert (reply.status, reply.json) == (400, failure("Invalid unicode in files"))
    assert await api.submissions("c1", "a1") == []


async def test_a_multipart_value_that_is_not_utf8_is_refused(api, classroom):
    body = (
        b"--b\r\nContent-Disposition: form-data; name=\"first_name\"\r\n\r\nA\xffB\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"last_name\"\r\n\r\nL\r\n"
        b"--b\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\ne\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    reply = await api.raw("POST", api.prefix + "student/c1/s3", caller=INSTRUCTOR, headers=headers, data=body)
    assert (reply.status, reply.json["success"]) == (400, False)
    assert "Invalid unicode" in reply.json["message"]
    assert sorted(await api.students("c1")) == ["student1", "student2"]


async def test_a_url_segment_that_is_not_utf8_is_refused(api):
    reply = await api.raw("POST", api.prefix + "course/a%FFb", caller=ADMIN)
    assert (reply.status, reply.json) == (400, failure("Invalid unicode in URL"))
    assert await api.courses() == []
    reply = await api.raw("POST", api.prefix + "course/a%25FFb", caller=ADMIN)
    assert (reply.status, reply.json) == (200, {"success": True})
    assert await api.courses() == ["a%FFb"]
    reply = await api.raw("DELETE", api.prefix + "course/a%FFb", caller=ADMIN)
    assert (reply.status, reply.json) == (400, failure("Invalid unicode in URL"))
    assert await api.courses() == ["a%FFb"]


async def test_utf8_segments_and_unknown_routes_are_unchanged(api):
    reply = await api.raw("POST", api.prefix + "course/%C3%A9%2F%25", caller=ADMIN)
    assert (reply.status, reply.json) == (200, {"success": True})
    assert await api.courses() == ["é/%"]
    reply = await api.raw("GET", api.prefix + "nowhere/a%FFb", caller=ADMIN)
    assert (reply.status, reply.text) == (404, "<h1>404 Not Found</h1>\n")


async def exchange_raw(port: int, request: bytes) -> bytes:
    """One request as bytes, so that it can hold what no HTTP client would send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()


async def test_no_token_reaches_the_log(tmp_path, fake_hub):
    """The whole log of a server process at debug level, every logger included: tokens in
    a query the service ignores, and in headers or a query that HTTP cannot parse."""
    token = fake_hub.token_for(ADMIN)
    port, metrics_port, log_path = free_port(), free_port(), tmp_path / "server.log"
    backend = (f"sqlite:///{tmp_path}/ngshare.db", str(tmp_path / "files"))
    with open(log_path, "ab") as log:
        server = start_server(backend, fake_hub.url, port, log, "--debug", "--metrics-port", str(metrics_port))
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_healthy(http, base_url(port), server)
        head = f"Host: 127.0.0.1\r\nConnection: close\r\n".encode()
        courses = f"GET {PREFIX}courses".encode()
        secret = token.encode()
        answers = [
            await exchange_raw(port, courses + b"?token=" + secret + b" HTTP/1.1\r\n" + head + b"\r\n"),
            await exchange_raw(
                port, courses + b"?token=" + secret + b" HTTP/1.1\r\nAuthorization: token " + secret + b"\r\n" + head + b"\r\n"
            ),
            await exchange_raw(port, courses + b"?token=" + secret + b"\xff HTTP/1.1\r\n" + head + b"\r\n"),
        ]
        for bad_byte in (b"\x01", b"\x7f"):  # a control character; HTTP allows \xff in a header
            for header in (b"Authorization: token ", b"Cookie: ngshare-s3-token="):
                request = courses + b" HTTP/1.1\r\n" + header + secret + bad_byte + b"\r\n" + head + b"\r\n"
                answers.append(await exchange_raw(port, request))
        scrape = b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + secret + b"\x01\r\n" + head + b"\r\n"
        answers.append(await exchange_raw(metrics_port, scrape))
    finally:
        stop(server)
    statuses = [answer.split(b" ", 2)[1] for answer in answers]
    assert statuses == [b"403", b"200"] + [b"400"] * 6, statuses
    whole_log = log_path.read_text(errors="replace")
    assert "Invalid header value char" in whole_log, "the parser's reason is kept"
    assert token not in whole_log, "a token was written to the log"
    assert "Unhandled exception" not in whole_log


async def test_a_store_failure_mid_download_cuts_the_transfer_short(make_api, caplog):
    """The file storage's folder goes away (an unmounted volume) while a tree is being sent
    (a release, with no cache to answer from): the client sees a failed transfer, never an
    answer with an error inside it, and the failure is logged once."""
    api = await make_api(release_cache_size=0)
    await set_up_classroom(api)
    storage = Path(api.settings.storage)
    if not storage.is_dir():
        pytest.skip("needs the embedded file storage")
    big = ("big.bin", b"x" * (3 * trees.BLOCK_BYTES + 1))
    await api.release("c1", "large", [big, ("small.txt", b"last")], caller=INSTRUCTOR)
    small = next(path for path in storage.rglob("*") if path.is_file() and path.stat().st_size == 4)
    small.unlink()
    shutil.rmtree(storage / ".tmp")
    route = f"{api.prefix}assignment/c1/large"
    caplog.set_level(logging.INFO)

    async with api.client.get(route, headers=api.headers_for(STUDENT), timeout=aiohttp.ClientTimeout(total=WAIT)) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()

    request = f"GET {route} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n".encode()
    answer = await exchange_raw(api.client.server.port, request + b"Authorization: token " + api.hub.token_for(STUDENT).encode() + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Transfer-Encoding: chunked" in answer
    assert not answer.endswith(b"0\r\n\r\n"), "the chunked body must not be completed"
    assert b'"success": false' not in answer and answer.count(b"HTTP/1.1") == 1

    cut = [record for record in caplog.records if "connection closed" in record.getMessage()]
    assert [record.levelno for record in cut] == [logging.WARNING] * 2, caplog.text
    assert all("storage folder" in "".join(format_exception(record.exc_info[1])) for record in cut), "the cause is kept"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR], caplog.text
