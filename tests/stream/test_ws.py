"""The WebSocket API end to end: engine -> publisher -> Redis -> stream_svc -> gateway -> client.

A client's book (REST depth, then the depth diffs after it) equals the engine's book after
a random session; trades arrive once each and in order; private streams need credentials
and carry the caller's own orders and balances; bad frames get error frames and leave the
connection (and everyone else's) working; SSE serves the same frames.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc.connection import Connection
from gateway_svc.upstream import Upstreams
from tests.gateway.test_rest import fund, signup
from tests.ledger.events import all_events
from tests.ledger.trading import Trader
from tests.stream.conftest import Live

MARKET = "TATA_INR"


async def next_json(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def subscribe(ws: aiohttp.ClientWebSocketResponse, *topics: str, **extra: Any) -> Any:
    await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": list(topics), "id": 7,
                                    **extra}).decode())  # fmt: skip
    return await next_json(ws)


async def frames_until(ws: aiohttp.ClientWebSocketResponse, done: Any) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(15):
        while not done(out):
            out.append(await next_json(ws))
    return out


def apply_levels(side: dict[Decimal, str], levels: list[list[str]]) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            side.pop(Decimal(price), None)
        else:
            side[Decimal(price)] = qty


async def sell(live: Live, price: str, quantity: str = "1") -> None:
    """A resting GTC sell of user 9 (funded by the test), placed on the engine directly."""
    reply = await live.stack.engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=9, market=MARKET, side=cpb.SIDE_SELL, type=cpb.ORDER_TYPE_LIMIT,
            price=price, quantity=quantity, time_in_force=cpb.TIME_IN_FORCE_GTC,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message


async def rest_depth(live: Live) -> dict[str, Any]:
    response = await live.stack.client.get(f"/api/v1/depth?symbol={MARKET}")
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.parametrize("query", ["", "?interval=100", "?interval=0"])
async def test_depth_and_trades_follow_the_engine(live: Live, query: str) -> None:
    """At the gateway's interval (merged frames) and in real time alike."""
    trader = Trader(live.stack.engine.stub, seed=5)
    await trader.fund()
    await trader.run(100)
    await live.published()
    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url + query) as ws:
        ack = await subscribe(ws, f"depth.{MARKET}", f"trade@{MARKET}")
        assert ack == {"id": 7, "result": None}
        snapshot = await rest_depth(live)
        start_seq = live.stack.engine.runtime.engine.seq
        await trader.run(300)
        await live.published()
        final_seq = live.stack.engine.runtime.engine.seq
        events = await all_events(live.stack.engine.stub, final_seq)
        trades = [
            e.trade_executed.fill.trade_id
            for e in events[start_seq:]
            if e.HasField("trade_executed") and e.trade_executed.fill.market == MARKET
        ]
        final = await rest_depth(live)

        def complete(frames: list[Any]) -> bool:
            depth_done = any(
                f["stream"] == f"depth.{MARKET}" and f["data"]["u"] >= int(final["lastUpdateId"])
                for f in frames[-1:]
            ) or int(final["lastUpdateId"]) <= int(snapshot["lastUpdateId"])
            got = [f["data"]["t"] for f in frames if f["stream"] == f"trade@{MARKET}"]
            return depth_done and len(got) >= len(trades)

        frames = await frames_until(ws, complete)

    # Trades: each once, in order, with Backpack's fields.
    got = [f["data"] for f in frames if f["stream"] == f"trade@{MARKET}"]
    assert [t["t"] for t in got] == trades
    assert all(t["e"] == "trade" and t["s"] == MARKET and t["E"] > 0 for t in got)

    # Depth: REST snapshot + the diffs after it == the engine's book at the end.
    bids = {Decimal(p): q for p, q in snapshot["bids"]}
    asks = {Decimal(p): q for p, q in snapshot["asks"]}
    last = int(snapshot["lastUpdateId"])
    diffs = [f["data"] for f in frames if f["stream"] == f"depth.{MARKET}"]
    previous_u = None
    for d in diffs:
        assert d["e"] == "depth"
        if previous_u is not None:
            assert d["U"] == previous_u + 1  # the id chain has no gap
        previous_u = d["u"]
        if d["u"] <= last:
            continue
        assert d["U"] <= last + 1
        apply_levels(bids, d["b"])
        apply_levels(asks, d["a"])
        last = d["u"]
    assert sorted(bids.items(), reverse=True) == [(Decimal(p), q) for p, q in final["bids"]]
    assert sorted(asks.items()) == [(Decimal(p), q) for p, q in final["asks"]]


async def test_bad_frames_get_errors_and_change_nothing(live: Live) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(live.ws_url) as ws,
        session.ws_connect(live.ws_url.removesuffix("/ws") + "/") as other,
    ):
        assert await subscribe(other, f"ticker.{MARKET}") == {"id": 7, "result": None}
        cases = [
            ("not json", 4000),
            ("[1, 2]", 4000),
            ('{"method": "PUBLISH", "params": ["depth.TATA_INR"]}', 4001),
            ('{"method": "SUBSCRIBE", "params": []}', 4000),
            ('{"method": "SUBSCRIBE", "params": ["depth.NOPE_INR"]}', 4004),
            ('{"method": "SUBSCRIBE", "params": ["nonsense"]}', 4006),
            ('{"method": "SUBSCRIBE", "params": ["kline.2m.TATA_INR"]}', 4006),
            ('{"method": "SUBSCRIBE", "params": ["account.orderUpdate"]}', 4003),
            ('{"method": "SUBSCRIBE", "params": ["account.orderUpdate"], "token": "x"}', 4003),
            (
                orjson.dumps(
                    {
                        "method": "SUBSCRIBE",
                        "params": [f"x{i}" for i in range(50)],
                    }
                ).decode(),
                4002,
            ),
        ]
        for raw, code in cases:
            await ws.send_str(raw)
            reply = await next_json(ws)
            assert reply["error"]["code"] == code, (raw, reply)
            assert reply["error"]["name"]
        # Still usable, and the other client never noticed.
        assert await subscribe(ws, f"bookTicker.{MARKET}") == {"id": 7, "result": None}
        await live.stack.engine.stub.Deposit(
            epb.DepositRequest(user_id=9, asset="TATA", amount="10")
        )
        await sell(live, "1500")
        frame = await next_json(ws)
        assert frame["stream"] == f"bookTicker.{MARKET}"
        assert (frame["data"]["a"], frame["data"]["A"]) == ("1500.00", "1")
        assert not other.closed


async def test_private_streams_carry_the_callers_orders_and_balances(live: Live) -> None:
    user, auth = await signup(live.stack, "ws@example.test")
    await fund(live.stack, auth, "INR", "1000")
    await live.published()
    token = auth["Authorization"].removeprefix("Bearer ")
    async with aiohttp.ClientSession() as session, session.ws_connect(live.ws_url) as ws:
        ack = await subscribe(
            ws, "account.orderUpdate", f"account.orderUpdate.{MARKET}", "account.balanceUpdate",
            token=token,
        )  # fmt: skip
        assert ack == {"id": 7, "result": None}
        response = await live.stack.client.post(
            "/api/v1/order",
            json={
                "symbol": MARKET,
                "side": "Bid",
                "orderType": "Limit",
                "price": "100",
                "quantity": "2",
            },
            headers=auth,
        )
        assert response.status == 200, await response.text()
        order_id = (await response.json())["id"]
        frames = await frames_until(ws, lambda fs: len(fs) >= 3)
    by_stream = {f["stream"]: f["data"] for f in frames}
    accepted = by_stream["account.orderUpdate"]
    assert accepted == by_stream[f"account.orderUpdate.{MARKET}"]
    assert (accepted["e"], accepted["i"], accepted["X"], accepted["p"], accepted["q"]) == (
        "orderAccepted", order_id, "New", "100.00", "2",
    )  # fmt: skip
    balance = by_stream["account.balanceUpdate"]
    capital = await (await live.stack.client.get("/api/v1/capital", headers=auth)).json()
    assert (balance["e"], balance["a"], balance["A"], balance["L"]) == (
        "balanceUpdate", "INR", capital["INR"]["available"], capital["INR"]["locked"],
    )  # fmt: skip
    assert balance["L"] != "0.00"
    assert user > 0


async def test_sse_streams_the_same_frames(live: Live) -> None:
    await live.stack.engine.stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="5"))
    response = await live.stack.client.get(
        f"/api/v1/stream?topics=depth@{MARKET},bookTicker.{MARKET}"
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    await asyncio.sleep(0.2)  # subscribed upstream
    await sell(live, "1501", quantity="2")
    events: dict[str, Any] = {}
    async with asyncio.timeout(10):
        while len(events) < 2:
            line = (await response.content.readline()).decode().strip()
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                body = orjson.loads(line[6:])
                events[body["stream"]] = (event_id, body["data"])
    depth_id, depth = events[f"depth@{MARKET}"]
    assert depth["a"] == [["1501.00", "2"]]
    assert depth_id == depth["u"]
    response.close()

    bad = await live.stack.client.get("/api/v1/stream?topics=depth.NOPE_INR")
    assert bad.status == 400
    assert (await bad.json())["code"] == "INVALID_MARKET"


async def test_a_client_that_falls_behind_is_dropped() -> None:
    """The send queue is bounded in frames (a batch counts all of its): once full, the
    connection is marked slow and closed."""
    conn = Connection(Upstreams(stub=None), queue_frames=4, sse=True)  # type: ignore[arg-type]
    conn.put(b"x")
    conn.put(b"yz", 2)
    conn.put(b"x")
    assert not conn.slow
    conn.put(b"x")
    assert conn.slow
    assert conn.closed.is_set()
    conn.put(b"x")  # ignored once dropped
    assert conn.take() == b"xyzx"


@pytest.mark.parametrize("query", ["?interval=5", "?interval=fast", "?interval="])
async def test_an_interval_the_gateway_does_not_offer_is_refused(live: Live, query: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(live.ws_url + query)
        assert refused.value.status == 400
    response = await live.stack.client.get(f"/api/v1/stream?topics=depth@{MARKET}&{query[1:]}")
    assert response.status == 400
    assert (await response.json())["code"] == "INVALID_INTERVAL"


@pytest.mark.parametrize("path", ["/ws", "/"])
async def test_websocket_answers_at_both_paths(live: Live, path: str) -> None:
    url = live.ws_url.removesuffix("/ws") + path
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert await subscribe(ws, f"kline.1m.{MARKET}") == {"id": 7, "result": None}


async def test_private_connections_per_user_are_limited(live: Live, stack_factory: Any) -> None:
    stack = await stack_factory(stream_address=f"127.0.0.1:{live.stream_port}", ws_connections=2)
    _, auth = await signup(stack, "limit@example.test")
    token = auth["Authorization"].removeprefix("Bearer ")
    url = stack.url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        first = await session.ws_connect(url)
        second = await session.ws_connect(url)
        third = await session.ws_connect(url)
        for ws in (first, second):
            assert await subscribe(ws, "account.balanceUpdate", token=token) == {
                "id": 7, "result": None,
            }  # fmt: skip
        refused = await subscribe(third, "account.balanceUpdate", token=token)
        assert refused["error"]["name"] == "TOO_MANY_CONNECTIONS"
        assert await subscribe(third, f"trade.{MARKET}") == {"id": 7, "result": None}  # public
        await first.close()
        async with asyncio.timeout(10):  # the closed connection's slot is released
            while True:
                again = await subscribe(third, "account.balanceUpdate", token=token)
                if "result" in again:
                    break
                await asyncio.sleep(0.1)
        await second.close()
        await third.close()


async def _sse_events(response: Any, count: int) -> list[tuple[int, Any]]:
    events: list[tuple[int, Any]] = []
    event_id = 0
    async with asyncio.timeout(10):
        while len(events) < count:
            line = (await response.content.readline()).decode().strip()
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                events.append((event_id, orjson.loads(line[6:])["data"]))
    return events


async def test_sse_resumes_from_last_event_id(live: Live) -> None:
    stub = live.stack.engine.stub
    await stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="10"))
    url = f"/api/v1/stream?topics=depth@{MARKET}"
    first = await live.stack.client.get(url)
    await sell(live, "1601")
    [(seen_id, seen)] = await _sse_events(first, 1)
    assert seen["a"] == [["1601.00", "1"]]
    first.close()
    await sell(live, "1602")  # while disconnected
    await sell(live, "1603")
    await live.published()
    again = await live.stack.client.get(url, headers={"Last-Event-ID": str(seen_id)})
    missed = await _sse_events(again, 1)
    if ["1603.00", "1"] not in missed[0][1]["a"]:  # not merged with 1602 in one diff
        missed += await _sse_events(again, 1)
    assert [lv for _, d in missed for lv in d["a"]] == [["1602.00", "1"], ["1603.00", "1"]]
    assert all(event_id > seen_id for event_id, _ in missed)
    again.close()


async def test_pings_pongs_and_dead_or_idle_clients(live: Live, stack_factory: Any) -> None:
    stack = await stack_factory(
        stream_address=f"127.0.0.1:{live.stream_port}",
        ws_heartbeat_seconds=1.0,
        ws_idle_seconds=2.0,
    )
    url = stack.url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session:
        # The server answers a client's ping, and pings the client itself.
        async with session.ws_connect(url, autoping=False) as ws:
            await ws.ping(b"hello")
            pong = await ws.receive(timeout=5)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hello")
            ping = await ws.receive(timeout=5)
            assert ping.type == aiohttp.WSMsgType.PING
            # A client that never answers pings is taken for dead and closed.
            async with asyncio.timeout(10):
                while (await ws.receive()).type not in (
                    aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                ):  # fmt: skip
                    pass
        # A live client with no subscription is closed as idle; one with a subscription stays.
        async with session.ws_connect(url) as idle, session.ws_connect(url) as busy:
            assert await subscribe(busy, f"ticker.{MARKET}") == {"id": 7, "result": None}
            closing = await idle.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert idle.close_code == aiohttp.WSCloseCode.GOING_AWAY
            await asyncio.sleep(1)
            assert not busy.closed


async def test_a_gateway_shutting_down_tells_its_clients_to_go_away(
    live: Live, stack_factory: Any
) -> None:
    stack = await stack_factory(stream_address=f"127.0.0.1:{live.stream_port}")
    url = stack.url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert await subscribe(ws, f"depth.{MARKET}") == {"id": 7, "result": None}
        async with asyncio.timeout(10):
            await asyncio.gather(stack.client.close(), ws.receive())
        assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
