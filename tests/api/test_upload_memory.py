"""A submission of hundreds of megabytes, in either form encoding, or of hundreds of files, and
its download, leave a real server process's resident memory within a bound that does not grow
with the upload: bodies are parsed, decoded and stored as they arrive, and trees are sent as
they are read. The test process generates and checks the bytes as they go, so it stays small
too."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from .large_bodies import BODIES, CONTENT_TYPES, MB, GeneratedFile, RssSampler, read_tree
from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, STUDENT

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

GROWTH_LIMIT_MB = 100
ONE_LARGE_FILE = [GeneratedFile("data/large.bin", 200 * MB)]
# Just under 1 MiB each: were small files kept in memory until the upload is checked, it would show.
MANY_FILES = [GeneratedFile(f"data/{n:03d}.bin", 1_000_000) for n in range(250)]
# The download does not depend on how the upload was encoded: the multipart upload's stored
# checksums are compared with what was sent, without fetching the same tree again.
SCENARIOS = [
    ("one file of 200 MB, form-urlencoded", "urlencoded", ONE_LARGE_FILE, "download"),
    ("one file of 200 MB, multipart", "multipart", ONE_LARGE_FILE, "checksums"),
    ("250 files of 1 MB, form-urlencoded", "urlencoded", MANY_FILES, "download"),
]
TIMEOUT = aiohttp.ClientTimeout(total=300)
STUDENTS = [STUDENT] + [f"student{n}" for n in range(3, 9)]
UPLOAD_MEMORY = 4 << 20  # bytes queued for parsing, all uploads together: fewer than 6 uploads want


class Server:
    def __init__(self, process, base: str, http: aiohttp.ClientSession, tokens: dict[str, str]):
        self.process, self.base, self.http, self.tokens = process, base, http, tokens

    def headers(self, user: str, **more: str) -> dict[str, str]:
        return {"Authorization": f"token {self.tokens[user]}", **more}

    async def ok(self, method: str, user: str, route: str, **options) -> dict:
        async with self.http.request(method, f"{self.base}/{route}", headers=self.headers(user), **options) as reply:
            body = await reply.json()
            assert (reply.status, body["success"]) == (200, True), body
            return body

    async def submit(self, encoding: str, files: list[GeneratedFile], student: str = STUDENT) -> dict[str, str]:
        """The MD5 of each file sent."""
        sent: dict[str, str] = {}
        headers = self.headers(student, **{"Content-Type": CONTENT_TYPES[encoding]})
        url = f"{self.base}/submission/c1/a1"
        async with self.http.post(url, headers=headers, data=BODIES[encoding](files, sent)) as reply:
            body = await reply.json()
            assert (reply.status, body["success"]) == (200, True), body
        return sent

    async def download(self, student: str = STUDENT) -> list[tuple[str, str, str, int]]:
        """(path, MD5 of the bytes received, checksum the server gave, size) of each file."""
        url = f"{self.base}/submission/c1/a1/{student}"
        async with self.http.get(url, headers=self.headers(INSTRUCTOR)) as reply:
            assert reply.status == 200
            return [(f.path, f.md5, f.checksum, f.size) for f in await read_tree(reply)]


@pytest.fixture
async def server(backend, fake_hub, tmp_path):
    port = free_port()
    tokens = {user: fake_hub.token_for(user) for user in (ADMIN, INSTRUCTOR, *STUDENTS)}
    with open(tmp_path / "server.log", "wb") as log:
        # one process, the one measured, serves the requests
        process = start_server(backend, fake_hub.url, port, log, "--workers", "1", "--upload-memory", str(UPLOAD_MEMORY))
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            await wait_until_healthy(http, base_url(port), process)
            server = Server(process, base_url(port), http, tokens)
            await server.ok("POST", ADMIN, "course/c1", data={"instructors": json.dumps([INSTRUCTOR])})
            for student in STUDENTS:
                await server.ok("POST", INSTRUCTOR, f"student/c1/{student}", data={"first_name": "", "last_name": "", "email": ""})
            await server.ok("POST", INSTRUCTOR, "assignment/c1/a1", data={"files": "[]"})
            yield server
    finally:
        stop(process)


async def test_memory_stays_flat_for_large_uploads_and_their_downloads(server):
    # A first upload and download of a few megabytes lets the server set up what it keeps
    # (threads, connection pools, allocator arenas) before baselines are taken.
    await server.submit("urlencoded", [GeneratedFile("warm-up.bin", 8 * MB)])
    await server.download()
    for name, encoding, files, check in SCENARIOS:
        with RssSampler(server.process.pid) as upload:
            sent = await server.submit(encoding, files)
        print(f"\n{name}: server RSS growth {upload.growth_mb:.0f} MB uploading (from {upload.baseline / MB:.0f} MB)")
        assert upload.growth_mb < GROWTH_LIMIT_MB, name
        if check == "checksums":
            listed = await server.ok("GET", INSTRUCTOR, f"submission/c1/a1/{STUDENT}", params={"list_only": "true"})
            assert listed["files"] == [{"path": f.path, "checksum": sent[f.path]} for f in files], name
            continue
        with RssSampler(server.process.pid) as download:
            received = await server.download()
        print(f"{name}: server RSS growth {download.growth_mb:.0f} MB downloading")
        assert received == [(f.path, sent[f.path], sent[f.path], f.size) for f in files], name
        assert download.growth_mb < GROWTH_LIMIT_MB, name


@pytest.mark.backends("embedded")
async def test_uploads_at_once_wait_for_memory_instead_of_growing_the_server(server):
    """Six uploads of 40 MB at once, with room in memory for the queues of only four: all are
    stored intact, and the server stays within the bound."""
    work = {student: [GeneratedFile(f"{student}.bin", 40 * MB)] for student in STUDENTS[1:7]}
    await server.submit("urlencoded", [GeneratedFile("warm-up.bin", 8 * MB)])
    with RssSampler(server.process.pid) as uploads:
        sent = await asyncio.gather(*(server.submit("urlencoded", files, student) for student, files in work.items()))
    print(f"\n6 uploads of 40 MB at once: server RSS growth {uploads.growth_mb:.0f} MB")
    for (student, files), digests in zip(work.items(), sent):
        assert await server.download(student) == [(f.path, digests[f.path], digests[f.path], f.size) for f in files]
    assert uploads.growth_mb < GROWTH_LIMIT_MB
