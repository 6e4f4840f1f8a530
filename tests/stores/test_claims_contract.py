"""What every MetadataStore backend must do with one-time claims (the single use of an OAuth
state): the first claim of a name wins, on every replica, until the claim expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest

from ngshare_s3.stores.metadata.base import MetadataStore
from ngshare_s3.stores.metadata.sqlite import SqliteMetadataStore


def in_minutes(minutes: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


@pytest.fixture
async def replicas(
    request: pytest.FixtureRequest, metadata_store: MetadataStore
) -> AsyncIterator[tuple[MetadataStore, MetadataStore]]:
    """The test's store and a second one opened on the same database, as a replica opens it."""
    if isinstance(metadata_store, SqliteMetadataStore):
        second = await SqliteMetadataStore.open(metadata_store.path)
    else:
        from ngshare_s3.stores.metadata.mongo import MongoMetadataStore

        second = await MongoMetadataStore.open(request.getfixturevalue("mongodb_url"))
    try:
        yield metadata_store, second
    finally:
        await second.close()


async def test_a_name_is_claimed_once(metadata_store: MetadataStore) -> None:
    assert await metadata_store.claim_once("oauth-state:abc", in_minutes(10)) is True
    assert await metadata_store.claim_once("oauth-state:abc", in_minutes(10)) is False
    assert await metadata_store.claim_once("oauth-state:abc", in_minutes(20)) is False
    assert await metadata_store.claim_once("oauth-state:ABC", in_minutes(10)) is True
    assert await metadata_store.claim_once("oauth-state:abd", in_minutes(10)) is True


async def test_an_expired_claim_may_be_claimed_again(metadata_store: MetadataStore) -> None:
    assert await metadata_store.claim_once("old", in_minutes(-1)) is True
    assert await metadata_store.claim_once("old", in_minutes(10)) is True
    assert await metadata_store.claim_once("old", in_minutes(10)) is False


async def test_expired_claims_do_not_count_against_live_ones(metadata_store: MetadataStore) -> None:
    for number in range(5):
        assert await metadata_store.claim_once(f"gone-{number}", in_minutes(-1)) is True
    assert await metadata_store.claim_once("live", in_minutes(10)) is True
    assert await metadata_store.claim_once("live", in_minutes(10)) is False


async def test_concurrent_claims_of_one_name_have_one_winner(metadata_store: MetadataStore) -> None:
    results = await asyncio.gather(*(metadata_store.claim_once("race", in_minutes(10)) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]


async def test_a_claim_holds_on_every_replica(replicas: tuple[MetadataStore, MetadataStore]) -> None:
    first, second = replicas
    assert await first.claim_once("shared", in_minutes(10)) is True
    assert await second.claim_once("shared", in_minutes(10)) is False
    results = await asyncio.gather(
        *(store.claim_once("raced", in_minutes(10)) for store in (first, second) for _ in range(5))
    )
    assert sorted(results) == [False] * 9 + [True]


async def test_clear_removes_claims_too(metadata_store: MetadataStore) -> None:
    """clear() removes every record, claims included; dump() lists the exchange's records only."""
    assert await metadata_store.claim_once("kept", in_minutes(10)) is True
    assert "claims" not in await metadata_store.dump()
    await metadata_store.clear()
    assert await metadata_store.claim_once("kept", in_minutes(10)) is True
