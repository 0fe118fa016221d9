"""From engine events to the ledger's rows: a pure function, no I/O.

`project(events, catalog)` turns a run of consecutive engine events into one `Batch`: the
rows to insert and the aggregated updates to apply, all of which the writer stores in one
transaction together with the new ingest cursor.

Invariants kept here (and tested):
- every event becomes one double-entry transaction (its seq): per asset, its ledger entries
  sum to zero, and the available/locked buckets move exactly as the engine moved them;
- the balance deltas are the sums of the entries of the available and locked buckets;
- candles and order updates are aggregated per batch, so that a batch costs one statement
  per table, whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from engine_svc.core.money import parse_units
from exchange.common.v1 import common_pb2 as cpb

SIDE_BUY = 1
FEE_ACCOUNT = 0  # the engine's fee collector
WEEK_OFFSET_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday: weeks start on Mondays
INTERVALS_S = (60, 300, 900, 1800, 3600, 14_400, 86_400, 604_800)
STATUS_NEW = 1
STATUS_PARTIALLY_FILLED = 2


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

    def add_market(self, symbol: str, base: str, quote: str) -> None:
        self.markets[symbol] = MarketScales(
            base, quote, self.asset_decimals[base], self.asset_decimals[quote]
        )


def bucket_start(ts_us: int, interval_s: int) -> int:
    """Start of the candle containing `ts_us`; weeks start on Monday 00:00 UTC."""
    width = interval_s * 1_000_000
    offset = WEEK_OFFSET_US if interval_s == 604_800 else 0
    return (ts_us - offset) // width * width + offset


# Row layouts (column orders) shared with the writer.
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
ENTRY_COLUMNS = (
    "seq", "user_id", "asset", "bucket", "kind", "amount", "order_id", "trade_id", "ts_us",
)  # fmt: skip
ORDER_EVENT_COLUMNS = (
    "seq", "order_id", "status", "close_reason", "executed_quantity", "ts_us",
)  # fmt: skip

# trade_id, market, price, quantity, quote_quantity, taker_side, maker_order_id,
# maker_user_id, taker_order_id, taker_user_id, maker_fee, taker_fee, seq, ts_us
TradeRow = tuple[int, str, int, int, int, int, int, int, int, int, int, int, int, int]

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
class Candle:
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    first_trade_id: int
    last_trade_id: int


@dataclass
class Batch:
    first_seq: int
    last_seq: int = 0
    last_ts_us: int = 0
    assets: list[tuple[str, int, int]] = field(default_factory=list)
    markets: list[cpb.Market] = field(default_factory=list)
    market_status: list[tuple[str, int, int]] = field(default_factory=list)
    new_orders: dict[int, list[object]] = field(default_factory=dict)
    order_deltas: dict[int, OrderDelta] = field(default_factory=dict)
    order_events: list[tuple[int, int, int, int, int | None, int]] = field(default_factory=list)
    trades: list[TradeRow] = field(default_factory=list)
    entries: list[tuple[int, int, str, int, int, int, int, int, int]] = field(default_factory=list)
    balances: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    candles: dict[tuple[str, int, int], Candle] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.last_seq - self.first_seq + 1 if self.last_seq else 0


class _Projector:
    def __init__(self, catalog: Catalog, first_seq: int) -> None:
        self.catalog = catalog
        self.batch = Batch(first_seq=first_seq)

    # -- ledger entries -------------------------------------------------------------------

    def move(
        self,
        seq: int,
        ts: int,
        kind: Kind,
        asset: str,
        amount: int,
        debit: tuple[int, Bucket],
        credit: tuple[int, Bucket],
        order_id: int = 0,
        trade_id: int = 0,
    ) -> None:
        """Move `amount` of `asset` from one (user, bucket) to another: two entries."""
        if amount == 0:
            return
        entries = self.batch.entries
        entries.append((seq, debit[0], asset, debit[1], kind, -amount, order_id, trade_id, ts))
        entries.append((seq, credit[0], asset, credit[1], kind, amount, order_id, trade_id, ts))
        self._balance(debit[0], asset, debit[1], -amount)
        self._balance(credit[0], asset, credit[1], amount)

    def _balance(self, user: int, asset: str, bucket: Bucket, amount: int) -> None:
        if bucket is Bucket.EXTERNAL:
            return
        key = (user, asset)
        delta = self.batch.balances.get(key)
        if delta is None:
            delta = self.batch.balances[key] = [0, 0]
        delta[bucket - 1] += amount

    # -- orders ---------------------------------------------------------------------------

    def order_change(
        self,
        order_id: int,
        ts: int,
        *,
        executed: int = 0,
        executed_quote: int = 0,
        fees: int = 0,
        locked: int = 0,
        status: int = 0,
        reason: int = 0,
    ) -> None:
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
        delta.updated_at_us = ts

    # -- events ---------------------------------------------------------------------------

    def event(self, ev: cpb.EngineEvent) -> None:
        seq, ts = ev.seq, ev.ts_us
        kind = ev.WhichOneof("body")
        if kind == "trade_executed":
            self.trade(seq, ts, ev.trade_executed.fill)
        elif kind == "order_accepted":
            self.accepted(seq, ts, ev.order_accepted)
        elif kind == "order_closed":
            c = ev.order_closed
            unlocked = self.unlock(seq, ts, c.user_id, c.order_id, c.unlocked_asset, c.unlocked)
            self.order_change(c.order_id, ts, locked=-unlocked, status=c.status, reason=c.reason)
            scales = self.catalog.markets[c.market]
            executed = parse_units(c.executed_quantity, scales.base_decimals)
            self.batch.order_events.append((seq, c.order_id, c.status, c.reason, executed, ts))
        elif kind == "order_rested":
            r = ev.order_rested
            unlocked = self.unlock(seq, ts, r.user_id, r.order_id, r.unlocked_asset, r.unlocked)
            self.order_change(r.order_id, ts, locked=-unlocked)
            self.batch.order_events.append((seq, r.order_id, STATUS_PARTIALLY_FILLED, 0, None, ts))
        elif kind == "deposited":
            d = ev.deposited
            self.move(
                seq, ts, Kind.DEPOSIT, d.asset, self.units(d.asset, d.amount),
                (d.user_id, Bucket.EXTERNAL), (d.user_id, Bucket.AVAILABLE),
            )  # fmt: skip
        elif kind == "withdrawn":
            w = ev.withdrawn
            self.move(
                seq, ts, Kind.WITHDRAW, w.asset, self.units(w.asset, w.amount),
                (w.user_id, Bucket.AVAILABLE), (w.user_id, Bucket.EXTERNAL),
            )  # fmt: skip
        elif kind == "asset_listed":
            a = ev.asset_listed.asset
            self.catalog.asset_decimals[a.symbol] = a.decimals
            self.batch.assets.append((a.symbol, a.decimals, seq))
        elif kind == "market_listed":
            m = ev.market_listed.market
            self.catalog.add_market(m.symbol, m.base, m.quote)
            self.batch.markets.append(m)
        elif kind == "market_status_changed":
            s = ev.market_status_changed
            self.batch.market_status.append((s.market, s.status, seq))
        else:
            raise ValueError(f"event {seq}: unknown body {kind!r}")

    def unlock(self, seq: int, ts: int, user: int, order_id: int, asset: str, text: str) -> int:
        """An order's lock going back to available; returns the amount in units."""
        amount = self.units(asset, text)
        self.move(
            seq, ts, Kind.UNLOCK, asset, amount,
            (user, Bucket.LOCKED), (user, Bucket.AVAILABLE), order_id,
        )  # fmt: skip
        return amount

    def units(self, asset: str, text: str) -> int:
        return parse_units(text, self.catalog.asset_decimals[asset]) if text else 0

    def accepted(self, seq: int, ts: int, e: cpb.OrderAccepted) -> None:
        o = e.order
        scales = self.catalog.markets[o.market]
        base_dec, quote_dec = scales.base_decimals, scales.quote_decimals
        locked = self.units(e.locked_asset, e.locked)
        self.move(
            seq, ts, Kind.LOCK, e.locked_asset, locked,
            (o.user_id, Bucket.AVAILABLE), (o.user_id, Bucket.LOCKED), o.order_id,
        )  # fmt: skip
        self.batch.new_orders[o.order_id] = [
            o.order_id, o.user_id, o.market, o.client_order_id, o.side, o.type,
            o.time_in_force, o.self_trade_prevention, o.post_only,
            parse_units(o.price, quote_dec) if o.price else None,
            parse_units(o.quantity, base_dec) if o.quantity else None,
            parse_units(o.quote_quantity, quote_dec) if o.quote_quantity else None,
            0, 0, 0, locked, STATUS_NEW, 0, ts, ts, seq,
        ]  # fmt: skip
        self.batch.order_events.append((seq, o.order_id, STATUS_NEW, 0, 0, ts))

    def trade(self, seq: int, ts: int, f: cpb.Fill) -> None:
        scales = self.catalog.markets[f.market]
        base, quote = scales.base, scales.quote
        price = parse_units(f.price, scales.quote_decimals)
        qty = parse_units(f.quantity, scales.base_decimals)
        notional = parse_units(f.quote_quantity, scales.quote_decimals)
        maker_fee = parse_units(f.maker_fee, scales.quote_decimals) if f.maker_fee else 0
        taker_fee = parse_units(f.taker_fee, scales.quote_decimals) if f.taker_fee else 0
        trade_id = f.trade_id
        self.batch.trades.append((
            trade_id, f.market, price, qty, notional, f.taker_side, f.maker_order_id,
            f.maker_user_id, f.taker_order_id, f.taker_user_id, maker_fee, taker_fee, seq, ts,
        ))  # fmt: skip
        if f.taker_side == SIDE_BUY:
            buyer, buy_order, buyer_fee = f.taker_user_id, f.taker_order_id, taker_fee
            seller, sell_order, seller_fee = f.maker_user_id, f.maker_order_id, maker_fee
        else:
            buyer, buy_order, buyer_fee = f.maker_user_id, f.maker_order_id, maker_fee
            seller, sell_order, seller_fee = f.taker_user_id, f.taker_order_id, taker_fee
        # The seller's locked base goes to the buyer; the buyer's locked quote pays the
        # notional to the seller; each fee goes to the fee account (the buyer's from its
        # locked quote, the seller's out of the proceeds).
        move, locked, available = self.move, Bucket.LOCKED, Bucket.AVAILABLE
        move(seq, ts, Kind.TRADE, base, qty,
             (seller, locked), (buyer, available), sell_order, trade_id)  # fmt: skip
        move(seq, ts, Kind.TRADE, quote, notional,
             (buyer, locked), (seller, available), buy_order, trade_id)  # fmt: skip
        move(seq, ts, Kind.FEE, quote, buyer_fee,
             (buyer, locked), (FEE_ACCOUNT, available), buy_order, trade_id)  # fmt: skip
        move(seq, ts, Kind.FEE, quote, seller_fee,
             (seller, available), (FEE_ACCOUNT, available), sell_order, trade_id)  # fmt: skip
        self.order_change(
            buy_order, ts, executed=qty, executed_quote=notional, fees=buyer_fee,
            locked=-(notional + buyer_fee),
        )  # fmt: skip
        self.order_change(
            sell_order, ts, executed=qty, executed_quote=notional, fees=seller_fee, locked=-qty
        )
        candles = self.batch.candles
        for interval in INTERVALS_S:
            key = (f.market, interval, bucket_start(ts, interval))
            c = candles.get(key)
            if c is None:
                candles[key] = Candle(
                    price, price, price, price, qty, notional, 1, trade_id, trade_id
                )
            else:
                if price > c.high:
                    c.high = price
                elif price < c.low:
                    c.low = price
                c.close = price
                c.volume += qty
                c.quote_volume += notional
                c.trades += 1
                c.last_trade_id = trade_id


def project(events: list[cpb.EngineEvent], catalog: Catalog, expected_seq: int) -> Batch:
    """The rows for `events`, which must start at `expected_seq` and have no gap.

    `catalog` is updated with the assets and markets the events list. Raises GapError.
    """
    projector = Projector(catalog, expected_seq)
    projector.feed(events)
    return projector.batch


class Projector(_Projector):
    """Projects a batch in pieces (`feed`), so a caller can yield to its event loop between
    them. `batch` holds the rows of everything fed so far."""

    def feed(self, events: list[cpb.EngineEvent]) -> None:
        batch = self.batch
        seq = batch.last_seq + 1 if batch.last_seq else batch.first_seq
        for ev in events:
            if ev.seq != seq:
                raise GapError(f"expected event {seq}, got {ev.seq}")
            self.event(ev)
            seq += 1
        if events:
            batch.last_seq = events[-1].seq
            batch.last_ts_us = events[-1].ts_us
