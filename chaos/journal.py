"""The engine's history as the truth to check against: its events from seq 1 (Subscribe
replays them from the journal on disk), folded into orders, triggers, trades, transfers,
deposits and withdrawals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tradekit.markets import ONRAMP_NETWORK

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub


@dataclass
class OrderHistory:
    order_id: int
    user_id: int
    client_id: int
    market: str
    executed: Decimal = Decimal(0)
    closed_status: int = 0  # 0 while open
    closed_executed: Decimal = Decimal(0)
    closes: int = 0

    @property
    def status(self) -> int:
        if self.closed_status:
            return self.closed_status
        if self.executed:
            return cpb.ORDER_STATUS_PARTIALLY_FILLED
        return cpb.ORDER_STATUS_NEW


@dataclass
class TriggerHistory:
    """A conditional order from its TriggerPlaced on. `high` / `low` are the market's trade
    prices from its placement (the last price then included) until it fired or ended: what
    it has been offered."""

    order_id: int
    user_id: int
    client_id: int
    market: str
    price: Decimal
    above: bool  # fires at a trade >= price, else at one <= price
    parent: int  # a take-profit / stop-loss leg: the order whose fills made it
    high: Decimal | None
    low: Decimal | None
    placements: int = 1
    fired: int = 0
    fired_at: Decimal | None = None  # the last price its TriggerFired event carried
    failed: int = 0
    cancelled: int = 0

    def reached(self, price: Decimal | None) -> bool:
        return price is not None and (price >= self.price if self.above else price <= self.price)

    @property
    def pending(self) -> bool:
        return not (self.fired or self.cancelled)


@dataclass
class DepositHistory:
    """A chain transfer from its first DepositRecorded on: every report that changed it."""

    user_id: int
    asset: str
    quantity: Decimal
    status: int
    confirmations: int
    records: int = 0
    credits: int = 0  # events that credited it: at most one
    credited: Decimal = Decimal(0)


@dataclass
class WithdrawalHistory:
    """A withdrawal from its request on. Each WithdrawalChanged adds what it moved."""

    withdrawal_id: int
    user_id: int
    client_id: int
    asset: str
    network: str
    quantity: Decimal
    fee: Decimal
    status: int
    tx_hash: str = ""
    requests: int = 0  # events that locked: exactly one
    locked: Decimal = Decimal(0)
    unlocked: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    fee_paid: Decimal = Decimal(0)
    releases: int = 0  # declines that unlocked
    payments: int = 0  # completions that paid
    held: bool = False  # it waited for an operator's approval
    memo: str = ""

    @property
    def open(self) -> bool:
        return self.status in (
            cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL,
            cpb.WITHDRAWAL_STATUS_APPROVED,
        )


@dataclass
class Truth:
    last_seq: int = 0
    out_of_order: int = 0  # events whose seq is not the previous one + 1
    decimals: dict[str, int] = field(default_factory=dict)  # asset -> decimals
    base_of: dict[str, str] = field(default_factory=dict)  # market -> base asset
    quote_of: dict[str, str] = field(default_factory=dict)  # market -> quote asset
    orders: dict[int, OrderHistory] = field(default_factory=dict)
    accepted: Counter[int] = field(default_factory=Counter)  # OrderAccepted per order id
    by_client: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    trades: dict[int, cpb.Fill] = field(default_factory=dict)
    trade_events: int = 0
    triggers: dict[int, TriggerHistory] = field(default_factory=dict)
    last_price: dict[str, Decimal] = field(default_factory=dict)  # market -> last trade price
    deposits: Counter[tuple[int, str, Decimal]] = field(default_factory=Counter)
    withdrawals: Counter[tuple[int, str, Decimal]] = field(default_factory=Counter)
    net: Counter[str] = field(default_factory=Counter)  # asset -> deposits - withdrawals (units)
    capital_deposits: dict[tuple[str, str], DepositHistory] = field(default_factory=dict)
    capital_withdrawals: dict[int, WithdrawalHistory] = field(default_factory=dict)
    withdrawals_by_client: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    unknown_triggers: int = 0  # fired, failed or cancelled events of no placed trigger
    _waiting: dict[str, dict[int, TriggerHistory]] = field(default_factory=dict)  # by market

    def units(self, asset: str, amount: str | Decimal) -> int:
        return int(Decimal(amount).scaleb(self.decimals[asset]))

    def apply(self, event: cpb.EngineEvent) -> None:
        if event.seq != self.last_seq + 1:
            self.out_of_order += 1
        self.last_seq = event.seq
        kind = event.WhichOneof("body")
        if kind == "asset_listed":
            self.decimals[event.asset_listed.asset.symbol] = event.asset_listed.asset.decimals
        elif kind == "market_listed":
            m = event.market_listed.market
            self.base_of[m.symbol], self.quote_of[m.symbol] = m.base, m.quote
        elif kind == "deposited":
            d = event.deposited
            self.deposits[(d.user_id, d.asset, Decimal(d.amount))] += 1
            self.net[d.asset] += self.units(d.asset, d.amount)
        elif kind == "withdrawn":
            w = event.withdrawn
            self.withdrawals[(w.user_id, w.asset, Decimal(w.amount))] += 1
            self.net[w.asset] -= self.units(w.asset, w.amount)
        elif kind == "deposit_recorded":
            self._deposit_recorded(event.deposit_recorded)
        elif kind == "withdrawal_changed":
            self._withdrawal_changed(event.withdrawal_changed)
        elif kind == "order_accepted":
            o = event.order_accepted.order
            self.accepted[o.order_id] += 1
            self.orders[o.order_id] = OrderHistory(
                o.order_id, o.user_id, o.client_order_id, o.market
            )
            self._client_order(o)
        elif kind == "trade_executed":
            fill = event.trade_executed.fill
            self.trade_events += 1
            self.trades[fill.trade_id] = fill
            self._traded(fill.market, Decimal(fill.price))
            for order_id in (fill.maker_order_id, fill.taker_order_id):
                if order_id in self.orders:
                    self.orders[order_id].executed += Decimal(fill.quantity)
        elif kind == "order_closed":
            c = event.order_closed
            order = self.orders.get(c.order_id)
            if order is not None:
                order.closes += 1
                order.closed_status = c.status
                order.closed_executed = Decimal(c.executed_quantity)
        elif kind in ("trigger_placed", "trigger_fired", "trigger_failed", "trigger_cancelled"):
            self._trigger(event)

    def _deposit_recorded(self, e: cpb.DepositRecorded) -> None:
        d, credited = e.deposit, _amount(e.credited)
        key = (d.network, d.transaction_hash)
        known = self.capital_deposits.get(key)
        if known is None:
            known = self.capital_deposits[key] = DepositHistory(
                d.user_id, d.asset, Decimal(d.quantity), d.status, d.confirmations
            )
        known.records += 1
        known.status, known.confirmations = d.status, d.confirmations
        if credited:
            known.credits += 1
            known.credited += credited
            self.net[d.asset] += self.units(d.asset, credited)
            if d.network == ONRAMP_NETWORK:  # the faucet's: checked with the load's transfers
                self.deposits[(d.user_id, d.asset, Decimal(d.quantity))] += 1

    def _withdrawal_changed(self, e: cpb.WithdrawalChanged) -> None:
        w = e.withdrawal
        known = self.capital_withdrawals.get(w.withdrawal_id)
        if known is None:
            known = self.capital_withdrawals[w.withdrawal_id] = WithdrawalHistory(
                w.withdrawal_id, w.user_id, w.client_id, w.asset, w.network,
                Decimal(w.quantity), Decimal(w.fee), w.status,
                held=w.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL, memo=w.memo,
            )  # fmt: skip
            ids = self.withdrawals_by_client.setdefault((w.user_id, w.client_id), [])
            ids.append(w.withdrawal_id)
        known.status, known.tx_hash = w.status, w.transaction_hash
        locked, unlocked = _amount(e.locked), _amount(e.unlocked)
        paid, fee_paid = _amount(e.paid), _amount(e.fee_paid)
        known.requests += locked > 0
        known.releases += unlocked > 0
        known.payments += paid > 0
        known.locked += locked
        known.unlocked += unlocked
        known.paid += paid
        known.fee_paid += fee_paid
        self.net[w.asset] -= self.units(w.asset, paid)  # the fee stays, in the fee account

    def _client_order(self, o: cpb.Order) -> None:
        """A client id's orders; a fired trigger's order keeps the trigger's id: one entry."""
        if o.client_order_id:
            ids = self.by_client.setdefault((o.user_id, o.client_order_id), [])
            if o.order_id not in ids:
                ids.append(o.order_id)

    def _traded(self, market: str, price: Decimal) -> None:
        self.last_price[market] = price
        for t in self._waiting.get(market, {}).values():
            t.high = price if t.high is None else max(t.high, price)
            t.low = price if t.low is None else min(t.low, price)

    def _trigger(self, event: cpb.EngineEvent) -> None:
        kind = event.WhichOneof("body")
        if kind == "trigger_placed":
            o = event.trigger_placed.order
            known = self.triggers.get(o.order_id)
            if known is not None:
                known.placements += 1
                return
            last = self.last_price.get(o.market)
            placed = self.triggers[o.order_id] = TriggerHistory(
                o.order_id, o.user_id, o.client_order_id, o.market, Decimal(o.trigger_price),
                o.trigger_above, o.parent_order_id, last, last,
            )  # fmt: skip
            self._waiting.setdefault(o.market, {})[o.order_id] = placed
            self._client_order(o)
            return
        body: Any = getattr(event, str(kind))
        t = self.triggers.get(body.order_id)
        if t is None:
            self.unknown_triggers += 1
            return
        self._waiting.get(t.market, {}).pop(t.order_id, None)
        if kind == "trigger_fired":
            t.fired += 1
            t.fired_at = Decimal(body.last_price)
        elif kind == "trigger_failed":
            t.failed += 1
        else:
            t.cancelled += 1


def _amount(text: str) -> Decimal:
    return Decimal(text or 0)  # an unset amount field: nothing moved


async def read_truth(engine: EngineServiceAsyncStub, last_seq: int) -> Truth:
    """Events 1..last_seq folded into a Truth."""
    truth = Truth()
    call = engine.Subscribe(epb.SubscribeRequest(from_seq=1), timeout=600)
    try:
        async for batch in call:
            for event in batch.events:
                if event.seq > last_seq:
                    return truth
                truth.apply(event)
            if truth.last_seq >= last_seq:
                return truth
    finally:
        call.cancel()
    return truth
