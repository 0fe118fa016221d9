"""The engine's state as plain data: snapshots and `state_hash`.

`dump_state` lists everything that decides future behaviour (assets, markets,
balances, resting orders in priority order, counters) and nothing else; zero
balances are left out, so creating an empty balance never changes the hash.
`load_state(dump_state(e))` behaves exactly like `e`.
"""

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from engine_svc.core.book import Book, OrderBook
from engine_svc.core.engine import Engine
from engine_svc.core.markets import build_market
from engine_svc.core.order import Order
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
                    ]
                )  # fmt: skip
    return {
        "format": FORMAT,
        "seq": engine.seq,
        "ts": engine.ts,
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
        "assets": [[a.symbol, a.decimals] for a in engine.assets.values()],
        "markets": [[*_spec_fields(m.spec), int(m.status)] for m in engine.markets.values()],
        "supply": sorted(engine.accounts.supply.items()),
        "balances": [
            [user, asset, bal.available, bal.locked]
            for user, asset, bal in engine.accounts.items()
            if bal.available or bal.locked
        ],
        "orders": orders,
        "capital": engine.capital.dump(),
    }


def _spec_fields(spec: MarketSpec) -> list[Any]:
    return [
        spec.symbol, spec.base, spec.quote, spec.tick_size, spec.step_size, spec.min_quantity,
        spec.min_notional, spec.max_quantity, spec.max_price, spec.maker_fee_bps,
        spec.taker_fee_bps,
    ]  # fmt: skip


def load_state(data: dict[str, Any], book_factory: Callable[[], Book] = OrderBook) -> Engine:
    if data.get("format") != FORMAT:
        raise ValueError(f"unsupported snapshot format {data.get('format')!r}")
    engine = Engine(book_factory)
    engine.seq = data["seq"]
    engine.ts = data["ts"]
    engine.next_order_id = data["next_order_id"]
    engine.next_trade_id = data["next_trade_id"]
    for symbol, decimals in data["assets"]:
        engine.assets[symbol] = Asset(symbol, decimals)
    for fields in data["markets"]:
        spec = MarketSpec(*fields[:11])
        market = build_market(spec, engine.assets)
        market.status = MarketStatus(fields[11])
        engine.markets[spec.symbol] = market
        engine.books[spec.symbol] = book_factory()
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
        engine.restore_order(o)
    if "capital" in data:  # snapshots from before capital have none
        engine.capital.load(data["capital"], engine.assets)
    return engine


def state_hash(engine: Engine) -> str:
    """A digest of everything in `dump_state`: equal hashes, equal futures."""
    return hashlib.blake2b(orjson.dumps(dump_state(engine)), digest_size=16).hexdigest()
