"""Prometheus metrics of the maker and of the flow (served by servicekit.metrics).

Each process keeps its own registry (tests run several makers in one process). Gauges of
money are floats: they are for dashboards, the maker never computes with them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class MakerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        by_side = ["market", "side"]
        self.placed = Counter("mm_quotes_placed", "Quotes placed", by_side, registry=registry)
        self.cancelled = Counter(
            "mm_quotes_cancelled", "Quotes cancelled by the maker", by_side, registry=registry
        )
        self.rejected = Counter(
            "mm_orders_rejected", "Commands the engine refused, by result code",
            ["market", "reason"], registry=registry,
        )  # fmt: skip
        self.fills = Counter("mm_fills", "Fills of the maker's quotes", by_side, registry=registry)
        self.filled = Counter(
            "mm_filled_base", "Base quantity of the maker's fills", by_side, registry=registry
        )
        self.inventory = Gauge(
            "mm_inventory", "The maker's holdings (available + locked)", ["asset"],
            registry=registry,
        )  # fmt: skip
        self.position = Gauge(
            "mm_position", "Holdings of the base asset minus the inventory target", ["market"],
            registry=registry,
        )  # fmt: skip
        self.realized = Gauge(
            "mm_realized_pnl", "Realized PnL in the quote asset since start, after fees",
            ["market"], registry=registry,
        )  # fmt: skip
        self.unrealized = Gauge(
            "mm_unrealized_pnl", "Unrealized PnL in the quote asset at the reference price",
            ["market"], registry=registry,
        )  # fmt: skip
        self.spread = Gauge(
            "mm_spread_quoted_bps", "Best ask minus best bid quoted, in bps of the reference",
            ["market"], registry=registry,
        )  # fmt: skip
        self.reference = Gauge(
            "mm_reference_price", "The reference price", ["market"], registry=registry
        )
        self.open_orders = Gauge(
            "mm_open_orders", "The maker's open orders after its last cycle", ["market"],
            registry=registry,
        )  # fmt: skip
        self.cycles = Counter("mm_cycles", "Completed quoting cycles", registry=registry)
        self.engine_errors = Counter(
            "mm_engine_errors", "Cycles cut short by an unreachable engine", registry=registry
        )


class FlowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.orders = Counter(
            "mm_flow_orders", "Orders sent by the simulated traders, by result code",
            ["market", "type", "side", "result"], registry=registry,
        )  # fmt: skip
        self.fills = Counter(
            "mm_flow_filled_base", "Base quantity the simulated traders' orders filled",
            ["market"], registry=registry,
        )  # fmt: skip
        self.deposits = Counter(
            "mm_flow_deposits", "Top-up deposits to the simulated traders", ["asset"],
            registry=registry,
        )  # fmt: skip
        self.engine_errors = Counter(
            "mm_flow_engine_errors", "Orders not sent because the engine was unreachable",
            registry=registry,
        )  # fmt: skip
