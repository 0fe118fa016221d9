"""The market maker: every cycle it reads its orders, balances and the books from the
engine, plans each market's quotes (`quotes.plan_market`) and sends the difference.

A cycle holds no state the engine does not: it starts from GetOpenOrders and GetBalances,
so after a restart of the maker, or of the engine, or a reply lost on the way, the next
cycle sees what is really open and adopts it. Client order ids name each quote's slot
(`client_ids`), so the engine refuses a second order in a slot: nothing is duplicated.

A cycle that must replace quotes cancels first, waits for the cancels, reads its orders and
balances again, and only then places: the position and funding limits are then checked
against the real state, never against orders whose cancel might still fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import defaultdict
from collections.abc import Awaitable, Iterable
from decimal import Decimal
from typing import TypeVar, cast

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from mm_svc import engine
from mm_svc.client_ids import Side, parse_slot, slot_id
from mm_svc.config import Config, MarketConfig
from mm_svc.fills import FillTracker, Inventory
from mm_svc.metrics import MakerMetrics
from mm_svc.quotes import Cancel, MarketState, OpenQuote, Plan, Quote, plan_market
from mm_svc.reference import BookView, ReferenceSource, source_for
from mm_svc.units import BPS, ZERO, MarketRules, dec, fmt
from tradekit.engine_client import EngineClient

log = logging.getLogger(__name__)

SIDE_NAME: dict[Side, str] = {cpb.SIDE_BUY: "buy", cpb.SIDE_SELL: "sell"}
T = TypeVar("T")


class Snapshot:
    """The maker's open orders (by market) and balances, read from the engine."""

    def __init__(self, orders: list[cpb.Order], held: dict[str, tuple[Decimal, Decimal]]) -> None:
        self.orders: dict[str, list[cpb.Order]] = defaultdict(list)
        for order in orders:
            self.orders[order.market].append(order)
        self.held = held

    def total(self, asset: str) -> Decimal:
        available, locked = self.held.get(asset, (ZERO, ZERO))
        return available + locked

    def funds(self) -> dict[str, Decimal]:
        return {asset: available for asset, (available, _) in self.held.items()}


class Maker:
    def __init__(self, config: Config, client: EngineClient, metrics: MakerMetrics) -> None:
        self.config = config
        self.user = config.maker.user_id
        self.tag = config.maker.client_tag
        self.client = client
        self.metrics = metrics
        self.markets: dict[str, MarketConfig] = {m.symbol: m for m in config.markets}
        self.rules: dict[str, MarketRules] = {}
        self.sources: dict[str, ReferenceSource] = {}
        self.inventory = {symbol: Inventory() for symbol in self.markets}
        self.last_trade: dict[str, Decimal] = {}
        self.fills = FillTracker()
        self.cancelled: set[int] = set()

    async def prepare(self) -> None:
        """Wait for the engine, check the markets, fund the maker when configured to."""
        listing = await engine.wait_for_engine(self.client)
        self.rules = engine.market_rules(listing, self.markets)
        self.sources = {
            symbol: source_for(cfg, self.rules[symbol].tick) for symbol, cfg in self.markets.items()
        }
        if self.config.maker.fund_on_start:
            deposited = await engine.top_up(self.client, self.user, self.config.maker.fund)
            if deposited:
                log.info(
                    "funded",
                    extra={
                        "user": self.user,
                        "deposited": {a: fmt(v) for a, v in deposited.items()},
                    },
                )
        held = await engine.balances(self.client, self.user)
        for symbol, cfg in self.markets.items():
            available, locked = held.get(self.rules[symbol].base, (ZERO, ZERO))
            position = available + locked - cfg.inventory_target
            if abs(position) >= cfg.max_position:
                log.warning(
                    "%s: position %s is at or beyond max_position %s: only the side that "
                    "reduces it is quoted (is inventory_target what the maker holds?)",
                    symbol, fmt(position), fmt(cfg.max_position),
                )  # fmt: skip

    async def run(self) -> None:
        """Cycle until cancelled; an unreachable engine cuts a cycle short, nothing more."""
        while True:
            try:
                await self.cycle()
            except engine.ENGINE_ERRORS as exc:
                self.metrics.engine_errors.inc()
                log.warning("cycle cut short, the engine is unreachable: %s", exc)
            await asyncio.sleep(self.config.maker.cycle_seconds)

    async def shutdown(self) -> None:
        if not self.config.maker.cancel_on_stop:
            return
        for symbol in self.markets:
            reply = await self.client.cancel_all(
                epb.CancelAllOrdersRequest(user_id=self.user, market=symbol)
            )
            log.info(
                "quotes cancelled on stop", extra={"market": symbol, "orders": len(reply.orders)}
            )

    async def cycle(self) -> None:
        snapshot = await self._snapshot()
        states = {symbol: await self._state(symbol, snapshot) for symbol in self.markets}
        plans = self._plans(snapshot, states, replace=True)
        cancels = [(symbol, c) for symbol, plan in plans.items() for c in plan.cancels]
        if cancels:
            await self._cancel(cancels)
            snapshot = await self._snapshot()
            plans = self._plans(snapshot, states, replace=False)
        placed = await self._place(
            [(symbol, q) for symbol, plan in plans.items() for q in plan.places]
        )
        self._report(snapshot, states, plans, placed)
        self.metrics.cycles.inc()

    async def _snapshot(self) -> Snapshot:
        stub = self.client.stub
        reply = await stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=self.user), timeout=10)
        snapshot = Snapshot(list(reply.orders), await engine.balances(self.client, self.user))
        open_ids = set()
        for order in reply.orders:
            if order.market in self.markets:
                open_ids.add(order.order_id)
                self._observe(order)
        # Orders gone since the last look: filled, or cancelled (by us: counted already).
        for order_id in self.fills.tracked() - open_ids:
            if order_id not in self.cancelled:
                found = await stub.GetOrder(
                    epb.GetOrderRequest(user_id=self.user, order_id=order_id), timeout=10
                )
                if found.code == cpb.RESULT_CODE_OK:
                    self._observe(found.order)
            self.fills.forget(order_id)
            self.cancelled.discard(order_id)
        return snapshot

    def _observe(self, order: cpb.Order, *, new: bool = False) -> None:
        fill = self.fills.observe(order, new=new)
        if fill is None:
            return
        side = SIDE_NAME.get(fill.side, "?")
        self.metrics.fills.labels(fill.market, side).inc()
        self.metrics.filled.labels(fill.market, side).inc(float(fill.qty))
        self.inventory[fill.market].apply(fill)
        self.last_trade[fill.market] = fill.price

    async def _state(self, symbol: str, snapshot: Snapshot) -> MarketState:
        """Reference price and position of a market, and the best prices of the others."""
        own: dict[Decimal, Decimal] = defaultdict(Decimal)
        for order in snapshot.orders[symbol]:
            own[dec(order.price)] += dec(order.quantity) - dec(order.executed_quantity)
        depth = await self.client.stub.GetDepth(
            epb.GetDepthRequest(market=symbol, limit=self.markets[symbol].max_open_orders + 1),
            timeout=10,
        )

        def best(levels: list[cpb.PriceLevel]) -> Decimal | None:
            for level in levels:
                price = dec(level.price)
                if dec(level.quantity) > own.get(price, ZERO):
                    return price
            return None

        others_bid, others_ask = best(list(depth.bids)), best(list(depth.asks))
        view = BookView(others_bid, others_ask, self.last_trade.get(symbol))
        reference = self.sources[symbol].price(view) or ZERO
        return MarketState(reference, self._position(symbol, snapshot), others_bid, others_ask)

    def _position(self, symbol: str, snapshot: Snapshot) -> Decimal:
        return snapshot.total(self.rules[symbol].base) - self.markets[symbol].inventory_target

    def _plans(
        self, snapshot: Snapshot, states: dict[str, MarketState], *, replace: bool
    ) -> dict[str, Plan]:
        funds = snapshot.funds()
        plans: dict[str, Plan] = {}
        for symbol, cfg in self.markets.items():
            # After cancels the snapshot is newer than the states: take its position.
            state = dataclasses.replace(states[symbol], position=self._position(symbol, snapshot))
            if state.reference <= 0:
                plans[symbol] = Plan()
                continue
            orders = [self._open_quote(symbol, o) for o in snapshot.orders[symbol]]
            plans[symbol] = plan_market(
                cfg, self.rules[symbol], state, orders, funds, replace=replace
            )
        return plans

    def _open_quote(self, symbol: str, order: cpb.Order) -> OpenQuote:
        slot = parse_slot(self.tag, symbol, order.client_order_id)
        if slot is not None and slot.side != order.side:
            slot = None
        remaining = dec(order.quantity) - dec(order.executed_quantity)
        return OpenQuote(order.order_id, order.side, dec(order.price), remaining, slot)

    async def _cancel(self, cancels: list[tuple[str, Cancel]]) -> None:
        for symbol, cancel in cancels:
            order = cancel.order
            log.debug(
                "requote: cancel",
                extra={
                    "market": symbol,
                    "side": SIDE_NAME.get(order.side),
                    "order_id": order.order_id,
                    "slot": order.slot,
                    "reason": cancel.reason,
                },
            )
        replies = await _all(
            self.client.cancel(
                epb.CancelOrderRequest(user_id=self.user, market=s, order_id=c.order.order_id)
            )
            for s, c in cancels
        )
        for (symbol, cancel), reply in zip(cancels, replies, strict=True):
            if reply.code == cpb.RESULT_CODE_OK:
                self.metrics.cancelled.labels(symbol, SIDE_NAME.get(cancel.order.side, "?")).inc()
                self._observe(reply.order)
                self.cancelled.add(reply.order.order_id)
            elif reply.code != cpb.RESULT_CODE_ORDER_NOT_FOUND:  # gone already: filled
                self._rejected(symbol, reply.code, reply.message)

    async def _place(self, quotes: list[tuple[str, Quote]]) -> list[tuple[str, Quote]]:
        """Places the quotes; returns those the engine accepted."""
        for symbol, quote in quotes:
            log.debug(
                "requote: place",
                extra={
                    "market": symbol,
                    "side": SIDE_NAME.get(quote.slot.side),
                    "quote_level": quote.slot.level,
                    "price": fmt(quote.price),
                    "quantity": fmt(quote.qty),
                },
            )
        replies = await _all(
            self.client.place(
                epb.PlaceOrderRequest(
                    user_id=self.user,
                    market=symbol,
                    side=quote.slot.side,
                    type=cpb.ORDER_TYPE_LIMIT,
                    price=fmt(quote.price),
                    quantity=fmt(quote.qty),
                    time_in_force=cpb.TIME_IN_FORCE_GTC,
                    post_only=True,
                    client_order_id=slot_id(self.tag, symbol, quote.slot),
                )
            )
            for symbol, quote in quotes
        )
        placed = []
        for (symbol, quote), reply in zip(quotes, replies, strict=True):
            if reply.code == cpb.RESULT_CODE_OK:
                self.metrics.placed.labels(symbol, SIDE_NAME[quote.slot.side]).inc()
                self._observe(reply.order, new=True)
                placed.append((symbol, quote))
            else:
                self._rejected(symbol, reply.code, reply.message)
        return placed

    def _rejected(self, symbol: str, code: int, message: str) -> None:
        reason = cpb.ResultCode.Name(code)  # type: ignore[arg-type]
        self.metrics.rejected.labels(symbol, reason).inc()
        log.info(
            "engine refused a command",
            extra={"market": symbol, "reason": reason, "detail": message},
        )

    def _report(
        self,
        snapshot: Snapshot,
        states: dict[str, MarketState],
        plans: dict[str, Plan],
        placed: list[tuple[str, Quote]],
    ) -> None:
        m = self.metrics
        for asset, (available, locked) in snapshot.held.items():
            m.inventory.labels(asset).set(float(available + locked))
        new = defaultdict(list)
        for symbol, quote in placed:
            new[symbol].append((quote.slot.side, quote.price))
        for symbol, plan in plans.items():
            state, inventory = states[symbol], self.inventory[symbol]
            quoted = [(o.side, o.price) for o in plan.kept if o.slot is not None] + new[symbol]
            bids = [price for side, price in quoted if side == cpb.SIDE_BUY]
            asks = [price for side, price in quoted if side == cpb.SIDE_SELL]
            if bids and asks and state.reference > 0:
                m.spread.labels(symbol).set(float((min(asks) - max(bids)) / state.reference * BPS))
            m.reference.labels(symbol).set(float(state.reference))
            m.position.labels(symbol).set(float(self._position(symbol, snapshot)))
            m.open_orders.labels(symbol).set(len(plan.kept) + len(new[symbol]))
            m.realized.labels(symbol).set(float(inventory.realized))
            m.unrealized.labels(symbol).set(float(inventory.unrealized(state.reference)))


async def _all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Runs the calls together, so their commands share stream batches in this order; the
    first error is raised once all are done, so none is left unobserved."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[T], results)
