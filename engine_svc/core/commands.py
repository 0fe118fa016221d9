"""Commands: what clients ask of the sequencer, already in integer units.

`engine_svc.core.parse` builds them from decimal strings; the journal stores them.
"""

from typing import NamedTuple

from engine_svc.core.capital_messages import CapitalCommand
from engine_svc.core.types import (
    ClientOrderId,
    MarketStatus,
    OrderId,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tradekit.markets import Asset, MarketSpec


class PlaceOrder(NamedTuple):
    user: UserId
    market: str
    side: Side
    type: OrderType
    price: int  # quote units per whole base unit; 0 for market orders
    qty: int  # base units; 0 for a market order by quote amount
    quote_qty: int  # market buy by quote amount: the most quote to spend on notional; else 0
    tif: TimeInForce
    post_only: bool
    client_id: ClientOrderId  # 0 = none
    stp: SelfTradePrevention


class Bracket(NamedTuple):
    """Take-profit and stop-loss attached to an order, in price units; 0 = none. A leg
    with a trigger and no limit price becomes a market order."""

    tp_trigger: int = 0
    tp_limit: int = 0
    sl_trigger: int = 0
    sl_limit: int = 0


class PlaceConditional(NamedTuple):
    """`order` waits until the last trade price reaches `trigger_price` (0 = place it now);
    `bracket` (all zeros = none) creates its take-profit / stop-loss once it has filled."""

    order: PlaceOrder
    trigger_price: int
    bracket: Bracket


class CancelOrder(NamedTuple):
    user: UserId
    market: str  # "" = any
    order_id: OrderId  # 0 = use client_id
    client_id: ClientOrderId


class CancelAllOrders(NamedTuple):
    user: UserId
    market: str  # "" = every market


class Deposit(NamedTuple):
    user: UserId
    asset: str
    amount: int


class Withdraw(NamedTuple):
    user: UserId
    asset: str
    amount: int


class AddAsset(NamedTuple):
    asset: Asset


class AddMarket(NamedTuple):
    spec: MarketSpec


class SetMarketStatus(NamedTuple):
    market: str
    status: MarketStatus


class SetTriggerLimit(NamedTuple):
    """The pending triggers a user may have in all markets (each market has its own too)."""

    total: int


Command = (
    PlaceOrder
    | PlaceConditional
    | CancelOrder
    | CancelAllOrders
    | Deposit
    | Withdraw
    | AddAsset
    | AddMarket
    | SetMarketStatus
    | SetTriggerLimit
    | CapitalCommand
)
