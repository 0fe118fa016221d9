"""The validate stage: decimal strings from the wire become integer commands.

Each field is checked against the scale of its asset; an amount that is not
plain decimal notation, has more decimals than the asset, or is out of range
is rejected with the code of that field. Tick, step and limits are checked by
the engine, which owns the market rules.
"""

from engine_svc.core.commands import Deposit, PlaceOrder, Withdraw
from engine_svc.core.markets import Market
from engine_svc.core.types import (
    DEFAULT_STP,
    ClientOrderId,
    Code,
    OrderType,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tradekit.money import AmountError, parse_units

MAX_CLIENT_ID = 2**63 - 1

# Proto enum ints to core enums (0 = unspecified); dict lookups beat Enum() calls.
_SIDES = {int(v): v for v in Side}
_TYPES = {int(v): v for v in OrderType}
_TIFS: dict[int, TimeInForce] = {0: TimeInForce.GTC, **{int(v): v for v in TimeInForce}}
_STPS: dict[int, SelfTradePrevention] = {
    0: DEFAULT_STP,
    **{int(v): v for v in SelfTradePrevention},
}


def _units(text: str, decimals: int, code: Code, field: str) -> int:
    """The amount in units; "" (not given) is 0, but a given amount must be positive."""
    if not text:
        return 0
    try:
        units = parse_units(text, decimals)
    except AmountError as exc:
        raise Rejected(code, f"{field}: {exc}") from None
    if not units:
        raise Rejected(code, f"{field} must be positive")
    return units


def parse_place(
    markets: dict[str, Market],
    *,
    user: int,
    market: str,
    side: int,
    order_type: int,
    price: str = "",
    quantity: str = "",
    quote_quantity: str = "",
    time_in_force: int = 0,
    post_only: bool = False,
    client_id: int = 0,
    stp: int = 0,
) -> PlaceOrder:
    """Builds a PlaceOrder; enum arguments are the proto's ints, 0 meaning unspecified."""
    m = markets.get(market)
    if m is None:
        raise Rejected(Code.UNKNOWN_MARKET, f"unknown market {market[:40]!r}")
    side_ = _SIDES.get(side)
    type_ = _TYPES.get(order_type)
    tif = _TIFS.get(time_in_force)
    stp_ = _STPS.get(stp)
    if side_ is None or type_ is None or tif is None or stp_ is None:
        raise Rejected(Code.INVALID_ORDER, "side, type, time in force or STP mode is not valid")
    if not time_in_force:
        tif = _default_tif(type_)
    if not 0 <= client_id <= MAX_CLIENT_ID:
        raise Rejected(Code.INVALID_ORDER, "client id out of range")
    if type_ == OrderType.LIMIT and not price:
        raise Rejected(Code.INVALID_PRICE, "limit orders need a price")
    if type_ == OrderType.LIMIT and not quantity:
        raise Rejected(Code.INVALID_QUANTITY, "limit orders need a quantity")
    return PlaceOrder(
        user=UserId(user),
        market=market,
        side=side_,
        type=type_,
        price=_units(price, m.quote.decimals, Code.INVALID_PRICE, "price"),
        qty=_units(quantity, m.base.decimals, Code.INVALID_QUANTITY, "quantity"),
        quote_qty=_units(quote_quantity, m.quote.decimals, Code.INVALID_AMOUNT, "quote quantity"),
        tif=tif,
        post_only=post_only,
        client_id=ClientOrderId(client_id),
        stp=stp_,
    )


def _default_tif(order_type: OrderType) -> TimeInForce:
    return TimeInForce.GTC if order_type == OrderType.LIMIT else TimeInForce.IOC


def parse_funds(
    decimals_of: dict[str, int], *, withdraw: bool, user: int, asset: str, amount: str
) -> Deposit | Withdraw:
    decimals = decimals_of.get(asset)
    if decimals is None:
        raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {asset[:40]!r}")
    units = _units(amount, decimals, Code.INVALID_AMOUNT, "amount")
    if not units:
        raise Rejected(Code.INVALID_AMOUNT, "amount must be positive")
    cls = Withdraw if withdraw else Deposit
    return cls(UserId(user), asset, units)
