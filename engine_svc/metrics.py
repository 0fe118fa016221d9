"""The engine's Prometheus metrics.

What changes at every command is read when Prometheus scrapes (`EngineState`, a collector
over the sequencer and the engine): plain counters the sequencer keeps per batch (commands
by kind and result) and the engine per trade (trades and volume per market), so the hot
path makes no Prometheus call. Batch sizes, journal fsyncs and snapshots are observed as
they happen, once per batch, fsync or snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine_svc.core.capital_messages import (
    AddNetwork,
    DecideWithdrawal,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalStatus,
)
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    CancelAllOrders,
    CancelOrder,
    Command,
    Deposit,
    PlaceConditional,
    PlaceOrder,
    SetMarketStatus,
    SetTriggerLimit,
    Withdraw,
)
from engine_svc.core.engine import Engine
from engine_svc.core.types import MarketStatus
from engine_svc.sequencer import Sequencer
from servicekit.clock import now_us

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)

# The `command` label: the RPC's name in snake case.
COMMAND_NAMES: dict[type[Command], str] = {
    PlaceOrder: "place_order",
    PlaceConditional: "place_conditional",
    CancelOrder: "cancel_order",
    CancelAllOrders: "cancel_all_orders",
    Deposit: "deposit",
    Withdraw: "withdraw",
    AddAsset: "add_asset",
    AddMarket: "add_market",
    SetMarketStatus: "set_market_status",
    SetTriggerLimit: "set_trigger_limit",
    AddNetwork: "add_network",
    ReportDeposit: "report_deposit",
    RequestWithdrawal: "request_withdrawal",
    DecideWithdrawal: "decide_withdrawal",
}


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
        self.batch_commands = Histogram(
            "engine_sequencer_batch_commands",
            "Commands per sequencer batch (one journal write each)",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )

    def watch(self, engine: Engine, sequencer: Sequencer) -> None:
        self.registry.register(EngineState(engine, sequencer))


# Open withdrawals by the `stage` label: waiting for an operator, or for custody to send.
WITHDRAWAL_STAGES = {
    WithdrawalStatus.PENDING_APPROVAL: "pending_approval",
    WithdrawalStatus.APPROVED: "approved",
}


class EngineState(Collector):
    def __init__(
        self, engine: Engine, sequencer: Sequencer, clock: Callable[[], int] = now_us
    ) -> None:
        self.engine = engine
        self.sequencer = sequencer
        self.clock = clock  # µs since the epoch: how long open withdrawals have waited

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
        yield _commands(sequencer)
        orders = GaugeMetricFamily(
            "engine_open_orders", "Orders resting in the book", labels=["market"]
        )
        halted = GaugeMetricFamily(
            "engine_market_halted", "1 when a market refuses new orders", labels=["market"]
        )
        resting = dict.fromkeys(engine.markets, 0)
        for order in engine.orders.values():
            resting[order.market] += 1
        trades = CounterMetricFamily(
            "engine_market_trades",
            "Trades per market, since the engine started (journal replay included)",
            labels=["market"],
        )
        volume = CounterMetricFamily(
            "engine_market_volume",
            "Quantity traded per market, in whole units of the base asset, since the engine "
            "started (journal replay included)",
            labels=["market"],
        )
        notional = CounterMetricFamily(
            "engine_market_notional",
            "Value traded per market, in whole units of the quote asset, since the engine "
            "started (journal replay included)",
            labels=["market"],
        )
        for symbol, market in engine.markets.items():
            orders.add_metric([symbol], resting[symbol])
            halted.add_metric([symbol], 1 if market.status == MarketStatus.HALTED else 0)
            trades.add_metric([symbol], market.trades)
            # Prometheus values are floats: fine for a metric, never for money.
            volume.add_metric([symbol], market.traded_qty / market.base_scale)
            notional.add_metric([symbol], market.traded_quote / 10**market.quote.decimals)
        yield orders
        yield halted
        yield trades
        yield volume
        yield notional
        yield from _withdrawals(engine, self.clock())


def _withdrawals(engine: Engine, now: int) -> Iterator[Metric]:
    """How many withdrawals are open per stage, and how long the oldest has waited since it
    was requested (0 when none): an operator's or custody's backlog."""
    count = dict.fromkeys(WITHDRAWAL_STAGES.values(), 0)
    oldest: dict[str, int] = {}
    for w in engine.capital.withdrawals.values():
        stage = WITHDRAWAL_STAGES.get(w.status)
        if stage is not None:
            count[stage] += 1
            oldest[stage] = min(oldest.get(stage, w.created), w.created)
    opened = GaugeMetricFamily(
        "engine_withdrawals_open",
        "Withdrawals requested and not yet confirmed or declined, by stage",
        labels=["stage"],
    )
    waited = GaugeMetricFamily(
        "engine_withdrawal_oldest_open_seconds",
        "Seconds since the oldest open withdrawal of the stage was requested (0 when none)",
        labels=["stage"],
    )
    for stage, n in count.items():
        opened.add_metric([stage], n)
        waited.add_metric([stage], max(now - oldest[stage], 0) / 1e6 if stage in oldest else 0)
    yield opened
    yield waited


def _commands(sequencer: Sequencer) -> CounterMetricFamily:
    """`engine_commands_total{command, result}`: result is `ok` or the lower-case code."""
    family = CounterMetricFamily(
        "engine_commands",
        "Commands answered, by command and result (ok or the rejection's code)",
        labels=["command", "result"],
    )
    refused: dict[type[Command], int] = {}
    for (kind, code), count in sequencer.refused.items():
        family.add_metric([COMMAND_NAMES[kind], code.name.lower()], count)
        refused[kind] = refused.get(kind, 0) + count
    for kind, count in sequencer.commands.items():
        family.add_metric([COMMAND_NAMES[kind], "ok"], count - refused.get(kind, 0))
    return family
