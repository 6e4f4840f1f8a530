"""Encoded directory trees on every upload and download endpoint: content encoding,
checksums, path rules, malformed input, list_only (spec §1.9, §1.10).

Round trips go through the stores, so they run on MongoDB + MinIO as well; a refused tree is
refused before any store is touched (the whole list is checked first), and list_only is read
by the HTTP layer, so the embedded backends suffice for those."""

import base64
import hashlib
import os

import pytest

from ngshare_s3.http import trees

from .support import (
    INSTRUCTOR,
    LONG_PATH,
    STUDENT,
    encode_files,
    expected_tree,
    failure,
    raw_files,
)


class UploadTarget:
    """One of the three places that accept a `files` tree, with its matching download."""

    def __init__(self, api, kind: str, timestamp: str | None = None) -> None:
        self.api = api
        self.kind = kind
        self.timestamp = timestamp

    @property
    def routes(self) -> tuple[str, str, str]:
        """(caller, upload route, download route)"""
        if self.kind == "assignment":
            return INSTRUCTOR, "assignment/c1/fresh", "assignment/c1/fresh"
        if self.kind == "submission":
            return STUDENT, "submission/c1/a1", f"submission/c1/a1/{STUDENT}"
        return INSTRUCTOR, f"feedback/c1/a1/{STUDENT}", f"feedback/c1/a1/{STUDENT}"

    async def upload(self, files):
        caller, route, _ = self.routes
        form = {"files": files, "user": caller}
        if self.kind == "feedback":
            form["timestamp"] = self.timestamp
        return await self.api.post(caller, route, **form)

    async def download(self, params=()):
        _, _, route = self.routes
        params = list(params)
        if self.kind == "feedback":
            params.append(("timestamp", self.timestamp))
        reply = await self.api.raw("GET", self.api.prefix + route, caller=INSTRUCTOR, params=params)
        return reply.status, reply.json

    async def round_trip(self, files):
        status, body = await self.upload(files)
        assert (status, body["success"]) == (200, True), body
        status, body = await self.download()
        assert status == 200, body
        return body["files"]

    async def nothing_stored(self) -> bool:
        if self.kind == "assignment":
            return await self.api.assignments("c1") == ["a1"]
        if self.kind == "submission":
            return await self.api.submissions("c1", "a1") == []
        return await self.api.feedback_files("c1", "a1", STUDENT, self.timestamp) == []


@pytest.fixture(params=["assignment", "submission", "feedback"])
async def target(request, api, classroom):
    timestamp = None
    if request.param == "feedback":
        timestamp = await api.submit(STUDENT, "c1", "a1", [("a1.ipynb", b"{}")])
    return UploadTarget(api, request.param, timestamp)


# ---------------------------------------------------------------------------------------------
# what comes back


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_every_byte_value_round_trips_as_76_character_lines(target):
    every_byte = bytes(range(256))
    entries = [("every-byte.bin", every_byte), ("reversed.bin", every_byte[::-1] * 3)]
    files = await target.round_trip(encode_files(entries))
    assert files == expected_tree(entries)
    for entry in files:
        lines = entry["content"].split("\n")
        assert lines[-1] == "", "content ends with a newline"
        assert all(len(line) == 76 for line in lines[:-2])
        assert 0 < len(lines[-2]) <= 76


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_a_body_of_many_encoding_blocks_round_trips(target):
    """Bodies are encoded a block at a time as they stream from the store; clients must not
    notice where the blocks end."""
    entries = [("big.bin", os.urandom(3 * trees.BLOCK_BYTES + 7)), ("empty", b""), ("ü \"q\".txt", b"x")]
    files = await target.round_trip(encode_files(entries))
    assert files == expected_tree(entries)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_an_empty_file_has_empty_content_and_the_md5_of_nothing(target):
    files = await target.round_trip(encode_files([("empty.txt", b"")]))
    assert files == [{"path": "empty.txt", "content": "", "checksum": hashlib.md5(b"").hexdigest()}]


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_an_empty_tree_round_trips(target):
    assert await target.round_trip("[]") == []


LEGAL_PATHS = [
    ".hidden",
    "a/.b",
    "...",
    "name with spaces.txt",
    "a\\b",
    "a//b",
    "a///b",
    "ünï/日本語 ファイル.txt",
    "nested/deeper/and/deeper/still.ipynb",
    "d/" * 40 + "f",
]


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_odd_but_legal_paths_are_kept_verbatim(target):
    entries = [(path, f"content of {path}".encode()) for path in LEGAL_PATHS]
    assert await target.round_trip(encode_files(entries)) == expected_tree(entries)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_duplicate_paths_are_kept_in_upload_order(target):
    entries = [("dup.txt", b"first"), ("between.txt", b"x"), ("dup.txt", b"second"), ("dup.txt", b"")]
    assert await target.round_trip(encode_files(entries)) == expected_tree(entries)


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_the_server_computes_checksums_and_ignores_the_clients(target):
    files = raw_files([{"path": "f.txt", "content": base64.b64encode(b"real").decode(), "checksum": "0" * 32}])
    assert await target.round_trip(files) == expected_tree([("f.txt", b"real")])


@pytest.mark.parametrize(
    "content, data",
    [
        (base64.encodebytes(bytes(range(200))).decode(), bytes(range(200))),
        ("YW Jj\n", b"abc"),
        ("YWJj!", b"abc"),
        ("!!!!", b""),
        ("", b""),
    ],
    ids=["encodebytes-newlines", "inner-space", "stray-character", "only-stray-characters", "empty"],
)
async def test_base64_decoding_drops_characters_outside_the_alphabet(target, content, data):
    files = raw_files([{"path": "f.bin", "content": content}])
    assert await target.round_trip(files) == expected_tree([("f.bin", data)])


# ---------------------------------------------------------------------------------------------
# what is refused, leaving nothing behind


@pytest.mark.parametrize("content", ["amtsCg", "YQ", "a", "YWJjZA="])
async def test_undecodable_base64_is_refused(target, content):
    files = raw_files([{"path": "f.bin", "content": content}])
    assert await target.upload(files) == (400, failure("Content cannot be base64 decoded"))
    assert await target.nothing_stored()


ILLEGAL_PATHS = ["", "/a", "//a", "/", "a/", "a/b/", ".", "..", "./a", "a/./b", "a/.", "../etc", "a/../b", "a/.."]


@pytest.mark.parametrize("path", ILLEGAL_PATHS)
async def test_illegal_paths_are_refused(target, path):
    files = raw_files([{"path": "fine.txt", "content": "b2s="}, {"path": path, "content": "b2s="}])
    assert await target.upload(files) == (400, failure("Illegal path"))
    assert await target.nothing_stored()


async def test_an_over_long_path_is_refused(target):
    files = encode_files([("fine.txt", b"ok"), (LONG_PATH, b"too long")])
    status, body = await target.upload(files)
    assert status == 400
    assert body["success"] is False and body["message"].strip()
    assert await target.nothing_stored()


@pytest.mark.parametrize(
    "files, message",
    [
        (None, "Please supply files"),
        ("", "Files cannot be JSON decoded"),
        ("[{", "Files cannot be JSON decoded"),
        ("{}", "Files cannot be JSON decoded"),
        ('{"path": "a", "content": ""}', "Files cannot be JSON decoded"),
        ("null", "Files cannot be JSON decoded"),
        ("5", "Files cannot be JSON decoded"),
        ('"a.txt"', "Files cannot be JSON decoded"),
        ("true", "Files cannot be JSON decoded"),
        (raw_files([{"content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": None, "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": 0, "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": False, "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": 5, "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": ["a"], "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": {"a": 1}, "content": "b2s="}]), "Illegal path"),
        (raw_files([{"path": "a.txt"}]), "Content cannot be base64 decoded"),
        (raw_files([{"path": "a.txt", "content": None}]), "Content cannot be base64 decoded"),
        (raw_files([{"path": "a.txt", "content": 5}]), "Content cannot be base64 decoded"),
        (raw_files([{"path": "a.txt", "content": ["b2s="]}]), "Content cannot be base64 decoded"),
    ],
    ids=[
        "missing",
        "empty-string",
        "truncated-json",
        "empty-object",
        "single-object",
        "null",
        "number",
        "string",
        "boolean",
        "no-path",
        "null-path",
        "zero-path",
        "false-path",
        "number-path",
        "list-path",
        "object-path",
        "no-content",
        "null-content",
        "number-content",
        "list-content",
    ],
)
async def test_malformed_files_are_a_bad_request(target, files, message):
    assert await target.upload(files) == (400, failure(message))
    assert await target.nothing_stored()


FILE_MESSAGES = {"Files cannot be JSON decoded", "Illegal path", "Content cannot be base64 decoded"}


@pytest.mark.parametrize("items", [[5], ["a.txt"], [None], [["a.txt", "b2s="]]], ids=["number", "string", "null", "pair"])
async def test_list_items_that_are_not_objects_are_a_bad_request(target, items):
    status, body = await target.upload(raw_files(items))
    assert status == 400
    assert body["success"] is False and body["message"] in FILE_MESSAGES
    assert await target.nothing_stored()


async def test_the_first_bad_item_decides_the_message(target):
    path_first = raw_files([{"path": "ok", "content": "b2s="}, {"path": "../x", "content": "b2s="}, {"path": "y", "content": "a"}])
    content_first = raw_files([{"path": "ok", "content": "a"}, {"path": "../x", "content": "b2s="}])
    same_item = raw_files([{"path": "/x", "content": "a"}])
    assert await target.upload(path_first) == (400, failure("Illegal path"))
    assert await target.upload(content_first) == (400, failure("Content cannot be base64 decoded"))
    assert await target.upload(same_item) == (400, failure("Illegal path"))
    assert await target.nothing_stored()


# ---------------------------------------------------------------------------------------------
# list_only

ENTRIES = [("one.ipynb", b"1"), ("sub/two.txt", b"22")]


@pytest.mark.parametrize(
    "params",
    [[("list_only", "true")], [("list_only", " true ")], [("list_only", "false"), ("list_only", "true")]],
    ids=["true", "true-with-spaces", "last-occurrence-wins"],
)
async def test_list_only_true_leaves_out_the_contents(target, params):
    await target.round_trip(encode_files(ENTRIES))
    status, body = await target.download(params)
    assert status == 200
    assert body["files"] == expected_tree(ENTRIES, list_only=True)
    assert all(set(entry) == {"path", "checksum"} for entry in body["files"])


@pytest.mark.parametrize(
    "params",
    [
        [],
        [("list_only", "True")],
        [("list_only", "TRUE")],
        [("list_only", "1")],
        [("list_only", "yes")],
        [("list_only", "false")],
        [("list_only", "")],
        [("list_only", "true"), ("list_only", "false")],
    ],
    ids=["absent", "True", "TRUE", "1", "yes", "false", "empty", "last-occurrence-wins"],
)
async def test_any_other_list_only_value_returns_the_contents(target, params):
    await target.round_trip(encode_files(ENTRIES))
    status, body = await target.download(params)
    assert (status, body["files"]) == (200, expected_tree(ENTRIES))


@pytest.mark.backends("embedded", "mongodb+minio")
async def test_a_listing_has_the_same_checksums_as_the_full_download(target):
    files = await target.round_trip(encode_files(ENTRIES))
    status, body = await target.download([("list_only", "true")])
    assert [entry["checksum"] for entry in body["files"]] == [entry["checksum"] for entry in files]
