"""What the load generator was told: every command it sent, with the answer it got.

An answer is one of three outcomes:
- ACKED: a 2xx with the result (the order's id, status, fills; the balance).
- REFUSED: a 4xx, or a connection that could not be opened: the command was not applied.
- UNKNOWN: a 5xx, a timeout, or a connection that broke after the request was sent (the
  service died): the command may or may not have been applied, exactly once at most.

The checks hold the exchange to the first two and allow either fate for the third. Every order
carries a client id unique for its user, so any order in the engine's journal is traced back to
the one request that placed it.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal


class Outcome(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AckedFill:
    trade_id: int
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class AckedOrder:
    """An order's state as a reply showed it (a placement, a cancel, a cancel-all)."""

    order_id: int
    user_id: int
    status: str  # the gateway's names: New, PartiallyFilled, Filled, Cancelled, Expired
    executed_quantity: Decimal


@dataclass(frozen=True)
class Placement:
    user_id: int
    client_id: int
    market: str
    outcome: Outcome
    order: AckedOrder | None = None  # when ACKED
    fills: tuple[AckedFill, ...] = ()


@dataclass(frozen=True)
class Transfer:
    """A deposit (faucet) or a withdrawal (the engine's admin Withdraw): no id of its own."""

    user_id: int
    asset: str
    amount: Decimal
    outcome: Outcome


@dataclass(frozen=True)
class WithdrawalAsk:
    """A user's withdrawal request through the gateway, sent again with its clientId while
    its fate was unknown: acknowledged if any attempt was, unknown if any attempt's fate was."""

    user_id: int
    client_id: int
    asset: str
    network: str
    quantity: Decimal
    outcome: Outcome
    withdrawal_id: int = 0  # when ACKED
    memo: str = ""


@dataclass(frozen=True)
class Decision:
    """An operator's or custody's DecideWithdrawal (approve, decline, complete) and its answer."""

    withdrawal_id: int
    action: int  # WithdrawalAction.Action
    tx_hash: str
    outcome: Outcome
    code: int = 0  # the engine's result code when REFUSED


@dataclass(frozen=True)
class DepositReport:
    """Custody's report of a chain transfer (ReportDeposit) and its answer."""

    network: str
    tx_hash: str
    user_id: int
    asset: str
    quantity: Decimal
    confirmations: int
    outcome: Outcome
    confirmed: bool = False  # ACKED: the reply's deposit was confirmed (credited)


@dataclass
class Record:
    placements: dict[tuple[int, int], Placement] = field(default_factory=dict)
    # Orders as cancels and cancel-alls acknowledged them: each must have closed so.
    cancelled: list[AckedOrder] = field(default_factory=list)
    deposits: list[Transfer] = field(default_factory=list)
    withdrawals: list[Transfer] = field(default_factory=list)
    # Capital: users' withdrawal requests by (user, clientId); operators' and custody's calls.
    withdrawal_asks: dict[tuple[int, int], WithdrawalAsk] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    deposit_reports: list[DepositReport] = field(default_factory=list)
    # (kind, outcome) -> count, for the report; kind: place, cancel, cancel_all, deposit, ...
    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    server_errors: Counter[int] = field(default_factory=Counter)  # 5xx other than 503
    refusals: Counter[str] = field(default_factory=Counter)  # "400 INVALID_ORDER" -> count

    def count(self, kind: str, outcome: Outcome) -> None:
        self.answers[(kind, outcome.value)] += 1

    def place(self, placement: Placement) -> None:
        key = (placement.user_id, placement.client_id)
        if key in self.placements:
            raise ValueError(f"client id {key} used twice by the load generator")
        self.placements[key] = placement
        self.count("place", placement.outcome)

    def summary(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (kind, outcome), n in sorted(self.answers.items()):
            out.setdefault(kind, {})[outcome] = n
        return out
