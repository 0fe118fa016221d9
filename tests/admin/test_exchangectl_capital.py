"""exchangectl's capital commands against a real engine (with its admin token) and ledger:
custody's deposit reports, operators' approvals and declines, custody's completions, the
lists, the audit log, and that none of it works without the token."""

from __future__ import annotations

import json
from typing import Any

from exchange.engine.v1 import engine_pb2 as epb
from exchangectl.errors import EXIT_DENIED, EXIT_PROBLEM
from tests.admin.conftest import Ctl
from tests.admin.test_exchangectl import as_json
from tests.engine.conftest import RunningEngine

OUT = "0x" + "0b" * 20
USER = 42


async def address(engine: RunningEngine, user: int = USER) -> str:
    reply = await engine.stub.GetDepositAddress(
        epb.GetDepositAddressRequest(user_id=user, asset="USDT", network="Ethereum")
    )
    assert reply.code == 0, reply.message
    return reply.address


async def usdt(engine: RunningEngine, user: int = USER) -> tuple[str, str]:
    reply = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=user))
    found = [(b.available, b.locked) for b in reply.balances if b.asset == "USDT"]
    return found[0] if found else ("0", "0")


async def withdraw(engine: RunningEngine, quantity: str, memo: str = "") -> int:
    reply = await engine.stub.RequestWithdrawal(
        epb.RequestWithdrawalRequest(
            user_id=USER, asset="USDT", network="Ethereum", address=OUT, quantity=quantity,
            memo=memo,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message
    return reply.withdrawal.withdrawal_id


async def test_deposit_credit_is_pending_then_credited_once(
    ctl: Ctl, engine: RunningEngine
) -> None:
    to = await address(engine)
    report = ("deposit", "credit", "Ethereum", "USDT", to, "25000", "0xabc")
    pending = await as_json(ctl, *report, "--confirmations", "1")
    assert (pending["status"], pending["credited"], pending["user_id"]) == ("PENDING", False, USER)
    assert await usdt(engine) == ("0", "0")
    credited = await as_json(ctl, *report, "--confirmations", "3")
    assert (credited["status"], credited["credited"]) == ("CONFIRMED", True)
    again = await ctl(*report, "--confirmations", "9")  # a retry after a crash
    assert again.status == 0
    assert "already known" in again.out
    assert await usdt(engine) == ("25000.000000", "0.000000")
    conflict = await ctl(*report[:-2], "1", "0xabc", "--confirmations", "3")
    assert conflict.status == EXIT_PROBLEM
    assert "DEPOSIT_CONFLICT" in conflict.err
    listed = await as_json(ctl, "deposit", "list", "--user", str(USER))
    assert [(d["transaction_hash"], d["status"]) for d in listed["deposits"]] == [
        ("0xabc", "CONFIRMED")
    ]


async def test_withdrawals_are_approved_declined_and_completed_once(
    ctl: Ctl, engine: RunningEngine
) -> None:
    to = await address(engine)
    await as_json(ctl, "deposit", "credit", "Ethereum", "USDT", to, "25000", "0xseed",
                  "--confirmations", "3")  # fmt: skip
    large = await withdraw(engine, "12000")  # above the 10000 threshold
    small = await withdraw(engine, "100", memo="tag 7")
    waiting = await as_json(ctl, "withdrawal", "list", "--open")
    assert [(w["withdrawal_id"], w["status"], w["memo"]) for w in waiting["withdrawals"]] == [
        (small, "APPROVED", "tag 7"),  # what the sender sends with it
        (large, "PENDING_APPROVAL", None),
    ]
    early = await ctl("withdrawal", "complete", str(large), "0xearly")
    assert (early.status, "NOT_APPROVED" in early.err) == (EXIT_PROBLEM, True)
    approved = await as_json(ctl, "withdrawal", "approve", str(large))
    assert (approved["status"], approved["seq"] > 0) == ("APPROVED", True)
    assert "already approved" in (await ctl("withdrawal", "approve", str(large))).out
    declined = await as_json(ctl, "withdrawal", "decline", str(large))
    assert declined["status"] == "DECLINED"
    paid = await as_json(ctl, "withdrawal", "complete", str(small), "0xpaid")
    assert (paid["status"], paid["transaction_hash"]) == ("CONFIRMED", "0xpaid")
    assert (await as_json(ctl, "withdrawal", "complete", str(small), "0xpaid"))["seq"] == 0
    final = await ctl("withdrawal", "decline", str(small))
    assert (final.status, "WITHDRAWAL_FINAL" in final.err) == (EXIT_PROBLEM, True)
    assert await usdt(engine) == ("24899.000000", "0.000000")
    assert (await as_json(ctl, "withdrawal", "list", "--open"))["withdrawals"] == []
    missing = await ctl("withdrawal", "approve", "999")
    assert (missing.status, "WITHDRAWAL_NOT_FOUND" in missing.err) == (EXIT_PROBLEM, True)

    audit: Any = await as_json(ctl, "audit", "--user", str(USER))
    actions = [r["action"] for r in audit["records"]]
    assert actions == [
        "withdrawal_complete", "withdrawal_complete", "withdrawal_decline", "withdrawal_approve",
        "withdrawal_approve", "deposit_report",
    ]  # fmt: skip
    assert audit["records"][0]["actor"].startswith("admin:")
    assert json.dumps(audit["records"][0]["details"]).count(str(small)) >= 1


async def test_without_the_token_nothing_is_credited_or_decided(
    ctl: Ctl, engine: RunningEngine
) -> None:
    to = await address(engine)
    denied = await ctl("deposit", "credit", "Ethereum", "USDT", to, "5", "0xno",
                       "--confirmations", "3", token=False)  # fmt: skip
    assert denied.status == EXIT_DENIED
    assert await usdt(engine) == ("0", "0")
    await as_json(ctl, "deposit", "credit", "Ethereum", "USDT", to, "50", "0xyes",
                  "--confirmations", "3")  # fmt: skip
    wid = await withdraw(engine, "10")
    for action in ("approve", "decline"):
        assert (await ctl("withdrawal", action, str(wid), token=False)).status == EXIT_DENIED
    assert (await ctl("withdrawal", "complete", str(wid), "0xtx", token=False)).status == (
        EXIT_DENIED
    )
    assert await usdt(engine) == ("39.000000", "11.000000")
