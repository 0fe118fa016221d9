"""The capital RPCs of EngineService: networks, deposit addresses, deposits, withdrawals.

Parsing at the edge (decimal strings to units, an address to its user), then the
sequencer, then a reply built from the command's events or, when a repeated report or
decision changed nothing, from the engine's record: an idempotent call answers the same.
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from engine_svc.core.capital import Withdrawal, network_spec
from engine_svc.core.capital_messages import (
    AddNetwork,
    DecideWithdrawal,
    DepositRecorded,
    NetworkListed,
    NetworkSpec,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalAction,
    WithdrawalChanged,
    WithdrawalStatus,
)
from engine_svc.core.commands import Command
from engine_svc.core.engine import Engine
from engine_svc.core.types import Code, Rejected, UserId
from engine_svc.deposit_addresses import DepositAddresses
from engine_svc.sequencer import Outcome
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from tradekit.money import AmountError, format_units, parse_units

Ctx = grpc.aio.ServicerContext[Any, Any]
DEFAULT_LIST = 100
MAX_LIST = 1000
_OPEN = (WithdrawalStatus.PENDING_APPROVAL, WithdrawalStatus.APPROVED)


def network_to_proto(s: NetworkSpec) -> pb.Network:
    return pb.Network(
        asset=s.asset,
        network=s.network,
        address_format=int(s.address_format),  # type: ignore[arg-type]
        deposit_enabled=s.deposit_enabled,
        withdraw_enabled=s.withdraw_enabled,
        withdrawal_fee=s.withdrawal_fee,
        min_withdrawal=s.min_withdrawal,
        max_withdrawal=s.max_withdrawal,
        confirmations=s.confirmations,
        approval_threshold=s.approval_threshold,
        daily_limit=s.daily_limit,
    )


def network_from_proto(n: pb.Network) -> NetworkSpec:
    if n.address_format not in (pb.ADDRESS_FORMAT_EVM, pb.ADDRESS_FORMAT_BASE58):
        raise Rejected(Code.INVALID_MARKET_CONFIG, "address_format must be EVM or BASE58")
    return network_spec(
        [
            n.asset,
            n.network,
            n.address_format,
            n.deposit_enabled,
            n.withdraw_enabled,
            n.withdrawal_fee,
            n.min_withdrawal,
            n.max_withdrawal,
            n.confirmations,
            n.approval_threshold,
            n.daily_limit,
        ]
    )


def deposit_to_proto(d: DepositRecorded, engine: Engine) -> pb.Deposit:
    return pb.Deposit(
        user_id=d.user,
        asset=d.asset,
        network=d.network,
        address=d.address,
        quantity=format_units(d.amount, engine.assets[d.asset].decimals),
        transaction_hash=d.tx_hash,
        confirmations=d.confirmations,
        status=int(d.status),  # type: ignore[arg-type]
        created_at_us=d.created,
        updated_at_us=d.ts,
    )


def withdrawal_to_proto(w: Withdrawal, engine: Engine) -> pb.Withdrawal:
    decimals = engine.assets[w.asset].decimals
    return pb.Withdrawal(
        withdrawal_id=w.id,
        user_id=w.user,
        asset=w.asset,
        network=w.network,
        address=w.address,
        quantity=format_units(w.amount, decimals),
        fee=format_units(w.fee, decimals),
        status=int(w.status),  # type: ignore[arg-type]
        transaction_hash=w.tx_hash,
        client_id=w.client_id,
        created_at_us=w.created,
        updated_at_us=w.updated,
        memo=w.memo,
    )


def write_event(
    out: pb.EngineEvent, e: NetworkListed | DepositRecorded | WithdrawalChanged, engine: Engine
) -> None:
    if isinstance(e, NetworkListed):
        out.network_listed.network.CopyFrom(network_to_proto(e.spec))
        return
    decimals = engine.assets[e.asset].decimals
    if isinstance(e, DepositRecorded):
        out.deposit_recorded.deposit.CopyFrom(deposit_to_proto(e, engine))
        out.deposit_recorded.credited = format_units(e.credited, decimals)
        return
    c = out.withdrawal_changed
    w = c.withdrawal
    w.withdrawal_id, w.user_id, w.asset, w.network, w.address = (
        e.withdrawal_id,
        e.user,
        e.asset,
        e.network,
        e.address,
    )
    w.quantity, w.fee = format_units(e.amount, decimals), format_units(e.fee, decimals)
    w.status = int(e.status)  # type: ignore[assignment]
    w.transaction_hash, w.client_id, w.memo = e.tx_hash, e.client_id, e.memo
    w.created_at_us, w.updated_at_us = e.created, e.ts
    for field in ("locked", "unlocked", "paid", "fee_paid"):
        setattr(c, field, format_units(getattr(e, field), decimals))


def _page(
    items: Iterable[Any], r: epb.ListCapitalRequest, created: Callable[[Any], int]
) -> list[Any]:
    """Newest first, within [from, to), after `offset`, at most `limit`."""
    chosen = [
        x
        for x in items
        if (not r.from_us or created(x) >= r.from_us) and (not r.to_us or created(x) < r.to_us)
    ]
    chosen.reverse()
    limit = min(r.limit or DEFAULT_LIST, MAX_LIST)
    return chosen[r.offset : r.offset + limit]


class CapitalRpcs:
    """Mixed into EngineServicer, which provides `engine`, `addresses` and `_run`."""

    engine: Engine
    addresses: DepositAddresses
    _run: Callable[[type[Command], Callable[[], Command]], Awaitable[Outcome]]

    def _units(self, asset: str, text: str) -> int:
        decimals = self.engine.assets.get(asset)
        if decimals is None:
            raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {asset[:40]!r}")
        try:
            return parse_units(text, decimals.decimals)
        except AmountError as exc:
            raise Rejected(Code.INVALID_AMOUNT, str(exc)) from None

    async def AddNetwork(self, request: epb.AddNetworkRequest, context: Ctx) -> epb.AdminReply:
        outcome = await self._run(
            AddNetwork, lambda: AddNetwork(network_from_proto(request.network))
        )
        seq = outcome.events[-1].seq if outcome.events else 0
        return epb.AdminReply(code=int(outcome.code), message=outcome.message, seq=seq)  # type: ignore[arg-type]

    async def ListNetworks(
        self, request: epb.ListNetworksRequest, context: Ctx
    ) -> epb.ListNetworksReply:
        networks = self.engine.capital.networks.values()
        return epb.ListNetworksReply(networks=[network_to_proto(n.spec) for n in networks])

    async def GetDepositAddress(
        self, request: epb.GetDepositAddressRequest, context: Ctx
    ) -> epb.GetDepositAddressReply:
        try:
            if request.user_id <= 0:
                raise Rejected(Code.INVALID_USER, "user id must be > 0")
            spec = self.engine.capital.network(request.asset, request.network).spec
            if not spec.deposit_enabled:
                raise Rejected(
                    Code.NETWORK_DISABLED, f"deposits of {spec.asset} on {spec.network} are off"
                )
        except Rejected as exc:
            return epb.GetDepositAddressReply(code=int(exc.code), message=exc.message)  # type: ignore[arg-type]
        address = self.addresses.address(UserId(request.user_id), spec.network, spec.address_format)
        return epb.GetDepositAddressReply(address=address)

    def _report_command(self, r: epb.ReportDepositRequest) -> Command:
        spec = self.engine.capital.network(r.asset, r.network).spec
        user = self.addresses.user_of(r.address, r.network, spec.address_format)
        if user is None:
            raise Rejected(Code.INVALID_ADDRESS, f"not a deposit address on {r.network}")
        amount = self._units(r.asset, r.quantity)
        return ReportDeposit(
            user, r.asset, r.network, r.address, amount, r.transaction_hash, r.confirmations
        )

    async def ReportDeposit(
        self, request: epb.ReportDepositRequest, context: Ctx
    ) -> epb.DepositReply:
        outcome = await self._run(ReportDeposit, lambda: self._report_command(request))
        if outcome.code != Code.OK:
            return epb.DepositReply(code=int(outcome.code), message=outcome.message)  # type: ignore[arg-type]
        if outcome.events:
            (event,) = outcome.events
            assert isinstance(event, DepositRecorded)
            deposit = deposit_to_proto(event, self.engine)
            return epb.DepositReply(deposit=deposit, credited=bool(event.credited), seq=event.seq)
        known = self.engine.capital.deposits[(request.network, request.transaction_hash)]
        return epb.DepositReply(deposit=deposit_to_proto(known, self.engine))

    def _withdrawal_reply(self, outcome: Outcome, withdrawal_id: int) -> epb.WithdrawalReply:
        if outcome.code != Code.OK:
            reply = epb.WithdrawalReply(code=int(outcome.code), message=outcome.message)  # type: ignore[arg-type]
            if outcome.details:
                reply.details.update(outcome.details)
            return reply
        if outcome.events:
            event = outcome.events[-1]
            assert isinstance(event, WithdrawalChanged)
            withdrawal_id = event.withdrawal_id
        w = self.engine.capital.withdrawals[withdrawal_id]
        seq = outcome.events[-1].seq if outcome.events else 0
        return epb.WithdrawalReply(withdrawal=withdrawal_to_proto(w, self.engine), seq=seq)

    async def RequestWithdrawal(
        self, request: epb.RequestWithdrawalRequest, context: Ctx
    ) -> epb.WithdrawalReply:
        r = request

        def build() -> Command:
            amount = self._units(r.asset, r.quantity)
            return RequestWithdrawal(
                UserId(r.user_id), r.asset, r.network, r.address, amount, r.client_id, r.memo
            )

        outcome = await self._run(RequestWithdrawal, build)
        known = None
        if outcome.code == Code.OK and not outcome.events:  # a retry of the same client id
            known = self.engine.capital.by_client_id[(UserId(r.user_id), r.client_id)]
        return self._withdrawal_reply(outcome, known.id if known else 0)

    async def DecideWithdrawal(
        self, request: epb.DecideWithdrawalRequest, context: Ctx
    ) -> epb.WithdrawalReply:
        def build() -> Command:
            try:
                action = WithdrawalAction(request.action)
            except ValueError:
                raise Rejected(
                    Code.INVALID_ORDER, "action must be APPROVE, DECLINE or COMPLETE"
                ) from None
            return DecideWithdrawal(request.withdrawal_id, action, request.transaction_hash)

        outcome = await self._run(DecideWithdrawal, build)
        return self._withdrawal_reply(outcome, request.withdrawal_id)

    async def ListDeposits(
        self, request: epb.ListCapitalRequest, context: Ctx
    ) -> epb.ListDepositsReply:
        mine = [
            d
            for d in self.engine.capital.deposits.values()
            if not request.user_id or d.user == request.user_id
        ]
        mine.sort(key=lambda d: d.created)
        page = _page(mine, request, lambda d: d.created)
        return epb.ListDepositsReply(deposits=[deposit_to_proto(d, self.engine) for d in page])

    async def ListWithdrawals(
        self, request: epb.ListCapitalRequest, context: Ctx
    ) -> epb.ListWithdrawalsReply:
        capital = self.engine.capital
        if request.user_id:
            mine = capital.user_withdrawals.get(UserId(request.user_id), [])
        else:
            mine = list(capital.withdrawals.values())
        if request.open_only:
            mine = [w for w in mine if w.status in _OPEN]
        page = _page(mine, request, lambda w: w.created)
        return epb.ListWithdrawalsReply(
            withdrawals=[withdrawal_to_proto(w, self.engine) for w in page]
        )
