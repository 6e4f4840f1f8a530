"""Filesystem backend specifics: opening paths, keys that try to leave the root, temp files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

import pytest

from ngshare_s3.stores import open_object_store
from ngshare_s3.stores.errors import ChecksumMismatch, StoreConfigError, StoreUnavailable
from ngshare_s3.stores.objects.base import CHUNK_SIZE, NewObject, chunks_of, read_all
from ngshare_s3.stores.objects.filesystem import TEMP_FOLDER, FilesystemObjectStore


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
async def store(tmp_path: Path) -> FilesystemObjectStore:
    return await FilesystemObjectStore.open(str(tmp_path / "root"))


async def keys(store: FilesystemObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def test_open_creates_missing_folders(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    store = await open_object_store(str(root))
    assert isinstance(store, FilesystemObjectStore)
    assert root.is_dir()
    await store.ping()


async def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for root in [tmp_path / "file", tmp_path / "file" / "sub"]:
        with pytest.raises(StoreConfigError) as error:
            await FilesystemObjectStore.open(str(root))
        message = str(error.value)
        assert str(root) in message and "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
async def test_unwritable_root(tmp_path: Path) -> None:
    root = tmp_path / "locked"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(StoreConfigError):
            await FilesystemObjectStore.open(str(root))
    finally:
        root.chmod(0o700)


async def test_files_laid_out_like_their_keys(store: FilesystemObjectStore) -> None:
    await store.put("courses/c/assignments/a/release/r1/0001/a.txt", chunks_of(b"hi"), md5(b"hi"))
    path = Path(store.root, "courses", "c", "assignments", "a", "release", "r1", "0001", "a.txt")
    assert path.read_bytes() == b"hi"


# The rule every backend holds keys to is in the object store contract suite; here, that no key
# leaves the root or enters the folder of temporary files.
@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", f"{TEMP_FOLDER}/x"])
async def test_keys_that_could_leave_their_place_are_refused(
    store: FilesystemObjectStore, tmp_path: Path, key: str
) -> None:
    with pytest.raises(ValueError):
        await store.put(key, chunks_of(b"x"), md5(b"x"))
    with pytest.raises(ValueError):
        await read_all(store.get(key))
    with pytest.raises(ValueError):
        await store.delete([key])
    assert files_under(tmp_path) == []


async def test_the_temporary_folder_cannot_be_listed(store: FilesystemObjectStore) -> None:
    with pytest.raises(ValueError):
        await keys(store, f"{TEMP_FOLDER}/")


async def test_leftover_temp_files_are_not_listed(store: FilesystemObjectStore) -> None:
    """A crash mid-put leaves a file in the temp folder; it never shows up as an object."""
    Path(store.root, TEMP_FOLDER, "tmpleftover").write_bytes(b"half a body")
    await store.put("a/b", chunks_of(b"x"), md5(b"x"))
    assert await keys(store) == ["a/b"]
    assert await keys(store, ".") == []


async def test_failed_puts_leave_no_file_behind(store: FilesystemObjectStore) -> None:
    async def broken():
        yield b"x" * 1000
        raise ConnectionResetError

    with pytest.raises(ChecksumMismatch):
        await store.put("a/b", chunks_of(b"body"), md5(b"other"))
    with pytest.raises(ConnectionResetError):
        await store.put("a/c", broken(), md5(b"x"))
    assert files_under(Path(store.root)) == []


async def test_cancelled_put_leaves_no_file_behind(store: FilesystemObjectStore) -> None:
    started = asyncio.Event()

    async def slow():
        yield b"x" * 1000
        started.set()
        await asyncio.sleep(30)
        yield b"never"

    task = asyncio.create_task(store.put("a/b", slow(), md5(b"x")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(Path(store.root)) == []


async def test_delete_prunes_empty_folders_but_not_the_root(store: FilesystemObjectStore) -> None:
    await store.put("a/b/c/one", chunks_of(b"1"), md5(b"1"))
    await store.put("a/keep", chunks_of(b"2"), md5(b"2"))
    await store.delete(["a/b/c/one"])
    root = Path(store.root)
    assert not (root / "a" / "b").exists()
    assert (root / "a" / "keep").is_file()
    await store.delete(["a/keep"])
    assert sorted(os.listdir(root)) == [TEMP_FOLDER]
    await store.ping()


async def test_put_survives_deletes_pruning_its_folder(store: FilesystemObjectStore) -> None:
    """A delete that empties a folder races a put into that same folder: the put must land."""
    for round_ in range(30):
        key = f"c/a/{round_ % 3}/old"
        await store.put(key, chunks_of(b"old"), md5(b"old"))
        new_key = f"c/a/{round_ % 3}/new{round_}"
        await asyncio.gather(
            store.delete([key]), store.put(new_key, chunks_of(b"new"), md5(b"new"))
        )
        assert await read_all(store.get(new_key)) == b"new"
        await store.delete([new_key])
    assert await keys(store) == []


async def test_put_remakes_a_folder_pruned_just_before_the_rename(
    store: FilesystemObjectStore, monkeypatch
) -> None:
    """The exact interleaving: folders made, a delete prunes them, then the rename runs."""
    make_folders = store._make_folders
    pruned = []

    def make_then_lose(folder: str) -> None:
        make_folders(folder)
        if not pruned:
            pruned.append(folder)
            shutil.rmtree(Path(store.root, "c"))

    monkeypatch.setattr(store, "_make_folders", make_then_lose)
    await store.put("c/a/1/new", chunks_of(b"new"), md5(b"new"))
    assert pruned
    assert await read_all(store.get("c/a/1/new")) == b"new"


async def test_get_streams_in_bounded_chunks(store: FilesystemObjectStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 1)
    await store.put("big", chunks_of(data), md5(data))
    sizes = [len(chunk) async for chunk in store.get("big")]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 1]


async def test_reader_keeps_its_bytes_while_the_object_is_replaced(
    store: FilesystemObjectStore,
) -> None:
    old = b"o" * (2 * CHUNK_SIZE)
    await store.put("f", chunks_of(old), md5(old))
    reader = store.get("f")
    first = await anext(reader)
    await store.put("f", chunks_of(b"new"), md5(b"new"))
    rest = b"".join([chunk async for chunk in reader])
    assert first + rest == old
    assert await read_all(store.get("f")) == b"new"


async def test_ping_fails_when_the_root_is_gone(store: FilesystemObjectStore) -> None:
    shutil.rmtree(store.root)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.put("a", chunks_of(b"x"), md5(b"x"))


class SyncLog:
    """What os.fsync was called on, by path, in order (the calls themselves still happen)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            self.synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to name a descriptor")
async def test_a_tree_is_durable_with_each_folder_on_its_way_synced_once(
    store: FilesystemObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = store.root
    await store.put("courses/c/first", chunks_of(b"made earlier"), md5(b"made earlier"))
    log = SyncLog(monkeypatch)
    tree = {f"courses/c/s/{n:04d}/file": bytes([n]) * 5000 for n in range(4)}
    await store.put_many([NewObject(key, chunks_of(data), md5(data)) for key, data in tree.items()])

    bodies = [p for p in log.synced if p.startswith(os.path.join(root, TEMP_FOLDER) + os.sep)]
    folders = [p for p in log.synced if p not in bodies]
    assert len(bodies) == len(tree), "every body is synced, before its rename (while in the temporary folder)"
    assert log.synced[: len(bodies)] == bodies, "bodies are synced before any folder"
    # Each folder once: the files' own folders, the folder that gained them, and every folder
    # above up to the root, since another tree may have made one of those a moment ago and
    # not yet synced it.
    on_the_way = {os.path.join(root, "courses/c/s", f"{n:04d}") for n in range(4)}
    on_the_way |= {os.path.join(root, folder) for folder in ("courses/c/s", "courses/c", "courses")} | {root}
    assert sorted(folders) == sorted(on_the_way)
    assert folders[-1] == root
    assert folders.index(os.path.join(root, "courses/c/s")) > folders.index(os.path.join(root, "courses/c/s/0000"))
    for key, data in tree.items():
        assert (Path(root) / key).read_bytes() == data


async def test_a_tree_with_one_bad_body_stores_none_of_it(store: FilesystemObjectStore) -> None:
    good = b"good" * 1000
    objects = [NewObject(f"t/{n:04d}/good", chunks_of(good), md5(good)) for n in range(3)]
    objects.append(NewObject("t/0003/bad", chunks_of(b"body"), md5(b"other body")))
    with pytest.raises(ChecksumMismatch):
        await store.put_many(objects)
    assert files_under(Path(store.root)) == [], "no object moved into place, no temporary file left"


@pytest.mark.parametrize("size", [0, 1000, CHUNK_SIZE, 2 * CHUNK_SIZE + 5])
async def test_a_read_takes_one_trip_to_a_thread_per_chunk(
    store: FilesystemObjectStore, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Opening shares a trip with the first chunk, and the read ends at the file's size
    without a trip for the empty read that would say so, nor one for closing."""
    data = os.urandom(size)
    await store.put("f", chunks_of(data), md5(data))
    trips: list[object] = []
    to_thread = asyncio.to_thread

    async def counted(function, /, *args, **kwargs):
        trips.append(function)
        return await to_thread(function, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    assert await read_all(store.get("f")) == data
    assert len(trips) == max(1, -(-size // CHUNK_SIZE))
