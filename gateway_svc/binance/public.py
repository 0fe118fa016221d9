"""Binance's public market data, `/api/v3/...`, from the same engine and ledger queries as
`/api/v1` (see gateway_svc/public.py); each request costs its weight against its address's
budget (weights.py), as at Binance.

`lastUpdateId` of /depth is the engine's sequence number of the book, the one the streams'
diffs continue. History is the ledger's: /trades reads its newest trades, /historicalTrades
pages them by `fromId`, /aggTrades (one aggregate per trade) by `fromId` or time, /klines
reads its candles, /ticker its rolling 24 hours.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.binance.dialect import (
    MAX_MS,
    binance_symbol,
    by_symbol,
    integer,
    invalid,
    market_named,
    market_of,
    ms,
    number,
    read_params,
    time_span,
)
from gateway_svc.context import Backends, backends
from gateway_svc.errors import ApiError, engine_error
from gateway_svc.public import INTERVALS
from gateway_svc.respond import json_response

routes = web.RouteTableDef()

# Every type POST /api/v3/order takes (ccxt refuses to send one a market does not list).
ORDER_TYPES = [
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]  # fmt: skip
STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]
MAX_LIMIT = 1000


async def _market_data(request: web.Request) -> dict[str, str]:
    p, _, _ = await read_params(request)
    return p


def _limit(p: dict[str, str], default: int) -> int:
    return integer(p, "limit", maximum=MAX_LIMIT, default=default) or default


async def _named(b: Backends, p: dict[str, str]) -> list[cpb.Market]:
    """The markets `symbol` or `symbols` (a JSON list) name; every market without either."""
    if p.get("symbol"):
        return [await market_of(b.markets, p)]
    if p.get("symbols"):
        try:
            names = orjson.loads(p["symbols"])
        except orjson.JSONDecodeError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid("symbols", 'a JSON list such as ["TATAINR"]')
        return [await market_named(b.markets, n) for n in names[:MAX_LIMIT]]
    return sorted((await by_symbol(b.markets)).values(), key=binance_symbol)


@routes.get("/api/v3/ping")
async def ping(request: web.Request) -> web.Response:
    return json_response({})


@routes.get("/api/v3/time")
async def server_time(request: web.Request) -> web.Response:
    return json_response({"serverTime": int(time.time() * 1000)})


def _decimals(step: str) -> int:
    exponent = Decimal(step).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def symbol_json(m: cpb.Market, decimals: dict[str, int]) -> dict[str, Any]:
    base, quote = decimals.get(m.base, 8), decimals.get(m.quote, 8)
    return {
        "symbol": binance_symbol(m),
        "status": "TRADING" if m.status == cpb.MARKET_STATUS_OPEN else "HALT",
        "baseAsset": m.base,
        "baseAssetPrecision": base,
        "quoteAsset": m.quote,
        "quotePrecision": quote,
        "quoteAssetPrecision": quote,
        "baseCommissionPrecision": base,
        "quoteCommissionPrecision": quote,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": m.tick_size,
                "maxPrice": m.max_price,
                "tickSize": m.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": m.min_quantity,
                "maxQty": m.max_quantity,
                "stepSize": m.step_size,
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": m.min_quantity,
                "maxQty": m.max_quantity,
                "stepSize": m.step_size,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": m.min_notional,
                "applyMinToMarket": True,
                "maxNotional": _max_notional(m),
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_TAKER",
        "allowedSelfTradePreventionModes": STP_MODES,
    }


def _max_notional(m: cpb.Market) -> str:
    """The most an order can be worth (the largest price times the largest quantity): clients
    cap what they spend by it (freqtrade's stake), so Binance's "0" would stop them."""
    if not (m.max_price and m.max_quantity):
        return "0"
    return format((Decimal(m.max_price) * Decimal(m.max_quantity)).normalize(), "f")


@routes.get("/api/v3/exchangeInfo")
async def exchange_info(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _named(b, p)
    decimals = {a.symbol: a.decimals for a in b.markets.assets}
    settings = b.settings
    return json_response(
        {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": settings.binance_weight_1m,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": settings.binance_orders_10s,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 1,
                    "limit": settings.order_rate,
                },
            ],
            "exchangeFilters": [],
            "symbols": [symbol_json(m, decimals) for m in listed],
        }
    )


async def _depth(b: Backends, m: cpb.Market, depth: int) -> epb.GetDepthReply:
    reply = await b.engine.stub.GetDepth(epb.GetDepthRequest(market=m.symbol, limit=depth))
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return reply


@routes.get("/api/v3/depth")
async def depth(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    reply = await _depth(b, await market_of(b.markets, p), _limit(p, 100))
    return json_response(
        {
            "lastUpdateId": reply.seq,
            "bids": [[level.price, level.quantity] for level in reply.bids],
            "asks": [[level.price, level.quantity] for level in reply.asks],
        }
    )


async def _trades(b: Backends, m: cpb.Market, p: dict[str, str]) -> list[lpb.Trade]:
    """The trades asked for, oldest first: `limit` from `fromId` or `startTime` on, else the
    newest `limit` (before `endTime`), at most an hour apart as on aggTrades."""
    from_id = integer(p, "fromId")
    start, end = time_span(p, 1)
    reply = await b.ledger.GetTrades(
        lpb.GetTradesRequest(
            market=m.symbol,
            limit=_limit(p, 500),
            after_id=from_id - 1 if from_id else 0,
            oldest_first=bool(from_id or start),
            from_us=start * 1000,
            to_us=end * 1000 + 1000 if end else 0,
        )
    )
    return list(reply.trades if from_id or start else reversed(reply.trades))


@routes.get("/api/v3/trades")
async def trades(request: web.Request) -> web.Response:
    return await _trade_list(request, ("limit",))


@routes.get("/api/v3/historicalTrades")
async def historical_trades(request: web.Request) -> web.Response:
    """/trades paged back by `fromId` (no API key needed: everything here is public)."""
    return await _trade_list(request, ("limit", "fromId"))


async def _trade_list(request: web.Request, fields: tuple[str, ...]) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _trades(b, await market_of(b.markets, p), {f: p[f] for f in fields if f in p})
    return json_response(
        [
            {
                "id": t.trade_id,
                "price": t.price,
                "qty": t.quantity,
                "quoteQty": t.quote_quantity,
                "time": ms(t.ts_us),
                "isBuyerMaker": t.taker_side == cpb.SIDE_SELL,
                "isBestMatch": True,
            }
            for t in listed
        ]
    )


@routes.get("/api/v3/aggTrades")
async def agg_trades(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _trades(b, await market_of(b.markets, p), p)
    return json_response(
        [
            {
                "a": t.trade_id,
                "p": t.price,
                "q": t.quantity,
                "f": t.trade_id,
                "l": t.trade_id,
                "T": ms(t.ts_us),
                "m": t.taker_side == cpb.SIDE_SELL,
                "M": True,
            }
            for t in listed
        ]
    )


@routes.get("/api/v3/klines")
@routes.get("/api/v3/uiKlines")
async def klines(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    m = await market_of(b.markets, p)
    interval = INTERVALS.get(p.get("interval", ""))
    if interval is None:
        raise ApiError(400, "BAD_INTERVAL", "Invalid interval.")
    start = integer(p, "startTime", maximum=MAX_MS)
    end = integer(p, "endTime", maximum=MAX_MS)
    reply = await b.ledger.GetKlines(
        lpb.GetKlinesRequest(
            market=m.symbol,
            interval=interval,
            start_time_us=start * 1000,
            end_time_us=end * 1000 + 1 if end else 0,  # Binance's endTime is inclusive
            limit=_limit(p, 500),
        )
    )
    return json_response(
        [
            [
                ms(k.open_time_us),
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                ms(k.close_time_us) - 1,
                k.quote_volume,
                k.trades,
                "0",  # taker buy base volume: not kept
                "0",  # taker buy quote volume: not kept
                "0",
            ]
            for k in reply.klines
        ]
    )


async def _tickers(b: Backends, listed: list[cpb.Market]) -> dict[str, lpb.Ticker]:
    if len(listed) == 1:
        one = await b.ledger.GetTicker(lpb.GetTickerRequest(market=listed[0].symbol))
        return {one.market: one}
    reply = await b.ledger.GetTickers(lpb.GetTickersRequest())
    return {t.market: t for t in reply.tickers}


def _one_or_list(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """One object when `symbol` named one market, else a list (as Binance answers)."""
    return json_response(items[0] if request.query.get("symbol") else items)


def _top(reply: epb.GetDepthReply) -> dict[str, str]:
    bid = reply.bids[0] if reply.bids else cpb.PriceLevel()
    ask = reply.asks[0] if reply.asks else cpb.PriceLevel()
    return {
        "bidPrice": number(bid.price),
        "bidQty": number(bid.quantity),
        "askPrice": number(ask.price),
        "askQty": number(ask.quantity),
    }


@routes.get("/api/v3/ticker/24hr")
async def ticker_24hr(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _named(b, p)
    tickers = await _tickers(b, listed)
    now = int(time.time() * 1000)
    out = []
    for m in listed:
        t = tickers.get(m.symbol, lpb.Ticker(market=m.symbol))
        percent = t.change_percent or "0"
        volume, quote_volume = Decimal(t.volume or "0"), Decimal(t.quote_volume or "0")
        average = quote_volume / volume if volume else Decimal(0)
        out.append(
            {
                "symbol": binance_symbol(m),
                "priceChange": number(t.change),
                "priceChangePercent": percent,
                "weightedAvgPrice": format(average.quantize(Decimal(m.tick_size)), "f"),
                "prevClosePrice": number(t.open),
                "lastPrice": number(t.last),
                "lastQty": "0",
                **_top(await _depth(b, m, 1)),
                "openPrice": number(t.open),
                "highPrice": number(t.high),
                "lowPrice": number(t.low),
                "volume": number(t.volume),
                "quoteVolume": number(t.quote_volume),
                "openTime": now - 86_400_000,
                "closeTime": ms(t.ts_us) or now,
                "firstId": t.first_trade_id or -1,
                "lastId": t.last_trade_id or -1,
                "count": t.trades,
            }
        )
    return _one_or_list(request, out)


@routes.get("/api/v3/ticker/price")
async def ticker_price(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _named(b, p)
    tickers = await _tickers(b, listed)
    return _one_or_list(
        request,
        [
            {
                "symbol": binance_symbol(m),
                "price": number(tickers.get(m.symbol, lpb.Ticker()).last),
            }
            for m in listed
        ],
    )


@routes.get("/api/v3/ticker/bookTicker")
async def book_ticker(request: web.Request) -> web.Response:
    p = await _market_data(request)
    b = backends(request)
    listed = await _named(b, p)
    return _one_or_list(
        request, [{"symbol": binance_symbol(m), **_top(await _depth(b, m, 1))} for m in listed]
    )


@routes.get("/api/v3/avgPrice")
async def avg_price(request: web.Request) -> web.Response:
    """The volume-weighted price of the last five minutes' trades (0 without any)."""
    p = await _market_data(request)
    b = backends(request)
    m = await market_of(b.markets, p)
    now_us = int(time.time() * 1_000_000)
    reply = await b.ledger.GetKlines(
        lpb.GetKlinesRequest(
            market=m.symbol,
            interval=lpb.KLINE_INTERVAL_1M,
            start_time_us=now_us - 5 * 60_000_000,
        )
    )
    volume = sum((Decimal(k.volume) for k in reply.klines), Decimal(0))
    quote = sum((Decimal(k.quote_volume) for k in reply.klines), Decimal(0))
    price = (quote / volume).quantize(Decimal(m.tick_size)) if volume else Decimal(0)
    last = ms(reply.klines[-1].close_time_us) - 1 if reply.klines else now_us // 1000
    return json_response({"mins": 5, "price": format(price, "f"), "closeTime": last})
