"""Prometheus metrics: what the gateway did, by endpoint, provider, status and cache result.

Counters and histograms live in a registry of their own (prometheus_client does the
exposition). Label values come only from closed sets (the route table's endpoints, the
registry's provider slugs, HTTP statuses, the cache statuses), so a caller cannot grow the
series without bound, and no label ever carries a key, a model name or metadata. Per-request
cost is a few dictionary lookups and increments: label children are cached by their values.

With several worker processes the values go through prometheus_client's multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set by `crossroads serve` before the workers start), and a scrape
of any worker sums all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a few ms (cache hits, errors) to the minutes a long stream may take.
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_BYTE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
NO_PROVIDER: Final = "none"


class Metrics:
    def __init__(self, providers: Iterable[str], endpoints: Iterable[str]) -> None:
        self._providers = frozenset(providers)
        self._endpoints = frozenset(endpoints)
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry  # multiprocess: values go to files
        self.requests = Counter(
            "crossroads_requests",
            "Requests answered, by endpoint, provider, HTTP status and cache result.",
            ("endpoint", "provider", "status", "cache"),
            registry=registry,
        )
        self.duration = Histogram(
            "crossroads_request_duration_seconds",
            "Time from the request's arrival to the end of its answer (a stream's last byte).",
            ("endpoint", "provider"),
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.first_byte = Histogram(
            "crossroads_time_to_first_byte_seconds",
            "Time from a streamed request's arrival to the first byte of its answer.",
            ("endpoint", "provider"),
            buckets=FIRST_BYTE_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "crossroads_upstream_attempts",
            "Tries at a provider (retries and fallbacks included), by provider and outcome status.",
            ("provider", "status"),
            registry=registry,
        )
        self.interrupted = Counter(
            "crossroads_streams_interrupted",
            "Streams that failed after their first byte (the client got an error event).",
            ("endpoint", "provider"),
            registry=registry,
        )
        # In one process a plain int, read when scraped (no lock per request); with workers, a
        # gauge the scrape sums over the live processes.
        self.in_flight = 0
        self._in_flight_gauge = (
            Gauge(
                "crossroads_requests_in_flight",
                "Requests being answered.",
                multiprocess_mode="livesum",
                registry=None,  # its values go to the shared files, read by the multiprocess collector
            )
            if self.multiprocess
            else None
        )
        self._children: dict[tuple[str, ...], Any] = {}
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry.register(_InFlight(self))

    def add(self, collector: Collector) -> None:
        """A collector read at scrape time (state the gateway keeps anyway: no per-request cost)."""
        self.registry.register(collector)

    def began(self) -> None:
        self.in_flight += 1
        if self._in_flight_gauge is not None:
            self._in_flight_gauge.inc()

    def ended(self) -> None:
        self.in_flight -= 1
        if self._in_flight_gauge is not None:
            self._in_flight_gauge.dec()

    def provider(self, name: str | None) -> str:
        return name if name in self._providers else NO_PROVIDER

    def request(
        self,
        endpoint: str,
        provider: str | None,
        status: int,
        cache: str,
        seconds: float,
        first_byte_seconds: float | None,
        interrupted: bool = False,
    ) -> None:
        if endpoint not in self._endpoints:
            return
        name = self.provider(provider)
        key = (endpoint, name, str(status), cache)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*key),
                self.duration.labels(endpoint, name),
                self.first_byte.labels(endpoint, name),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if first_byte_seconds is not None:
            children[2].observe(first_byte_seconds)
        if interrupted:
            self.interrupted.labels(endpoint, name).inc()

    def attempt(self, provider: str, status: int) -> None:
        key = ("attempt", self.provider(provider), str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.attempts.labels(key[1], key[2])
        child.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _InFlight(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "crossroads_requests_in_flight", "Requests being answered.", value=self._metrics.in_flight
        )


class CacheCollector(Collector):
    """The cache's own counts (kept by the cache in any case), read when scraped."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats

    def collect(self) -> Iterable[CounterMetricFamily]:
        stats = self._stats
        lookups = CounterMetricFamily(
            "crossroads_cache_lookups", "Cache lookups in this process, by result.", labels=("result",)
        )
        lookups.add_metric(("hit",), stats.hits)
        lookups.add_metric(("semantic_hit",), stats.semantic_hits)
        lookups.add_metric(("miss",), stats.misses)
        yield lookups
        yield CounterMetricFamily(
            "crossroads_cache_stores", "Answers stored in the cache by this process.", value=stats.stores
        )
        yield CounterMetricFamily(
            "crossroads_cache_store_unavailable",
            "Cache reads and writes skipped because the store (Redis) could not be reached.",
            value=stats.unavailable,
        )
