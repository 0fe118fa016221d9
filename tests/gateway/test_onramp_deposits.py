"""The onramp (demo faucet) through the engine's deposit path: each credit is a confirmed
deposit on the network "Onramp", listed with the user's deposits (both dialects, ccxt),
credited once per user and X-Request-Id, and booked so the ledger reconciles to zero."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import grpc

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import signup
from tradekit.markets import ONRAMP_NETWORK


async def onramp(stack: Stack, auth: dict[str, str], amount: str, request_id: str = "") -> Any:
    headers = {**auth, "X-Request-Id": request_id} if request_id else auth
    return await stack.client.post(
        "/api/v1/onramp", json={"asset": "USDT", "amount": amount}, headers=headers
    )


async def ccxt_of(stack: Stack, auth: dict[str, str]) -> Any:
    response = await stack.client.post(
        "/api/v1/auth/apikeys", json={"label": "ccxt", "permissions": ["read"]}, headers=auth
    )
    key = await response.json()
    urls = {"api": {"public": stack.url, "private": stack.url}}
    return ccxt.backpack(
        {"apiKey": key["publicKey"], "secret": key["secret"], "urls": urls,
         "enableRateLimit": False}
    )  # fmt: skip


async def available(stack: Stack, auth: dict[str, str]) -> str:
    balances = await (await stack.client.get("/api/v1/capital", headers=auth)).json()
    return str(balances["USDT"]["available"])


async def test_onramp_credits_are_deposits_credited_once_per_request_id(
    stack_factory: Any, ledger_address: tuple[str, Any]
) -> None:
    stack: Stack = await stack_factory(faucet_cap="300")
    alice, alice_auth = await signup(stack, "alice@onramp.test")
    _, bob_auth = await signup(stack, "bob@onramp.test")

    first = await onramp(stack, alice_auth, "250", "retry-1")
    assert first.status == 200, await first.text()
    again = await onramp(stack, alice_auth, "250", "retry-1")  # a client's retry
    assert again.status == 200, await again.text()
    assert Decimal((await again.json())["available"]) == 250
    # Other facts under the same id are refused and change nothing.
    conflict = await onramp(stack, alice_auth, "20", "retry-1")
    assert conflict.status == 409
    assert (await conflict.json())["error"]["details"]["reason"] == "DEPOSIT_CONFLICT"
    # The retry, though it would pass the faucet's cap (300), was not counted: 50 more fit.
    assert (await onramp(stack, alice_auth, "50")).status == 200
    assert (await onramp(stack, alice_auth, "1")).status == 400
    # Request ids are the caller's own: bob's "retry-1" is his deposit.
    assert (await onramp(stack, bob_auth, "250", "retry-1")).status == 200
    assert Decimal(await available(stack, bob_auth)) == 250

    for path in ("/wapi/v1/capital/deposits", "/api/v1/capital/deposits"):
        listed = await (await stack.client.get(path, headers=alice_auth)).json()
        assert [
            (d["blockchain"], d["source"], d["status"], d["quantity"], d["symbol"]) for d in listed
        ] == [
            (ONRAMP_NETWORK, "onramp", "confirmed", "50.000000", "USDT"),  # newest first
            (ONRAMP_NETWORK, "onramp", "confirmed", "250.000000", "USDT"),
        ]
        assert all(d["transactionHash"] for d in listed)
    assert Decimal(await available(stack, alice_auth)) == 300

    exchange = await ccxt_of(stack, alice_auth)
    try:
        deposits = await exchange.fetch_deposits()
        assert [(d["status"], d["amount"], d["currency"]) for d in deposits] == [
            ("ok", 250, "USDT"), ("ok", 50, "USDT"),
        ]  # fmt: skip
        assert {d["info"]["blockchain"] for d in deposits} == {ONRAMP_NETWORK}
    finally:
        await exchange.close()

    # Custody cannot report on the onramp's network, nor list a network by its name.
    report = await stack.engine.stub.ReportDeposit(
        epb.ReportDepositRequest(
            asset="USDT",
            network=ONRAMP_NETWORK,
            address="",
            quantity="5",
            transaction_hash="forged",
            confirmations=1,
        )
    )
    assert report.code == cpb.RESULT_CODE_UNKNOWN_NETWORK
    (listed,) = (await stack.engine.stub.ListNetworks(epb.ListNetworksRequest())).networks[:1]
    listed.network = ONRAMP_NETWORK
    added = await stack.engine.stub.AddNetwork(epb.AddNetworkRequest(network=listed))
    assert added.code == cpb.RESULT_CODE_INVALID_MARKET_CONFIG
    engine = stack.engine.runtime.engine
    onramps = [
        d for (network, _), d in engine.capital.deposits.items() if network == ONRAMP_NETWORK
    ]
    assert sum(d.user == alice for d in onramps) == 2

    await stack.caught_up()
    async with grpc.aio.insecure_channel(ledger_address[0]) as channel:
        reconciled = await LedgerServiceStub(channel).Reconcile(lpb.ReconcileRequest())
    assert reconciled.seq == engine.seq
    assert not reconciled.differences
