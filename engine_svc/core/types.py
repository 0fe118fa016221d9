"""Identifiers, enums and result codes of the engine core.

The enums mirror `exchange.common.v1` value for value (a test checks it), so the
service edge converts them with a plain int().
"""

from enum import IntEnum
from typing import Final, NewType

UserId = NewType("UserId", int)
OrderId = NewType("OrderId", int)
ClientOrderId = NewType("ClientOrderId", int)
TradeId = NewType("TradeId", int)
Seq = NewType("Seq", int)

# The account that receives trading fees.
FEE_ACCOUNT: Final = UserId(0)


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3


class SelfTradePrevention(IntEnum):
    REJECT_TAKER = 1
    CANCEL_MAKER = 2
    CANCEL_BOTH = 3


DEFAULT_STP = SelfTradePrevention.REJECT_TAKER


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    EXPIRED = 5
    REJECTED = 6
    TRIGGER_PENDING = 7  # a conditional order waiting for its trigger price
    TRIGGER_FAILED = 8  # its trigger fired but the order it became was refused


class MarketStatus(IntEnum):
    OPEN = 1
    HALTED = 2


class CloseReason(IntEnum):
    FILLED = 1
    USER_CANCELLED = 2
    SELF_TRADE = 3
    NO_LIQUIDITY = 4
    INSUFFICIENT_FUNDS = 5
    ADMIN = 6
    ONE_CANCELS_OTHER = 7  # the other leg of its take-profit / stop-loss pair fired


class Code(IntEnum):
    """Result codes, in ranges per subsystem (see common.proto ResultCode)."""

    OK = 0
    INVALID_AMOUNT = 1001
    INVALID_PRICE = 1002
    INVALID_QUANTITY = 1003
    BELOW_MIN_QUANTITY = 1004
    BELOW_MIN_NOTIONAL = 1005
    INVALID_ORDER = 1006
    INVALID_USER = 1007
    UNKNOWN_MARKET = 2001
    UNKNOWN_ASSET = 2002
    MARKET_HALTED = 2003
    INVALID_MARKET_CONFIG = 2004
    ALREADY_EXISTS = 2005
    INSUFFICIENT_FUNDS = 3001
    BALANCE_LIMIT = 3002
    POST_ONLY_WOULD_TAKE = 4001
    FOK_NOT_FILLABLE = 4002
    DUPLICATE_CLIENT_ID = 4003
    TRIGGER_WOULD_FIRE = 4010  # the trigger price is already reached, or no trade yet
    TRIGGER_LIMIT = 4011  # too many pending triggers for this user
    ORDER_NOT_FOUND = 5001
    # capital: networks, deposits, withdrawals
    UNKNOWN_NETWORK = 6001
    NETWORK_DISABLED = 6002
    INVALID_ADDRESS = 6003
    BELOW_MIN_WITHDRAWAL = 6004
    ABOVE_MAX_WITHDRAWAL = 6005
    WITHDRAWAL_LIMIT = 6006
    DEPOSIT_CONFLICT = 6007
    WITHDRAWAL_NOT_FOUND = 6008
    WITHDRAWAL_FINAL = 6009
    NOT_APPROVED = 6010
    INVALID_MEMO = 6011
    UNAVAILABLE = 9001


class Rejected(Exception):
    """A business rejection: the command changed nothing."""

    def __init__(self, code: Code, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details  # machine-readable facts, e.g. required and available funds
