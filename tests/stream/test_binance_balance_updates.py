"""Binance's `balanceUpdate` on a listen key's user-data stream, against the whole stack: a
deposit custody credits (the engine's admin RPC, as `exchangectl deposit credit` calls it),
a withdrawal the user requests and its decline each send one, with the change of the free
balance, before the `outboundAccountPosition` of the new balance."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp

from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.test_rest import signup
from tests.stream.conftest import Live
from tests.stream.test_binance_ws import base, next_json, user_stream_live

OUT = "0x" + "0c" * 20


async def capital_events(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """The next `balanceUpdate`s up to and with the `outboundAccountPosition` after them."""
    events: list[Any] = []
    async with asyncio.timeout(30):
        while not events or events[-1]["e"] != "outboundAccountPosition":
            event = await next_json(ws)
            if event["e"] == "balanceUpdate" or events:
                events.append(event)
    return events


def usdt(position: dict[str, Any]) -> tuple[Decimal, Decimal]:
    [balance] = [b for b in position["B"] if b["a"] == "USDT"]
    return Decimal(balance["f"]), Decimal(balance["l"])


async def test_deposits_and_withdrawals_send_balance_updates(live: Live) -> None:
    user, auth = await signup(live.stack, "balances@binance.test")
    client = live.stack.client
    key = await (
        await client.post("/api/v1/auth/apikeys", json={"label": "k"}, headers=auth)
    ).json()
    created = await client.post(
        "/api/v3/userDataStream", headers={"X-MBX-APIKEY": key["publicKey"]}
    )
    listen_key = (await created.json())["listenKey"]
    where = {"symbol": "USDT", "blockchain": "Ethereum"}
    found = await client.get("/api/v1/capital/deposit/address", params=where, headers=auth)
    address = (await found.json())["address"]
    await live.published()

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{base(live)}/ws/{listen_key}") as ws,
    ):
        await user_stream_live(live.stack, ws, user)
        report = await live.stack.engine.stub.ReportDeposit(
            epb.ReportDepositRequest(
                asset="USDT", network="Ethereum", address=address, quantity="500",
                transaction_hash="0xbalance", confirmations=100,
            )
        )  # fmt: skip
        assert report.code == 0, report.message
        *moves, position = await capital_events(ws)
        [credit] = moves
        assert (credit["a"], Decimal(credit["d"])) == ("USDT", Decimal(500))
        assert set(credit) == {"e", "E", "a", "d", "T"}
        assert isinstance(credit["d"], str)
        assert credit["T"] == credit["E"] <= position["E"]
        assert usdt(position) == (Decimal(500), Decimal(0))

        requested = await client.post(
            "/api/v1/capital/withdrawals",
            json={**where, "address": OUT, "quantity": "100"},
            headers=auth,
        )
        assert requested.status == 200, await requested.text()
        withdrawal = await requested.json()
        locked = Decimal(withdrawal["quantity"]) + Decimal(withdrawal["fee"])
        *moves, position = await capital_events(ws)
        assert [(m["a"], Decimal(m["d"])) for m in moves] == [("USDT", -locked)]
        assert usdt(position) == (500 - locked, locked)

        declined = await live.stack.engine.stub.DecideWithdrawal(
            epb.DecideWithdrawalRequest(
                withdrawal_id=int(withdrawal["id"]),
                action=epb.WithdrawalAction.ACTION_DECLINE,
            )
        )
        assert declined.code == 0, declined.message
        *moves, position = await capital_events(ws)
        assert [(m["a"], Decimal(m["d"])) for m in moves] == [("USDT", locked)]
        assert usdt(position) == (Decimal(500), Decimal(0))
