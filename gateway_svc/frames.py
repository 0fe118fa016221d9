"""Market data as WebSocket/SSE frames: Backpack's payloads, which both dialects receive.

`data_json(item)` renders the payload once per message; `frame(stream, data)` wraps it for
each subscriber with the topic name that subscriber used, and `ws_text`/`sse_event` put it
on the wire. Times `E` and `T` are microseconds, as Backpack sends them.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import orjson

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.dialect import SIDE_NAMES, TIF_NAMES
from tradekit.backpack import STATUS_NAMES

_ORDER_TYPES = {cpb.ORDER_TYPE_LIMIT: "LIMIT", cpb.ORDER_TYPE_MARKET: "MARKET"}
_CLOSE_EVENTS = {
    cpb.ORDER_STATUS_CANCELLED: "orderCancelled",
    cpb.ORDER_STATUS_EXPIRED: "orderExpired",
}


def frame(stream: str, data: bytes) -> bytes:
    """`{"stream": ..., "data": ...}`; `stream` is a validated topic name (no quoting)."""
    return b'{"stream":"' + stream.encode() + b'","data":' + data + b"}"


def ws_text(payload: bytes) -> bytes:
    """A whole unmasked WebSocket text frame (RFC 6455 5.2), as a server sends it: built once
    per message and written as is to every client that gets it."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def sse_event(payload: bytes, event_id: int | None = None) -> bytes:
    """A text/event-stream event; `payload` is one line of JSON."""
    head = b"" if event_id is None else b"id: " + str(event_id).encode() + b"\n"
    return head + b"data: " + payload + b"\n\n"


def error_frame(code: int, name: str, message: str, request_id: Any = None) -> bytes:
    return orjson.dumps(
        {"id": request_id, "error": {"code": code, "name": name, "message": message}}
    )


def data_json(item: spb.MarketData) -> bytes:
    return orjson.dumps(payload(item))


def payload(item: spb.MarketData) -> dict[str, Any]:
    kind = item.WhichOneof("body")
    if kind == "depth":
        d = item.depth
        return {
            "e": "depth", "E": d.ts_us, "T": d.ts_us, "s": d.market,
            "U": d.first_update_id, "u": d.last_update_id,
            "b": [[lv.price, lv.quantity] for lv in d.bids],
            "a": [[lv.price, lv.quantity] for lv in d.asks],
        }  # fmt: skip
    if kind == "trade":
        t = item.trade
        return {
            "e": "trade", "E": t.ts_us, "T": t.ts_us, "s": t.market, "t": t.trade_id,
            "p": t.price, "q": t.quantity, "m": t.buyer_is_maker,
            "b": str(t.buy_order_id), "a": str(t.sell_order_id),
        }  # fmt: skip
    if kind == "ticker":
        k = item.ticker
        return {
            "e": "ticker", "E": k.ts_us, "s": k.market, "o": k.open, "c": k.last,
            "h": k.high, "l": k.low, "v": k.volume, "V": k.quote_volume, "n": k.trades,
        }  # fmt: skip
    if kind == "book_ticker":
        b = item.book_ticker
        return {
            "e": "bookTicker", "E": b.ts_us, "T": b.ts_us, "s": b.market, "u": b.seq,
            "b": b.bid_price or None, "B": b.bid_quantity or None,
            "a": b.ask_price or None, "A": b.ask_quantity or None,
        }  # fmt: skip
    if kind == "kline":
        c = item.kline
        return {
            "e": "kline", "E": c.ts_us, "s": c.market, "t": _iso(c.open_time_us),
            "T": _iso(c.close_time_us), "o": c.open, "h": c.high, "l": c.low, "c": c.close,
            "v": c.volume, "V": c.quote_volume, "n": c.trades, "X": False,
        }  # fmt: skip
    if kind == "order_update":
        return _order_update(item.order_update)
    if kind == "balance_update":
        u = item.balance_update
        return {"e": "balanceUpdate", "E": u.ts_us, "a": u.asset, "A": u.available,
                "L": u.locked, "S": "0"}  # fmt: skip
    raise ValueError(f"no frame for {kind!r}")


def _order_update(u: spb.OrderUpdate) -> dict[str, Any]:
    o = u.order
    if u.kind == spb.ORDER_UPDATE_KIND_ACCEPTED:
        event = "orderAccepted"
    elif u.kind == spb.ORDER_UPDATE_KIND_FILL:
        event = "orderFill"
    else:
        event = _CLOSE_EVENTS.get(o.status, "orderUpdate")
    out: dict[str, Any] = {
        "e": event, "E": u.ts_us, "T": u.ts_us, "s": o.market, "i": str(o.order_id),
        "c": o.client_order_id or None, "S": SIDE_NAMES.get(o.side, "Bid"),
        "o": _ORDER_TYPES.get(o.type, "LIMIT"), "f": TIF_NAMES.get(o.time_in_force, "GTC"),
        "p": o.price or None, "q": o.quantity or None, "Q": o.quote_quantity or None,
        "X": STATUS_NAMES.get(o.status, "New"), "z": o.executed_quantity or None,
        "Z": o.executed_quote_quantity or None,
    }  # fmt: skip
    if u.kind == spb.ORDER_UPDATE_KIND_FILL:
        out.update(
            {
                "l": u.fill_quantity,
                "L": u.fill_price,
                "t": u.trade_id,
                "m": u.is_maker,
                "n": u.fee,
            }
        )
    return out


def _iso(ts_us: int) -> str:
    return datetime.fromtimestamp(ts_us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
