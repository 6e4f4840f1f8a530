"""Store fixtures: every contract test runs once per registered backend.

A backend is one async context manager factory taking the pytest request (so it can ask for
other fixtures, e.g. a server started once per session, or call pytest.skip with a reason).
Adding a backend is one entry in METADATA_BACKENDS or OBJECT_BACKENDS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest

from ngshare_s3.stores.metadata.base import MetadataStore
from ngshare_s3.stores.metadata.sqlite import SqliteMetadataStore
from ngshare_s3.stores.objects.base import ObjectStore
from ngshare_s3.stores.objects.filesystem import FilesystemObjectStore


@asynccontextmanager
async def sqlite_metadata(request: pytest.FixtureRequest) -> AsyncIterator[MetadataStore]:
    tmp_path = request.getfixturevalue("tmp_path")
    store = await SqliteMetadataStore.open(str(tmp_path / "metadata" / "ngshare.db"))
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def filesystem_objects(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    tmp_path = request.getfixturevalue("tmp_path")
    store = await FilesystemObjectStore.open(str(tmp_path / "objects"))
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def mongo_metadata(request: pytest.FixtureRequest) -> AsyncIterator[MetadataStore]:
    from ngshare_s3.stores.metadata.mongo import MongoMetadataStore

    store = await MongoMetadataStore.open(request.getfixturevalue("mongodb_url"))
    try:
        yield store
    finally:
        await store.close()


def s3_objects(server_fixture: str) -> Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[ObjectStore]]:
    """A fresh prefix of a real S3 server's bucket, reached through the AWS environment."""

    @asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
        from ngshare_s3.stores.objects.s3 import S3ObjectStore

        server = request.getfixturevalue(server_fixture)
        request.getfixturevalue("s3_environment")(server)
        store = await S3ObjectStore.open(server.new_location())
        try:
            yield store
        finally:
            await store.close()

    return factory


MetadataFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[MetadataStore]]
ObjectFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[ObjectStore]]

METADATA_BACKENDS: dict[str, MetadataFactory] = {
    "sqlite": sqlite_metadata,
    "mongodb": mongo_metadata,
}

OBJECT_BACKENDS: dict[str, ObjectFactory] = {
    "filesystem": filesystem_objects,
    "minio": s3_objects("minio_server"),
    "moto": s3_objects("moto_server"),
}


@pytest.fixture(params=list(METADATA_BACKENDS))
async def metadata_store(request: pytest.FixtureRequest) -> AsyncIterator[MetadataStore]:
    async with METADATA_BACKENDS[request.param](request) as store:
        yield store


@pytest.fixture(params=list(OBJECT_BACKENDS))
async def object_store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    async with OBJECT_BACKENDS[request.param](request) as store:
        yield store


# A server that refuses ---------------------------------------------------------------------

FERRETDB_USER = "ngshare-admin"
FERRETDB_PASSWORD = "ngshare-admin-secret"


@dataclass(frozen=True)
class MongoWithAuth:
    host: str  # host:port
    user: str
    password: str


@pytest.fixture(scope="session")
def ferretdb_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoWithAuth]:
    """FerretDB with authentication on (its experimental SCRAM support, on the SQLite engine):
    it refuses a wrong password (AuthenticationFailed) and a client without credentials
    (Unauthorized), as a MongoDB with access control does."""
    import servers

    try:
        process = servers.start_ferretdb(tmp_path_factory.mktemp("ferretdb-auth"), admin=(FERRETDB_USER, FERRETDB_PASSWORD))
    except servers.ServerUnavailable as reason:
        pytest.skip(str(reason))
    try:
        yield MongoWithAuth(f"127.0.0.1:{process.port}", FERRETDB_USER, FERRETDB_PASSWORD)
    finally:
        process.stop()
