"""exchangectl against a real engine (with its admin token) and ledger: every command, its
effect on the services, its --json output and its exit status."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import grpc
import pytest

from engine_svc.core.types import Side
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from exchangectl.errors import EXIT_DENIED, EXIT_PROBLEM, EXIT_UNREACHABLE, EXIT_USAGE
from launcher.ports import free_port
from ledger_svc.server import LedgerRuntime
from tests.admin.conftest import TOKEN, Ctl
from tests.engine.conftest import RunningEngine


async def as_json(ctl: Ctl, *argv: str) -> Any:
    outcome = await ctl("--json", *argv)
    assert outcome.status == 0, outcome
    return json.loads(outcome.out)


async def limit(
    engine: RunningEngine, user: int, side: cpb.Side.ValueType, market: str, price: str, qty: str
) -> epb.PlaceOrderReply:
    reply = await engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=user, market=market, side=side, type=cpb.ORDER_TYPE_LIMIT,
            price=price, quantity=qty,
        )
    )  # fmt: skip
    assert reply.code == cpb.RESULT_CODE_OK, reply.message
    return reply


async def buy(engine: RunningEngine, user: int, market: str, price: str, qty: str) -> int:
    return (await limit(engine, user, cpb.SIDE_BUY, market, price, qty)).order.order_id


async def caught_up(engine: RunningEngine, ledger: LedgerRuntime) -> None:
    assert ledger.ingest is not None
    async with asyncio.timeout(30):
        await ledger.ingest.wait_for(engine.runtime.engine.seq)


# ---- markets and assets ----


async def test_markets_list_shows_the_engine_listing(ctl: Ctl) -> None:
    data = await as_json(ctl, "markets", "list")
    tata = next(m for m in data["markets"] if m["symbol"] == "TATA_INR")
    assert tata | {"status": "OPEN", "base": "TATA", "quote": "INR", "tick_size": "0.01"} == tata
    assert {"symbol": "INR", "decimals": 2} in data["assets"]
    text = await ctl("markets", "list")
    assert text.status == 0
    assert text.out.splitlines()[0].split()[:2] == ["MARKET", "STATUS"]
    assert any(line.startswith("TATA_INR") and " OPEN " in line for line in text.out.splitlines())


async def test_a_new_asset_and_market_are_listed_and_trade(ctl: Ctl, engine: RunningEngine) -> None:
    assert (await ctl("assets", "add", "DOGE", "8")).status == 0
    added = await as_json(
        ctl, "markets", "add", "DOGE_INR", "--tick", "0.01", "--step", "1",
        "--min-quantity", "1", "--min-notional", "1", "--max-quantity", "1000000",
        "--max-price", "1000", "--taker-fee-bps", "10", "--max-triggers", "7",
    )  # fmt: skip
    assert added["market"]["base"] == "DOGE"
    assert added["market"]["taker_fee_bps"] == 10
    listed = engine.runtime.engine.markets["DOGE_INR"]
    assert (listed.base.symbol, listed.quote.symbol) == ("DOGE", "INR")
    assert listed.max_triggers == 7
    data = await as_json(ctl, "markets", "list")
    assert next(m for m in data["markets"] if m["symbol"] == "DOGE_INR")["max_triggers"] == 7
    assert (await ctl("credit", "5", "INR", "100")).status == 0
    await buy(engine, 5, "DOGE_INR", "0.50", "10")


async def test_a_market_with_an_unknown_asset_is_refused(ctl: Ctl) -> None:
    outcome = await ctl(
        "markets", "add", "NOPE_INR", "--tick", "0.01", "--step", "1", "--min-quantity", "1",
        "--min-notional", "1", "--max-quantity", "10", "--max-price", "10",
    )  # fmt: skip
    assert outcome.status == EXIT_PROBLEM
    assert "exchangectl: error: UNKNOWN_ASSET" in outcome.err


async def test_halt_refuses_new_orders_until_resume(ctl: Ctl, engine: RunningEngine) -> None:
    assert (await ctl("credit", "5", "INR", "100")).status == 0
    halted = await ctl("markets", "halt", "TATA_INR")
    assert halted.status == 0
    assert "TATA_INR is HALTED" in halted.out
    reply = await engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=5, market="TATA_INR", side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
            price="10", quantity="1",
        )
    )  # fmt: skip
    assert reply.code == cpb.RESULT_CODE_MARKET_HALTED
    listed = await as_json(ctl, "markets", "list")
    assert next(m for m in listed["markets"] if m["symbol"] == "TATA_INR")["status"] == "HALTED"
    assert (await ctl("markets", "resume", "TATA_INR")).status == 0
    await buy(engine, 5, "TATA_INR", "10", "1")


async def test_the_pending_trigger_limit_in_all_markets_is_set_and_shown(
    ctl: Ctl, engine: RunningEngine
) -> None:
    assert (await ctl("credit", "5", "INR", "100")).status == 0
    assert (await ctl("credit", "6", "TATA", "10")).status == 0
    await buy(engine, 5, "TATA_INR", "10", "1")
    await limit(engine, 6, cpb.SIDE_SELL, "TATA_INR", "10", "1")  # a last price, for triggers
    assert (await as_json(ctl, "status"))["engine"]["max_triggers_total"] == 500
    assert (await as_json(ctl, "markets", "trigger-limit", "1"))["max_triggers_total"] == 1
    assert (await as_json(ctl, "status"))["engine"]["max_triggers_total"] == 1
    stop = epb.PlaceOrderRequest(
        user_id=6, market="TATA_INR", side=cpb.SIDE_SELL, type=cpb.ORDER_TYPE_LIMIT,
        price="8", quantity="1", trigger_price="9",
    )  # fmt: skip
    assert (await engine.stub.PlaceOrder(stop)).code == cpb.RESULT_CODE_OK
    assert (await engine.stub.PlaceOrder(stop)).code == cpb.RESULT_CODE_TRIGGER_LIMIT
    refused = await ctl("--json", "markets", "trigger-limit", "0")
    assert refused.status == EXIT_PROBLEM
    assert json.loads(refused.out)["error"]["code"] == "INVALID_MARKET_CONFIG"
    assert engine.runtime.engine.max_triggers_total == 1


async def test_halting_an_unknown_market_fails_clearly(ctl: Ctl) -> None:
    outcome = await ctl("--json", "markets", "halt", "NOPE_INR")
    assert outcome.status == EXIT_PROBLEM
    assert json.loads(outcome.out)["error"]["code"] == "UNKNOWN_MARKET"


# ---- credit and debit ----


async def test_credit_and_debit_move_available_funds(ctl: Ctl, engine: RunningEngine) -> None:
    credited = await as_json(ctl, "credit", "42", "BTC", "1.5")
    assert credited["available"] == "1.50000000"
    debited = await as_json(ctl, "debit", "42", "BTC", "0.25")
    assert debited["available"] == "1.25000000"
    balances = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=42))
    assert [(b.asset, b.available) for b in balances.balances] == [("BTC", "1.25000000")]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["debit", "42", "BTC", "2"], "INSUFFICIENT_FUNDS"),
        (["credit", "42", "BTC", "0.000000001"], "INVALID_AMOUNT"),
        (["credit", "42", "BTC", "-1"], "INVALID_AMOUNT"),
        (["credit", "42", "XYZ", "1"], "UNKNOWN_ASSET"),
    ],
)
async def test_bad_credits_and_debits_change_nothing(
    ctl: Ctl, engine: RunningEngine, argv: list[str], code: str
) -> None:
    await ctl("credit", "42", "BTC", "1")
    seq = engine.runtime.engine.seq
    outcome = await ctl(*argv)
    assert outcome.status == EXIT_PROBLEM
    assert f"error: {code}:" in outcome.err
    assert engine.runtime.engine.seq == seq


async def test_without_the_token_admin_commands_are_denied(ctl: Ctl, engine: RunningEngine) -> None:
    seq = engine.runtime.engine.seq
    outcome = await ctl("credit", "42", "BTC", "1", token=False)
    assert outcome.status == EXIT_DENIED
    assert "PERMISSION_DENIED" in outcome.err
    assert "ENGINE_ADMIN_TOKEN" in outcome.err
    assert engine.runtime.engine.seq == seq
    # Reading needs no token.
    assert (await ctl("markets", "list", token=False)).status == 0


async def test_the_token_can_come_from_a_file(
    ctl: Ctl, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "admin-token"
    path.write_text(TOKEN + "\n")
    assert (
        await ctl("--token-file", str(path), "credit", "1", "INR", "5", token=False)
    ).status == 0
    missing = await ctl("--token-file", str(tmp_path / "none"), "credit", "1", "INR", "5")
    assert missing.status == EXIT_USAGE
    assert "cannot read --token-file" in missing.err


# ---- users ----


async def test_users_lookup_by_email_or_id(
    ctl: Ctl, engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    address, _ = ledger_address
    async with grpc.aio.insecure_channel(address) as channel:
        ledger = LedgerServiceStub(channel)
        alice = await ledger.CreateUser(
            lpb.CreateUserRequest(email="Alice@Example.com", password="correct horse")
        )
        await ledger.GenerateApiKey(lpb.GenerateApiKeyRequest(user_id=alice.user_id, label="bot"))
    await ctl("credit", str(alice.user_id), "INR", "500")
    await buy(engine, alice.user_id, "TATA_INR", "10", "3")
    by_email = await as_json(ctl, "users", "lookup", "alice@example.com")
    assert by_email["user_id"] == alice.user_id
    assert by_email["email"] == "Alice@Example.com"
    assert by_email["open_orders"] == 1
    assert by_email["balances"] == [{"asset": "INR", "available": "469.97", "locked": "30.03"}]
    assert [(k["label"], k["active"]) for k in by_email["api_keys"]] == [("bot", True)]
    by_id = await ctl("users", "lookup", str(alice.user_id))
    assert by_id.status == 0
    assert "Alice@Example.com" in by_id.out
    assert "1 active, 0 revoked" in by_id.out


@pytest.mark.parametrize("who", ["nobody@example.com", "999999"])
async def test_users_lookup_of_no_one(ctl: Ctl, who: str) -> None:
    outcome = await ctl("users", "lookup", who)
    assert outcome.status == EXIT_PROBLEM
    assert "USER_NOT_FOUND" in outcome.err


# ---- orders ----


async def test_orders_of_a_user_of_a_market_and_one_order(
    ctl: Ctl, engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    for user in (1, 2):
        await ctl("credit", str(user), "INR", "1000")
        await ctl("credit", str(user), "USDT", "1000")
    first = await buy(engine, 1, "TATA_INR", "10", "1")
    await buy(engine, 1, "BTC_USDT", "100", "0.1")
    await buy(engine, 2, "TATA_INR", "11", "2")
    of_user = await as_json(ctl, "orders", "list", "--user", "1")
    assert sorted(o["market"] for o in of_user["orders"]) == ["BTC_USDT", "TATA_INR"]
    of_market = await as_json(ctl, "orders", "list", "--market", "TATA_INR")
    assert [(o["user_id"], o["price"]) for o in of_market["orders"]] == [(1, "10.00"), (2, "11.00")]
    both = await as_json(ctl, "orders", "list", "--user", "1", "--market", "TATA_INR")
    assert [o["order_id"] for o in both["orders"]] == [first]
    one = await as_json(ctl, "orders", "get", "--user", "1", str(first))
    assert (one["order_id"], one["status"], one["source"]) == (first, "NEW", "engine")
    assert (await ctl("orders", "list")).status == EXIT_USAGE


async def test_cancel_all_of_a_market_leaves_other_markets(ctl: Ctl, engine: RunningEngine) -> None:
    for user in (1, 2):
        await ctl("credit", str(user), "INR", "1000")
        await ctl("credit", str(user), "USDT", "1000")
        await buy(engine, user, "TATA_INR", "10", "1")
    await buy(engine, 1, "BTC_USDT", "100", "0.1")
    outcome = await as_json(ctl, "orders", "cancel-all", "--market", "TATA_INR")
    assert outcome["users"] == [1, 2]
    assert [o["status"] for o in outcome["cancelled"]] == ["CANCELLED", "CANCELLED"]
    assert engine.runtime.engine.books["TATA_INR"].depth(Side.BUY, 10) == []
    left = await as_json(ctl, "orders", "list", "--user", "1")
    assert [o["market"] for o in left["orders"]] == ["BTC_USDT"]
    text = await ctl("orders", "cancel-all", "--user", "1")
    assert text.status == 0
    assert "cancelled 1 order(s) of user 1" in text.out
    assert engine.runtime.engine.orders == {}


async def test_cancel_all_of_a_market_cancels_its_pending_triggers(
    ctl: Ctl, engine: RunningEngine
) -> None:
    """Closing a market (halt, then cancel-all) leaves no trigger pending in it, also of a
    user with nothing else open there."""
    await ctl("credit", "1", "TATA", "10")
    for user in (2, 3):
        await ctl("credit", str(user), "INR", "1000")
    await limit(engine, 1, cpb.SIDE_SELL, "TATA_INR", "10", "1")
    await buy(engine, 2, "TATA_INR", "10", "1")  # the last price: 10
    stop = epb.PlaceOrderRequest(
        user_id=3, market="TATA_INR", side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
        price="12", quantity="1", trigger_price="11",
    )  # fmt: skip
    placed = await engine.stub.PlaceOrder(stop)
    assert placed.order.status == cpb.ORDER_STATUS_TRIGGER_PENDING, placed.message
    await ctl("markets", "halt", "TATA_INR")
    outcome = await as_json(ctl, "orders", "cancel-all", "--market", "TATA_INR")
    assert outcome["users"] == [3]
    assert [(o["order_id"], o["status"]) for o in outcome["cancelled"]] == [
        (placed.order.order_id, "CANCELLED")
    ]
    assert engine.runtime.engine.triggers == {}


async def test_an_old_order_is_found_in_the_ledger(
    ctl: Ctl, engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    await ctl("credit", "1", "INR", "1000")
    order = await buy(engine, 1, "TATA_INR", "10", "1")
    await ctl("orders", "cancel-all", "--user", "1")
    engine.runtime.engine.recent_closed.clear()  # as if long forgotten by the engine
    await caught_up(engine, ledger_address[1])
    found = await as_json(ctl, "orders", "get", "--user", "1", str(order))
    assert (found["status"], found["source"]) == ("CANCELLED", "ledger")
    missing = await ctl("orders", "get", "--user", "2", str(order))
    assert missing.status == EXIT_PROBLEM
    assert "ORDER_NOT_FOUND" in missing.err


# ---- snapshot, reconcile, status ----


async def test_snapshot_writes_a_file_at_the_current_seq(ctl: Ctl, engine: RunningEngine) -> None:
    await ctl("credit", "1", "INR", "1000")
    made = await as_json(ctl, "snapshot")
    assert made["seq"] == engine.runtime.engine.seq
    path = engine.runtime.settings.snapshot_dir / made["file"]
    assert path.stat().st_size == made["size_bytes"]
    assert (await ctl("snapshot", token=False)).status == EXIT_DENIED


async def test_reconcile_agrees_after_trading(ctl: Ctl, engine: RunningEngine) -> None:
    await ctl("credit", "1", "INR", "1000")
    await ctl("credit", "2", "TATA", "50")
    await buy(engine, 1, "TATA_INR", "10", "5")
    reply = await limit(engine, 2, cpb.SIDE_SELL, "TATA_INR", "10", "3")
    assert reply.fills
    data = await as_json(ctl, "reconcile")
    assert data["differences"] == []
    assert data["seq"] == engine.runtime.engine.seq
    assert data["balances_checked"] >= 4
    assert "the ledger agrees with the engine" in (await ctl("reconcile")).out


async def test_reconcile_reports_a_difference(
    ctl: Ctl, engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    await ctl("credit", "1", "INR", "1000")
    await caught_up(engine, ledger_address[1])
    async with ledger_address[1].pool.acquire() as conn:
        await conn.execute("UPDATE balances SET available = available + 1")
    outcome = await ctl("reconcile")
    assert outcome.status == EXIT_PROBLEM
    assert "1 of 1 balances differ" in outcome.out


async def test_status_of_healthy_services_and_the_ledger_lag(
    ctl: Ctl, engine: RunningEngine, ledger_address: tuple[str, LedgerRuntime]
) -> None:
    await ctl("credit", "1", "INR", "1000")
    await caught_up(engine, ledger_address[1])
    data = await as_json(ctl, "status", "--max-lag", "0")
    assert [(s["service"], s["status"]) for s in data["services"]] == [
        ("engine", "SERVING"),
        ("ledger", "SERVING"),
    ]
    assert data["engine"]["seq"] == engine.runtime.engine.seq
    assert data["ledger"] == {
        "last_seq": engine.runtime.engine.seq,
        "connected": True,
        "lag_events": 0,
    }
    assert data["problems"] == []


async def test_status_reports_a_service_down(ctl: Ctl) -> None:
    dead = f"127.0.0.1:{free_port()}"
    outcome = await ctl("status", "--service", f"stream={dead}", "--service",
                        f"gateway=http://{dead}/health")  # fmt: skip
    assert outcome.status == EXIT_PROBLEM
    services = outcome.out.split("\n\n")[0].splitlines()  # the table comes first
    rows = {line.split()[0]: line for line in services}
    assert "SERVING" in rows["engine"]
    assert "DOWN (UNAVAILABLE)" in rows["stream"]
    assert "DOWN" in rows["gateway"]
    assert "problem: stream is DOWN (UNAVAILABLE)" in outcome.out


async def test_an_unreachable_engine_exits_3(ctl: Ctl) -> None:
    outcome = await ctl("--engine", f"127.0.0.1:{free_port()}", "--timeout", "5", "markets", "list")
    assert outcome.status == EXIT_UNREACHABLE
    assert "the engine at 127.0.0.1:" in outcome.err
    assert "did not answer" in outcome.err


def test_it_runs_as_a_module_with_its_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exchangectl", "--engine", f"127.0.0.1:{free_port()}",
         "--timeout", "5", "--json", "markets", "list"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == EXIT_UNREACHABLE
    assert json.loads(result.stdout)["error"]["code"] == "UNAVAILABLE"
