"""The engine's Prometheus metrics.

What changes at every command is read when Prometheus scrapes (`EngineState`, a collector
over the sequencer and the engine), so the sequencer's hot path pays nothing for it. Only
journal fsyncs and snapshots are observed as they happen.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine_svc.core.engine import Engine
from engine_svc.core.types import MarketStatus
from engine_svc.sequencer import Sequencer

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.fsync_seconds = Histogram(
            "engine_journal_fsync_seconds",
            "Time to make one journal batch durable (fdatasync)",
            buckets=FSYNC_BUCKETS,
            registry=registry,
        )
        self.snapshot_seconds = Histogram(
            "engine_snapshot_seconds",
            "Time to encode and write a snapshot, fsyncs included",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.snapshot_bytes = Gauge(
            "engine_snapshot_bytes", "Size of the newest snapshot file", registry=registry
        )

    def watch(self, engine: Engine, sequencer: Sequencer) -> None:
        self.registry.register(EngineState(engine, sequencer))


class EngineState(Collector):
    def __init__(self, engine: Engine, sequencer: Sequencer) -> None:
        self.engine = engine
        self.sequencer = sequencer

    def collect(self) -> Iterator[Metric]:
        engine, sequencer = self.engine, self.sequencer
        yield GaugeMetricFamily(
            "engine_last_seq", "Sequence number of the last event applied", value=engine.seq
        )
        yield GaugeMetricFamily(
            "engine_last_snapshot_seq",
            "Sequence number of the newest snapshot taken",
            value=sequencer.last_snapshot_seq,
        )
        yield GaugeMetricFamily(
            "engine_sequencer_queue_depth",
            "Commands submitted and waiting for the sequencer",
            value=sequencer.queue_depth,
        )
        yield CounterMetricFamily(
            "engine_sequencer_batches",
            "Batches of commands applied (one journal write each)",
            value=sequencer.batches,
        )
        # Ids are handed out in order and never reused, so they count what was made.
        yield CounterMetricFamily(
            "engine_orders_accepted",
            "Orders accepted (given an id), since the exchange began",
            value=engine.next_order_id - 1,
        )
        yield CounterMetricFamily(
            "engine_trades", "Trades, since the exchange began", value=engine.next_trade_id - 1
        )
        yield GaugeMetricFamily(
            "engine_journal_failed",
            "1 when the journal could not be written and every command is refused",
            value=1 if sequencer.failed else 0,
        )
        orders = GaugeMetricFamily(
            "engine_open_orders", "Orders resting in the book", labels=["market"]
        )
        halted = GaugeMetricFamily(
            "engine_market_halted", "1 when a market refuses new orders", labels=["market"]
        )
        resting = dict.fromkeys(engine.markets, 0)
        for order in engine.orders.values():
            resting[order.market] += 1
        for symbol, market in engine.markets.items():
            orders.add_metric([symbol], resting[symbol])
            halted.add_metric([symbol], 1 if market.status == MarketStatus.HALTED else 0)
        yield orders
        yield halted
