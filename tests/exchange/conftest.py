"""The exchange on each backend pair, for tests that drive the domain without HTTP: it sees the
stores only through their interfaces, so what it does must hold on every backend."""

from __future__ import annotations

import pytest

from ngshare_s3.exchange.exchange import Exchange
from ngshare_s3.stores import open_metadata_store, open_object_store


@pytest.fixture(params=["embedded", "mongodb+minio"])
async def ex(request, tmp_path):
    if request.param == "mongodb+minio":  # skips, with the reason, without the servers
        database = request.getfixturevalue("mongodb_url")
        minio = request.getfixturevalue("minio_server")
        request.getfixturevalue("s3_environment")(minio)
        storage = minio.new_location()
    else:
        database, storage = f"sqlite:///{tmp_path}/ngshare.db", str(tmp_path / "files")
    metadata = await open_metadata_store(database)
    objects = await open_object_store(storage)
    yield Exchange(metadata, objects, debug=False)
    await objects.close()
    await metadata.close()
