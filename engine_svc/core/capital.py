"""Capital: asset networks, deposits reported by custody, withdrawals with a lifecycle.

Invariants (tested after every command, with the engine's):
1. A deposit is credited once: deposits are keyed by (network, transaction hash); a report
   of a known transfer with other facts is refused, and one with no new confirmations
   changes nothing. It is credited when its confirmations reach the network's requirement.
   The onramp's credits are deposits on the network ONRAMP_NETWORK, keyed by reference.
2. A withdrawal's funds (amount + fee) are locked from its request until it ends; it ends
   once, as CONFIRMED (the amount leaves the exchange, the fee goes to FEE_ACCOUNT) or as
   DECLINED (the lock returns to available). Repeating the action that ended it changes
   nothing; the other one is refused. So no withdrawal is ever paid or released twice.
3. Per user and asset, locked = what open orders can spend + amount + fee of the user's
   withdrawals that have not ended.
4. A rejected command raises `Rejected` before touching any state.
5. A withdrawal request is idempotent by (user, client id): repeated with the same facts it
   changes nothing (the first request's withdrawal stands, nothing is locked twice), with
   other facts it is refused (DUPLICATE_CLIENT_ID). A client id 0 is no client id.
"""

import re

from engine_svc.core.accounts import Accounts
from engine_svc.core.capital_messages import (
    AddNetwork,
    AddressFormat,
    CapitalCommand,
    DecideWithdrawal,
    DepositRecorded,
    DepositStatus,
    NetworkListed,
    NetworkSpec,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalAction,
    WithdrawalChanged,
    WithdrawalStatus,
)
from engine_svc.core.events import Event
from engine_svc.core.types import FEE_ACCOUNT, Code, Rejected, UserId
from tradekit.markets import ONRAMP_NETWORK, Asset
from tradekit.money import MAX_UNITS, AmountError, format_units, parse_units

DAY_US = 86_400_000_000
MAX_TX_HASH = 128
MAX_CONFIRMATIONS = 1_000_000
_ADDRESS = {
    AddressFormat.EVM: re.compile(r"0x[0-9a-fA-F]{40}"),
    AddressFormat.BASE58: re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}"),
}
_TX_HASH = re.compile(r"[0-9A-Za-z]{1,128}")
_MEMO = re.compile(r"[ -~]{0,64}")
_NETWORK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,31}")
_PENDING_APPROVAL = WithdrawalStatus.PENDING_APPROVAL
_APPROVED = WithdrawalStatus.APPROVED
_CONFIRMED = WithdrawalStatus.CONFIRMED
_DECLINED = WithdrawalStatus.DECLINED


class Network:
    """A network's rules in integer units of its asset."""

    __slots__ = ("approval_threshold", "daily_limit", "fee", "max", "min", "spec")

    def __init__(self, spec: NetworkSpec, decimals: int) -> None:
        def units(field: str, text: str) -> int:
            try:
                return parse_units(text, decimals)
            except AmountError as exc:
                raise _config_error(
                    f"network {spec.asset}/{spec.network}: {field}: {exc}"
                ) from None

        self.spec = spec
        self.fee = units("withdrawal_fee", spec.withdrawal_fee)
        self.min = units("min_withdrawal", spec.min_withdrawal)
        self.max = units("max_withdrawal", spec.max_withdrawal)
        self.approval_threshold = units("approval_threshold", spec.approval_threshold)
        self.daily_limit = units("daily_limit", spec.daily_limit)
        if self.min <= 0 or (self.max and self.max < self.min):
            raise _config_error(f"network {spec.asset}/{spec.network}: inconsistent limits")
        if not 0 <= spec.confirmations <= MAX_CONFIRMATIONS:
            raise _config_error(f"network {spec.asset}/{spec.network}: bad confirmations")


def _config_error(message: str) -> Rejected:
    return Rejected(Code.INVALID_MARKET_CONFIG, message)


class Withdrawal:
    __slots__ = (
        "address", "amount", "asset", "client_id", "created", "fee", "id", "memo", "network",
        "status", "tx_hash", "updated", "user",
    )  # fmt: skip

    def __init__(
        self,
        id: int,
        user: UserId,
        asset: str,
        network: str,
        address: str,
        amount: int,
        fee: int,
        status: WithdrawalStatus,
        client_id: int,
        created: int,
        memo: str = "",
    ) -> None:
        self.id = id
        self.user = user
        self.asset = asset
        self.network = network
        self.address = address
        self.amount = amount
        self.fee = fee
        self.status = status
        self.client_id = client_id
        self.created = created
        self.updated = created
        self.tx_hash = ""
        self.memo = memo

    def event(
        self,
        seq: int,
        ts: int,
        locked: int = 0,
        unlocked: int = 0,
        paid: int = 0,
        fee_paid: int = 0,
    ) -> WithdrawalChanged:
        return WithdrawalChanged(
            seq, ts, self.id, self.user, self.asset, self.network, self.address, self.amount,
            self.fee, self.status, self.tx_hash, self.client_id, self.created, locked, unlocked,
            paid, fee_paid, self.memo,
        )  # fmt: skip


class Capital:
    def __init__(self) -> None:
        self.networks: dict[tuple[str, str], Network] = {}  # (asset, network)
        # (network, tx hash) -> the latest record of that deposit
        self.deposits: dict[tuple[str, str], DepositRecorded] = {}
        self.withdrawals: dict[int, Withdrawal] = {}
        self.user_withdrawals: dict[UserId, list[Withdrawal]] = {}  # in request order
        self.by_client_id: dict[tuple[UserId, int], Withdrawal] = {}
        self.next_withdrawal_id = 1

    def apply(
        self, c: CapitalCommand, seq: int, ts: int, accounts: Accounts, assets: dict[str, Asset]
    ) -> list[Event]:
        """Applies one capital command; its events are numbered from seq + 1."""
        if isinstance(c, RequestWithdrawal):
            return self._request(c, seq + 1, ts, accounts, assets)
        if isinstance(c, DecideWithdrawal):
            return self._decide(c, seq + 1, ts, accounts)
        if isinstance(c, ReportDeposit):
            return self._report(c, seq + 1, ts, accounts, assets)
        return self._add_network(c, seq + 1, ts, assets)

    def network(self, asset: str, network: str) -> Network:
        found = self.networks.get((asset, network))
        if found is None:
            raise Rejected(Code.UNKNOWN_NETWORK, f"{asset[:16]} is not on network {network[:32]!r}")
        return found

    def _add_network(
        self, c: AddNetwork, seq: int, ts: int, assets: dict[str, Asset]
    ) -> list[Event]:
        spec = c.spec
        asset = assets.get(spec.asset)
        if asset is None:
            raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {spec.asset[:40]!r}")
        if not _NETWORK_NAME.fullmatch(spec.network):
            raise _config_error(f"network name {spec.network[:40]!r} must be 1-32 letters/digits")
        if spec.network == ONRAMP_NETWORK:
            raise _config_error(f"network name {ONRAMP_NETWORK} is the onramp's")
        if (spec.asset, spec.network) in self.networks:
            raise Rejected(Code.ALREADY_EXISTS, f"network {spec.asset}/{spec.network} exists")
        self.networks[(spec.asset, spec.network)] = Network(spec, asset.decimals)
        return [NetworkListed(seq, ts, spec)]

    # ---- deposits ----

    def _report(
        self, c: ReportDeposit, seq: int, ts: int, accounts: Accounts, assets: dict[str, Asset]
    ) -> list[Event]:
        if c.user <= 0:
            raise Rejected(Code.INVALID_USER, "user id must be > 0")
        if c.network == ONRAMP_NETWORK:  # no chain: credited at once, once per reference
            if c.asset not in assets:
                raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {c.asset[:40]!r}")
            required = 0
        else:
            spec = self.network(c.asset, c.network).spec
            if not spec.deposit_enabled:
                raise Rejected(
                    Code.NETWORK_DISABLED, f"deposits of {c.asset} on {c.network} are off"
                )
            required = spec.confirmations
        if not 0 < c.amount <= MAX_UNITS:
            raise Rejected(Code.INVALID_AMOUNT, "amount must be positive")
        if not _TX_HASH.fullmatch(c.tx_hash):
            raise Rejected(Code.INVALID_ORDER, "transaction hash must be 1-128 letters/digits")
        if not 0 <= c.confirmations <= MAX_CONFIRMATIONS:
            raise Rejected(Code.INVALID_ORDER, "confirmations out of range")
        key = (c.network, c.tx_hash)
        known = self.deposits.get(key)
        if known is not None:
            if (known.user, known.asset, known.address, known.amount) != (
                c.user, c.asset, c.address, c.amount,
            ):  # fmt: skip
                raise Rejected(
                    Code.DEPOSIT_CONFLICT,
                    f"transaction {c.tx_hash[:16]} on {c.network} was reported with other facts",
                )
            if known.status == DepositStatus.CONFIRMED or c.confirmations <= known.confirmations:
                return []  # a repeated report: credited at most once
        confirmed = c.confirmations >= required
        if confirmed:
            accounts.deposit(c.user, c.asset, c.amount)  # raises before any change
        created = ts if known is None else known.created
        status = DepositStatus.CONFIRMED if confirmed else DepositStatus.PENDING
        event = DepositRecorded(
            seq, ts, c.user, c.asset, c.network, c.address, c.amount, c.tx_hash,
            c.confirmations, status, c.amount if confirmed else 0, created,
        )  # fmt: skip
        self.deposits[key] = event
        return [event]

    # ---- withdrawals ----

    def _request(
        self, c: RequestWithdrawal, seq: int, ts: int, accounts: Accounts, assets: dict[str, Asset]
    ) -> list[Event]:
        if c.user <= 0:
            raise Rejected(Code.INVALID_USER, "user id must be > 0")
        known = self.by_client_id.get((c.user, c.client_id)) if c.client_id else None
        if known is not None:
            if (known.asset, known.network, known.address, known.amount, known.memo) != (
                c.asset, c.network, c.address, c.amount, c.memo,
            ):  # fmt: skip
                raise Rejected(
                    Code.DUPLICATE_CLIENT_ID,
                    f"clientId {c.client_id} is withdrawal {known.id}, asked with other facts",
                )
            return []  # a retry: the first request's withdrawal stands
        network = self.network(c.asset, c.network)
        spec = network.spec
        decimals = assets[c.asset].decimals
        if not spec.withdraw_enabled:
            raise Rejected(
                Code.NETWORK_DISABLED, f"withdrawals of {c.asset} on {c.network} are off"
            )
        if not 0 < c.amount <= MAX_UNITS:
            raise Rejected(Code.INVALID_AMOUNT, "quantity must be positive")
        if c.amount < network.min:
            raise Rejected(
                Code.BELOW_MIN_WITHDRAWAL,
                f"the minimum withdrawal of {c.asset} on {c.network} is {spec.min_withdrawal}",
            )
        if network.max and c.amount > network.max:
            raise Rejected(
                Code.ABOVE_MAX_WITHDRAWAL,
                f"the maximum withdrawal of {c.asset} on {c.network} is {spec.max_withdrawal}",
            )
        if not _ADDRESS[spec.address_format].fullmatch(c.address):
            raise Rejected(Code.INVALID_ADDRESS, f"not a {c.network} address: {c.address[:64]!r}")
        if not _MEMO.fullmatch(c.memo):
            raise Rejected(Code.INVALID_MEMO, "memo must be at most 64 printable ASCII characters")
        if network.daily_limit:
            used = self.withdrawn_today(c.user, c.asset, c.network, ts)
            if used + c.amount > network.daily_limit:
                left = format_units(max(network.daily_limit - used, 0), decimals)
                raise Rejected(
                    Code.WITHDRAWAL_LIMIT,
                    f"daily withdrawal limit of {c.asset} on {c.network} is {spec.daily_limit}"
                    f"; {left} left",
                    {"asset": c.asset, "limit": spec.daily_limit, "remaining": left},
                )
        total = c.amount + network.fee
        bal = accounts.peek(c.user, c.asset)
        available = 0 if bal is None else bal.available
        if bal is None or total > available:
            required, held = format_units(total, decimals), format_units(available, decimals)
            raise Rejected(
                Code.INSUFFICIENT_FUNDS,
                f"{c.asset}: needs {required} with the fee, {held} available",
                {"asset": c.asset, "required": required, "available": held},
            )
        bal.available -= total
        bal.locked += total
        needs_approval = network.approval_threshold and c.amount > network.approval_threshold
        w = Withdrawal(
            self.next_withdrawal_id, c.user, c.asset, c.network, c.address, c.amount,
            network.fee, _PENDING_APPROVAL if needs_approval else _APPROVED, c.client_id, ts,
            c.memo,
        )  # fmt: skip
        self.next_withdrawal_id += 1
        self._remember(w)
        return [w.event(seq, ts, locked=total)]

    def _remember(self, w: Withdrawal) -> None:
        self.withdrawals[w.id] = w
        self.user_withdrawals.setdefault(w.user, []).append(w)
        if w.client_id:
            self.by_client_id[(w.user, w.client_id)] = w

    def withdrawn_today(self, user: UserId, asset: str, network: str, ts: int) -> int:
        """What the user asked to withdraw on the network in the last 24 h, declines aside."""
        total = 0
        for w in reversed(self.user_withdrawals.get(user, ())):
            if w.created <= ts - DAY_US:
                break
            if w.asset == asset and w.network == network and w.status is not _DECLINED:
                total += w.amount
        return total

    def _decide(self, c: DecideWithdrawal, seq: int, ts: int, accounts: Accounts) -> list[Event]:
        w = self.withdrawals.get(c.withdrawal_id)
        if w is None:
            raise Rejected(Code.WITHDRAWAL_NOT_FOUND, f"no withdrawal {c.withdrawal_id}")
        action, status = c.action, w.status
        if action is WithdrawalAction.APPROVE:
            if status is _DECLINED:
                raise _final(w)
            if status is not _PENDING_APPROVAL:
                return []  # approved already
            w.status, w.updated = _APPROVED, ts
            return [w.event(seq, ts)]
        total = w.amount + w.fee
        if action is WithdrawalAction.DECLINE:
            if status is _DECLINED:
                return []
            if status is _CONFIRMED:
                raise _final(w)
            bal = accounts.balance(w.user, w.asset)
            bal.locked -= total
            bal.available += total
            w.status, w.updated = _DECLINED, ts
            return [w.event(seq, ts, unlocked=total)]
        if not _TX_HASH.fullmatch(c.tx_hash):
            raise Rejected(Code.INVALID_ORDER, "completion needs the transaction hash")
        if status is _CONFIRMED and c.tx_hash == w.tx_hash:
            return []  # completed already, by this very transaction
        if status is _PENDING_APPROVAL:
            raise Rejected(Code.NOT_APPROVED, f"withdrawal {w.id} waits for an operator")
        if status is not _APPROVED:
            raise _final(w)
        bal = accounts.balance(w.user, w.asset)
        bal.locked -= total
        accounts.supply[w.asset] -= w.amount
        accounts.balance(FEE_ACCOUNT, w.asset).available += w.fee
        w.status, w.updated, w.tx_hash = _CONFIRMED, ts, c.tx_hash
        return [w.event(seq, ts, paid=w.amount, fee_paid=w.fee)]

    # ---- state ----

    def dump(self) -> dict[str, object]:
        return {
            "networks": [list(n.spec) for n in self.networks.values()],
            "deposits": [list(d) for d in self.deposits.values()],
            "withdrawals": [
                [
                    w.id,
                    w.user,
                    w.asset,
                    w.network,
                    w.address,
                    w.amount,
                    w.fee,
                    int(w.status),
                    w.client_id,
                    w.created,
                    w.updated,
                    w.tx_hash,
                    w.memo,
                ]
                for w in self.withdrawals.values()
            ],
            "next_withdrawal_id": self.next_withdrawal_id,
        }

    def load(self, data: dict[str, list[list[object]] | int], assets: dict[str, Asset]) -> None:
        networks, deposits, withdrawals = data["networks"], data["deposits"], data["withdrawals"]
        assert isinstance(networks, list)
        assert isinstance(deposits, list)
        assert isinstance(withdrawals, list)
        for f in networks:
            spec = network_spec(f)
            self.networks[(spec.asset, spec.network)] = Network(spec, assets[spec.asset].decimals)
        for f in deposits:
            d = DepositRecorded(*f[:9], DepositStatus(f[9]), *f[10:])  # type: ignore[arg-type, call-arg]
            self.deposits[(d.network, d.tx_hash)] = d
        for f in withdrawals:
            w = Withdrawal(
                f[0], f[1], f[2], f[3], f[4], f[5], f[6], WithdrawalStatus(f[7]), f[8], f[9],  # type: ignore[arg-type]
            )  # fmt: skip
            w.updated, w.tx_hash = f[10], f[11]  # type: ignore[assignment]
            w.memo = f[12] if len(f) > 12 else ""  # type: ignore[assignment]  # older snapshots
            self._remember(w)
        next_id = data["next_withdrawal_id"]
        assert isinstance(next_id, int)
        self.next_withdrawal_id = next_id


def network_spec(fields: list[object]) -> NetworkSpec:
    """A NetworkSpec from its plain fields (journal, snapshot)."""
    return NetworkSpec(fields[0], fields[1], AddressFormat(fields[2]), *fields[3:])  # type: ignore[arg-type]


def _final(w: Withdrawal) -> Rejected:
    return Rejected(Code.WITHDRAWAL_FINAL, f"withdrawal {w.id} is already {w.status.name.lower()}")
