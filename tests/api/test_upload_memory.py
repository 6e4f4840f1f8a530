"""A submission of hundreds of megabytes, in either form encoding, or of hundreds of files, and
its download, leave a real server process's resident memory within a bound that does not grow
with the upload: bodies are parsed, decoded and stored as they arrive, and trees are sent as
they are read. The test process generates and checks the bytes as they go, so it stays small
too."""

from __future__ import annotations

import json

import aiohttp
import pytest

from .large_bodies import BODIES, CONTENT_TYPES, MB, GeneratedFile, RssSampler, read_tree
from .processes import base_url, free_port, start_server, stop, wait_until_healthy
from .support import ADMIN, INSTRUCTOR, STUDENT

pytestmark = pytest.mark.backends("embedded", "mongodb+minio")

GROWTH_LIMIT_MB = 100
ONE_LARGE_FILE = [GeneratedFile("data/large.bin", 200 * MB)]
# Just under 1 MiB each, the size below which decoded files were once all kept in memory.
MANY_FILES = [GeneratedFile(f"data/{n:03d}.bin", 1_000_000) for n in range(250)]
SCENARIOS = [
    ("one file of 200 MB, form-urlencoded", "urlencoded", ONE_LARGE_FILE),
    ("one file of 200 MB, multipart", "multipart", ONE_LARGE_FILE),
    ("250 files of 1 MB, form-urlencoded", "urlencoded", MANY_FILES),
]
TIMEOUT = aiohttp.ClientTimeout(total=300)


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

    async def submit(self, encoding: str, files: list[GeneratedFile]) -> dict[str, str]:
        """The MD5 of each file sent."""
        sent: dict[str, str] = {}
        headers = self.headers(STUDENT, **{"Content-Type": CONTENT_TYPES[encoding]})
        url = f"{self.base}/submission/c1/a1"
        async with self.http.post(url, headers=headers, data=BODIES[encoding](files, sent)) as reply:
            body = await reply.json()
            assert (reply.status, body["success"]) == (200, True), body
        return sent

    async def download(self) -> list[tuple[str, str, str, int]]:
        """(path, MD5 of the bytes received, checksum the server gave, size) of each file."""
        async with self.http.get(f"{self.base}/submission/c1/a1/{STUDENT}", headers=self.headers(INSTRUCTOR)) as reply:
            assert reply.status == 200
            return [(f.path, f.md5, f.checksum, f.size) for f in await read_tree(reply)]


@pytest.fixture
async def server(backend, fake_hub, tmp_path):
    port = free_port()
    tokens = {user: fake_hub.token_for(user) for user in (ADMIN, INSTRUCTOR, STUDENT)}
    with open(tmp_path / "server.log", "wb") as log:
        # one process, the one measured, serves the requests
        process = start_server(backend, fake_hub.url, port, log, "--workers", "1")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
            await wait_until_healthy(http, base_url(port), process)
            server = Server(process, base_url(port), http, tokens)
            await server.ok("POST", ADMIN, "course/c1", data={"instructors": json.dumps([INSTRUCTOR])})
            await server.ok("POST", INSTRUCTOR, f"student/c1/{STUDENT}", data={"first_name": "", "last_name": "", "email": ""})
            await server.ok("POST", INSTRUCTOR, "assignment/c1/a1", data={"files": "[]"})
            yield server
    finally:
        stop(process)


async def test_memory_stays_flat_for_large_uploads_and_their_downloads(server):
    # A first upload and download of a few megabytes lets the server set up what it keeps
    # (threads, connection pools, allocator arenas) before baselines are taken.
    await server.submit("urlencoded", [GeneratedFile("warm-up.bin", 8 * MB)])
    await server.download()
    for name, encoding, files in SCENARIOS:
        with RssSampler(server.process.pid) as upload:
            sent = await server.submit(encoding, files)
        with RssSampler(server.process.pid) as download:
            received = await server.download()
        print(f"\n{name}: server RSS growth {upload.growth_mb:.0f} MB uploading (from {upload.baseline / MB:.0f} MB), "
              f"{download.growth_mb:.0f} MB downloading")
        assert received == [(f.path, sent[f.path], sent[f.path], f.size) for f in files], name
        assert upload.growth_mb < GROWTH_LIMIT_MB, name
        assert download.growth_mb < GROWTH_LIMIT_MB, name
