"""What the service measures about itself, in Prometheus' terms.

Each application gets a registry of its own, so that several services in one process (tests,
replicas) never mix their numbers. Several worker processes share theirs through files instead
(prometheus_client's multiprocess mode), so that /metrics, whichever worker answers it, reports
the sum over all of them. The store wrapper times every call a store answers without
the store knowing, so the backends stay free of metrics code."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .stores.wrapped import WrappedStore

NAMESPACE = "ngshare_s3"
# From a cached token check to a deadline upload of large notebooks.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class CacheMetrics:
    hits: Counter  # answers served without reading the store (a shared build included)
    misses: Counter  # answers built from the store
    bytes_held: Gauge


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry  # what /metrics renders
    requests: Histogram  # seconds per request, by method, route template and status
    bytes_received: Counter
    bytes_sent: Counter
    uploads_in_flight: Gauge
    store_calls: Histogram  # seconds per store call, by store and operation
    store_errors: Counter
    hub_lookups: Counter  # token checks, by whether the Hub had to be asked
    client_disconnects: Counter  # requests whose client went away before the answer, by route
    release_cache: CacheMetrics

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def share_between_processes(folder: str) -> None:
    """From now on, metrics created in this process and in the processes it forks keep their
    values in files in `folder`. Call before forking the workers; remove the folder after them.
    (prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is imported, which is too early
    to know the number of workers, so its value class is chosen here too.)"""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    values.ValueClass = values.MultiProcessValue()


def worker_stopped(pid: int) -> None:
    """A worker process is gone: its gauges stop counting; its counters keep their totals."""
    multiprocess.mark_process_dead(pid)


def new_metrics(shared: bool = False) -> Metrics:
    """A registry of this application's own, or with `shared` (after share_between_processes)
    one that renders the sum over every worker process. The process_* and python_* metrics
    describe a single process, so the shared one leaves them out."""
    registry = CollectorRegistry()
    if shared:
        exposed = CollectorRegistry()
        multiprocess.MultiProcessCollector(exposed)
    else:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        exposed = registry

    def make(kind, name: str, description: str, labels: tuple[str, ...] = (), **options):
        return kind(name, description, labels, namespace=NAMESPACE, registry=registry, **options)

    return Metrics(
        registry=exposed,
        requests=make(
            Histogram, "request_duration_seconds", "Time to answer a request",
            ("method", "route", "status"), buckets=REQUEST_BUCKETS,
        ),
        bytes_received=make(Counter, "request_bytes", "Request body bytes received", ("route",)),
        bytes_sent=make(Counter, "response_bytes", "Response body bytes sent", ("route",)),
        uploads_in_flight=make(
            Gauge, "uploads_in_flight", "Releases, submissions and feedback being received",
            multiprocess_mode="livesum",
        ),
        store_calls=make(
            Histogram, "store_call_duration_seconds", "Time a store call took, failed or not",
            ("store", "operation"), buckets=STORE_BUCKETS,
        ),
        store_errors=make(
            Counter, "store_errors", "Store calls that raised", ("store", "operation", "error")
        ),
        hub_lookups=make(
            Counter, "hub_token_lookups", "Token checks; source=cache needed no call to the Hub",
            ("source",),
        ),
        client_disconnects=make(
            Counter, "client_disconnects", "Requests whose client went away before the answer",
            ("route",),
        ),
        release_cache=CacheMetrics(
            hits=make(Counter, "release_cache_hits", "Release fetches answered without reading the store"),
            misses=make(Counter, "release_cache_misses", "Release fetches whose answer was built from the store"),
            bytes_held=make(
                Gauge, "release_cache_bytes", "Bytes of release answers kept in memory",
                multiprocess_mode="livesum",
            ),
        ),
    )


class ObservedStore(WrappedStore):
    """A store whose every coroutine and stream is timed, and every failure counted, by
    operation. Everything else passes through untouched."""

    def __init__(self, store: Any, name: str, metrics: Metrics):
        super().__init__(store, self._observing)
        self._name = name
        self._metrics = metrics

    @contextlib.contextmanager
    def _observing(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as error:
            self._metrics.store_errors.labels(self._name, operation, type(error).__name__).inc()
            raise
        finally:
            self._metrics.store_calls.labels(self._name, operation).observe(time.perf_counter() - started)
