"""Random but plausible trading against a real engine, for the ledger's tests.

Five users deposit, then place limit orders around a drifting mid price on TATA_INR and
BTC_USDT (some marketable, some post-only, some with client ids), market orders by quantity
and by quote amount, cancels of their own open orders, cancel-alls and withdrawals. Every
request goes through the engine's gRPC API like a client's; rejections (for instance
insufficient funds) are part of the mix and must leave no trace in the ledger.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

USERS = (1, 2, 3, 4, 5)
DEPOSITS = {"INR": "1000000", "TATA": "5000", "USDT": "500000", "BTC": "20"}


@dataclass
class MarketShape:
    symbol: str
    mid: int  # in ticks
    tick: str
    tick_decimals: int
    qty_decimals: int
    max_qty_units: int


MARKETS = (
    MarketShape("TATA_INR", 160_000, "0.01", 2, 0, 20),
    MarketShape("BTC_USDT", 6_000_000, "0.01", 2, 4, 5_000),
)


def _decimal(units: int, decimals: int) -> str:
    if decimals == 0:
        return str(units)
    text = str(units).rjust(decimals + 1, "0")
    return f"{text[:-decimals]}.{text[-decimals:]}"


@dataclass
class Trader:
    """Sends random commands; remembers which orders it placed so that it can cancel them."""

    stub: EngineServiceAsyncStub
    seed: int = 1
    rng: random.Random = field(init=False)
    open_orders: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    async def fund(self) -> None:
        for user in USERS:
            for asset, amount in DEPOSITS.items():
                reply = await self.stub.Deposit(
                    epb.DepositRequest(user_id=user, asset=asset, amount=amount)
                )
                assert reply.code == 0, reply.message

    async def step(self) -> None:
        rng = self.rng
        user = rng.choice(USERS)
        roll = rng.random()
        if roll < 0.70:
            await self._limit(user)
        elif roll < 0.80:
            await self._market(user)
        elif roll < 0.95:
            await self._cancel(user)
        elif roll < 0.97:
            cancelled = await self.stub.CancelAllOrders(epb.CancelAllOrdersRequest(user_id=user))
            self.open_orders.pop(user, None)
            self._count(cancelled.code)
        else:
            asset = rng.choice(list(DEPOSITS))
            reply = await self.stub.Withdraw(
                epb.WithdrawRequest(user_id=user, asset=asset, amount="1")
            )
            self._count(reply.code)

    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await self.step()

    def _count(self, code: int) -> None:
        if code == 0:
            self.accepted += 1
        else:
            self.rejected += 1

    async def _limit(self, user: int) -> None:
        rng = self.rng
        m = rng.choice(MARKETS)
        m.mid += rng.choice((-1, 0, 0, 1))
        side = rng.choice((cpb.SIDE_BUY, cpb.SIDE_SELL))
        offset = rng.randint(-3, 12)  # negative: crosses the spread
        ticks = m.mid - offset if side == cpb.SIDE_BUY else m.mid + offset
        request = epb.PlaceOrderRequest(
            user_id=user,
            market=m.symbol,
            side=side,
            type=cpb.ORDER_TYPE_LIMIT,
            price=_decimal(ticks, m.tick_decimals),
            quantity=_decimal(rng.randint(1, m.max_qty_units), m.qty_decimals),
            time_in_force=rng.choice(
                (cpb.TIME_IN_FORCE_GTC,) * 6 + (cpb.TIME_IN_FORCE_IOC, cpb.TIME_IN_FORCE_FOK)
            ),
            post_only=rng.random() < 0.1,
            client_order_id=rng.randint(1, 10**6) if rng.random() < 0.3 else 0,
        )
        if request.post_only:
            request.time_in_force = cpb.TIME_IN_FORCE_GTC
        reply = await self.stub.PlaceOrder(request)
        self._count(reply.code)
        if reply.code == 0 and reply.order.status in (
            cpb.ORDER_STATUS_NEW,
            cpb.ORDER_STATUS_PARTIALLY_FILLED,
        ):
            self.open_orders.setdefault(user, []).append((m.symbol, reply.order.order_id))

    async def _market(self, user: int) -> None:
        rng = self.rng
        m = rng.choice(MARKETS)
        side = rng.choice((cpb.SIDE_BUY, cpb.SIDE_SELL))
        request = epb.PlaceOrderRequest(
            user_id=user, market=m.symbol, side=side, type=cpb.ORDER_TYPE_MARKET
        )
        if side == cpb.SIDE_BUY and rng.random() < 0.5:
            request.quote_quantity = str(rng.randint(100, 20_000))
        else:
            request.quantity = _decimal(rng.randint(1, m.max_qty_units), m.qty_decimals)
        reply = await self.stub.PlaceOrder(request)
        self._count(reply.code)

    async def _cancel(self, user: int) -> None:
        mine = self.open_orders.get(user)
        if not mine:
            return
        market, order_id = mine.pop(self.rng.randrange(len(mine)))
        reply = await self.stub.CancelOrder(
            epb.CancelOrderRequest(user_id=user, market=market, order_id=order_id)
        )
        self._count(reply.code)  # already filled: ORDER_NOT_FOUND, which is fine
