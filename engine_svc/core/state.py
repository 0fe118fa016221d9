"""The engine's state as plain data: snapshots and `state_hash`.

`dump_state` lists everything that decides future behaviour (assets, markets and
their last prices, balances, resting orders in priority order with their brackets,
pending triggers by id, counters, the limit on a user's pending triggers), and what
queries show of a resting order that was a trigger; nothing else; zero balances are left
out, so creating an empty balance never changes the hash.
`load_state(dump_state(e))` behaves exactly like `e`.
"""

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from engine_svc.core.book import Book, OrderBook
from engine_svc.core.commands import Bracket, PlaceOrder
from engine_svc.core.engine import Engine
from engine_svc.core.markets import DEFAULT_MAX_TRIGGERS_TOTAL, build_market
from engine_svc.core.order import Order
from engine_svc.core.triggers import FiredTrigger, Trigger, TriggerBook, TriggerIndex
from engine_svc.core.types import (
    ClientOrderId,
    MarketStatus,
    OrderId,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tradekit.markets import Asset, MarketSpec

FORMAT = 1


def dump_state(engine: Engine) -> dict[str, Any]:
    orders = []
    for symbol in sorted(engine.books):
        book = engine.books[symbol]
        for side in (Side.BUY, Side.SELL):
            for o in book.iter_side(side):
                orders.append(
                    [
                        o.id, o.user, o.market, int(o.side), int(o.type), int(o.tif), int(o.stp),
                        o.post_only, o.client_id, o.price, o.qty, o.quote_qty, o.remaining,
                        o.filled, o.filled_quote, o.fee_numer, o.fees, o.locked, o.created,
                        None if o.bracket is None else list(o.bracket),
                        None if o.fired is None else list(o.fired.fields()),
                    ]
                )  # fmt: skip
    return {
        "format": FORMAT,
        "seq": engine.seq,
        "ts": engine.ts,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "assets": [[a.symbol, a.decimals] for a in engine.assets.values()],
        "markets": [
            [*_spec_fields(m.spec), int(m.status), m.last_price, m.spec.max_triggers]
            for m in engine.markets.values()
        ],
        "supply": sorted(engine.accounts.supply.items()),
        "balances": [
            [user, asset, bal.available, bal.locked]
            for user, asset, bal in engine.accounts.items()
            if bal.available or bal.locked
        ],
        "orders": orders,
        "triggers": [_trigger_fields(engine.triggers[i]) for i in sorted(engine.triggers)],
        "capital": engine.capital.dump(),
        "max_triggers_total": engine.max_triggers_total,
    }


def _trigger_fields(t: Trigger) -> list[Any]:
    o = t.order
    return [
        t.id, o.user, o.market, int(o.side), int(o.type), o.price, o.qty, o.quote_qty,
        int(o.tif), o.post_only, o.client_id, int(o.stp), t.price, t.above,
        None if t.bracket is None else list(t.bracket), t.parent,
        0 if t.sibling is None else t.sibling.id, t.created,
    ]  # fmt: skip


def _load_triggers(engine: Engine, rows: list[list[Any]]) -> None:
    siblings: list[tuple[Trigger, int]] = []
    for f in rows:
        order = PlaceOrder(
            UserId(f[1]), f[2], Side(f[3]), OrderType(f[4]), f[5], f[6], f[7], TimeInForce(f[8]),
            f[9], ClientOrderId(f[10]), SelfTradePrevention(f[11]),
        )  # fmt: skip
        bracket = None if f[14] is None else Bracket(*f[14])
        t = Trigger(OrderId(f[0]), order, f[12], f[13], bracket, OrderId(f[15]), f[17])
        engine.restore_trigger(t)
        if f[16]:
            siblings.append((t, f[16]))
    for t, sibling in siblings:
        t.sibling = engine.triggers[OrderId(sibling)]
        t.related = t.sibling.id


def _spec_fields(spec: MarketSpec) -> list[Any]:
    return [
        spec.symbol, spec.base, spec.quote, spec.tick_size, spec.step_size, spec.min_quantity,
        spec.min_notional, spec.max_quantity, spec.max_price, spec.maker_fee_bps,
        spec.taker_fee_bps,
    ]  # fmt: skip


def load_state(
    data: dict[str, Any],
    book_factory: Callable[[], Book] = OrderBook,
    trigger_factory: Callable[[], TriggerBook] = TriggerIndex,
) -> Engine:
    """Snapshots written before conditional orders (no last prices, brackets or
    triggers) load too."""
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported snapshot format {data.get('format')!r}")
    engine = Engine(book_factory, trigger_factory)
    engine.seq = data["seq"]
    engine.ts = data["ts"]
    engine.next_order_id = data["next_order_id"]
    engine.next_trade_id = data["next_trade_id"]
    for symbol, decimals in data["assets"]:
        engine.assets[symbol] = Asset(symbol, decimals)
    for fields in data["markets"]:
        spec = MarketSpec(*fields[:11], *fields[13:14])  # older snapshots: no max_triggers
        market = build_market(spec, engine.assets)
        market.status = MarketStatus(fields[11])
        market.last_price = fields[12] if len(fields) > 12 else 0
        engine.markets[spec.symbol] = market
        engine.books[spec.symbol] = book_factory()
        engine.trigger_books[spec.symbol] = trigger_factory()
    engine.accounts.supply.update(dict(data["supply"]))
    for user, asset, available, locked in data["balances"]:
        bal = engine.accounts.balance(UserId(user), asset)
        bal.available, bal.locked = available, locked
    for f in data["orders"]:
        market = engine.markets[f[2]]
        side = Side(f[3])
        spend, receive = (
            (market.quote, market.base) if side == Side.BUY else (market.base, market.quote)
        )
        user = UserId(f[1])
        accounts = engine.accounts
        o = Order(
            OrderId(f[0]), user, f[2], side, OrderType(f[4]), TimeInForce(f[5]),
            SelfTradePrevention(f[6]), f[7], ClientOrderId(f[8]), f[9], f[10], f[11], f[18],
            accounts.balance(user, spend.symbol), accounts.balance(user, receive.symbol),
        )  # fmt: skip
        o.remaining, o.filled, o.filled_quote, o.fee_numer, o.fees, o.locked = f[12:18]
        if len(f) > 19 and f[19] is not None:
            o.bracket = Bracket(*f[19])
        if len(f) > 20 and f[20] is not None:
            o.fired = FiredTrigger(*f[20])
        engine.restore_order(o)
    _load_triggers(engine, data.get("triggers", []))
    if "capital" in data:  # snapshots from before capital have none
        engine.capital.load(data["capital"], engine.assets)
    engine.max_triggers_total = data.get("max_triggers_total", DEFAULT_MAX_TRIGGERS_TOTAL)
    return engine


def state_hash(engine: Engine) -> str:
    """A digest of everything in `dump_state`: equal hashes, equal futures."""
    return hashlib.blake2b(orjson.dumps(dump_state(engine)), digest_size=16).hexdigest()
