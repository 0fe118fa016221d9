"""Direct deposits and withdrawals (operator commands; capital.py has the lifecycle ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.commands import Deposit, Withdraw
from engine_svc.core.events import Deposited, Event, Withdrawn
from engine_svc.core.types import Code, Rejected, UserId
from tradekit.money import MAX_UNITS

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def deposit(e: Engine, c: Deposit, ts: int) -> list[Event]:
    _check(e, c.user, c.asset, c.amount)
    e.accounts.deposit(c.user, c.asset, c.amount)
    e.seq += 1
    return [Deposited(e.seq, ts, c.user, c.asset, c.amount)]


def withdraw(e: Engine, c: Withdraw, ts: int) -> list[Event]:
    _check(e, c.user, c.asset, c.amount)
    e.accounts.withdraw(c.user, c.asset, c.amount)
    e.seq += 1
    return [Withdrawn(e.seq, ts, c.user, c.asset, c.amount)]


def _check(e: Engine, user: UserId, asset: str, amount: int) -> None:
    if user <= 0:
        raise Rejected(Code.INVALID_USER, "user id must be > 0")
    if asset not in e.assets:
        raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {asset[:40]!r}")
    if not 0 < amount <= MAX_UNITS:
        raise Rejected(Code.INVALID_AMOUNT, "amount must be positive")
