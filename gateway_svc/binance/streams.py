"""Binance's market streams: their names, and their payloads rendered from stream_svc's.

A name is `<symbol>@<kind>` with the symbol in lower case (`tatainr@depth`): `depth` and
`depth@100ms` (diffs, `U`/`u` continuing REST depth's `lastUpdateId`), `depth<5|10|20>`
(`@100ms` too; the best levels as they stand), `trade`, `aggTrade` (one aggregate per
trade, as REST /aggTrades), `kline_<interval>`, `ticker`, `miniTicker`, `bookTicker`; or
`!ticker@arr` / `!miniTicker@arr` (every market's, one array a batch). Every stream goes
out at the connection's cadence (cadence.py), so `@depth` is as frequent as `@depth@100ms`.
Times are milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.binance.dialect import number
from tradekit.topics import INTERVAL_NAMES, KLINE_INTERVALS, Topic

ARRAYS = ("tickerArr", "miniTickerArr")  # one frame a batch for every market's messages
_NAME = re.compile(
    r"(?P<symbol>[a-z0-9]{2,32})@(?P<kind>depth(?P<levels>5|10|20)?(@100ms|@1000ms)?|trade"
    r"|aggTrade|kline_(?P<interval>[0-9]{1,2}[mhdw])|ticker|miniTicker|bookTicker)"
).fullmatch
_TOPIC_KINDS = {
    "trade": "trade",
    "aggTrade": "trade",
    "kline": "kline",
    "ticker": "ticker",
    "miniTicker": "ticker",
    "bookTicker": "bookTicker",
}


class StreamError(ValueError):
    """A stream name this face does not serve."""


@dataclass(frozen=True)
class Stream:
    """A stream as the client named it, what it reads upstream and how it is rendered."""

    name: str
    kind: str  # depth, partial, trade, aggTrade, kline, ticker, miniTicker, bookTicker, ...
    topics: tuple[Topic, ...]
    levels: int = 0  # partial depth: levels a side


def parse_stream(name: object, markets: dict[str, str]) -> Stream:
    """The stream `name` names; `markets` maps Binance symbols to market names. Raises
    StreamError."""
    if not isinstance(name, str) or not name.isascii() or len(name) > 100:
        raise StreamError(f"invalid stream {str(name)[:80]!r}")
    if name in ("!ticker@arr", "!miniTicker@arr"):
        kind = name[1:].partition("@")[0] + "Arr"
        return Stream(name, kind, tuple(Topic("ticker", market=m) for m in markets.values()))
    match = _NAME(name)
    market = markets.get(match["symbol"].upper()) if match else None
    if match is None or market is None:
        raise StreamError(f"invalid stream {name[:80]!r}")
    kind = match["kind"]
    if kind.startswith("depth"):
        levels = int(match["levels"] or 0)
        return Stream(name, "partial" if levels else "depth", (Topic("depth", market),), levels)
    if match["interval"]:
        seconds = KLINE_INTERVALS.get(match["interval"])
        if seconds is None:
            raise StreamError(
                f"invalid stream {name!r}: intervals are {', '.join(KLINE_INTERVALS)}"
            )
        return Stream(name, "kline", (Topic("kline", market=market, interval_s=seconds),))
    return Stream(name, kind, (Topic(_TOPIC_KINDS[kind], market=market),))


def ms(ts_us: int) -> int:
    return ts_us // 1000


def payload(kind: str, item: spb.MarketData, symbol: str) -> bytes:
    """The message `item` as stream `kind` sends it (not `partial`: see `partial`)."""
    return orjson.dumps(_payload(kind, item, symbol))


def _payload(kind: str, item: spb.MarketData, symbol: str) -> Any:
    if kind == "depth":
        d = item.depth
        return {
            "e": "depthUpdate", "E": ms(d.ts_us), "s": symbol,
            "U": d.first_update_id, "u": d.last_update_id,
            "b": [[lv.price, lv.quantity] for lv in d.bids],
            "a": [[lv.price, lv.quantity] for lv in d.asks],
        }  # fmt: skip
    if kind in ("trade", "aggTrade"):
        t = item.trade
        ids = {"t": t.trade_id} if kind == "trade" else {"a": t.trade_id}
        out = {"e": kind, "E": ms(t.ts_us), "s": symbol, **ids, "p": t.price, "q": t.quantity}
        if kind == "aggTrade":
            out.update({"f": t.trade_id, "l": t.trade_id})
        return {**out, "T": ms(t.ts_us), "m": t.buyer_is_maker, "M": True}
    if kind == "kline":
        c = item.kline
        return {"e": "kline", "E": ms(c.ts_us), "s": symbol, "k": _kline(c, symbol)}
    if kind in ("ticker", "tickerArr"):
        return _ticker(item.ticker, symbol)
    if kind in ("miniTicker", "miniTickerArr"):
        k = item.ticker
        return {
            "e": "24hrMiniTicker", "E": ms(k.ts_us), "s": symbol, "c": number(k.last),
            "o": number(k.open), "h": number(k.high), "l": number(k.low),
            "v": number(k.volume), "q": number(k.quote_volume),
        }  # fmt: skip
    if kind == "bookTicker":
        b = item.book_ticker
        return {
            "u": b.seq, "s": symbol, "b": number(b.bid_price), "B": number(b.bid_quantity),
            "a": number(b.ask_price), "A": number(b.ask_quantity),
        }  # fmt: skip
    raise ValueError(f"no {kind} payload")


def _kline(c: spb.Kline, symbol: str) -> dict[str, Any]:
    return {
        "t": ms(c.open_time_us), "T": ms(c.close_time_us) - 1, "s": symbol,
        "i": INTERVAL_NAMES[c.interval_s], "f": -1, "L": -1,
        "o": number(c.open), "c": number(c.close), "h": number(c.high), "l": number(c.low),
        "v": number(c.volume), "n": c.trades, "x": c.ts_us >= c.close_time_us,
        "q": number(c.quote_volume), "V": "0", "Q": "0", "B": "0",
    }  # fmt: skip


def _ticker(k: spb.Ticker, symbol: str) -> dict[str, Any]:
    last, first = Decimal(k.last or "0"), Decimal(k.open or "0")
    volume, quote = Decimal(k.volume or "0"), Decimal(k.quote_volume or "0")
    places = Decimal(k.last) if k.last else Decimal(1)
    change = last - first
    percent = (change * 100 / first).quantize(Decimal("0.001")) if first else Decimal(0)
    average = (quote / volume).quantize(places) if volume else Decimal(0)
    now = ms(k.ts_us)
    return {
        "e": "24hrTicker", "E": now, "s": symbol, "p": format(change, "f"),
        "P": format(percent, "f"), "w": format(average, "f"), "x": number(k.open),
        "c": number(k.last), "Q": "0", "b": "0", "B": "0", "a": "0", "A": "0",
        "o": number(k.open), "h": number(k.high), "l": number(k.low),
        "v": number(k.volume), "q": number(k.quote_volume),
        "O": now - 86_400_000, "C": now, "F": -1, "L": -1, "n": k.trades,
    }  # fmt: skip


def partial(bids: list[tuple[str, str]], asks: list[tuple[str, str]], last_update_id: int) -> bytes:
    """A partial book depth payload: the best levels, best first, as of `last_update_id`."""
    return orjson.dumps(
        {
            "lastUpdateId": last_update_id,
            "bids": [list(level) for level in bids],
            "asks": [list(level) for level in asks],
        }
    )
