"""markets list/add/halt/resume and assets add: the engine's listing, changed by admin calls."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchangectl.backends import Backends
from exchangectl.errors import CtlError, check_result
from exchangectl.output import Result, enum_name, table


def market_dict(m: cpb.Market) -> dict[str, Any]:
    return {
        "symbol": m.symbol,
        "base": m.base,
        "quote": m.quote,
        "status": enum_name(cpb.MarketStatus.Name(m.status), "MARKET_STATUS_"),
        "tick_size": m.tick_size,
        "step_size": m.step_size,
        "min_quantity": m.min_quantity,
        "min_notional": m.min_notional,
        "max_quantity": m.max_quantity,
        "max_price": m.max_price,
        "maker_fee_bps": m.maker_fee_bps,
        "taker_fee_bps": m.taker_fee_bps,
        "max_triggers": m.max_triggers,
    }


async def list_markets(b: Backends, args: argparse.Namespace) -> Result:
    reply = await b.from_engine(b.engine.ListMarkets(epb.ListMarketsRequest(), timeout=b.timeout))
    markets = [market_dict(m) for m in reply.markets]
    assets = [{"symbol": a.symbol, "decimals": a.decimals} for a in reply.assets]
    rows = [
        [m["symbol"], m["status"], m["tick_size"], m["step_size"], m["min_quantity"],
         m["min_notional"], m["maker_fee_bps"], m["taker_fee_bps"]]
        for m in markets
    ]  # fmt: skip
    text = table(
        ["MARKET", "STATUS", "TICK", "STEP", "MIN QTY", "MIN NOTIONAL", "MAKER BPS", "TAKER BPS"],
        rows,
    )
    listed = ", ".join(f"{a['symbol']} ({a['decimals']})" for a in assets) or "(none)"
    return Result({"markets": markets, "assets": assets}, f"{text}\n\nassets: {listed}")


async def add_market(b: Backends, args: argparse.Namespace) -> Result:
    symbol: str = args.symbol
    base, quote = args.base, args.quote
    if base is None or quote is None:
        parts = symbol.split("_")
        if len(parts) != 2:
            raise CtlError("USAGE", f"give --base and --quote: {symbol!r} is not BASE_QUOTE", 2)
        base, quote = base or parts[0], quote or parts[1]
    market = cpb.Market(
        symbol=symbol, base=base, quote=quote, tick_size=args.tick, step_size=args.step,
        min_quantity=args.min_quantity, min_notional=args.min_notional,
        max_quantity=args.max_quantity, max_price=args.max_price,
        maker_fee_bps=args.maker_fee_bps, taker_fee_bps=args.taker_fee_bps,
        max_triggers=args.max_triggers,
    )  # fmt: skip
    reply = await b.from_engine(
        b.engine.AddMarket(epb.AddMarketRequest(market=market), metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    data = {"market": market_dict(market) | {"status": "OPEN"}, "seq": reply.seq}
    return Result(data, f"listed {symbol} ({base}/{quote}), open for trading (seq {reply.seq})")


async def add_asset(b: Backends, args: argparse.Namespace) -> Result:
    asset = cpb.Asset(symbol=args.symbol, decimals=args.decimals)
    reply = await b.from_engine(
        b.engine.AddAsset(epb.AddAssetRequest(asset=asset), metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    data = {"asset": {"symbol": asset.symbol, "decimals": asset.decimals}, "seq": reply.seq}
    return Result(data, f"listed asset {asset.symbol} with {asset.decimals} decimals")


async def halt(b: Backends, args: argparse.Namespace) -> Result:
    return await _set_status(b, args.symbol, cpb.MARKET_STATUS_HALTED)


async def resume(b: Backends, args: argparse.Namespace) -> Result:
    return await _set_status(b, args.symbol, cpb.MARKET_STATUS_OPEN)


async def _set_status(b: Backends, symbol: str, status: cpb.MarketStatus.ValueType) -> Result:
    request = epb.SetMarketStatusRequest(market=symbol, status=status)
    reply = await b.from_engine(
        b.engine.SetMarketStatus(request, metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    name = enum_name(cpb.MarketStatus.Name(status), "MARKET_STATUS_")
    note = "new orders are refused; cancels still work" if name == "HALTED" else "trading again"
    return Result(
        {"market": symbol, "status": name, "seq": reply.seq}, f"{symbol} is {name}: {note}"
    )


async def set_trigger_limit(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.SetTriggerLimitRequest(total=args.total)
    reply = await b.from_engine(
        b.engine.SetTriggerLimit(request, metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    return Result(
        {"max_triggers_total": args.total, "seq": reply.seq},
        f"a user may have {args.total} pending triggers in all markets"
        + ("" if reply.seq else " (unchanged)"),
    )
