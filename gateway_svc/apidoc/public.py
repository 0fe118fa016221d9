"""The public operations: market data, as gateway_svc/public.py routes them."""

from __future__ import annotations

from gateway_svc.apidoc.operations import (
    LIMIT,
    MARKET_DATA,
    MARKETS,
    PUBLIC,
    UINT,
    Operations,
    as_json,
    list_of,
    query,
)
from gateway_svc.apidoc.schemas import MS, ref
from gateway_svc.public import INTERVALS


def describe(p: Operations) -> None:
    add = p.add
    # fmt: off
    add("get", "/api/v1/status", "getStatus", "Exchange status", PUBLIC, as_json(ref("Status")))
    add("get", "/api/v1/time", "getTime", "Server time in ms", PUBLIC, as_json(MS))
    add("get", "/api/v1/assets", "getAssets", "Listed assets", PUBLIC, list_of("Asset"),
        errors=MARKET_DATA)
    add("get", "/api/v1/markets", "getMarkets", "Listed markets", PUBLIC, list_of("Market"),
        errors=MARKET_DATA)
    add("get", "/api/v1/market", "getMarket", "One market", PUBLIC, as_json(ref("Market")),
        errors=(400, *MARKET_DATA), params=MARKETS)
    add("get", "/api/v1/securities", "getSecurities", "Tokenized securities: none", PUBLIC,
        as_json({"type": "array", "maxItems": 0}))
    add("get", "/api/v1/depth", "getDepth", "Order book depth", PUBLIC, as_json(ref("Depth")),
        errors=(400, *MARKET_DATA), params=(*MARKETS, LIMIT))
    add("get", "/api/v1/trades", "getTrades", "Recent trades, newest first", PUBLIC,
        list_of("Trade"), errors=(400, *MARKET_DATA), params=(*MARKETS, LIMIT))
    add("get", "/api/v1/klines", "getKlines", "Candles", PUBLIC, list_of("Kline"),
        errors=(400, *MARKET_DATA), params=(
            *MARKETS,
            query("interval", {"enum": list(INTERVALS)}, "candle width", required=True),
            query("startTime", UINT, "seconds since the epoch"),
            query("endTime", UINT, "seconds since the epoch; after startTime"),
            LIMIT,
        ))
    for path, operation_id in (("/api/v1/ticker", "getTicker"),
                               ("/api/v1/ticker/24hr", "getTicker24hr")):
        add("get", path, operation_id, "The last 24 hours of one market", PUBLIC,
            as_json(ref("Ticker")), errors=(400, *MARKET_DATA), params=MARKETS)
    add("get", "/api/v1/tickers", "getTickers", "The last 24 hours of every market", PUBLIC,
        list_of("Ticker"), errors=MARKET_DATA)
    # fmt: on
