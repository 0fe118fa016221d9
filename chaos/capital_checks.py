"""The capital invariants, checked with the others once a trial is quiet (see `chaos.checks`).

- deposits: a transfer (network, transaction hash) is credited once at most, with the
  quantity custody reported, to the user whose address it was sent to; every report answered
  confirmed was credited; none of the history was never reported;
- withdrawals: each locks quantity + fee once, ends once at most (paid, or released, never
  both, never twice), and what it locked is what left (paid + fee) or came back; one
  withdrawal per user and clientId; an acknowledged request is in the history, a refused one
  is not; an acknowledged completion or decline is how it ended, a refusal as final fits the
  other ending; after the operators' drain none is open, so none holds a lock;
- the engine's records (after any kill -9) equal the history's, deposit by deposit and
  withdrawal by withdrawal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from chaos.checks import Findings
from chaos.journal import Truth
from chaos.record import Outcome, Record
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tradekit.markets import ONRAMP_NETWORK

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

APPROVE = epb.WithdrawalAction.ACTION_APPROVE
DECLINE = epb.WithdrawalAction.ACTION_DECLINE
COMPLETE = epb.WithdrawalAction.ACTION_COMPLETE
CONFIRMED = cpb.WITHDRAWAL_STATUS_CONFIRMED
DECLINED = cpb.WITHDRAWAL_STATUS_DECLINED
PAGE = 1000
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
T = TypeVar("T")


def check_capital(record: Record, truth: Truth, users: set[int], f: Findings) -> None:
    check_deposits(record, truth, users, f)
    check_withdrawals(truth, users, f)
    check_withdrawal_answers(record, truth, users, f)


def check_deposits(record: Record, truth: Truth, users: set[int], f: Findings) -> None:
    reported = {(r.network, r.tx_hash): r for r in record.deposit_reports}
    for (network, tx), d in truth.capital_deposits.items():
        name = f"deposit {network}:{tx[:12]}"
        if d.credits > 1:
            f.add("duplicate", f"{name} credited {d.credits} times ({d.credited} {d.asset})")
        if d.credits and d.credited != d.quantity:
            f.add("wrong", f"{name} credited {d.credited}, its quantity is {d.quantity}")
        sent = reported.get((network, tx))
        if sent is None:
            if d.user_id in users and network != ONRAMP_NETWORK:  # the load's, not custody's
                f.add("phantom", f"{name} of user {d.user_id} in the history, never reported")
        elif (sent.user_id, sent.asset, sent.quantity) != (d.user_id, d.asset, d.quantity):
            f.add("wrong", f"{name}: reported {sent.quantity} {sent.asset} to user "
                           f"{sent.user_id}, the history {d.quantity} {d.asset} "
                           f"to {d.user_id}")  # fmt: skip
    confirmed = {(r.network, r.tx_hash) for r in record.deposit_reports if r.confirmed}
    for network, tx in confirmed:
        credited = truth.capital_deposits.get((network, tx))
        if credited is None or not credited.credits:
            f.add("lost", f"deposit {network}:{tx[:12]} answered confirmed, never credited")


def check_withdrawals(truth: Truth, users: set[int], f: Findings) -> None:
    """Each withdrawal's own history, and none left open."""
    for (user, client_id), ids in truth.withdrawals_by_client.items():
        if client_id and len(ids) > 1:
            f.add("duplicate", f"user {user} clientId {client_id} is withdrawals {ids}")
    for w in truth.capital_withdrawals.values():
        name = f"withdrawal {w.withdrawal_id} (user {w.user_id}, {w.quantity} {w.asset})"
        if w.requests != 1 or w.locked != w.quantity + w.fee:
            f.add("duplicate" if w.requests > 1 else "wrong",
                  f"{name}: {w.requests} requests locked {w.locked}")  # fmt: skip
        if w.payments > 1:
            f.add("duplicate", f"{name} paid {w.payments} times: {w.paid} + fee {w.fee_paid}")
        if w.releases > 1:
            f.add("duplicate", f"{name} released {w.releases} times: {w.unlocked}")
        if w.payments and w.releases:
            f.add("duplicate", f"{name} both paid and released")
        if w.status == CONFIRMED and (w.paid, w.fee_paid) != (w.quantity, w.fee):
            f.add("money", f"{name} confirmed, paid {w.paid} + fee {w.fee_paid}")
        if w.status == DECLINED and w.unlocked != w.locked:
            f.add("money", f"{name} declined, released {w.unlocked} of {w.locked}")
        if w.open and w.user_id in users:
            f.add("money", f"{name} still open after the drain: {w.locked} left locked")


def check_withdrawal_answers(record: Record, truth: Truth, users: set[int], f: Findings) -> None:
    """Users' requests and operators' decisions against the history."""
    for (user, client_id), ask in record.withdrawal_asks.items():
        ids = truth.withdrawals_by_client.get((user, client_id), [])
        if ask.outcome is Outcome.REFUSED and ids:
            f.add("refused_but_applied", f"user {user} clientId {client_id} -> withdrawals {ids}")
        if ask.outcome is not Outcome.ACKED:
            continue
        w = truth.capital_withdrawals.get(ask.withdrawal_id)
        if w is None or ask.withdrawal_id not in ids:
            f.add("lost", f"withdrawal {ask.withdrawal_id} (user {user} clientId {client_id}) "
                          "acknowledged, not in the history")  # fmt: skip
        elif (w.asset, w.network, w.quantity, w.memo) != (
            ask.asset, ask.network, ask.quantity, ask.memo,
        ):  # fmt: skip
            f.add("wrong", f"withdrawal {w.withdrawal_id}: asked {ask.quantity} {ask.asset} "
                           f"on {ask.network} memo {ask.memo!r}, the history {w.quantity} "
                           f"{w.asset} on {w.network} memo {w.memo!r}")  # fmt: skip
    for (user, client_id), ids in truth.withdrawals_by_client.items():
        if user in users and (user, client_id) not in record.withdrawal_asks:
            f.add("phantom", f"user {user} clientId {client_id} -> withdrawals {ids}, never asked")
    endings: Counter[tuple[int, int]] = Counter()
    for d in record.decisions:
        w = truth.capital_withdrawals.get(d.withdrawal_id)
        name = f"withdrawal {d.withdrawal_id}"
        if w is None:
            if d.outcome is Outcome.ACKED:
                f.add("lost", f"{name}: decision {d.action} acknowledged, not in the history")
            continue
        if d.outcome is Outcome.ACKED:
            if d.action in (COMPLETE, DECLINE):
                endings[(d.withdrawal_id, d.action)] += 1
            if d.action == COMPLETE and (w.status, w.tx_hash) != (CONFIRMED, d.tx_hash):
                f.add("wrong", f"{name}: completion by {d.tx_hash[:12]} acknowledged, the "
                               f"history: status {w.status}, tx {w.tx_hash[:12]}")  # fmt: skip
            elif d.action == DECLINE and w.status != DECLINED:
                f.add("wrong", f"{name}: decline acknowledged, the history: status {w.status}")
            elif d.action == APPROVE and w.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL:
                f.add("lost", f"{name}: approval acknowledged, still waiting for one")
        elif d.outcome is Outcome.REFUSED and d.code == cpb.RESULT_CODE_WITHDRAWAL_FINAL:
            # Refused as ended the other way: a decline by a completion, a completion by a
            # decline or by another transaction, an approval by a decline.
            fits = (
                w.status == CONFIRMED
                if d.action == DECLINE
                else w.status == DECLINED or (d.action == COMPLETE and w.tx_hash != d.tx_hash)
            )
            if not fits:
                f.add("wrong", f"{name}: decision {d.action} refused as final, the history: "
                               f"status {w.status}, tx {w.tx_hash[:12]}")  # fmt: skip
    ended = Counter(wid for wid, _ in endings)
    for wid, n in ended.items():
        if n > 1:
            f.add("duplicate", f"withdrawal {wid} acknowledged both completed and declined")


async def check_capital_engine(engine: EngineServiceAsyncStub, truth: Truth, f: Findings) -> None:
    """The engine's deposit and withdrawal records equal the history's."""
    deposits = await _every(
        lambda page: engine.ListDeposits(page, timeout=60), lambda reply: reply.deposits
    )
    withdrawals = await _every(
        lambda page: engine.ListWithdrawals(page, timeout=60), lambda reply: reply.withdrawals
    )
    _same_records(
        f,
        {k: (d.status, d.confirmations) for k, d in truth.capital_deposits.items()},
        {(d.network, d.transaction_hash): (d.status, d.confirmations) for d in deposits},
        lambda k: f"deposit {k[0]}:{k[1][:12]}",
        "(status, confirmations)",
    )
    _same_records(
        f,
        {wid: (w.status, w.tx_hash) for wid, w in truth.capital_withdrawals.items()},
        {w.withdrawal_id: (w.status, w.transaction_hash) for w in withdrawals},
        lambda wid: f"withdrawal {wid}",
        "(status, transaction)",
    )


def _same_records(
    f: Findings,
    history: Mapping[K, tuple[object, ...]],
    engine: Mapping[K, tuple[object, ...]],
    name: Callable[[K], str],
    fields: str,
) -> None:
    """Each record's state in the history against the engine's, key by key."""
    for key, state in history.items():
        held = engine.get(key)
        if held is None:
            f.add("lost", f"{name(key)} in the history, not in the engine")
        elif held != state:
            f.add("wrong", f"{name(key)} {fields}: the engine has {held}, the history {state}")
    for key in engine.keys() - history.keys():
        f.add("phantom", f"{name(key)} in the engine, not in the history")


async def _every(
    call: Callable[[epb.ListCapitalRequest], Awaitable[R]], rows: Callable[[R], Sequence[T]]
) -> list[T]:
    """Every record of a ListDeposits or ListWithdrawals, page by page."""
    found: list[T] = []
    while True:
        got = rows(await call(epb.ListCapitalRequest(limit=PAGE, offset=len(found))))
        found.extend(got)
        if len(got) < PAGE:
            return found
