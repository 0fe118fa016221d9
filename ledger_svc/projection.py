"""From engine events to the ledger's rows: a pure function, no I/O.

`project(events, catalog)` turns a run of consecutive engine events into one `Batch`: the
rows to insert and the aggregated updates to apply, all of which the writer stores in one
transaction together with the new ingest cursor.

Invariants kept here (and tested):
- every event becomes one double-entry transaction (its seq) of transfers, each one moving
  an amount from one (user, bucket) to another: a debit and a credit entry that sum to
  zero, and the available/locked buckets move exactly as the engine moved them;
- a fee is a transfer to the fee account carried on the row of the trade's quote leg
  (`debit_fee` paid by its debtor, the buyer, from the same bucket; `credit_fee` by its
  creditor, the seller, out of what it receives), so a trade is two rows, not four;
- transfer ids are seq * TRANSFERS_PER_EVENT + the transfer's place in its event, a
  carried fee taking the places right after its row's: the same events always give the
  same ids, and the ids of one row and its fees follow those of the rows before it;
- the balance deltas are the sums of the transfers' entries in the available and locked
  buckets (kept as the transfers are made, so that a batch is walked once);
- candles and order updates are aggregated per batch, so that a batch costs one statement
  per table, whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import partial
from typing import Any

from exchange.common.v1 import common_pb2 as cpb
from tradekit.candles import INTERVALS_S, MINUTE_US, Candle, bucket_start
from tradekit.money import parse_units

SIDE_BUY = 1
TRANSFERS_PER_EVENT = 4  # at most: a trade moves base, quote and two fees
FEE_ACCOUNT = 0  # the engine's fee collector
STATUS_NEW = 1
STATUS_PARTIALLY_FILLED = 2
STATUS_TRIGGER_PENDING = 7
STATUS_TRIGGER_FAILED = 8
STATUS_CANCELLED = 4


class Bucket(IntEnum):
    AVAILABLE = 1
    LOCKED = 2
    EXTERNAL = 3


class Kind(IntEnum):
    DEPOSIT = 1
    WITHDRAW = 2
    LOCK = 3
    UNLOCK = 4
    TRADE = 5
    FEE = 6


# The same values as plain ints, for the hot path: reading an enum member costs more.
AVAILABLE, LOCKED, EXTERNAL = (int(b) for b in Bucket)
DEPOSIT, WITHDRAW, LOCK, UNLOCK, TRADE, FEE = (int(k) for k in Kind)


class GapError(RuntimeError):
    """An event's seq is not the one expected: the stream skipped or repeated events."""


@dataclass
class MarketScales:
    base: str
    quote: str
    base_decimals: int
    quote_decimals: int


@dataclass
class Catalog:
    """What the projection must know to read the engine's decimal strings: asset scales."""

    asset_decimals: dict[str, int] = field(default_factory=dict)
    markets: dict[str, MarketScales] = field(default_factory=dict)
    # Triggers that fired and whose order is not accepted yet: that acceptance updates the
    # trigger's row instead of inserting one.
    fired: set[int] = field(default_factory=set)

    def add_market(self, symbol: str, base: str, quote: str) -> None:
        self.markets[symbol] = MarketScales(
            base, quote, self.asset_decimals[base], self.asset_decimals[quote]
        )


# Row layouts (column orders): the fields of the row types `store_batch` takes (migration
# 0014), in the same order.
ORDER_COLUMNS = (
    "order_id", "user_id", "market", "client_order_id", "side", "type", "time_in_force",
    "self_trade_prevention", "post_only", "price", "quantity", "quote_quantity",
    "executed_quantity", "executed_quote_quantity", "fees_paid", "locked", "status",
    "close_reason", "created_at_us", "updated_at_us", "seq",
)  # fmt: skip
TRADE_COLUMNS = (
    "trade_id", "market", "price", "quantity", "quote_quantity", "taker_side",
    "maker_order_id", "maker_user_id", "taker_order_id", "taker_user_id", "maker_fee",
    "taker_fee", "seq", "ts_us",
)  # fmt: skip
TRANSFER_COLUMNS = (
    "transfer_id", "amount", "debit_user", "credit_user", "order_id", "trade_id", "ts_us",
    "debit_fee", "credit_fee", "credit_fee_order_id", "debit_bucket", "credit_bucket", "kind",
    "asset",
)  # fmt: skip
# The conditional fields of an order row, set by store_batch after the row exists; None in
# an update leaves the stored value.
CONDITION_COLUMNS = (
    "order_id", "trigger_price", "trigger_above", "take_profit_trigger_price",
    "take_profit_limit_price", "stop_loss_trigger_price", "stop_loss_limit_price",
    "parent_order_id", "related_order_id", "triggered_at_us", "trigger_failure",
)  # fmt: skip
ORDER_EVENT_COLUMNS = (
    "seq", "order_id", "status", "close_reason", "executed_quantity", "ts_us",
)  # fmt: skip

# trade_id, market, price, quantity, quote_quantity, taker_side, maker_order_id,
# maker_user_id, taker_order_id, taker_user_id, maker_fee, taker_fee, seq, ts_us
TradeRow = tuple[int, str, int, int, int, int, int, int, int, int, int, int, int, int]
# transfer_id, amount, debit_user, credit_user, order_id, trade_id, ts_us, debit_fee,
# credit_fee, credit_fee_order_id, debit_bucket, credit_bucket, kind, asset
TransferRow = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, str]
# Per (user, asset): the deltas of its available and locked buckets, [0, 0] when first read.
BalanceDeltas = defaultdict[tuple[int, str], list[int]]


def _balance_deltas() -> BalanceDeltas:
    return defaultdict(partial(list, (0, 0)))


# Indexes into an order row (a list, so that fills in the same batch update it in place).
_EXEC_Q, _EXEC_QQ, _FEES, _LOCKED, _STATUS, _REASON, _UPDATED = 12, 13, 14, 15, 16, 17, 19


@dataclass
class OrderDelta:
    """Changes to an order stored by an earlier batch."""

    executed_quantity: int = 0
    executed_quote_quantity: int = 0
    fees_paid: int = 0
    locked: int = 0
    status: int = 0  # 0 = unchanged unless filled (then at least PARTIALLY_FILLED)
    close_reason: int = 0
    updated_at_us: int = 0


@dataclass
class Batch:
    first_seq: int
    last_seq: int = 0
    last_ts_us: int = 0
    assets: list[tuple[str, int, int]] = field(default_factory=list)
    markets: list[tuple[cpb.Market, int]] = field(default_factory=list)  # with its event's seq
    market_status: list[tuple[str, int, int]] = field(default_factory=list)
    new_orders: dict[int, list[object]] = field(default_factory=dict)
    order_deltas: dict[int, OrderDelta] = field(default_factory=dict)
    order_events: list[tuple[int, int, int, int, int | None, int]] = field(default_factory=list)
    conditions: dict[int, list[object]] = field(default_factory=dict)  # CONDITION_COLUMNS
    trades: list[TradeRow] = field(default_factory=list)
    transfers: list[TransferRow] = field(default_factory=list)
    balances: BalanceDeltas = field(default_factory=_balance_deltas)
    # Filled in by Projector.finish: the candles of every interval.
    candles: dict[tuple[str, int, int], Candle] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.last_seq - self.first_seq + 1 if self.last_seq else 0


class Projector:
    """Projects one batch in pieces (`feed`), so a caller can yield to its event loop between
    them; `finish` then completes the batch. About one transfer is built per event, so the
    per-event work is kept to plain tuples and ints."""

    def __init__(self, catalog: Catalog, first_seq: int) -> None:
        self.catalog = catalog
        self.batch = Batch(first_seq=first_seq)
        self._next_seq = first_seq
        self._minutes: dict[tuple[str, int], Candle] = {}  # (market, minute start): candle
        self._handlers: dict[str, Callable[[int, int, Any], None]] = {
            "order_accepted": self._accepted,
            "order_closed": self._closed,
            "trade_executed": self._trade,
            "order_rested": self._rested,
            "deposited": self._deposited,
            "withdrawn": self._withdrawn,
            "asset_listed": self._asset_listed,
            "market_listed": self._market_listed,
            "market_status_changed": self._market_status_changed,
            "trigger_placed": self._trigger_placed,
            "trigger_fired": self._trigger_fired,
            "trigger_failed": self._trigger_failed,
            "trigger_cancelled": self._trigger_cancelled,
            "trigger_limit_set": self._engine_setting,
            # capital
            "network_listed": self._network_listed,
            "deposit_recorded": self._deposit_recorded,
            "withdrawal_changed": self._withdrawal_changed,
        }

    def feed(self, events: Sequence[cpb.EngineEvent]) -> None:
        """Project `events`, the next ones of the stream. Raises GapError."""
        seq, handlers = self._next_seq, self._handlers
        for ev in events:
            if ev.seq != seq:
                raise GapError(f"expected event {seq}, got {ev.seq}")
            kind = ev.WhichOneof("body")
            handler = handlers.get(kind) if kind is not None else None
            if kind is None or handler is None:
                raise ValueError(f"event {seq}: unknown body {kind!r}")
            handler(seq, ev.ts_us, getattr(ev, kind))
            seq += 1
        if events:
            self.batch.last_seq = events[-1].seq
            self.batch.last_ts_us = events[-1].ts_us
        self._next_seq = seq

    def finish(self) -> Batch:
        """The batch of everything fed, with its candles filled in."""
        batch = self.batch
        batch.candles = _all_intervals(self._minutes)
        return batch

    # -- ledger transfers -----------------------------------------------------------------

    def _external(
        self, seq: int, ts: int, kind: int, user: int, asset: str, amount: int, inbound: bool
    ) -> None:
        """A deposit (external to available) or a withdrawal (back)."""
        if not amount:
            return
        debit, credit = (EXTERNAL, AVAILABLE) if inbound else (AVAILABLE, EXTERNAL)
        self.batch.transfers.append((
            seq * TRANSFERS_PER_EVENT, amount, user, user, 0, 0, ts, 0, 0, 0, debit, credit,
            kind, asset,
        ))  # fmt: skip
        self.batch.balances[(user, asset)][0] += amount if inbound else -amount

    def _locked(
        self, seq: int, ts: int, user: int, order_id: int, asset: str, amount: int, lock: bool
    ) -> None:
        """An order's funds going from available to locked (`lock`) or back: one account."""
        if not amount:
            return
        debit, credit, kind = (AVAILABLE, LOCKED, LOCK) if lock else (LOCKED, AVAILABLE, UNLOCK)
        self.batch.transfers.append((
            seq * TRANSFERS_PER_EVENT, amount, user, user, order_id, 0, ts, 0, 0, 0, debit,
            credit, kind, asset,
        ))  # fmt: skip
        delta = self.batch.balances[(user, asset)]
        moved = amount if lock else -amount
        delta[0] -= moved
        delta[1] += moved

    def _unlock(self, seq: int, ts: int, user: int, order_id: int, asset: str, text: str) -> int:
        """An order's lock going back to available; returns the amount in units."""
        amount = self._units(asset, text)
        self._locked(seq, ts, user, order_id, asset, amount, lock=False)
        return amount

    def _units(self, asset: str, text: str) -> int:
        return parse_units(text, self.catalog.asset_decimals[asset]) if text else 0

    # -- orders ---------------------------------------------------------------------------

    def _order_change(
        self,
        order_id: int,
        ts: int,
        executed: int,
        executed_quote: int,
        fees: int,
        locked: int,
        status: int,
        reason: int,
    ) -> None:
        """Apply a change to an order: to its new row if this batch accepted it."""
        row = self.batch.new_orders.get(order_id)
        if row is not None:
            row[_EXEC_Q] += executed  # type: ignore[operator]
            row[_EXEC_QQ] += executed_quote  # type: ignore[operator]
            row[_FEES] += fees  # type: ignore[operator]
            row[_LOCKED] += locked  # type: ignore[operator]
            if status:
                row[_STATUS], row[_REASON] = status, reason
            elif executed and row[_STATUS] == STATUS_NEW:
                row[_STATUS] = STATUS_PARTIALLY_FILLED
            row[_UPDATED] = ts
            return
        delta = self.batch.order_deltas.get(order_id)
        if delta is None:
            delta = self.batch.order_deltas[order_id] = OrderDelta()
        delta.executed_quantity += executed
        delta.executed_quote_quantity += executed_quote
        delta.fees_paid += fees
        delta.locked += locked
        if status:
            delta.status, delta.close_reason = status, reason
        elif executed and delta.status == STATUS_NEW:  # a fired trigger's order filling
            delta.status = STATUS_PARTIALLY_FILLED
        delta.updated_at_us = ts

    # -- events, one method per body --------------------------------------------------------

    def _accepted(self, seq: int, ts: int, e: cpb.OrderAccepted) -> None:
        o = e.order
        order_id, user = o.order_id, o.user_id
        batch = self.batch
        if order_id in self.catalog.fired:  # a fired trigger: its row exists
            self.catalog.fired.discard(order_id)
            locked = self._units(e.locked_asset, e.locked)
            self._locked(seq, ts, user, order_id, e.locked_asset, locked, lock=True)
            row = batch.new_orders.get(order_id)
            if row is not None:
                row[_STATUS], row[_LOCKED], row[_UPDATED] = STATUS_NEW, locked, ts
            else:
                self._order_change(order_id, ts, 0, 0, 0, locked, STATUS_NEW, 0)
            batch.order_events.append((seq, order_id, STATUS_NEW, 0, 0, ts))
            return
        locked_asset = e.locked_asset
        locked = self._units(locked_asset, e.locked)
        self._locked(seq, ts, user, order_id, locked_asset, locked, lock=True)
        batch.new_orders[order_id] = self._order_row(o, locked, STATUS_NEW, ts, seq)
        batch.order_events.append((seq, order_id, STATUS_NEW, 0, 0, ts))

    def _order_row(self, o: cpb.Order, locked: int, status: int, ts: int, seq: int) -> list[object]:
        """A new order's row as it was accepted (an order or a trigger order): nothing
        executed yet."""
        scales = self.catalog.markets[o.market]
        base_dec, quote_dec = scales.base_decimals, scales.quote_decimals
        price, quantity, quote_quantity = o.price, o.quantity, o.quote_quantity
        return [
            o.order_id, o.user_id, o.market, o.client_order_id, o.side, o.type,
            o.time_in_force, o.self_trade_prevention, o.post_only,
            parse_units(price, quote_dec) if price else None,
            parse_units(quantity, base_dec) if quantity else None,
            parse_units(quote_quantity, quote_dec) if quote_quantity else None,
            0, 0, 0, locked, status, 0, ts, ts, seq,
        ]  # fmt: skip

    def _closed(self, seq: int, ts: int, c: cpb.OrderClosed) -> None:
        order_id, status, reason = c.order_id, c.status, c.reason
        unlocked = self._unlock(seq, ts, c.user_id, order_id, c.unlocked_asset, c.unlocked)
        self._order_change(order_id, ts, 0, 0, 0, -unlocked, status, reason)
        executed = parse_units(c.executed_quantity, self.catalog.markets[c.market].base_decimals)
        self.batch.order_events.append((seq, order_id, status, reason, executed, ts))

    def _rested(self, seq: int, ts: int, r: cpb.OrderRested) -> None:
        order_id = r.order_id
        unlocked = self._unlock(seq, ts, r.user_id, order_id, r.unlocked_asset, r.unlocked)
        self._order_change(order_id, ts, 0, 0, 0, -unlocked, 0, 0)
        self.batch.order_events.append((seq, order_id, STATUS_PARTIALLY_FILLED, 0, None, ts))

    def _trade(self, seq: int, ts: int, e: cpb.TradeExecuted) -> None:
        f = e.fill
        market, trade_id, taker_side = f.market, f.trade_id, f.taker_side
        scales = self.catalog.markets[market]
        base, quote, quote_dec = scales.base, scales.quote, scales.quote_decimals
        price = parse_units(f.price, quote_dec)
        qty = parse_units(f.quantity, scales.base_decimals)
        notional = parse_units(f.quote_quantity, quote_dec)
        maker_fee_text, taker_fee_text = f.maker_fee, f.taker_fee
        maker_fee = parse_units(maker_fee_text, quote_dec) if maker_fee_text else 0
        taker_fee = parse_units(taker_fee_text, quote_dec) if taker_fee_text else 0
        maker_order, maker_user = f.maker_order_id, f.maker_user_id
        taker_order, taker_user = f.taker_order_id, f.taker_user_id
        self.batch.trades.append((
            trade_id, market, price, qty, notional, taker_side, maker_order, maker_user,
            taker_order, taker_user, maker_fee, taker_fee, seq, ts,
        ))  # fmt: skip
        if taker_side == SIDE_BUY:
            buyer, buy_order, buyer_fee = taker_user, taker_order, taker_fee
            seller, sell_order, seller_fee = maker_user, maker_order, maker_fee
        else:
            buyer, buy_order, buyer_fee = maker_user, maker_order, maker_fee
            seller, sell_order, seller_fee = taker_user, taker_order, taker_fee
        # The seller's locked base goes to the buyer; the buyer's locked quote pays the
        # notional to the seller, and on that row each fee goes to the fee account: the
        # buyer's from its locked quote, the seller's out of the proceeds. Quantities and
        # notionals of fills are positive (the rows' CHECK holds the engine to it).
        tid = seq * TRANSFERS_PER_EVENT
        batch = self.batch
        batch.transfers.append((
            tid, qty, seller, buyer, sell_order, trade_id, ts, 0, 0, 0, LOCKED, AVAILABLE,
            TRADE, base,
        ))  # fmt: skip
        batch.transfers.append((
            tid + 1, notional, buyer, seller, buy_order, trade_id, ts, buyer_fee, seller_fee,
            sell_order if seller_fee else 0, LOCKED, AVAILABLE, TRADE, quote,
        ))  # fmt: skip
        balances = batch.balances
        balances[(seller, base)][1] -= qty
        balances[(buyer, base)][0] += qty
        balances[(buyer, quote)][1] -= notional + buyer_fee
        balances[(seller, quote)][0] += notional - seller_fee
        if buyer_fee or seller_fee:
            balances[(FEE_ACCOUNT, quote)][0] += buyer_fee + seller_fee
        change = self._order_change
        change(buy_order, ts, qty, notional, buyer_fee, -(notional + buyer_fee), 0, 0)
        change(sell_order, ts, qty, notional, seller_fee, -qty, 0, 0)
        # Only the minute candle here: `finish` rolls minutes up into the longer intervals.
        minute = ts - ts % MINUTE_US
        key = (market, minute)
        c = self._minutes.get(key)
        if c is None:
            self._minutes[key] = Candle.first(minute, price, qty, notional, trade_id)
        else:
            c.add(price, qty, notional, trade_id)

    def _deposited(self, seq: int, ts: int, d: cpb.Deposited) -> None:
        user, asset = d.user_id, d.asset
        self._external(seq, ts, DEPOSIT, user, asset, self._units(asset, d.amount), inbound=True)

    def _withdrawn(self, seq: int, ts: int, w: cpb.Withdrawn) -> None:
        user, asset = w.user_id, w.asset
        amount = self._units(asset, w.amount)
        self._external(seq, ts, WITHDRAW, user, asset, amount, inbound=False)

    def _network_listed(self, seq: int, ts: int, e: cpb.NetworkListed) -> None:
        """Networks are the engine's configuration; the ledger keeps none of it."""

    def _deposit_recorded(self, seq: int, ts: int, e: cpb.DepositRecorded) -> None:
        user, asset = e.deposit.user_id, e.deposit.asset
        amount = self._units(asset, e.credited)
        self._external(seq, ts, DEPOSIT, user, asset, amount, inbound=True)

    def _withdrawal_changed(self, seq: int, ts: int, e: cpb.WithdrawalChanged) -> None:
        """A request locks (order id 0), a decline unlocks; a completion is one row from
        locked to external carrying the fee to the fee account, like a trade's quote leg."""
        user, asset = e.withdrawal.user_id, e.withdrawal.asset
        self._locked(seq, ts, user, 0, asset, self._units(asset, e.locked), lock=True)
        self._locked(seq, ts, user, 0, asset, self._units(asset, e.unlocked), lock=False)
        paid = self._units(asset, e.paid)
        if not paid:
            return
        fee = self._units(asset, e.fee_paid)
        self.batch.transfers.append((
            seq * TRANSFERS_PER_EVENT, paid, user, user, 0, 0, ts, fee, 0, 0, LOCKED, EXTERNAL,
            WITHDRAW, asset,
        ))  # fmt: skip
        self.batch.balances[(user, asset)][1] -= paid + fee
        if fee:
            self.batch.balances[(FEE_ACCOUNT, asset)][0] += fee

    def _asset_listed(self, seq: int, ts: int, e: cpb.AssetListed) -> None:
        a = e.asset
        self.catalog.asset_decimals[a.symbol] = a.decimals
        self.batch.assets.append((a.symbol, a.decimals, seq))

    def _market_listed(self, seq: int, ts: int, e: cpb.MarketListed) -> None:
        m = e.market
        self.catalog.add_market(m.symbol, m.base, m.quote)
        self.batch.markets.append((m, seq))

    def _condition(self, order_id: int) -> list[object]:
        row = self.batch.conditions.get(order_id)
        if row is None:
            row = self.batch.conditions[order_id] = [order_id] + [None] * 10
        return row

    def _trigger_placed(self, seq: int, ts: int, e: cpb.TriggerPlaced) -> None:
        """A new row in status TRIGGER_PENDING: nothing is locked."""
        o = e.order
        order_id = o.order_id
        quote_dec = self.catalog.markets[o.market].quote_decimals

        def price(text: str) -> int | None:
            return parse_units(text, quote_dec) if text else None

        self.batch.new_orders[order_id] = self._order_row(o, 0, STATUS_TRIGGER_PENDING, ts, seq)
        self._condition(order_id)[1:9] = [
            price(o.trigger_price), o.trigger_above, price(o.take_profit_trigger_price),
            price(o.take_profit_limit_price), price(o.stop_loss_trigger_price),
            price(o.stop_loss_limit_price), o.parent_order_id or None,
            o.related_order_id or None,
        ]  # fmt: skip
        self.batch.order_events.append((seq, order_id, STATUS_TRIGGER_PENDING, 0, 0, ts))

    def _trigger_fired(self, seq: int, ts: int, e: cpb.TriggerFired) -> None:
        self.catalog.fired.add(e.order_id)
        self._condition(e.order_id)[9] = ts
        self._order_change(e.order_id, ts, 0, 0, 0, 0, 0, 0)

    def _trigger_failed(self, seq: int, ts: int, e: cpb.TriggerFailed) -> None:
        self.catalog.fired.discard(e.order_id)
        self._condition(e.order_id)[10] = f"{cpb.ResultCode.Name(e.code)}: {e.message}"
        self._order_change(e.order_id, ts, 0, 0, 0, 0, STATUS_TRIGGER_FAILED, 0)
        self.batch.order_events.append((seq, e.order_id, STATUS_TRIGGER_FAILED, 0, 0, ts))

    def _trigger_cancelled(self, seq: int, ts: int, e: cpb.TriggerCancelled) -> None:
        self._order_change(e.order_id, ts, 0, 0, 0, 0, STATUS_CANCELLED, e.reason)
        self.batch.order_events.append((seq, e.order_id, STATUS_CANCELLED, e.reason, 0, ts))

    def _market_status_changed(self, seq: int, ts: int, s: cpb.MarketStatusChanged) -> None:
        self.batch.market_status.append((s.market, s.status, seq))

    def _engine_setting(self, seq: int, ts: int, s: object) -> None:
        """A setting the engine alone applies (the audit log has who changed it)."""


def project(events: Sequence[cpb.EngineEvent], catalog: Catalog, expected_seq: int) -> Batch:
    """The rows for `events`, which must start at `expected_seq` and have no gap.

    `catalog` is updated with the assets and markets the events list. Raises GapError.
    """
    projector = Projector(catalog, expected_seq)
    projector.feed(events)
    return projector.finish()


def _all_intervals(minutes: dict[tuple[str, int], Candle]) -> dict[tuple[str, int, int], Candle]:
    """The candles of every interval from the 1-minute ones. Every interval is whole minutes
    (weeks too: they start on a Monday at 00:00), so each minute lies in one candle of each.
    Open and close come from the earliest and latest trade by id, whatever the clock did."""
    candles: dict[tuple[str, int, int], Candle] = {}
    for (market, minute), m in minutes.items():
        for interval in INTERVALS_S:
            start = bucket_start(minute, interval)
            key = (market, interval, start)
            c = candles.get(key)
            if c is None:
                # Built directly: dataclasses.replace costs several times as much, and a
                # batch with trades makes one per interval.
                candles[key] = Candle(
                    start, m.open, m.high, m.low, m.close, m.volume, m.quote_volume, m.trades,
                    m.first_trade_id, m.last_trade_id,
                )  # fmt: skip
                continue
            if m.first_trade_id < c.first_trade_id:
                c.open, c.first_trade_id = m.open, m.first_trade_id
            if m.last_trade_id > c.last_trade_id:
                c.close, c.last_trade_id = m.close, m.last_trade_id
            c.high = max(c.high, m.high)
            c.low = min(c.low, m.low)
            c.volume += m.volume
            c.quote_volume += m.quote_volume
            c.trades += m.trades
    return candles
