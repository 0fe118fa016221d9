"""A live order: the engine's mutable record of one accepted order."""

from engine_svc.core.accounts import Balance
from engine_svc.core.commands import Bracket
from engine_svc.core.triggers import FiredTrigger
from engine_svc.core.types import (
    ClientOrderId,
    CloseReason,
    OrderId,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)


class Order:
    """`spend` is the balance the order locks from (quote for a buy, base for a sell),
    `receive` the one its fills credit. `locked` is what it holds locked in `spend`.
    Fees are charged cumulatively: after each fill the order has paid
    ceil(fee_numer / 10_000) in total, so rounding never adds up across fills.
    The `close_*` fields are set only once the order has closed (`ClosedOrders.add`).
    `bracket` is the take-profit / stop-loss its fills create when it closes, if any;
    `fired` the trigger it was, if it was one."""

    __slots__ = (
        "bracket",
        "client_id",
        "close_reason",
        "close_status",
        "closed_at",
        "created",
        "fee_numer",
        "fees",
        "filled",
        "filled_quote",
        "fired",
        "id",
        "locked",
        "market",
        "post_only",
        "price",
        "qty",
        "quote_qty",
        "receive",
        "remaining",
        "side",
        "spend",
        "stp",
        "tif",
        "type",
        "user",
    )

    close_status: OrderStatus
    close_reason: CloseReason
    closed_at: int

    def __init__(
        self,
        order_id: OrderId,
        user: UserId,
        market: str,
        side: Side,
        type_: OrderType,
        tif: TimeInForce,
        stp: SelfTradePrevention,
        post_only: bool,
        client_id: ClientOrderId,
        price: int,
        qty: int,
        quote_qty: int,
        created: int,
        spend: Balance,
        receive: Balance,
    ) -> None:
        self.id = order_id
        self.user = user
        self.market = market
        self.side = side
        self.type = type_
        self.tif = tif
        self.stp = stp
        self.post_only = post_only
        self.client_id = client_id
        self.price = price
        self.qty = qty
        self.quote_qty = quote_qty
        self.remaining = qty
        self.filled = 0
        self.filled_quote = 0
        self.fee_numer = 0
        self.fees = 0
        self.locked = 0
        self.created = created
        self.spend = spend
        self.receive = receive
        self.bracket: Bracket | None = None
        self.fired: FiredTrigger | None = None
