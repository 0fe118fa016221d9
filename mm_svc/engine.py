"""Talking to the engine: the channel, waiting for it at start, market rules, top-ups.

Orders and cancels go through the gateway's `EngineClient` (one batched `Execute` stream);
queries are unary calls on its stub.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal

import grpc

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from mm_svc.units import ZERO, MarketRules, dec, fmt
from tradekit.engine_client import EngineClient, EngineUnavailable

log = logging.getLogger(__name__)

# Errors after which the engine's state is unknown until it is read again.
ENGINE_ERRORS = (EngineUnavailable, grpc.aio.AioRpcError)

_CHANNEL_OPTIONS = [
    # Notice a restarted engine within seconds rather than gRPC's default of up to 2 minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.enable_http_proxy", 0),
]


class StartupError(RuntimeError):
    """The engine does not match the configuration (e.g. a market it does not list)."""


def open_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


async def wait_for_engine(client: EngineClient, retry_seconds: float = 1.0) -> epb.ListMarketsReply:
    """The engine's markets, once it answers; logs while it does not."""
    while True:
        try:
            reply: epb.ListMarketsReply = await client.stub.ListMarkets(
                epb.ListMarketsRequest(), timeout=5
            )
            return reply
        except grpc.aio.AioRpcError as exc:
            log.warning("waiting for the engine: %s", exc.code().name)
        await asyncio.sleep(retry_seconds)


def market_rules(listing: epb.ListMarketsReply, symbols: Iterable[str]) -> dict[str, MarketRules]:
    decimals = {asset.symbol: asset.decimals for asset in listing.assets}
    listed = {market.symbol: market for market in listing.markets}
    missing = [symbol for symbol in symbols if symbol not in listed]
    if missing:
        raise StartupError(
            f"the engine does not list the configured market(s) {', '.join(missing)}"
        )
    return {symbol: MarketRules.from_proto(listed[symbol], decimals) for symbol in symbols}


async def balances(client: EngineClient, user: int) -> dict[str, tuple[Decimal, Decimal]]:
    """(available, locked) per asset of `user`."""
    reply = await client.stub.GetBalances(epb.GetBalancesRequest(user_id=user), timeout=10)
    return {b.asset: (dec(b.available), dec(b.locked)) for b in reply.balances}


async def top_up(
    client: EngineClient, user: int, targets: Mapping[str, Decimal], only: Iterable[str] = ()
) -> dict[str, Decimal]:
    """Deposit what `user` lacks to hold `targets` (available + locked) of each asset, or of
    the assets in `only` when given; returns what was deposited. A demo's funding: the
    engine's Deposit, the same command an operator uses."""
    held = await balances(client, user)
    chosen = set(only)
    deposited: dict[str, Decimal] = {}
    for asset, target in targets.items():
        if chosen and asset not in chosen:
            continue
        available, locked = held.get(asset, (ZERO, ZERO))
        missing = target - available - locked
        if missing <= 0:
            continue
        reply = await client.deposit(
            epb.DepositRequest(user_id=user, asset=asset, amount=fmt(missing))
        )
        if reply.code != cpb.RESULT_CODE_OK:
            raise StartupError(f"deposit of {fmt(missing)} {asset} refused: {reply.message}")
        deposited[asset] = missing
    return deposited
