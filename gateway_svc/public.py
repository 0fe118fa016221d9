"""Public market data: status, time, assets, markets, depth, trades, klines, tickers.

Live state (markets, depth) comes from the engine's memory; history (trades, klines,
tickers) from the ledger. Each request counts against the per-address market-data limit.
Depth and trades, what clients poll most, are asked once for all the requests waiting for
the same answer (`coalesce.py`) and rendered to JSON once.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.capital import token_json
from gateway_svc.context import backends, limit, params
from gateway_svc.dialect import kline_time, market_of, uint
from gateway_svc.errors import bad_request, engine_error
from gateway_svc.respond import json_body_response, json_response
from tradekit.engine_client import EngineClient

if TYPE_CHECKING:
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

routes = web.RouteTableDef()

INTERVALS = {
    "1m": lpb.KLINE_INTERVAL_1M,
    "5m": lpb.KLINE_INTERVAL_5M,
    "15m": lpb.KLINE_INTERVAL_15M,
    "30m": lpb.KLINE_INTERVAL_30M,
    "1h": lpb.KLINE_INTERVAL_1H,
    "4h": lpb.KLINE_INTERVAL_4H,
    "1d": lpb.KLINE_INTERVAL_1D,
    "1w": lpb.KLINE_INTERVAL_1W,
}
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
_BOOK_STATE = {cpb.MARKET_STATUS_OPEN: "Open", cpb.MARKET_STATUS_HALTED: "Closed"}


async def _market_data(request: web.Request) -> dict[str, Any]:
    b = backends(request)
    await limit(request, b.market_rule, f"ip:{request.remote}")
    return await params(request)


@routes.get("/api/v1/status")
async def status(request: web.Request) -> web.Response:
    return json_response({"status": "Ok", "message": None})


@routes.get("/api/v1/time")
async def server_time(request: web.Request) -> web.Response:
    return json_response(int(time.time() * 1000))


@routes.get("/api/v1/assets")
async def assets(request: web.Request) -> web.Response:
    await _market_data(request)
    markets = backends(request).markets
    await markets.all()
    networks = await markets.networks()
    return json_response(
        [
            {
                "symbol": a.symbol,
                "decimals": a.decimals,
                "tokens": [token_json(n) for n in networks if n.asset == a.symbol],
            }
            for a in sorted(markets.assets, key=lambda a: a.symbol)
        ]
    )


def market_json(m: cpb.Market) -> dict[str, Any]:
    return {
        "symbol": m.symbol,
        "baseSymbol": m.base,
        "quoteSymbol": m.quote,
        "marketType": "SPOT",
        "orderBookState": _BOOK_STATE.get(m.status, "Closed"),
        "filters": {
            "price": {"tickSize": m.tick_size, "minPrice": m.tick_size, "maxPrice": m.max_price},
            "quantity": {
                "stepSize": m.step_size,
                "minQuantity": m.min_quantity,
                "maxQuantity": m.max_quantity,
            },
        },
        "minNotional": m.min_notional,
        "makerFeeBps": m.maker_fee_bps,
        "takerFeeBps": m.taker_fee_bps,
    }


@routes.get("/api/v1/markets")
async def markets(request: web.Request) -> web.Response:
    await _market_data(request)
    listed = await backends(request).markets.all()
    return json_response([market_json(m) for m in sorted(listed, key=lambda m: m.symbol)])


@routes.get("/api/v1/market")
async def market(request: web.Request) -> web.Response:
    p = await _market_data(request)
    return json_response(market_json(await backends(request).markets.get(market_of(p))))


@routes.get("/api/v1/securities")
async def securities(request: web.Request) -> web.Response:
    return json_response([])  # no tokenized securities: spot crypto and equities pairs only


@routes.get("/api/v1/depth")
async def depth(request: web.Request) -> web.Response:
    p = await _market_data(request)
    key = (market_of(p), uint(p, "limit", maximum=1000))
    return json_body_response(await backends(request).depth.get(key))


async def depth_body(engine: EngineClient, key: tuple[str, int]) -> bytes:
    """The JSON body of GET /depth for (market, limit)."""
    symbol, requested = key
    reply = await engine.stub.GetDepth(epb.GetDepthRequest(market=symbol, limit=requested))
    if reply.code:
        raise engine_error(reply.code, reply.message)
    return orjson.dumps(
        {
            "symbol": symbol,
            "bids": [[level.price, level.quantity] for level in reply.bids],
            "asks": [[level.price, level.quantity] for level in reply.asks],
            "lastUpdateId": str(reply.seq),
            "timestamp": reply.ts_us,
        }
    )


@routes.get("/api/v1/trades")
async def trades(request: web.Request) -> web.Response:
    p = await _market_data(request)
    key = (market_of(p), uint(p, "limit", maximum=1000) or 100)
    return json_body_response(await backends(request).trades.get(key))


async def trades_body(ledger: LedgerServiceAsyncStub, key: tuple[str, int]) -> bytes:
    """The JSON body of GET /trades for (market, limit)."""
    symbol, requested = key
    reply = await ledger.GetTrades(lpb.GetTradesRequest(market=symbol, limit=requested))
    return orjson.dumps(
        [
            {
                "id": t.trade_id,
                "price": t.price,
                "quantity": t.quantity,
                "quoteQuantity": t.quote_quantity,
                "timestamp": t.ts_us // 1000,
                "isBuyerMaker": t.taker_side == cpb.SIDE_SELL,
            }
            for t in reply.trades
        ]
    )


@routes.get("/api/v1/klines")
async def klines(request: web.Request) -> web.Response:
    p = await _market_data(request)
    symbol = market_of(p)
    interval = INTERVALS.get(str(p.get("interval", "")))
    if interval is None:
        raise bad_request(f"interval must be one of {', '.join(INTERVALS)}", field="interval")
    start, end = uint(p, "startTime"), uint(p, "endTime")
    if end and start and end < start:
        raise bad_request("endTime must not be before startTime", field="endTime")
    reply = await backends(request).ledger.GetKlines(
        lpb.GetKlinesRequest(
            market=symbol,
            interval=interval,
            start_time_us=min(start, 2**40) * 1_000_000,
            # The candle that began within endTime's second is in: ccxt asks up to "now"
            # truncated to seconds, so the current minute's candle must not fall out of it.
            end_time_us=(min(end, 2**40) + 1) * 1_000_000 if end else 0,
            limit=uint(p, "limit", maximum=1000),
        )
    )
    return json_response(
        [
            {
                "start": kline_time(k.open_time_us),
                "end": kline_time(k.close_time_us),
                "open": k.open,
                "high": k.high,
                "low": k.low,
                "close": k.close,
                "volume": k.volume,
                "quoteVolume": k.quote_volume,
                "trades": str(k.trades),
            }
            for k in reply.klines
        ]
    )


def ticker_json(t: lpb.Ticker) -> dict[str, Any]:
    # Backpack's priceChangePercent is a fraction (ccxt multiplies it by 100).
    fraction = "0"
    if t.open and Decimal(t.open):
        fraction = str((Decimal(t.change) / Decimal(t.open)).quantize(Decimal("0.0001")))
    return {
        "symbol": t.market,
        "firstPrice": t.open or None,
        "lastPrice": t.last or None,
        "high": t.high or None,
        "low": t.low or None,
        "volume": t.volume,
        "quoteVolume": t.quote_volume,
        "priceChange": t.change or "0",
        "priceChangePercent": fraction,
        "trades": str(t.trades),
    }


@routes.get("/api/v1/ticker")
@routes.get("/api/v1/ticker/24hr")
async def ticker(request: web.Request) -> web.Response:
    p = await _market_data(request)
    symbol = market_of(p)
    await backends(request).markets.get(symbol)
    reply = await backends(request).ledger.GetTicker(lpb.GetTickerRequest(market=symbol))
    return json_response(ticker_json(reply))


@routes.get("/api/v1/tickers")
async def tickers(request: web.Request) -> web.Response:
    await _market_data(request)
    reply = await backends(request).ledger.GetTickers(lpb.GetTickersRequest())
    return json_response([ticker_json(t) for t in reply.tickers])
