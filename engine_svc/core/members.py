"""Enum members as module constants, for the engine's hot paths.

Looking a member up on its class is slow on a hot path. Members are compared by identity
(`is`), which skips the generic comparison an IntEnum otherwise takes: commands and orders
always hold members, since every builder of commands (parse, journal, snapshots) makes
them and mypy checks the rest. They are `Final`: the compiled core then reads each from a C
static; a plain module name imported from another module is a dict lookup per use.
"""

from typing import Final

from engine_svc.core.commands import Bracket
from engine_svc.core.triggers import TriggerState
from engine_svc.core.types import (
    CloseReason,
    MarketStatus,
    OrderId,
    OrderStatus,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
)

BUY: Final = Side.BUY
SELL: Final = Side.SELL
LIMIT: Final = OrderType.LIMIT
MARKET: Final = OrderType.MARKET
GTC: Final = TimeInForce.GTC
IOC: Final = TimeInForce.IOC
FOK: Final = TimeInForce.FOK
OPEN: Final = MarketStatus.OPEN
CANCEL_MAKER: Final = SelfTradePrevention.CANCEL_MAKER
CANCEL_BOTH: Final = SelfTradePrevention.CANCEL_BOTH
FILLED: Final = OrderStatus.FILLED
CANCELLED: Final = OrderStatus.CANCELLED
EXPIRED: Final = OrderStatus.EXPIRED
BY_FILL: Final = CloseReason.FILLED
BY_USER: Final = CloseReason.USER_CANCELLED
BY_SELF_TRADE: Final = CloseReason.SELF_TRADE
BY_NO_LIQUIDITY: Final = CloseReason.NO_LIQUIDITY
BY_FUNDS: Final = CloseReason.INSUFFICIENT_FUNDS
BY_OCO: Final = CloseReason.ONE_CANCELS_OTHER
PENDING: Final = TriggerState.PENDING
FIRING: Final = TriggerState.FIRING
DONE: Final = TriggerState.DONE
NO_ID: Final = OrderId(0)
NO_BRACKET: Final = Bracket()
# Builds a hot event straight from a tuple, skipping the NamedTuple's Python-level __new__.
new: Final = tuple.__new__
