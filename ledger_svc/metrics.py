"""The ledger's Prometheus metrics: how far ingest has got, read from `Ingest.status` when
Prometheus scrapes. The lag is the engine's `engine_last_seq` minus `ledger_ingest_last_seq`
(a recording rule in k8s/monitoring), both counted in events."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ledger_svc.ingest import Ingest


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
