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


Command = (
    PlaceOrder
    | CancelOrder
    | CancelAllOrders
    | Deposit
    | Withdraw
    | AddAsset
    | AddMarket
    | SetMarketStatus
    | CapitalCommand
)
