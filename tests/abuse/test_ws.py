"""Hostile WebSocket frames against the live stack (engine -> Redis -> stream_svc ->
gateway): every frame gets an acknowledgement or an error frame with a documented code,
the connection stays open, and another client keeps receiving. An oversized frame closes
only the connection that sent it."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.abuse.conftest import ABUSE
from tests.abuse.hostile import WS_ERRORS, json_value, junk_text
from tests.abuse.tally import TALLY
from tests.stream.conftest import Live
from tests.stream.test_ws import next_json, subscribe

MARKET = "TATA_INR"
MAKER = 9  # places the orders the bystander watches
MAX_FRAME = 65_536  # ws_max_frame_bytes of the test gateway


@dataclass
class Clients:
    """An abuser (reconnected when a frame closed it) and a bystander watching the book."""

    live: Live
    session: aiohttp.ClientSession
    bystander: aiohttp.ClientWebSocketResponse
    abuser: aiohttp.ClientWebSocketResponse | None = None
    prices: Any = field(default_factory=lambda: itertools.count(2000, -1))

    async def connected_abuser(self) -> aiohttp.ClientWebSocketResponse:
        if self.abuser is None or self.abuser.closed:
            self.abuser = await self.session.ws_connect(self.live.ws_url)
        return self.abuser

    async def bystander_still_receives(self) -> None:
        """A new best ask reaches the bystander's bookTicker."""
        price = f"{next(self.prices)}.00"
        reply = await self.live.stack.engine.stub.PlaceOrder(
            epb.PlaceOrderRequest(
                user_id=MAKER, market=MARKET, side=cpb.SIDE_SELL, type=cpb.ORDER_TYPE_LIMIT,
                price=price, quantity="1", time_in_force=cpb.TIME_IN_FORCE_GTC,
            )
        )  # fmt: skip
        assert reply.code == 0, reply.message
        frame = await next_json(self.bystander)
        assert frame["stream"] == f"bookTicker.{MARKET}"
        assert frame["data"]["a"] == price


@pytest.fixture
async def clients(live: Live) -> AsyncIterator[Clients]:
    await live.stack.engine.stub.Deposit(
        epb.DepositRequest(user_id=MAKER, asset="TATA", amount="100000")
    )
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(live.ws_url) as bystander,
    ):
        assert await subscribe(bystander, f"bookTicker.{MARKET}") == {"id": 7, "result": None}
        made = Clients(live, session, bystander)
        yield made
        if made.abuser is not None:
            await made.abuser.close()


def frame_of(message: Any) -> str:
    return json.dumps(message)  # not orjson: it refuses integers beyond 64 bits


topic = st.sampled_from(
    [f"depth.{MARKET}", f"trade@{MARKET}", f"kline.1m.{MARKET}", "depth.NOPE_INR", "kline.2m.X",
     "account.orderUpdate", "account.balanceUpdate", "account.orderUpdate.NOPE", "account.",
     "depth.", "@", "", "x" * 101, "depth.\u0422\u0410\u0422\u0410_INR"]
) | junk_text | json_value  # fmt: skip
frame_text = st.one_of(
    junk_text,
    json_value.map(frame_of),
    st.fixed_dictionaries(
        {"method": st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "subscribe", "PUBLISH", ""])
         | json_value, "params": st.lists(topic, max_size=5) | json_value},
        optional={"id": json_value, "token": junk_text | json_value,
                  "signature": st.lists(junk_text, min_size=4, max_size=4) | json_value},
    ).map(frame_of),
    # Thousands of topics in one frame, still under the frame limit.
    st.integers(1000, 5000).map(
        lambda n: frame_of({"method": "SUBSCRIBE", "params": [f"t{i}" for i in range(n)]})
    ),
)  # fmt: skip
frame = frame_text | st.binary(max_size=200)


@ABUSE
@given(frames=st.lists(frame, min_size=1, max_size=6))
async def test_hostile_frames_get_error_frames_and_nobody_else_notices(
    clients: Clients, frames: list[str | bytes]
) -> None:
    ws = await clients.connected_abuser()
    for sent in frames:
        note(f"sending {sent[:300]!r}")
        if isinstance(sent, bytes):
            await ws.send_bytes(sent)
        else:
            await ws.send_str(sent)
        reply = await next_json(ws)
        while "stream" in reply:  # market data of an earlier example's subscription
            reply = await next_json(ws)
        error = reply.get("error")
        TALLY.answer("ws", "error" if error else "ack", error["name"] if error else "")
        if error is None:
            assert reply["result"] is None, reply
        else:
            assert WS_ERRORS.get(error["code"]) == error["name"], (sent, reply)
        assert not ws.closed
    await clients.bystander_still_receives()


@pytest.mark.parametrize("size", [MAX_FRAME + 1, 4 * MAX_FRAME])
async def test_an_oversized_frame_closes_only_its_connection(clients: Clients, size: int) -> None:
    ws = await clients.connected_abuser()
    await ws.send_str(frame_of({"method": "SUBSCRIBE", "params": ["x" * size]}))
    closing = await ws.receive(timeout=10)
    TALLY.answer("ws", "close", f"close {ws.close_code}")
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await clients.bystander_still_receives()
    fresh = await clients.connected_abuser()  # and the gateway still takes new clients
    assert await subscribe(fresh, f"depth.{MARKET}") == {"id": 7, "result": None}


@pytest.mark.parametrize("params", [[[]], [{}], ["depth.TATA_INR", ["x"]]])
async def test_a_topic_that_is_no_string_gets_an_error_frame(
    clients: Clients, params: list[Any]
) -> None:
    """Regression: a list or object among the topics (unhashable) killed the connection."""
    ws = await clients.connected_abuser()
    await ws.send_str(frame_of({"method": "SUBSCRIBE", "params": params, "id": 3}))
    reply = await next_json(ws)
    TALLY.answer("ws", "error", reply["error"]["name"])
    assert reply == {"id": 3, "error": {"code": 4006, "name": "INVALID_STREAM",
                                        "message": "every stream must be a string"}}  # fmt: skip
    assert await subscribe(ws, f"ticker.{MARKET}") == {"id": 7, "result": None}
