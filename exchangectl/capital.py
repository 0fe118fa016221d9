"""deposit and withdrawal: custody's and operators' side of capital (the engine's admin calls).

`deposit credit` reports a chain transfer to a deposit address, as a custody watcher does:
below the network's confirmations it is recorded pending, at them credited, and reporting
the same (network, transaction hash) again never credits twice. `withdrawal approve` lets a
withdrawal above the approval threshold go, `decline` releases its lock, `complete` records
custody's payment; each is idempotent by withdrawal id.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchangectl.backends import Backends
from exchangectl.errors import check_result
from exchangectl.output import Result, enum_name, table


def _time(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat(timespec="milliseconds")


def deposit_dict(d: cpb.Deposit) -> dict[str, Any]:
    return {
        "user_id": d.user_id,
        "asset": d.asset,
        "network": d.network,
        "address": d.address,
        "quantity": d.quantity,
        "transaction_hash": d.transaction_hash,
        "confirmations": d.confirmations,
        "status": enum_name(cpb.DepositStatus.Name(d.status), "DEPOSIT_STATUS_"),
        "created_at": _time(d.created_at_us),
    }


def withdrawal_dict(w: cpb.Withdrawal) -> dict[str, Any]:
    return {
        "withdrawal_id": w.withdrawal_id,
        "user_id": w.user_id,
        "asset": w.asset,
        "network": w.network,
        "address": w.address,
        "quantity": w.quantity,
        "fee": w.fee,
        "status": enum_name(cpb.WithdrawalStatus.Name(w.status), "WITHDRAWAL_STATUS_"),
        "transaction_hash": w.transaction_hash,
        "client_id": w.client_id or None,
        "memo": w.memo or None,  # for the sender to send with it
        "created_at": _time(w.created_at_us),
    }


async def credit(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.ReportDepositRequest(
        asset=args.asset,
        network=args.network,
        address=args.address,
        quantity=args.quantity,
        transaction_hash=args.tx,
        confirmations=args.confirmations,
    )
    reply = await b.from_engine(
        b.engine.ReportDeposit(request, metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    d = deposit_dict(reply.deposit)
    args.user = d["user_id"]  # for the audit log: whom the address names
    outcome = "credited" if reply.credited else ("recorded" if reply.seq else "already known")
    text = (
        f"deposit {d['network']}:{d['transaction_hash']} {outcome}: {d['quantity']} "
        f"{d['asset']} to user {d['user_id']}, {d['status'].lower()} "
        f"({d['confirmations']} confirmations)"
    )
    return Result({**d, "credited": reply.credited, "seq": reply.seq}, text)


async def list_deposits(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.ListCapitalRequest(user_id=args.user or 0, limit=args.limit)
    reply = await b.from_engine(b.engine.ListDeposits(request, timeout=b.timeout))
    records = [deposit_dict(d) for d in reply.deposits]
    rows = [
        [r["created_at"], r["user_id"], r["asset"], r["network"], r["quantity"], r["status"],
         r["confirmations"], r["transaction_hash"]]
        for r in records
    ]  # fmt: skip
    headers = ["CREATED", "USER", "ASSET", "NETWORK", "QUANTITY", "STATUS", "CONF", "TX"]
    return Result({"deposits": records}, table(headers, rows))


async def approve(b: Backends, args: argparse.Namespace) -> Result:
    return await _decide(b, args, epb.WithdrawalAction.ACTION_APPROVE, "")


async def decline(b: Backends, args: argparse.Namespace) -> Result:
    return await _decide(b, args, epb.WithdrawalAction.ACTION_DECLINE, "")


async def complete(b: Backends, args: argparse.Namespace) -> Result:
    return await _decide(b, args, epb.WithdrawalAction.ACTION_COMPLETE, args.tx)


async def _decide(
    b: Backends, args: argparse.Namespace, action: epb.WithdrawalAction.Action.ValueType, tx: str
) -> Result:
    request = epb.DecideWithdrawalRequest(
        withdrawal_id=args.withdrawal_id, action=action, transaction_hash=tx
    )
    reply = await b.from_engine(
        b.engine.DecideWithdrawal(request, metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    w = withdrawal_dict(reply.withdrawal)
    args.user = w["user_id"]
    changed = "now" if reply.seq else "already"
    text = (
        f"withdrawal {w['withdrawal_id']} of user {w['user_id']} ({w['quantity']} {w['asset']}"
        f" on {w['network']}) is {changed} {w['status'].lower()}"
    )
    return Result({**w, "seq": reply.seq}, text)


async def list_withdrawals(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.ListCapitalRequest(user_id=args.user or 0, limit=args.limit, open_only=args.open)
    reply = await b.from_engine(b.engine.ListWithdrawals(request, timeout=b.timeout))
    records = [withdrawal_dict(w) for w in reply.withdrawals]
    rows = [
        [r["withdrawal_id"], r["created_at"], r["user_id"], r["asset"], r["network"],
         r["quantity"], r["fee"], r["status"], r["address"]]
        for r in records
    ]  # fmt: skip
    headers = ["ID", "CREATED", "USER", "ASSET", "NETWORK", "QUANTITY", "FEE", "STATUS", "TO"]
    return Result({"withdrawals": records}, table(headers, rows))
