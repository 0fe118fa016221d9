"""The publisher's copy of the engine's public state, rebuilt from its events.

`Mirror.apply(events)` takes one batch of engine events and returns what it changed, as
messages per Redis channel: per market (`md.<MARKET>`) one depth diff, the trades, the
ticker, the open candles and the best bid/ask; per user (`user.<ID>`) order and balance
updates. It is pure (no I/O), so it is tested against the engine directly.

The book is kept as price levels. An order's events say enough to keep them exact:
- a GTC limit order goes on its level when accepted (for the span of its own command it
  may take liquidity first: its fills take the quantity off again, so after the command
  the level holds exactly what rests);
- a fill takes its quantity off the maker's level (makers rest at the fill price);
- a close takes the order's remaining quantity off its level, unless it was an order that
  never rested (a market, IOC or FOK order, always closed in its own command).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from sortedcontainers import SortedDict

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from stream_svc.candles import MarketCandles
from stream_svc.redis_keys import market_channel, user_channel
from tradekit.candles import INTERVALS_S, Candle
from tradekit.money import format_units, parse_units

FEE_ACCOUNT = 0  # the engine's fee collector: not a user, gets no updates
_TRIGGER_EVENTS = ("trigger_placed", "trigger_fired", "trigger_failed", "trigger_cancelled")
BUY, SELL = cpb.SIDE_BUY, cpb.SIDE_SELL


@dataclass(frozen=True)
class Scales:
    base: str
    quote: str
    base_decimals: int
    quote_decimals: int

    def price(self, units: int) -> str:
        return format_units(units, self.quote_decimals)

    def qty(self, units: int) -> str:
        return format_units(units, self.base_decimals)


@dataclass
class _Taker:
    """The order whose command is being applied: the last one accepted."""

    order_id: int
    side: int
    price: int
    rests: bool


@dataclass
class MarketState:
    scales: Scales
    applied: int  # events up to here are in the book (the depth snapshot's seq at the start)
    last_update_id: int  # `u` of the last diff: the next one starts after it
    levels: dict[int, SortedDict] = field(
        default_factory=lambda: {BUY: SortedDict(), SELL: SortedDict()}
    )
    candles: MarketCandles = field(default_factory=lambda: MarketCandles({}, []))
    candles_from: int = 0  # trades up to this seq are already in `candles`
    touched: set[tuple[int, int]] = field(default_factory=set)
    traded: bool = False
    best: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)

    def move(self, side: int, price: int, qty: int) -> None:
        side_levels = self.levels[side]
        left = side_levels.get(price, 0) + qty
        if left:
            side_levels[price] = left
        else:
            side_levels.pop(price, None)
        self.touched.add((side, price))

    def top(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        bids, asks = self.levels[BUY], self.levels[SELL]
        return (
            bids.peekitem(-1) if bids else None,
            asks.peekitem(0) if asks else None,
        )


@dataclass
class _OpenOrder:
    order: cpb.Order
    filled: int = 0
    filled_quote: int = 0


Items = RepeatedCompositeFieldContainer[spb.MarketData]
NewItem = Callable[[], spb.MarketData]


class Output:
    """What one batch produced, per channel, in order: `channels[c]` is the items of
    `envelopes[c]`, the channel's message. Items are made inside it (`item`): a message of
    its own would cost an allocation of its own, its own serialization, and a copy to
    join the envelope."""

    def __init__(self) -> None:
        self.envelopes: dict[str, spb.Envelope] = {}
        self.channels: dict[str, Items] = {}

    def item(self, channel: str) -> spb.MarketData:
        """A new, empty item at the end of `channel`'s."""
        items = self.channels.get(channel)
        if items is None:
            items = self.channels[channel] = self.envelopes.setdefault(
                channel, spb.Envelope()
            ).items
        return items.add()

    def add(self, channel: str, item: spb.MarketData) -> None:
        """`item`, made apart, copied to the end of `channel`'s."""
        self.item(channel).CopyFrom(item)


class Mirror:
    def __init__(
        self,
        assets: dict[str, int],
        markets: dict[str, MarketState],
        balances: dict[tuple[int, str], list[int]],
        seq: int,
    ) -> None:
        """`assets`: decimals per asset; `balances`: (user, asset) -> [available, locked],
        as of `seq`, the last event already reflected in them."""
        self.assets = assets
        self.markets = markets
        self.balances = balances
        self.seq = seq
        self.open_orders: dict[int, _OpenOrder] = {}
        self.pending_triggers: dict[int, cpb.Order] = {}  # as placed, for their later updates
        self._taker: _Taker | None = None
        self._touched_balances: set[tuple[int, str]] = set()
        self._deltas: dict[tuple[int, str], list[spb.BalanceDelta]] = {}  # capital's, unsent

    # ---- batches ----

    def apply(self, events: list[cpb.EngineEvent]) -> Output:
        out = Output()
        if not events:
            return out
        for ev in events:
            if ev.seq <= self.seq:
                continue  # already reflected (a resubscription overlapping the start)
            self._event(ev, out)
            self.seq = ev.seq
        last = events[-1]
        seq, ts = last.seq, last.ts_us
        for symbol, m in self.markets.items():
            self._flush_market(symbol, m, seq, ts, out)
        for user, asset in sorted(self._touched_balances):
            available, locked = self.balances[(user, asset)]
            decimals = self.assets[asset]
            b = out.item(user_channel(user)).balance_update
            b.user_id, b.asset, b.ts_us, b.seq = user, asset, ts, seq
            b.available = format_units(available, decimals)
            b.locked = format_units(locked, decimals)
            deltas = self._deltas.pop((user, asset), None)
            if deltas is not None:
                b.deltas.extend(deltas)
        self._touched_balances.clear()
        return out

    def ticker(
        self, symbol: str, seq: int, now_us: int, new_item: NewItem = spb.MarketData
    ) -> spb.MarketData | None:
        """The market's 24h ticker now, None if it had no trade (`new_item` makes the item)."""
        m = self.markets[symbol]
        bar = m.candles.ticker(now_us)
        if bar is None:
            return None
        s = m.scales
        item = new_item()
        t = item.ticker
        t.market, t.trades, t.ts_us, t.seq = symbol, bar.trades, now_us, seq
        t.open, t.high, t.low = s.price(bar.open), s.price(bar.high), s.price(bar.low)
        t.last, t.volume = s.price(bar.close), s.qty(bar.volume)
        t.quote_volume = s.price(bar.quote_volume)
        return item

    def klines(self, symbol: str, seq: int, ts_us: int) -> list[spb.MarketData]:
        made = spb.Envelope()
        self._klines(symbol, seq, ts_us, made.items.add)
        return list(made.items)

    def _klines(self, symbol: str, seq: int, ts_us: int, new_item: NewItem) -> None:
        m = self.markets[symbol]
        s = m.scales
        for interval in INTERVALS_S:
            bar = m.candles.open.get(interval)
            if bar is None:
                continue
            k = new_item().kline
            k.market, k.interval_s, k.trades = symbol, interval, bar.trades
            k.ts_us, k.seq = ts_us, seq
            k.open_time_us, k.close_time_us = bar.start_us, _bar_end(bar, interval)
            k.open, k.high = s.price(bar.open), s.price(bar.high)
            k.low, k.close = s.price(bar.low), s.price(bar.close)
            k.volume, k.quote_volume = s.qty(bar.volume), s.price(bar.quote_volume)

    def book_ticker(
        self, symbol: str, seq: int, ts_us: int, new_item: NewItem = spb.MarketData
    ) -> spb.MarketData:
        m = self.markets[symbol]
        bid, ask = m.top()
        s = m.scales
        item = new_item()
        b = item.book_ticker
        b.market, b.ts_us, b.seq = symbol, ts_us, seq
        if bid is not None:
            b.bid_price, b.bid_quantity = s.price(bid[0]), s.qty(bid[1])
        if ask is not None:
            b.ask_price, b.ask_quantity = s.price(ask[0]), s.qty(ask[1])
        return item

    def _flush_market(self, symbol: str, m: MarketState, seq: int, ts: int, out: Output) -> None:
        channel = market_channel(symbol)
        if m.touched:
            diff = out.item(channel).depth
            diff.market, diff.ts_us = symbol, ts
            diff.first_update_id, diff.last_update_id = m.last_update_id + 1, seq
            s = m.scales
            for side, price in sorted(m.touched, key=lambda t: (t[0], t[1])):
                qty = m.levels[side].get(price, 0)
                (diff.bids if side == BUY else diff.asks).add(
                    price=s.price(price), quantity=s.qty(qty)
                )
            diff.bids.reverse()  # best (highest) first
            m.last_update_id = seq
            m.touched.clear()
            top = m.top()
            if top != m.best:
                m.best = top
                self.book_ticker(symbol, seq, ts, lambda: out.item(channel))
        if m.traded:
            m.traded = False
            self.ticker(symbol, seq, ts, lambda: out.item(channel))
            self._klines(symbol, seq, ts, lambda: out.item(channel))

    # ---- events ----

    def _event(self, ev: cpb.EngineEvent, out: Output) -> None:
        kind = ev.WhichOneof("body")
        # The three of nearly every batch get the event's body, seq and time read once.
        if kind == "order_accepted":
            self._accepted(ev.order_accepted, ev.seq, ev.ts_us, out)
        elif kind == "trade_executed":
            self._trade(ev.trade_executed.fill, ev.seq, ev.ts_us, out)
        elif kind == "order_closed":
            self._closed(ev.order_closed, ev.seq, ev.ts_us, out)
        elif kind in _TRIGGER_EVENTS:
            self._trigger(kind, ev, out)
        elif kind == "order_rested":
            r = ev.order_rested
            self._unlock(r.user_id, r.unlocked_asset, r.unlocked)
        elif kind == "deposited":
            d = ev.deposited
            self._capital(d.user_id, d.asset, self._units(d.asset, d.amount), ev.ts_us)
        elif kind == "withdrawn":
            w = ev.withdrawn
            self._capital(w.user_id, w.asset, -self._units(w.asset, w.amount), ev.ts_us)
        elif kind == "deposit_recorded":
            dr = ev.deposit_recorded
            asset = dr.deposit.asset
            self._capital(dr.deposit.user_id, asset, self._units(asset, dr.credited), ev.ts_us)
        elif kind == "withdrawal_changed":
            self._withdrawal(ev.withdrawal_changed, ev.ts_us)
        elif kind == "asset_listed":
            a = ev.asset_listed.asset
            self.assets[a.symbol] = a.decimals
        elif kind == "market_listed":
            mk = ev.market_listed.market
            scales = Scales(mk.base, mk.quote, self.assets[mk.base], self.assets[mk.quote])
            self.markets[mk.symbol] = MarketState(scales, ev.seq, ev.seq)

    def _accepted(self, a: cpb.OrderAccepted, seq: int, ts: int, out: Output) -> None:
        o = a.order
        self._lock(o.user_id, a.locked_asset, a.locked)
        m = self.markets[o.market]
        rests = o.type == cpb.ORDER_TYPE_LIMIT and o.time_in_force == cpb.TIME_IN_FORCE_GTC
        text, side, order_id = o.price, o.side, o.order_id
        price = parse_units(text, m.scales.quote_decimals) if text else 0
        self._taker = _Taker(order_id, side, price, rests)
        if rests and seq > m.applied:
            m.move(side, price, parse_units(o.quantity, m.scales.base_decimals))
        order = cpb.Order()
        order.CopyFrom(o)
        order.updated_at_us = ts
        self.open_orders[order_id] = _OpenOrder(order)
        self._order_update(spb.ORDER_UPDATE_KIND_ACCEPTED, order, seq, ts, out)

    def _trade(self, f: cpb.Fill, seq: int, ts: int, out: Output) -> None:
        # Each field read once: a protobuf field read makes a new Python object each time.
        market, trade_id = f.market, f.trade_id
        price_text, qty_text, quote_text = f.price, f.quantity, f.quote_quantity
        maker_order, maker_user = f.maker_order_id, f.maker_user_id
        taker_order, taker_user, taker_side = f.taker_order_id, f.taker_user_id, f.taker_side
        m = self.markets[market]
        s = m.scales
        price = parse_units(price_text, s.quote_decimals)
        qty = parse_units(qty_text, s.base_decimals)
        quote = parse_units(quote_text, s.quote_decimals)
        maker_fee = parse_units(text, s.quote_decimals) if (text := f.maker_fee) else 0
        taker_fee = parse_units(text, s.quote_decimals) if (text := f.taker_fee) else 0
        taker_buys = taker_side == BUY
        maker_side = SELL if taker_buys else BUY
        if seq > m.applied:
            m.move(maker_side, price, -qty)
            taker = self._taker
            if taker is not None and taker.order_id == taker_order and taker.rests:
                m.move(taker_side, taker.price, -qty)
        if seq > m.candles_from:
            m.candles.trade(price, qty, quote, ts)
            m.traded = True
        # Balances, as the engine settles a fill (see engine_svc.core.events).
        if taker_buys:
            buyer, seller, buyer_fee, seller_fee = taker_user, maker_user, taker_fee, maker_fee
            buy_order, sell_order = taker_order, maker_order
        else:
            buyer, seller, buyer_fee, seller_fee = maker_user, taker_user, maker_fee, taker_fee
            buy_order, sell_order = maker_order, taker_order
        self._credit(seller, s.base, 0, -qty)
        self._credit(buyer, s.base, qty, 0)
        self._credit(buyer, s.quote, 0, -(quote + buyer_fee))
        self._credit(seller, s.quote, quote - seller_fee, 0)
        self._credit(FEE_ACCOUNT, s.quote, maker_fee + taker_fee, 0)
        t = out.item(market_channel(market)).trade
        t.market, t.trade_id = market, trade_id
        t.price, t.quantity, t.quote_quantity = price_text, qty_text, quote_text
        t.buyer_is_maker, t.buy_order_id, t.sell_order_id = not taker_buys, buy_order, sell_order
        t.ts_us, t.seq = ts, seq
        for order_id, user, side, client_id, fee, maker in (
            (maker_order, maker_user, maker_side, f.maker_client_order_id, maker_fee, True),
            (taker_order, taker_user, taker_side, f.taker_client_order_id, taker_fee, False),
        ):
            order = self._filled(order_id, user, market, side, client_id, qty, quote, ts)
            update = self._order_update(spb.ORDER_UPDATE_KIND_FILL, order, seq, ts, out)
            update.trade_id = trade_id
            update.fill_price, update.fill_quantity = price_text, qty_text
            update.is_maker, update.fee = maker, s.price(fee)

    def _filled(
        self,
        order_id: int,
        user: int,
        market: str,
        side: cpb.Side.ValueType,
        client_id: int,
        qty: int,
        quote: int,
        ts: int,
    ) -> cpb.Order:
        known = self.open_orders.get(order_id)
        if known is None:  # accepted before the publisher started: what the fill says
            return cpb.Order(
                order_id=order_id, client_order_id=client_id, user_id=user, market=market,
                side=side, status=cpb.ORDER_STATUS_PARTIALLY_FILLED, updated_at_us=ts,
            )  # fmt: skip
        s = self.markets[market].scales
        known.filled += qty
        known.filled_quote += quote
        o = known.order
        o.executed_quantity = s.qty(known.filled)
        o.executed_quote_quantity = s.price(known.filled_quote)
        full = o.quantity and parse_units(o.quantity, s.base_decimals) == known.filled
        o.status = cpb.ORDER_STATUS_FILLED if full else cpb.ORDER_STATUS_PARTIALLY_FILLED
        o.updated_at_us = ts
        return o

    def _closed(self, c: cpb.OrderClosed, seq: int, ts: int, out: Output) -> None:
        market, order_id, price = c.market, c.order_id, c.price
        m = self.markets[market]
        self._unlock(c.user_id, c.unlocked_asset, c.unlocked)
        taker = self._taker
        never_rested = taker is not None and taker.order_id == order_id and not taker.rests
        if seq > m.applied and not never_rested and price:
            s = m.scales
            remaining = parse_units(c.remaining_quantity, s.base_decimals)
            if remaining:
                m.move(c.side, parse_units(price, s.quote_decimals), -remaining)
        known = self.open_orders.pop(order_id, None)
        order = known.order if known is not None else cpb.Order(
            order_id=order_id, client_order_id=c.client_order_id, user_id=c.user_id,
            market=market, side=c.side, price=price,
        )  # fmt: skip
        order.executed_quantity = c.executed_quantity
        order.executed_quote_quantity = c.executed_quote_quantity
        order.status = c.status
        order.close_reason = c.reason
        order.updated_at_us = ts
        self._order_update(spb.ORDER_UPDATE_KIND_CLOSED, order, seq, ts, out)

    def _trigger(self, kind: str, ev: cpb.EngineEvent, out: Output) -> None:
        """A conditional order's own updates; once fired it is an order like any other
        (its OrderAccepted, with the same id, follows)."""
        if kind == "trigger_placed":
            order = cpb.Order()
            order.CopyFrom(ev.trigger_placed.order)
            self.pending_triggers[order.order_id] = order
            self._order_update(spb.ORDER_UPDATE_KIND_TRIGGER_PLACED, order, ev.seq, ev.ts_us, out)
            return
        body = getattr(ev, kind)
        placed = self.pending_triggers.pop(body.order_id, None)
        order = placed if placed is not None else cpb.Order(
            order_id=body.order_id, user_id=body.user_id, market=body.market
        )  # fmt: skip
        if kind == "trigger_fired":
            return
        order.updated_at_us = ev.ts_us
        if kind == "trigger_failed":
            order.status = cpb.ORDER_STATUS_TRIGGER_FAILED
            order.trigger_failure = body.message
            self._order_update(spb.ORDER_UPDATE_KIND_TRIGGER_FAILED, order, ev.seq, ev.ts_us, out)
        else:
            order.status, order.close_reason = cpb.ORDER_STATUS_CANCELLED, body.reason
            self._order_update(spb.ORDER_UPDATE_KIND_CLOSED, order, ev.seq, ev.ts_us, out)

    def _order_update(
        self,
        kind: spb.OrderUpdateKind.ValueType,
        order: cpb.Order,
        seq: int,
        ts: int,
        out: Output,
    ) -> spb.OrderUpdate:
        """Adds an update with `order` as it stands now (copied: it changes later) and
        returns it. Built in its MarketData: setting a message field copies the message."""
        update = out.item(user_channel(order.user_id)).order_update
        update.kind, update.ts_us, update.seq = kind, ts, seq
        update.order.CopyFrom(order)
        return update

    # ---- balances ----

    def _units(self, asset: str, text: str) -> int:
        """An amount of `asset` in its units; an empty string is none."""
        return parse_units(text, self.assets[asset]) if text else 0

    def _lock(self, user: int, asset: str, text: str) -> None:
        amount = self._units(asset, text)
        self._credit(user, asset, -amount, amount)

    def _unlock(self, user: int, asset: str, text: str) -> None:
        amount = self._units(asset, text)
        self._credit(user, asset, amount, -amount)

    def _withdrawal(self, c: cpb.WithdrawalChanged, ts_us: int) -> None:
        """A withdrawal's lock, release, payment and fee."""
        user, asset = c.withdrawal.user_id, c.withdrawal.asset
        locked = self._units(asset, c.locked)
        self._capital(user, asset, -locked, ts_us, locked)
        unlocked = self._units(asset, c.unlocked)
        self._capital(user, asset, unlocked, ts_us, -unlocked)
        paid = self._units(asset, c.paid)
        fee = self._units(asset, c.fee_paid)
        self._credit(user, asset, 0, -paid - fee)
        self._credit(FEE_ACCOUNT, asset, fee, 0)

    def _capital(self, user: int, asset: str, available: int, ts_us: int, locked: int = 0) -> None:
        """A move of capital: the balance changes and its change of `available` is told."""
        if available and user != FEE_ACCOUNT:
            delta = spb.BalanceDelta(delta=format_units(available, self.assets[asset]), ts_us=ts_us)
            self._deltas.setdefault((user, asset), []).append(delta)
        self._credit(user, asset, available, locked)

    def _credit(self, user: int, asset: str, available: int, locked: int) -> None:
        if not available and not locked:
            return
        key = (user, asset)
        balance = self.balances.get(key)
        if balance is None:
            balance = self.balances[key] = [0, 0]
        balance[0] += available
        balance[1] += locked
        if user != FEE_ACCOUNT:
            self._touched_balances.add(key)


def _bar_end(bar: Candle, interval: int) -> int:
    return bar.start_us + interval * 1_000_000
