"""`exchangectl audit`: read the audit log (who did what, from where, when), newest first."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import UTC, datetime
from typing import Any

from exchange.ledger.v1 import ledger_pb2 as lpb
from exchangectl import capital, funds, markets, orders
from exchangectl.backends import Backends
from exchangectl.output import Result, table


async def show(b: Backends, args: argparse.Namespace) -> Result:
    request = lpb.ListAuditRequest(
        user_id=args.user or 0, action=args.action or "", limit=args.limit, cursor=args.before or 0
    )
    reply = await b.from_ledger(b.ledger.ListAudit(request, timeout=b.timeout))
    records = [
        {
            "audit_id": r.audit_id,
            "time": datetime.fromtimestamp(r.ts_us / 1e6, UTC).isoformat(timespec="milliseconds"),
            "action": r.action,
            "actor": r.actor,
            "user_id": r.user_id or None,
            "address": r.address,
            "request_id": r.request_id,
            "details": json.loads(r.details_json or "{}"),
        }
        for r in reply.records
    ]
    rows = [
        [r["audit_id"], r["time"], r["action"], r["actor"], r["user_id"] or "-",
         r["address"] or "-", json.dumps(r["details"], sort_keys=True)]
        for r in records
    ]  # fmt: skip
    text = table(["ID", "TIME", "ACTION", "ACTOR", "USER", "ADDRESS", "DETAILS"], rows)
    if reply.next_cursor:
        text += f"\n(more: --before {reply.next_cursor})"
    return Result({"records": records, "next_cursor": reply.next_cursor or None}, text)


# The commands that change something, and the action each is recorded as.
ACTIONS: dict[Any, str] = {
    markets.add_market: "market_add",
    markets.halt: "market_halt",
    markets.resume: "market_resume",
    markets.set_trigger_limit: "trigger_limit_set",
    markets.add_asset: "asset_add",
    funds.credit: "deposit_credit",
    funds.debit: "withdraw_debit",
    orders.cancel_all: "orders_cancel_all",
    capital.credit: "deposit_report",
    capital.approve: "withdrawal_approve",
    capital.decline: "withdrawal_decline",
    capital.complete: "withdrawal_complete",
}


async def record(b: Backends, args: argparse.Namespace) -> None:
    """Appends a done admin command to the audit log, as this operator (the OS user)."""
    action = ACTIONS.get(args.handler)
    if action is None:
        return
    details = {
        k: v
        for k, v in vars(args).items()
        if k not in ("handler", "json", "token_file", "engine", "ledger", "timeout", "action")
        and isinstance(v, str | int | None)
    }
    entry = lpb.AuditRecord(
        action=action,
        actor=f"admin:{getpass.getuser()}",
        user_id=getattr(args, "user", None) or 0,
        details_json=json.dumps(details, sort_keys=True),
    )
    await b.from_ledger(b.ledger.AppendAudit(entry, timeout=b.timeout))
