"""Capital commands and events: asset networks, deposits from custody, withdrawals.

Amounts are integers in the smallest unit of their asset; a network's limits are decimal
strings as configured (like a MarketSpec), converted when it is listed. Every field is a
plain JSON value, so the journal stores these commands as they are.

What a consumer needs to rebuild balances from the events alone:
- DepositRecorded: `credited` moves into the user's available (0 while it is pending);
- WithdrawalChanged: `locked` moves from available to locked, `unlocked` from locked back
  to available, `paid` leaves locked for outside the exchange and `fee_paid` leaves locked
  for the fee account's available.
"""

from enum import IntEnum
from typing import NamedTuple

from engine_svc.core.types import UserId


class AddressFormat(IntEnum):
    EVM = 1  # 0x + 40 hex digits
    BASE58 = 2  # 32 to 44 base58 characters (Solana, Bitcoin-like)


class DepositStatus(IntEnum):
    PENDING = 1  # seen on chain, fewer confirmations than the network requires
    CONFIRMED = 2  # credited


class WithdrawalStatus(IntEnum):
    PENDING_APPROVAL = 1  # above the network's approval threshold: an operator decides
    APPROVED = 2  # custody may send it
    CONFIRMED = 3  # sent: the funds left the exchange, the fee went to the fee account
    DECLINED = 4  # by an operator or custody: the lock went back to available


class WithdrawalAction(IntEnum):
    APPROVE = 1
    DECLINE = 2
    COMPLETE = 3


class NetworkSpec(NamedTuple):
    """An asset on one chain, as configured."""

    asset: str
    network: str  # the chain's name, e.g. "Solana" (Backpack's `blockchain`)
    address_format: AddressFormat
    deposit_enabled: bool
    withdraw_enabled: bool
    withdrawal_fee: str
    min_withdrawal: str
    max_withdrawal: str  # "0" = no maximum
    confirmations: int  # a deposit is credited at this many confirmations
    approval_threshold: str  # a withdrawal above this waits for an operator; "0" = never
    daily_limit: str  # per user, per 24 h of engine time, on this network; "0" = none


class AddNetwork(NamedTuple):
    spec: NetworkSpec


class ReportDeposit(NamedTuple):
    """Custody saw a transfer to a deposit address (the edge resolved its user), or the
    onramp credited a user (network ONRAMP, no address, its reference as the tx hash)."""

    user: UserId
    asset: str
    network: str
    address: str
    amount: int
    tx_hash: str
    confirmations: int


class RequestWithdrawal(NamedTuple):
    user: UserId
    asset: str
    network: str
    address: str
    amount: int  # what arrives at the address; the fee comes on top
    client_id: int  # 0 = none
    memo: str = ""  # for custody to send with it (a chain's memo or tag); "" = none


class DecideWithdrawal(NamedTuple):
    withdrawal_id: int
    action: WithdrawalAction
    tx_hash: str  # COMPLETE only: the chain transaction that paid it


CapitalCommand = AddNetwork | ReportDeposit | RequestWithdrawal | DecideWithdrawal


class NetworkListed(NamedTuple):
    seq: int
    ts: int
    spec: NetworkSpec


class DepositRecorded(NamedTuple):
    seq: int
    ts: int
    user: UserId
    asset: str
    network: str
    address: str
    amount: int
    tx_hash: str
    confirmations: int
    status: DepositStatus
    credited: int  # moved into available by this event: the amount on confirmation, else 0
    created: int  # engine time of its first report, µs


class WithdrawalChanged(NamedTuple):
    seq: int
    ts: int
    withdrawal_id: int
    user: UserId
    asset: str
    network: str
    address: str
    amount: int
    fee: int
    status: WithdrawalStatus
    tx_hash: str
    client_id: int
    created: int  # engine time of the request, µs
    locked: int  # available -> locked (the request: amount + fee)
    unlocked: int  # locked -> available (a decline)
    paid: int  # locked -> outside the exchange (completion: amount)
    fee_paid: int  # locked -> the fee account (completion: fee)
    memo: str = ""


CapitalEvent = NetworkListed | DepositRecorded | WithdrawalChanged
