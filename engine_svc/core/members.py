"""Enum members as module constants, for the engine's hot paths.

Looking a member up on its class is slow on a hot path. Members are compared by identity
(`is`), which skips the generic comparison an IntEnum otherwise takes: commands and orders
always hold members, since every builder of commands (parse, journal, snapshots) makes
them and mypy checks the rest.
"""

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

BUY = Side.BUY
SELL = Side.SELL
LIMIT = OrderType.LIMIT
MARKET = OrderType.MARKET
GTC = TimeInForce.GTC
IOC = TimeInForce.IOC
FOK = TimeInForce.FOK
OPEN = MarketStatus.OPEN
CANCEL_MAKER = SelfTradePrevention.CANCEL_MAKER
CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
FILLED = OrderStatus.FILLED
CANCELLED = OrderStatus.CANCELLED
EXPIRED = OrderStatus.EXPIRED
BY_FILL = CloseReason.FILLED
BY_USER = CloseReason.USER_CANCELLED
BY_SELF_TRADE = CloseReason.SELF_TRADE
BY_NO_LIQUIDITY = CloseReason.NO_LIQUIDITY
BY_FUNDS = CloseReason.INSUFFICIENT_FUNDS
BY_OCO = CloseReason.ONE_CANCELS_OTHER
PENDING = TriggerState.PENDING
FIRING = TriggerState.FIRING
DONE = TriggerState.DONE
NO_ID = OrderId(0)
NO_BRACKET = Bracket()
# Builds a hot event straight from a tuple, skipping the NamedTuple's Python-level __new__.
new = tuple.__new__
