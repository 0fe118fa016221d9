"""Accounts: per user and asset, an available and a locked amount.

Invariants (checked by the tests after every command): both amounts are never
negative; a user's locked amount of an asset equals what their open orders can
still spend of it; for every asset, the sum over all accounts (the fee account
included) equals deposits minus withdrawals, which `supply` records.
"""

from collections.abc import Mapping
from types import MappingProxyType

from engine_svc.core.types import Code, Rejected, UserId
from tradekit.money import MAX_UNITS


class Balance:
    """One user's holding of one asset. Orders keep a reference to the ones they use."""

    __slots__ = ("available", "locked")

    def __init__(self, available: int = 0, locked: int = 0) -> None:
        self.available = available
        self.locked = locked


_NONE: Mapping[str, Balance] = MappingProxyType({})  # of a user who never held anything


class Accounts:
    def __init__(self) -> None:
        self._balances: dict[UserId, dict[str, Balance]] = {}
        self.supply: dict[str, int] = {}  # asset -> deposits minus withdrawals

    def balance(self, user: UserId, asset: str) -> Balance:
        """The user's balance of the asset, created empty on first use."""
        per_user = self._balances.get(user)
        if per_user is None:
            per_user = self._balances[user] = {}
        bal = per_user.get(asset)
        if bal is None:
            bal = per_user[asset] = Balance()
        return bal

    def peek(self, user: UserId, asset: str) -> Balance | None:
        per_user = self._balances.get(user)
        return None if per_user is None else per_user.get(asset)

    def of_user(self, user: UserId) -> Mapping[str, Balance]:
        return self._balances.get(user, _NONE)

    def items(self) -> list[tuple[UserId, str, Balance]]:
        """Every balance, in a stable order (user, then asset)."""
        return [
            (user, asset, bal)
            for user in sorted(self._balances)
            for asset, bal in sorted(self._balances[user].items())
        ]

    def deposit(self, user: UserId, asset: str, amount: int) -> Balance:
        supply = self.supply.get(asset, 0)
        if supply + amount > MAX_UNITS:
            raise Rejected(Code.BALANCE_LIMIT, f"{asset}: total supply would exceed the limit")
        bal = self.balance(user, asset)
        bal.available += amount
        self.supply[asset] = supply + amount
        return bal

    def withdraw(self, user: UserId, asset: str, amount: int) -> Balance:
        bal = self.peek(user, asset)
        if bal is None or bal.available < amount:
            raise Rejected(Code.INSUFFICIENT_FUNDS, f"{asset}: withdrawal exceeds available")
        bal.available -= amount
        self.supply[asset] -= amount
        return bal
