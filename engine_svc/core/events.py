"""Events: what the sequencer decided, each with a global, gap-free `seq`.

Amounts are integers in the smallest unit of their asset. A consumer can
rebuild every balance from the events alone:
- Deposited / Withdrawn move `amount` into / out of available;
- OrderAccepted moves `locked` of `locked_asset` from available to locked;
- TradeExecuted: the buyer's locked quote pays quote_qty + buyer fee and their
  available base gains qty; the seller's locked base pays qty and their
  available quote gains quote_qty - seller fee; the fee account gains both fees;
- OrderRested / OrderClosed move `unlocked` from locked back to available.
Trigger events move no money: a pending trigger locks nothing. When one fires,
TriggerFired is followed either by the events of the order it became (with the
same order id, from OrderAccepted on) or by TriggerFailed.
"""

from typing import NamedTuple

from engine_svc.core.capital_messages import CapitalEvent
from engine_svc.core.types import (
    ClientOrderId,
    CloseReason,
    MarketStatus,
    OrderId,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradeId,
    UserId,
)
from tradekit.markets import Asset, MarketSpec


class Deposited(NamedTuple):
    seq: int
    ts: int
    user: UserId
    asset: str
    amount: int


class Withdrawn(NamedTuple):
    seq: int
    ts: int
    user: UserId
    asset: str
    amount: int


class OrderAccepted(NamedTuple):
    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    side: Side
    type: OrderType
    tif: TimeInForce
    stp: SelfTradePrevention
    post_only: bool
    client_id: ClientOrderId
    price: int
    qty: int
    quote_qty: int
    locked_asset: str
    locked: int


class TradeExecuted(NamedTuple):
    seq: int
    ts: int
    trade_id: TradeId
    market: str
    price: int
    qty: int
    quote_qty: int
    maker_order: OrderId
    maker_user: UserId
    taker_order: OrderId
    taker_user: UserId
    taker_side: Side
    maker_fee: int
    taker_fee: int
    maker_client_id: ClientOrderId
    taker_client_id: ClientOrderId


class OrderRested(NamedTuple):
    """A buy order that took liquidity now rests; its lock shrank to what the remainder needs."""

    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    unlocked_asset: str
    unlocked: int


class OrderClosed(NamedTuple):
    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    side: Side
    status: OrderStatus
    reason: CloseReason
    unlocked_asset: str
    unlocked: int
    filled: int
    filled_quote: int
    client_id: ClientOrderId
    price: int  # 0 for a market order
    remaining: int  # base still open when it closed (0 for a market order by quote amount)


class TriggerPlaced(NamedTuple):
    """A conditional order now waits: it fires when the last price reaches `trigger_price`
    from below (`above`: it lay above the last price) or from above. `parent` is set on a
    take-profit / stop-loss leg, `sibling` on a leg whose other leg is pending too."""

    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    side: Side
    type: OrderType
    tif: TimeInForce
    stp: SelfTradePrevention
    post_only: bool
    client_id: ClientOrderId
    price: int
    qty: int
    quote_qty: int
    trigger_price: int
    above: bool
    tp_trigger: int
    tp_limit: int
    sl_trigger: int
    sl_limit: int
    parent: OrderId
    sibling: OrderId


class TriggerFired(NamedTuple):
    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    last_price: int  # the market's last trade price when it fired


class TriggerFailed(NamedTuple):
    """The order a fired trigger became was refused (`code`); nothing else changed."""

    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    code: int
    message: str


class TriggerCancelled(NamedTuple):
    seq: int
    ts: int
    order_id: OrderId
    user: UserId
    market: str
    reason: CloseReason


class AssetListed(NamedTuple):
    seq: int
    ts: int
    asset: Asset


class MarketListed(NamedTuple):
    seq: int
    ts: int
    spec: MarketSpec


class MarketStatusChanged(NamedTuple):
    seq: int
    ts: int
    market: str
    status: MarketStatus


class TriggerLimitSet(NamedTuple):
    seq: int
    ts: int
    total: int


Event = (
    Deposited
    | Withdrawn
    | OrderAccepted
    | TradeExecuted
    | OrderRested
    | OrderClosed
    | AssetListed
    | MarketListed
    | MarketStatusChanged
    | TriggerLimitSet
    | TriggerPlaced
    | TriggerFired
    | TriggerFailed
    | TriggerCancelled
    | CapitalEvent
)
