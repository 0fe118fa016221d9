"""The ledger's Prometheus metrics.

How far ingest has got is read from `Ingest.status` when Prometheus scrapes. The lag is the
engine's `engine_last_seq` minus `ledger_ingest_last_seq` (a recording rule in
k8s/monitoring), both counted in events. The histograms are observed as the work is done:
the size and the database time of every stored batch, and the database time of queries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger_svc.ingest import Ingest
from servicekit.metrics import LATENCY_BUCKETS

# Batches grow when the database is the bottleneck, up to LEDGER_MAX_BATCH_EVENTS.
BATCH_EVENTS_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000)


class IngestState(Collector):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def collect(self) -> Iterator[Metric]:
        status = self.ingest.status
        yield GaugeMetricFamily(
            "ledger_ingest_last_seq",
            "Sequence number of the last engine event stored",
            value=status.last_seq,
        )
        yield GaugeMetricFamily(
            "ledger_ingest_last_event_timestamp_seconds",
            "Engine time of the last event stored",
            value=status.last_event_ts_us / 1_000_000,
        )
        yield GaugeMetricFamily(
            "ledger_ingest_connected",
            "1 while subscribed to the engine",
            value=1 if status.connected else 0,
        )
        yield CounterMetricFamily(
            "ledger_ingest_batches", "Transactions of events stored", value=status.batches
        )
        yield CounterMetricFamily(
            "ledger_ingest_events", "Engine events stored", value=status.events
        )


class DatabaseMetrics:
    """Batch sizes and database latencies, observed by ingest and by the query RPCs."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_events = Histogram(
            "ledger_ingest_batch_events",
            "Engine events per stored batch (one transaction)",
            buckets=BATCH_EVENTS_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "ledger_ingest_transaction_seconds",
            "Time to store one batch: its whole transaction, commit included",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.query_seconds = Histogram(
            "ledger_db_query_seconds",
            "Database time of a query RPC, waiting for a pooled connection included",
            ["query"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def batch_stored(self, events: int, seconds: float) -> None:
        self.batch_events.observe(events)
        self.batch_seconds.observe(seconds)

    @contextmanager
    def query(self, name: str) -> Iterator[None]:
        """Times the block as query `name`, whether it succeeds or fails."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.query_seconds.labels(name).observe(time.perf_counter() - started)
