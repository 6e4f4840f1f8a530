"""Opens the two stores named by the --database and --storage settings."""

from __future__ import annotations

from .errors import StoreConfigError
from .metadata.base import MetadataStore
from .objects.base import ObjectStore

SQLITE_SCHEME = "sqlite:///"


async def open_metadata_store(url: str) -> MetadataStore:
    if url.startswith(SQLITE_SCHEME):
        from .metadata.sqlite import SqliteMetadataStore

        return await SqliteMetadataStore.open(url[len(SQLITE_SCHEME) :])
    raise StoreConfigError(f"--database must be sqlite:////absolute/path.db, got {url!r}")


async def open_object_store(location: str) -> ObjectStore:
    if "://" in location:
        raise StoreConfigError(f"--storage must be a local directory, got {location!r}")
    from .objects.filesystem import FilesystemObjectStore

    return await FilesystemObjectStore.open(location)
