"""Counters the servers keep about themselves, read before and after each phase.

ngshare_s3 counts every call it makes to its stores (`/metrics`, the histogram
`ngshare_s3_store_call_duration_seconds`, labelled by store and operation). MinIO counts every S3
request it answers, by API; its `/minio/metrics/v3/api/requests` endpoint is read fresh on each
scrape (the older `/minio/v2/metrics/cluster` caches its HTTP numbers for 10 s, too long for a
phase of a few seconds). The difference between two scrapes, divided by the requests the
benchmark sent in between, is the cost of one nbgrader request in store calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

STORE_CALLS = "ngshare_s3_store_call_duration_seconds_count"
STORE_ERRORS = "ngshare_s3_store_errors_total"
HUB_LOOKUPS = "ngshare_s3_hub_token_lookups_total"
MINIO_REQUESTS = "minio_api_requests_total"


def counters(text: str, wanted: dict[str, tuple[str, ...]]) -> Counter:
    """The samples named in `wanted` as 'name{label,...}' -> value, `wanted` mapping a sample
    name to the labels that tell its series apart."""
    found: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = wanted.get(sample.name)
            if labels is None:
                continue
            key = sample.name + "{" + ",".join(sample.labels.get(label, "") for label in labels) + "}"
            found[key] += sample.value
    return found


@dataclass
class Scraper:
    """One Prometheus endpoint and the counters of interest on it."""

    kind: str  # "service" (ngshare_s3's store calls) or "s3" (MinIO's requests)
    url: str
    wanted: dict[str, tuple[str, ...]]

    async def read(self, session: aiohttp.ClientSession) -> Counter:
        async with session.get(self.url) as response:
            response.raise_for_status()
            return counters(await response.text(), self.wanted)


def ngshare_s3_scraper(base: str) -> Scraper:
    return Scraper("service", f"{base}/metrics", {
        STORE_CALLS: ("store", "operation"),
        STORE_ERRORS: ("store", "operation", "error"),
        HUB_LOOKUPS: ("source",),
    })


def minio_scraper(base: str) -> Scraper:
    return Scraper("s3", f"{base}/minio/metrics/v3/api/requests", {MINIO_REQUESTS: ("name",)})


def difference(before: Counter, after: Counter) -> dict[str, float]:
    """What grew between two scrapes (counters only grow, unless the server restarted)."""
    return {key: after[key] - before.get(key, 0) for key in sorted(after) if after[key] != before.get(key, 0)}


def short_name(key: str) -> str:
    """'ngshare_s3_store_call_duration_seconds_count{database,find}' -> 'database find'."""
    return key.partition("{")[2].rstrip("}").replace(",", " ")


def per_request(grown: dict[str, float], requests: int, prefix: str) -> dict[str, float]:
    """The counters starting with `prefix`, divided by the phase's requests."""
    return {short_name(key): value / requests for key, value in grown.items()
            if key.startswith(prefix) and requests}


def summarize(grown: dict[str, float], requests: int, *, s3_counted: bool) -> dict[str, object]:
    """Store and S3 calls per request for one phase, in total and by operation."""
    database = {k.removeprefix("database "): v
                for k, v in per_request(grown, requests, STORE_CALLS).items() if k.startswith("database ")}
    storage = {k.removeprefix("storage "): v
               for k, v in per_request(grown, requests, STORE_CALLS).items() if k.startswith("storage ")}
    s3 = per_request(grown, requests, MINIO_REQUESTS)
    summary: dict[str, object] = {
        "database_calls_per_request": sum(database.values()),
        "storage_calls_per_request": sum(storage.values()),
        "database_calls_by_operation": database,
        "storage_calls_by_operation": storage,
        "store_errors": {short_name(k): v for k, v in grown.items() if k.startswith(STORE_ERRORS)},
        "hub_lookups": {short_name(k): v for k, v in grown.items() if k.startswith(HUB_LOOKUPS)},
    }
    if s3_counted:
        summary["s3_requests_per_request"] = sum(s3.values())
        summary["s3_requests_by_api"] = s3
    return summary
