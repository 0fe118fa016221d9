"""ccxt's unchanged `backpack` class moving funds: currencies with their networks, deposit
addresses, deposits credited by custody (the engine's admin RPC), withdrawals from request
to completion or decline, with the statuses ccxt maps; and another user's key sees none of
it and cannot act on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import signup

OUT = "0x" + "0b" * 20
A = epb.WithdrawalAction


async def client(stack: Stack, email: str, permissions: list[str]) -> tuple[int, Any]:
    user, auth = await signup(stack, email)
    response = await stack.client.post(
        "/api/v1/auth/apikeys", json={"label": "ccxt", "permissions": permissions}, headers=auth
    )
    key = await response.json()
    exchange = ccxt.backpack(
        {
            "apiKey": key["publicKey"],
            "secret": key["secret"],
            "urls": {"api": {"public": stack.url, "private": stack.url}},
            "enableRateLimit": False,
        }
    )
    return user, exchange


async def credit(stack: Stack, address: str, quantity: str, tx: str, confirmations: int) -> Any:
    """Custody reports a transfer to a deposit address."""
    reply = await stack.engine.stub.ReportDeposit(
        epb.ReportDepositRequest(
            asset="USDT",
            network="Ethereum",
            address=address,
            quantity=quantity,
            transaction_hash=tx,
            confirmations=confirmations,
        )
    )
    assert reply.code == 0, reply.message
    return reply


async def decide(stack: Stack, withdrawal_id: str, action: int, tx: str = "") -> Any:
    reply = await stack.engine.stub.DecideWithdrawal(
        epb.DecideWithdrawalRequest(
            withdrawal_id=int(withdrawal_id),
            action=action,  # type: ignore[arg-type]
            transaction_hash=tx,
        )
    )
    assert reply.code == 0, reply.message
    return reply


@pytest.fixture
async def users(stack: Stack) -> AsyncIterator[tuple[Any, Any, Any]]:
    _, alice = await client(stack, "alice@capital.test", ["read", "trade", "withdraw"])
    _, mallory = await client(stack, "mallory@capital.test", ["read", "trade", "withdraw"])
    _, reader = await client(stack, "reader@capital.test", ["read", "trade"])
    yield alice, mallory, reader
    for exchange in (alice, mallory, reader):
        await exchange.close()


async def test_ccxt_moves_funds_through_the_capital_routes(
    stack: Stack, users: tuple[Any, Any, Any]
) -> None:
    alice, mallory, _ = users
    currencies = await alice.fetch_currencies()
    usdt = currencies["USDT"]
    assert set(usdt["networks"]) == {"ERC20", "SOL"}  # ccxt's codes for Ethereum and Solana
    erc20 = usdt["networks"]["ERC20"]
    assert (erc20["id"], erc20["deposit"], erc20["withdraw"], erc20["fee"]) == (
        "Ethereum", True, True, 1.0,
    )  # fmt: skip
    assert erc20["limits"]["withdraw"] == {"min": 5.0, "max": 100000.0}
    assert currencies["USDC"]["networks"]["ERC20"]["withdraw"] is False
    assert currencies["INR"]["networks"] == {}

    address = (await alice.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"]
    assert address.startswith("0x")
    assert (await alice.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"] == address
    assert (await mallory.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"] != (
        address
    )

    await credit(stack, address, "500", "tx1", 1)
    (pending,) = await alice.fetch_deposits()
    assert (pending["status"], pending["amount"], pending["network"]) == ("pending", 500, "ERC20")
    assert (pending["txid"], pending["addressTo"], pending["currency"]) == ("tx1", address, "USDT")
    await credit(stack, address, "500", "tx1", 3)
    await credit(stack, address, "500", "tx1", 4)  # a second custody worker: credited once
    (confirmed,) = await alice.fetch_deposits()
    assert confirmed["status"] == "ok"
    balance = await alice.fetch_balance()
    assert balance["USDT"]["free"] == 500

    sent = await alice.withdraw("USDT", 100, OUT, {"network": "ERC20"})
    assert (sent["status"], sent["amount"], sent["fee"]["cost"]) == ("pending", 100, 1)
    assert (sent["network"], sent["addressTo"], sent["currency"]) == ("ERC20", OUT, "USDT")
    balance = await alice.fetch_balance()
    assert (balance["USDT"]["free"], balance["USDT"]["used"]) == (399, 101)
    declined = await alice.withdraw("USDT", 50, OUT, {"network": "ERC20"})

    # Another user sees none of it and cannot move it.
    assert await mallory.fetch_deposits() == []
    assert await mallory.fetch_withdrawals() == []
    with pytest.raises(ccxt.InsufficientFunds):
        await mallory.withdraw("USDT", 10, OUT, {"network": "ERC20"})

    await decide(stack, sent["id"], A.ACTION_COMPLETE, "0xpaid")
    await decide(stack, declined["id"], A.ACTION_DECLINE)
    history = await alice.fetch_withdrawals()
    statuses = {w["id"]: (w["status"], w["txid"]) for w in history}
    assert statuses == {sent["id"]: ("ok", "0xpaid"), declined["id"]: ("declined", None)}
    balance = await alice.fetch_balance()
    assert (balance["USDT"]["free"], balance["USDT"]["used"]) == (399, 0)

    with pytest.raises(ccxt.BadRequest, match="BELOW_MIN_WITHDRAWAL"):
        await alice.withdraw("USDT", 1, OUT, {"network": "ERC20"})
    with pytest.raises(ccxt.BadRequest, match="INVALID_ADDRESS"):
        await alice.withdraw("USDT", 10, "0x1234", {"network": "ERC20"})
    with pytest.raises(ccxt.BadRequest, match="NETWORK_DISABLED"):
        await alice.withdraw("USDC", 10, OUT, {"network": "ERC20"})
    with pytest.raises(ccxt.InsufficientFunds):
        await alice.withdraw("USDT", 399, OUT, {"network": "ERC20"})  # the fee is on top


async def test_a_retried_withdrawal_with_its_client_id_locks_once(
    stack: Stack, users: tuple[Any, Any, Any]
) -> None:
    alice, _, _ = users
    address = (await alice.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"]
    await credit(stack, address, "100", "seed", 3)
    first = await alice.withdraw("USDT", 20, OUT, {"network": "ERC20", "tag": "77"})
    again = await alice.withdraw("USDT", 20, OUT, {"network": "ERC20", "tag": "77"})
    assert again["id"] == first["id"]
    assert len(await alice.fetch_withdrawals()) == 1
    assert (await alice.fetch_balance())["USDT"]["used"] == 21
    with pytest.raises(ccxt.ExchangeError, match="DUPLICATE_CLIENT_ID"):
        await alice.withdraw("USDT", 30, OUT, {"network": "ERC20", "tag": "77"})


async def test_a_key_without_the_withdraw_scope_cannot_withdraw(
    stack: Stack, users: tuple[Any, Any, Any]
) -> None:
    _, _, reader = users
    address = (await reader.fetch_deposit_address("USDT", {"network": "ERC20"}))["address"]
    await credit(stack, address, "100", "reader", 3)
    with pytest.raises(ccxt.OperationRejected, match="MISSING_PERMISSION"):
        await reader.withdraw("USDT", 20, OUT, {"network": "ERC20"})
    assert await reader.fetch_withdrawals() == []
    assert (await reader.fetch_balance())["USDT"]["free"] == 100


async def test_the_spec_dialect_reads_the_same_records(
    stack: Stack, users: tuple[Any, Any, Any]
) -> None:
    alice, mallory, _ = users
    address = (await alice.fetch_deposit_address("USDT", {"network": "SOL"}))["address"]
    _, auth = await signup(stack, "spec@capital.test")
    response = await stack.client.get(
        "/api/v1/capital/deposit/address", params={"asset": "USDT", "network": "Solana"},
        headers=auth,
    )  # fmt: skip
    spec_address = (await response.json())["address"]
    assert spec_address != address
    reply = await stack.engine.stub.ReportDeposit(
        epb.ReportDepositRequest(
            asset="USDT", network="Solana", address=spec_address, quantity="40",
            transaction_hash="sol1", confirmations=1,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message
    body = {"asset": "USDT", "network": "Solana", "quantity": "10", "address": address}
    response = await stack.client.post("/api/v1/capital/withdrawals", json=body, headers=auth)
    assert response.status == 200, await response.text()
    made = await response.json()
    assert (made["status"], made["stage"], made["fee"]) == ("pending", "approved", "0.500000")
    listed = await (await stack.client.get("/api/v1/capital/withdrawals", headers=auth)).json()
    assert [w["id"] for w in listed] == [made["id"]]
    deposits = await (await stack.client.get("/wapi/v1/capital/deposits", headers=auth)).json()
    assert [(d["quantity"], d["status"], d["network"]) for d in deposits] == [
        ("40.000000", "confirmed", "Solana")
    ]
    limits = await (
        await stack.client.get(
            "/api/v1/account/limits/withdrawal", params={"symbol": "USDT"}, headers=auth
        )
    ).json()
    by_network = {n["blockchain"]: n for n in limits["networks"]}
    # 29.5 available less each fee; the daily limit (50000) and the maximum do not bind
    assert by_network["Solana"]["maxWithdrawalQuantity"] == "29.000000"
    assert by_network["Solana"]["withdrawnToday"] == "10.000000"
    assert by_network["Ethereum"]["maxWithdrawalQuantity"] == "28.500000"
    assert limits["maxWithdrawalQuantity"] == "29.000000"
    assert await mallory.fetch_withdrawals() == []
