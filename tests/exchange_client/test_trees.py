"""File trees from the exchange are written only inside the folder they are meant for."""

from __future__ import annotations

import base64
import json

import pytest

from ngshare_s3_exchange.trees import encode_folder, safe_relative_path, write_files


def entry(path: str, body: bytes = b'x') -> dict:
    return {'path': path, 'content': base64.b64encode(body).decode()}


def everything_under(folder) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob('*'))


UNSAFE = ['../x', '../../etc/passwd', 'a/../../x', 'a/../b', '/etc/passwd', '/x', '', '.', 'a\\..\\x', '..']


@pytest.mark.parametrize('path', UNSAFE)
def test_an_unsafe_path_is_refused_by_name(path):
    with pytest.raises(ValueError) as raised:
        safe_relative_path(path)
    assert str(raised.value) == f'the exchange sent a file with an unsafe path: {path!r}'


@pytest.mark.parametrize('path', UNSAFE)
def test_a_tree_with_an_unsafe_path_writes_nothing(tmp_path, path):
    """The unsafe path comes after a safe one: the safe one is not written either, so a refused
    tree leaves no half-written folder."""
    destination = tmp_path / 'inside' / 'ps1'
    with pytest.raises(ValueError):
        write_files([entry('ps1.ipynb'), entry(path)], destination)
    assert everything_under(tmp_path) == []


def test_safe_paths_are_written_where_they_say(tmp_path):
    files = [entry('ps1.ipynb', b'notebook'), entry('data/./input.csv', b'1,2'), entry('data/deeper/x.txt', b'x')]
    written = write_files(files, tmp_path / 'ps1')
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ['ps1/ps1.ipynb', 'ps1/data/input.csv', 'ps1/data/deeper/x.txt']
    assert (tmp_path / 'ps1' / 'data' / 'input.csv').read_bytes() == b'1,2'


def test_only_missing_keeps_the_files_on_disk(tmp_path):
    (tmp_path / 'ps1.ipynb').write_bytes(b'my answers')
    written = write_files([entry('ps1.ipynb', b'released'), entry('data.csv', b'1')], tmp_path, only_missing=True)
    assert written == [tmp_path / 'data.csv']
    assert (tmp_path / 'ps1.ipynb').read_bytes() == b'my answers'


def test_a_folder_comes_back_as_it_was(tmp_path):
    source = tmp_path / 'source'
    (source / 'data').mkdir(parents=True)
    (source / 'ps1.ipynb').write_bytes(b'{}')
    (source / 'data' / 'input.bin').write_bytes(bytes(range(256)))
    files = json.loads(encode_folder(source))
    assert sorted(f['path'] for f in files) == ['data/input.bin', 'ps1.ipynb']
    write_files(files, tmp_path / 'copy')
    assert (tmp_path / 'copy' / 'data' / 'input.bin').read_bytes() == bytes(range(256))
    assert everything_under(tmp_path / 'copy') == everything_under(source)
