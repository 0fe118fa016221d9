"""Capital on the private WebSocket stream, end to end (engine -> publisher -> Redis ->
stream_svc -> gateway -> a real client): `account.balanceUpdate` carries the balance after
a deposit custody credits, a withdrawal's lock, its release on decline, its completion and
an onramp credit, with the amounts the REST balance then shows."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.test_rest import signup
from tests.stream.conftest import Live
from tests.stream.test_ws import subscribe

OUT = "0x" + "0b" * 20
A = epb.WithdrawalAction
ZERO = "0.000000"


async def withdraw(live: Live, auth: dict[str, str], quantity: str) -> int:
    response = await live.stack.client.post(
        "/api/v1/capital/withdrawals",
        json={"asset": "USDT", "network": "Ethereum", "quantity": quantity, "address": OUT},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    return int((await response.json())["id"])


async def decide(live: Live, withdrawal_id: int, action: int, tx: str = "") -> None:
    reply = await live.stack.engine.stub.DecideWithdrawal(
        epb.DecideWithdrawalRequest(
            withdrawal_id=withdrawal_id,
            action=action,  # type: ignore[arg-type]
            transaction_hash=tx,
        )
    )
    assert reply.code == 0, reply.message


async def test_balance_updates_follow_deposits_and_every_step_of_withdrawals(live: Live) -> None:
    _, auth = await signup(live.stack, "funds@ws.test")
    token = auth["Authorization"].removeprefix("Bearer ")
    got = await live.stack.client.get(
        "/wapi/v1/capital/deposit/address?blockchain=Ethereum&symbol=USDT", headers=auth
    )
    address = (await got.json())["address"]

    async def report(confirmations: int) -> None:
        reply = await live.stack.engine.stub.ReportDeposit(
            epb.ReportDepositRequest(
                asset="USDT",
                network="Ethereum",
                address=address,
                quantity="250",
                transaction_hash="wsdeposit",
                confirmations=confirmations,
            )
        )
        assert reply.code == 0, reply.message

    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
        assert await subscribe(ws, "account.balanceUpdate", token=token) == {
            "id": 7,
            "result": None,
        }
        state = (ZERO, ZERO)

        async def step(expected: tuple[str, str]) -> None:
            """Frames until the USDT balance is `expected`; none on the way shows another."""
            nonlocal state
            while state != expected:
                msg = await ws.receive(timeout=30)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                frame: Any = orjson.loads(msg.data)
                assert frame["stream"] == "account.balanceUpdate", frame
                data = frame["data"]
                assert (data["e"], data["a"]) == ("balanceUpdate", "USDT"), data
                seen = (data["A"], data["L"])
                assert seen in (state, expected), (seen, state, expected)
                state = seen
            capital = await (await live.stack.client.get("/api/v1/capital", headers=auth)).json()
            assert (capital["USDT"]["available"], capital["USDT"]["locked"]) == expected

        await report(1)  # pending: nothing credited
        await report(3)
        await step(("250.000000", ZERO))
        declined = await withdraw(live, auth, "100")  # + the fee of 1, locked at once
        await step(("149.000000", "101.000000"))
        await decide(live, declined, A.ACTION_DECLINE)
        await step(("250.000000", ZERO))
        paid = await withdraw(live, auth, "50")
        await step(("199.000000", "51.000000"))
        await decide(live, paid, A.ACTION_COMPLETE, "0xpaid")
        await step(("199.000000", ZERO))
        onramp = await live.stack.client.post(
            "/api/v1/onramp", json={"asset": "USDT", "amount": "10"}, headers=auth
        )
        assert onramp.status == 200, await onramp.text()
        await step(("209.000000", ZERO))
