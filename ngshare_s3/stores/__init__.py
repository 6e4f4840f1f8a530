"""Opens the two stores named by the --database and --storage settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import StoreConfigError
from .metadata.base import MetadataStore
from .objects.base import ObjectStore

SQLITE_SCHEME = "sqlite:///"
S3_SCHEME = "s3://"
MONGODB_SCHEMES = ("mongodb://", "mongodb+srv://")


async def open_metadata_store(url: str) -> MetadataStore:
    if url.startswith(SQLITE_SCHEME):
        from .metadata.sqlite import SqliteMetadataStore

        return await SqliteMetadataStore.open(url[len(SQLITE_SCHEME) :])
    if url.startswith(MONGODB_SCHEMES):
        from .metadata.mongo import MongoMetadataStore

        return await MongoMetadataStore.open(url)
    raise StoreConfigError(
        f"--database must be mongodb://host/database or sqlite:////absolute/path.db, got {url!r}"
    )


async def open_object_store(location: str) -> ObjectStore:
    if location.startswith(S3_SCHEME):
        from .objects.s3 import S3ObjectStore

        return await S3ObjectStore.open(location)
    if "://" in location:
        raise StoreConfigError(
            f"--storage must be s3://bucket/optional/prefix or a local directory, got {location!r}"
        )
    from .objects.filesystem import FilesystemObjectStore

    return await FilesystemObjectStore.open(location)


@asynccontextmanager
async def opened_stores(database: str, storage: str) -> AsyncIterator[tuple[MetadataStore, ObjectStore]]:
    """Both stores, open for the block and closed after it, whatever happens."""
    metadata = await open_metadata_store(database)
    try:
        objects = await open_object_store(storage)
        try:
            yield metadata, objects
        finally:
            await objects.close()
    finally:
        await metadata.close()
