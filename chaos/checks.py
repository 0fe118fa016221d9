"""The invariants checked once a trial's faults are over and the exchange is quiet.

Every check compares as of one engine sequence number S (nothing trades while they run):
- acknowledgements against the engine's history (journal): every acknowledged order exists
  with the result it was acknowledged with (status and executed quantity if it was final,
  at least its fills if it was open), every acknowledged fill, cancel, deposit and
  withdrawal happened, and once; nothing refused happened;
- triggers against the history: each acknowledged trigger was placed once; none fired
  twice, fired and was cancelled, fired before a trade reached it, or is still
  pending although a trade since its placement reached it; one leg of a take-profit /
  stop-loss pair fires at most; every fired trigger became an order or failed; the engine
  holds exactly the pending triggers of its history (after any kill -9);
- PostgreSQL against the journal: the ingest cursor is S, every trade is stored once and
  no other, every order has the journal's status and executed quantity, every trigger has
  one row with its trigger price, `triggered_at` set exactly when it fired, and one
  TRIGGER_PENDING (and at most one TRIGGER_FAILED) entry in the order history;
- money: per asset, the balances (engine and ledger, fee account included) sum to deposits
  minus withdrawals; no balance is negative; the ledger's Reconcile finds no difference;
- books: none crossed; the WebSocket subscribers' books (on the gateway's interval frames
  and in real time, each with single and with batched trades) equal REST depth;
- streamed trades: on each subscriber connection, every trade of the history between the
  first and the last it was sent came once and in order, a batch frame's trades in turn,
  across the faults (trades.py); no batch frame came without a trade.

A finding has a kind: `lost` (acknowledged, then missing) and `duplicate` are the two the
report's headline counts; `wrong` (a different result), `refused_but_applied`, `phantom`
(applied, never sent), `money`, `book` and `stream` are the others.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg

from chaos.depth import DepthWatcher, rest_levels
from chaos.journal import TriggerHistory, Truth
from chaos.load import OPEN_STATUSES, TRIGGER_PENDING
from chaos.record import Outcome, Record, Transfer
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from tradekit.backpack import STATUS_NAMES as GATEWAY_STATUS_NAMES

# The status names acknowledgements carry, by the status number the history records.
STATUS_NAMES: dict[int, str] = {int(k): v for k, v in GATEWAY_STATUS_NAMES.items()}

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

EXAMPLES = 20  # findings of one kind kept in full


@dataclass
class Findings:
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES:
            kept.append(message)


def check_acknowledgements(record: Record, truth: Truth, users: set[int], f: Findings) -> None:
    for (user, client_id), placed in record.placements.items():
        ids = truth.by_client.get((user, client_id), [])
        if len(ids) > 1:
            f.add("duplicate", f"user {user} client id {client_id} accepted as orders {ids}")
        if placed.outcome is Outcome.REFUSED and ids:
            f.add("refused_but_applied", f"user {user} client id {client_id} -> orders {ids}")
        if placed.outcome is not Outcome.ACKED or placed.order is None:
            continue
        acked = placed.order
        if acked.status == TRIGGER_PENDING:
            t = truth.triggers.get(acked.order_id)
            if t is None or t.user_id != user or acked.order_id not in ids:
                f.add("lost", f"trigger {acked.order_id} (user {user}) acknowledged, "
                              "not in the engine's history")  # fmt: skip
            continue
        history = truth.orders.get(acked.order_id)
        if history is None or acked.order_id not in ids:
            f.add("lost", f"order {acked.order_id} (user {user}) acknowledged {acked.status}, "
                          "not in the engine's history")  # fmt: skip
            continue
        if acked.status in OPEN_STATUSES:
            if history.executed < acked.executed_quantity:
                f.add("lost", f"order {acked.order_id}: acknowledged with "
                              f"{acked.executed_quantity} executed, "
                              f"history has {history.executed}")  # fmt: skip
        elif (STATUS_NAMES.get(history.closed_status), history.closed_executed) != (
            acked.status,
            acked.executed_quantity,
        ):
            f.add("wrong", f"order {acked.order_id}: acknowledged {acked.status} "
                           f"{acked.executed_quantity}, history says "
                           f"{STATUS_NAMES.get(history.closed_status, 'open')} "
                           f"{history.closed_executed}")  # fmt: skip
        for fill in placed.fills:
            trade = truth.trades.get(fill.trade_id)
            if trade is None:
                f.add("lost", f"trade {fill.trade_id} of order {acked.order_id} acknowledged, "
                              "not in the engine's history")  # fmt: skip
            elif (Decimal(trade.price), Decimal(trade.quantity)) != (fill.price, fill.quantity) or (
                acked.order_id not in (trade.maker_order_id, trade.taker_order_id)
            ):
                f.add("wrong", f"trade {fill.trade_id}: acknowledged {fill}, history {trade}")
    for key, ids in truth.by_client.items():
        if key[0] in users and key not in record.placements:
            f.add("phantom", f"user {key[0]} client id {key[1]} -> orders {ids}, never sent")
    for cancelled in record.cancelled:
        history = truth.orders.get(cancelled.order_id)
        trigger = truth.triggers.get(cancelled.order_id)
        if history is None and trigger is not None:  # cancelled before it fired
            if trigger.cancelled != 1 or trigger.fired:
                f.add("wrong", f"trigger {cancelled.order_id} acknowledged cancelled, history: "
                               f"fired {trigger.fired}, cancelled {trigger.cancelled}")  # fmt: skip
        elif history is None:
            f.add("lost", f"cancelled order {cancelled.order_id} not in the engine's history")
        elif (history.closed_status, history.closed_executed) != (
            cpb.ORDER_STATUS_CANCELLED,
            cancelled.executed_quantity,
        ):
            f.add("wrong", f"order {cancelled.order_id} acknowledged cancelled with "
                           f"{cancelled.executed_quantity} executed, history: "
                           f"{STATUS_NAMES.get(history.closed_status, 'open')} "
                           f"{history.closed_executed}")  # fmt: skip
    for order_id, n in truth.accepted.items():
        if n > 1:
            f.add("duplicate", f"order {order_id} accepted {n} times")
    for order in truth.orders.values():
        if order.closes > 1:
            f.add("duplicate", f"order {order.order_id} closed {order.closes} times")
    if truth.trade_events != len(truth.trades):
        f.add("duplicate", f"{truth.trade_events} trade events, {len(truth.trades)} trade ids")
    if truth.out_of_order:
        f.add("wrong", f"{truth.out_of_order} engine events out of sequence")
    check_triggers(truth, f)
    _check_transfers("deposit", record.deposits, truth.deposits, users, f)
    _check_transfers("withdrawal", record.withdrawals, truth.withdrawals, users, f)


def check_triggers(truth: Truth, f: Findings) -> None:
    """Each trigger's own history, and each take-profit / stop-loss pair's."""
    if truth.unknown_triggers:
        f.add("wrong", f"{truth.unknown_triggers} trigger events of no placed trigger")
    legs_fired: Counter[int] = Counter()
    for t in truth.triggers.values():
        name = f"trigger {t.order_id} ({'>=' if t.above else '<='} {t.price} in {t.market})"
        if t.placements > 1:
            f.add("duplicate", f"{name} placed {t.placements} times")
        if t.fired > 1 or t.cancelled > 1 or (t.fired and t.cancelled):
            f.add("duplicate", f"{name} fired {t.fired} times, cancelled {t.cancelled} times")
        if t.failed and (t.failed > 1 or not t.fired):
            f.add("wrong", f"{name} failed {t.failed} times, fired {t.fired} times")
        if t.fired and not t.failed and not truth.accepted[t.order_id]:
            f.add("lost", f"{name} fired, neither became an order nor failed")
        # What reached it is a trade since its placement, not the last price it fired at:
        # triggers fired before it in the same cascade may have moved the price away.
        if t.fired and not t.reached(t.high if t.above else t.low):
            f.add("wrong", f"{name} fired at last price {t.fired_at}, no trade since its "
                           f"placement reached it (high {t.high}, low {t.low})")  # fmt: skip
        if t.pending and t.reached(t.high if t.above else t.low):
            f.add("lost", f"{name} still pending, though trades since it was placed reached "
                          f"{t.high if t.above else t.low}")  # fmt: skip
        if t.parent and t.fired:
            legs_fired[t.parent] += 1
    for parent, n in legs_fired.items():
        if n > 1:
            f.add("duplicate", f"{n} take-profit / stop-loss legs of order {parent} fired")


def _check_transfers(
    what: str,
    sent: Iterable[Transfer],
    history: Counter[tuple[int, str, Decimal]],
    users: set[int],
    f: Findings,
) -> None:
    """Transfers carry no id: per (user, asset, amount), the history must hold at least the
    acknowledged ones and at most those plus the ones of unknown fate."""
    acked: Counter[tuple[int, str, Decimal]] = Counter()
    unknown: Counter[tuple[int, str, Decimal]] = Counter()
    for t in sent:
        key = (t.user_id, t.asset, t.amount)
        if t.outcome is Outcome.ACKED:
            acked[key] += 1
        elif t.outcome is Outcome.UNKNOWN:
            unknown[key] += 1
    ours = {key: n for key, n in history.items() if key[0] in users}
    for key in acked.keys() | ours.keys():
        found = ours.get(key, 0)
        if found < acked[key]:
            f.add("lost", f"{what} {key}: {acked[key]} acknowledged, {found} in the history")
        elif found > acked[key] + unknown[key]:
            f.add("duplicate", f"{what} {key}: {found} in the history, {acked[key]} "
                               f"acknowledged + {unknown[key]} of unknown fate")  # fmt: skip


async def check_postgres(database_url: str, truth: Truth, f: Findings) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        cursor = await connection.fetchval("SELECT last_seq FROM ingest_cursor")
        trade_rows = await connection.fetch("SELECT trade_id FROM trades")
        order_rows = await connection.fetch(
            "SELECT order_id, status, executed_quantity, trigger_price, triggered_at_us FROM orders"
        )
        trigger_entries = await connection.fetch(
            "SELECT order_id, status, count(*) AS n FROM order_events "
            "WHERE status IN ($1, $2) GROUP BY order_id, status",
            cpb.ORDER_STATUS_TRIGGER_PENDING,
            cpb.ORDER_STATUS_TRIGGER_FAILED,
        )
        negative = await connection.fetch(
            "SELECT user_id, asset, available, locked FROM balances "
            "WHERE available < 0 OR locked < 0"
        )
        sums = await connection.fetch(
            "SELECT asset, sum(available + locked) AS total FROM balances GROUP BY asset"
        )
    finally:
        await connection.close()
    if cursor != truth.last_seq:
        f.add("lost", f"ledger ingest cursor {cursor}, engine at {truth.last_seq}")
    stored = Counter(row["trade_id"] for row in trade_rows)
    for trade_id, n in stored.items():
        if n > 1:
            f.add("duplicate", f"trade {trade_id} stored {n} times in PostgreSQL")
        if trade_id not in truth.trades:
            f.add("duplicate", f"trade {trade_id} in PostgreSQL, not in the engine's history")
    for trade_id in truth.trades.keys() - stored.keys():
        f.add("lost", f"trade {trade_id} of the engine's history missing from PostgreSQL")
    rows = {row["order_id"]: row for row in order_rows}
    entries = {(r["order_id"], r["status"]): r["n"] for r in trigger_entries}
    check_trigger_rows(rows, entries, truth, f)
    for order in truth.orders.values():
        row = rows.pop(order.order_id, None)
        if row is None:
            f.add("lost", f"order {order.order_id} missing from PostgreSQL")
            continue
        executed = truth.units(truth.base_of[order.market], order.executed)
        if (row["status"], row["executed_quantity"]) != (order.status, executed):
            f.add("wrong", f"order {order.order_id}: PostgreSQL has status {row['status']} "
                           f"executed {row['executed_quantity']}, the engine {order.status} "
                           f"{executed}")  # fmt: skip
    for order_id in rows:
        f.add("duplicate", f"order {order_id} in PostgreSQL, not in the engine's history")
    for row in negative:
        f.add("money", f"negative balance in PostgreSQL: {dict(row)}")
    _check_sums("PostgreSQL", {row["asset"]: int(row["total"]) for row in sums}, truth, f)
    return {"trades": len(trade_rows), "orders": len(order_rows)}


def check_trigger_rows(
    rows: dict[int, Any], entries: dict[tuple[int, int], int], truth: Truth, f: Findings
) -> None:
    """Each trigger's orders row and its TRIGGER_PENDING / TRIGGER_FAILED history entries.
    The rows of triggers that never became orders are taken out of `rows`; the others are
    checked as orders afterwards."""
    for t in truth.triggers.values():
        row = rows.get(t.order_id) if t.order_id in truth.orders else rows.pop(t.order_id, None)
        if row is None:
            f.add("lost", f"trigger {t.order_id} missing from PostgreSQL")
            continue
        price = truth.units(truth.quote_of[t.market], t.price)
        if row["trigger_price"] != price or (row["triggered_at_us"] is not None) != bool(t.fired):
            f.add("wrong", f"trigger {t.order_id}: PostgreSQL has trigger price "
                           f"{row['trigger_price']}, triggered at {row['triggered_at_us']}; "
                           f"the engine {price}, fired {t.fired} times")  # fmt: skip
        if t.order_id not in truth.orders:
            status = _trigger_status(t)
            if row["status"] != status:
                f.add("wrong", f"trigger {t.order_id}: PostgreSQL has status {row['status']}, "
                               f"the engine {status}")  # fmt: skip
        for status, expected in (
            (cpb.ORDER_STATUS_TRIGGER_PENDING, 1),
            (cpb.ORDER_STATUS_TRIGGER_FAILED, min(t.failed, 1)),
        ):
            n = entries.get((t.order_id, status), 0)
            if n != expected:
                kind = "duplicate" if n > expected else "lost"
                f.add(kind, f"trigger {t.order_id}: {n} history entries of status {status}, "
                            f"the engine {expected}")  # fmt: skip


def _trigger_status(t: TriggerHistory) -> int:
    if t.failed:
        return cpb.ORDER_STATUS_TRIGGER_FAILED
    if t.cancelled:
        return cpb.ORDER_STATUS_CANCELLED
    return cpb.ORDER_STATUS_TRIGGER_PENDING


def _check_sums(where: str, totals: dict[str, int], truth: Truth, f: Findings) -> None:
    for asset in totals.keys() | truth.net.keys():
        if totals.get(asset, 0) != truth.net[asset]:
            f.add("money", f"{where}: {asset} balances sum to {totals.get(asset, 0)} units, "
                           f"deposits - withdrawals = {truth.net[asset]}")  # fmt: skip


async def check_engine(
    engine: EngineServiceAsyncStub, ledger: LedgerServiceAsyncStub, truth: Truth, f: Findings
) -> None:
    exported = await engine.ExportBalances(epb.ExportBalancesRequest(), timeout=60)
    if exported.seq != truth.last_seq:
        f.add("wrong", f"the engine moved on during the checks: {exported.seq}")
    totals: Counter[str] = Counter()
    for b in exported.balances:
        available, locked = truth.units(b.asset, b.available), truth.units(b.asset, b.locked)
        if available < 0 or locked < 0:
            f.add("money", f"negative balance in the engine: {b}")
        totals[b.asset] += available + locked
    _check_sums("engine", dict(totals), truth, f)
    reconciled = await ledger.Reconcile(lpb.ReconcileRequest(), timeout=120)
    for difference in reconciled.differences:
        f.add("money", f"reconcile: {difference}")
    markets = await engine.ListMarkets(epb.ListMarketsRequest(), timeout=10)
    for market in markets.markets:
        held = await engine.GetOpenOrders(
            epb.GetOpenOrdersRequest(market=market.symbol, all_users=True), timeout=30
        )
        check_pending_triggers(market.symbol, held.orders, truth, f)
        depth = await engine.GetDepth(epb.GetDepthRequest(market=market.symbol), timeout=10)
        if (
            depth.bids
            and depth.asks
            and Decimal(depth.bids[0].price) >= Decimal(depth.asks[0].price)
        ):
            f.add("book", f"{market.symbol} crossed: bid {depth.bids[0]} ask {depth.asks[0]}")


def check_pending_triggers(
    market: str, held: Iterable[cpb.Order], truth: Truth, f: Findings
) -> None:
    """The engine's pending triggers of `market` are exactly those of its history: none
    forgotten or brought back by a recovery."""
    engine = {o.order_id for o in held if o.status == cpb.ORDER_STATUS_TRIGGER_PENDING}
    history = {t.order_id for t in truth.triggers.values() if t.market == market and t.pending}
    for order_id in sorted(history - engine):
        f.add("lost", f"trigger {order_id} pending in the history, not in the engine")
    for order_id in sorted(engine - history):
        f.add("duplicate", f"trigger {order_id} pending in the engine, not in the history")


def check_streamed_trades(name: str, watcher: DepthWatcher, truth: Truth, f: Findings) -> None:
    """On each of the subscriber's connections, every trade between the first and the last
    it was sent came once and in order (chaos/trades.py)."""
    for log in watcher.trade_logs:
        log.judge(name, truth, f)


async def check_streamed_books(watcher: DepthWatcher, f: Findings, timeout: float = 60) -> None:  # noqa: ASYNC109
    """The client's books must come to equal REST depth (nothing trades meanwhile)."""
    for market in watcher.markets:
        latest: Any = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    depth = await watcher.depth(market)
                    book = watcher.books[market]
                    if depth is not None and book.last >= 0:
                        latest = (book.last, depth["lastUpdateId"])
                        if book.levels() == rest_levels(depth):
                            break
                    await asyncio.sleep(0.2)
        except TimeoutError:
            silent = time.monotonic() - watcher.last_frame
            f.add("stream", f"{market}: the WebSocket book never equalled REST depth (book at "
                            f"seq {latest[0] if latest else None}, REST at "
                            f"{latest[1] if latest else None}; connection {watcher.connections}, "
                            f"no depth frame for {silent:.0f}s)")  # fmt: skip
