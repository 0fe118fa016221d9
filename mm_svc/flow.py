"""python -m mm_svc.flow: simulated traders, so a local exchange shows trades out of the box.

A handful of funded users (`[flow]` in the configuration) send orders at `rate` per second
on average (Poisson arrivals), each on a random market with `flow_size` > 0, a random side
and a random quantity up to `flow_size`: market orders (IOC) with probability
`market_order_share`, otherwise GTC limit orders within `limit_offset_bps` of the mid on
either side of it, so some take liquidity and some rest. A user keeps at most
`max_open_per_user` resting orders (the oldest is cancelled). A user short of funds is
topped up again to `[flow.fund]` through the engine's Deposit: this is a simulation.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from decimal import Decimal

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from mm_svc import engine
from mm_svc.config import Config
from mm_svc.engine import StartupError
from mm_svc.metrics import FlowMetrics
from mm_svc.service import serve
from mm_svc.settings import MmSettings
from mm_svc.units import BPS, ZERO, MarketRules, dec, fmt
from servicekit.process import start_process
from tradekit.engine_client import EngineClient

log = logging.getLogger(__name__)

HEALTH_PORT = 50062
METRICS_PORT = 9162
SIDES = (cpb.SIDE_BUY, cpb.SIDE_SELL)
RESTING = (cpb.ORDER_STATUS_NEW, cpb.ORDER_STATUS_PARTIALLY_FILLED)


class Flow:
    def __init__(self, config: Config, client: EngineClient, metrics: FlowMetrics) -> None:
        self.config = config.flow
        self.markets = [m for m in config.markets if m.flow_size > 0]
        self.client = client
        self.metrics = metrics
        self.rng = random.Random(config.flow.seed)
        self.rules: dict[str, MarketRules] = {}
        self.resting: dict[int, deque[tuple[str, int]]] = {u: deque() for u in self.config.users}

    async def prepare(self) -> None:
        """Wait for the engine, check the markets, fund the users, cancel their old orders."""
        if not self.config.users:
            raise StartupError("flow.users is empty: there is nobody to trade")
        if not self.markets:
            raise StartupError("no market has a flow_size > 0: there is nothing to trade")
        listing = await engine.wait_for_engine(self.client)
        self.rules = engine.market_rules(listing, [m.symbol for m in self.markets])
        for user in self.config.users:
            await engine.top_up(self.client, user, self.config.fund)
            await self._cancel_all(user)

    async def run(self) -> None:
        if self.config.rate <= 0:
            log.info("flow rate is 0: sending nothing")
            await asyncio.Event().wait()
        while True:
            try:
                await self.step()
            except engine.ENGINE_ERRORS as exc:
                self.metrics.engine_errors.inc()
                log.warning("order not sent, the engine is unreachable: %s", exc)
            await asyncio.sleep(self.rng.expovariate(self.config.rate))

    async def shutdown(self) -> None:
        if self.config.cancel_on_stop:
            for user in self.config.users:
                await self._cancel_all(user)

    async def step(self) -> epb.PlaceOrderReply | None:
        """Send one random order; its reply, or None when there was no book to trade on."""
        rng = self.rng
        market = rng.choice(self.markets)
        rules = self.rules[market.symbol]
        user = rng.choice(self.config.users)
        side = rng.choice(SIDES)
        side_name = "buy" if side == cpb.SIDE_BUY else "sell"
        depth = await self.client.stub.GetDepth(
            epb.GetDepthRequest(market=market.symbol, limit=1), timeout=10
        )
        prices = [dec(levels[0].price) for levels in (depth.bids, depth.asks) if levels]
        if not prices:
            self.metrics.orders.labels(market.symbol, "none", side_name, "NO_BOOK").inc()
            return None
        mid = sum(prices, ZERO) / len(prices)
        smallest = max(1, int(-(-rules.min_qty // rules.step)))
        qty = rules.step * rng.randint(smallest, max(smallest, int(market.flow_size // rules.step)))
        request = epb.PlaceOrderRequest(
            user_id=user, market=market.symbol, side=side, quantity=fmt(qty)
        )
        if rng.random() < self.config.market_order_share:
            kind = "market"
            request.type = cpb.ORDER_TYPE_MARKET
            request.time_in_force = cpb.TIME_IN_FORCE_IOC
        else:
            kind = "limit"
            # A positive offset is passive (a bid below the mid), a negative one takes.
            bound = float(self.config.limit_offset_bps)
            offset = Decimal(f"{rng.uniform(-bound, bound):.2f}") / BPS
            if side == cpb.SIDE_BUY:
                price = rules.price_down(mid * (1 - offset))
            else:
                price = rules.price_up(mid * (1 + offset))
            if not rules.acceptable(price, qty):
                self.metrics.orders.labels(market.symbol, kind, side_name, "SKIPPED").inc()
                return None
            request.type = cpb.ORDER_TYPE_LIMIT
            request.time_in_force = cpb.TIME_IN_FORCE_GTC
            request.price = fmt(price)
        reply = await self.client.place(request)
        result = cpb.ResultCode.Name(reply.code)
        self.metrics.orders.labels(market.symbol, kind, side_name, result).inc()
        if reply.code == cpb.RESULT_CODE_OK:
            executed = dec(reply.order.executed_quantity)
            if executed:
                self.metrics.fills.labels(market.symbol).inc(float(executed))
            if reply.order.status in RESTING:
                await self._rested(user, market.symbol, reply.order.order_id)
        elif reply.code == cpb.RESULT_CODE_INSUFFICIENT_FUNDS:
            short = rules.quote if side == cpb.SIDE_BUY else rules.base
            for asset, amount in (
                await engine.top_up(self.client, user, self.config.fund, [short])
            ).items():
                self.metrics.deposits.labels(asset).inc(float(amount))
        return reply

    async def _rested(self, user: int, market: str, order_id: int) -> None:
        """Remember a resting order; cancel the user's oldest beyond the limit."""
        orders = self.resting[user]
        orders.append((market, order_id))
        while len(orders) > self.config.max_open_per_user:
            old_market, old_id = orders.popleft()
            # ORDER_NOT_FOUND when it filled meanwhile: nothing to do then.
            await self.client.cancel(
                epb.CancelOrderRequest(user_id=user, market=old_market, order_id=old_id)
            )

    async def _cancel_all(self, user: int) -> None:
        for market in self.markets:
            await self.client.cancel_all(
                epb.CancelAllOrdersRequest(user_id=user, market=market.symbol)
            )
        self.resting[user].clear()


def main() -> None:
    settings = start_process("mm", lambda: MmSettings.from_env(HEALTH_PORT, METRICS_PORT))
    asyncio.run(
        serve(
            settings,
            "flow",
            lambda client, registry: Flow(settings.config, client, FlowMetrics(registry)),
        )
    )


if __name__ == "__main__":
    main()
