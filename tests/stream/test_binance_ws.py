"""Binance's WebSocket face end to end: engine -> publisher -> Redis -> stream_svc -> gateway.

Binance's documented way to keep a local book (buffer the diffs, take REST depth, drop what
it covers, apply the rest with the U/u chain checked) ends with the engine's book; every
stream kind has Binance's payload; the methods answer with Binance's shapes and codes; a
listen key carries the caller's own orders and balances and ends with listenKeyExpired.
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
from gateway_svc.streams import UPSTREAMS
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup
from tests.ledger.events import all_events
from tests.ledger.trading import Trader
from tests.stream.conftest import Live
from tests.stream.test_ws import apply_levels, sell
from tradekit.topics import Topic

MARKET, SYMBOL = "TATA_INR", "TATAINR"
KINDS = ("trade", "aggTrade")


def base(live: Live) -> str:
    return live.stack.url.replace("http://", "ws://")


async def next_json(ws: aiohttp.ClientWebSocketResponse, seconds: float = 30) -> Any:
    msg = await ws.receive(timeout=seconds)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def request(
    ws: aiohttp.ClientWebSocketResponse, method: str, *params: Any, frames: list[Any] | None = None
) -> Any:
    """The answer to a request; market frames that come first go to `frames`."""
    await ws.send_str(orjson.dumps({"method": method, "params": list(params), "id": 3}).decode())
    async with asyncio.timeout(30):
        while True:
            reply = await next_json(ws)
            if isinstance(reply, dict) and "id" in reply:
                return reply
            if frames is not None:
                frames.append(reply)


async def user_stream_live(stack: Stack, ws: aiohttp.ClientWebSocketResponse, user: int) -> None:
    """Proof that the connection's user-data stream is live, so an action after this is seen:
    the connection answers a request only after it has subscribed the streams its URL names,
    and the gateway's upstreams of the user's orders and balances are open (stream_svc has
    registered them)."""
    assert len((await request(ws, "LIST_SUBSCRIPTIONS"))["result"]) == 1
    names = [Topic("orders", user_id=user).name, Topic("balances", user_id=user).name]
    upstreams = stack.client.app[UPSTREAMS].by_topic
    async with asyncio.timeout(30):
        while not all(n in upstreams and upstreams[n].connected.is_set() for n in names):  # noqa: ASYNC110 - polls the gateway's upstream tasks
            await asyncio.sleep(0.02)


async def rest(live: Live, path: str, **headers: str) -> Any:
    response = await live.stack.client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_snapshot_and_diffs_rebuild_the_book_exactly(live: Live) -> None:
    """Binance's procedure, step by step, on the raw stream; trades once each, in order."""
    trader = Trader(live.stack.engine.stub, seed=11)
    await trader.fund()
    await trader.run(80)
    await live.published()
    url = f"{base(live)}/stream?streams={SYMBOL.lower()}@trade/{SYMBOL.lower()}@aggTrade"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{base(live)}/ws/{SYMBOL.lower()}@depth@100ms") as ws,
        session.ws_connect(url) as trades_ws,
    ):
        assert await request(ws, "LIST_SUBSCRIPTIONS") == {
            "result": [f"{SYMBOL.lower()}@depth@100ms"], "id": 3,
        }  # fmt: skip
        start_seq = live.stack.engine.runtime.engine.seq
        await trader.run(150)  # the stream's diffs are buffered meanwhile
        snapshot = await rest(live, f"/api/v3/depth?symbol={SYMBOL}&limit=1000")
        await trader.run(150)
        # The last event changes this book, so the stream's last diff ends at REST's id.
        await live.stack.engine.stub.Deposit(
            epb.DepositRequest(user_id=9, asset="TATA", amount="1")
        )
        await sell(live, "99999")
        await live.published()
        final = await rest(live, f"/api/v3/depth?symbol={SYMBOL}&limit=1000")
        diffs: list[Any] = []
        async with asyncio.timeout(30):
            while not diffs or diffs[-1]["u"] < final["lastUpdateId"]:
                diffs.append(await next_json(ws))
        events = await all_events(live.stack.engine.stub, live.stack.engine.runtime.engine.seq)
        expected = [
            e.trade_executed.fill.trade_id
            for e in events[start_seq:]
            if e.HasField("trade_executed") and e.trade_executed.fill.market == MARKET
        ]
        got: dict[str, list[Any]] = {}
        async with asyncio.timeout(30):
            while min(len(got.get(f"{SYMBOL.lower()}@{k}", [])) for k in KINDS) < len(expected):
                frame = await next_json(trades_ws)
                got.setdefault(frame["stream"], []).append(frame["data"])

    assert all(d["e"] == "depthUpdate" and d["s"] == SYMBOL and d["E"] > 0 for d in diffs)
    last = snapshot["lastUpdateId"]
    assert diffs[0]["U"] <= last  # the snapshot was taken after the buffering began
    bids = {Decimal(p): q for p, q in snapshot["bids"]}
    asks = {Decimal(p): q for p, q in snapshot["asks"]}
    applied = 0
    for d in diffs:
        if d["u"] <= last:  # covered by the snapshot
            continue
        if applied:
            assert d["U"] == last + 1  # the chain has no gap
        else:
            assert d["U"] <= last + 1 <= d["u"]  # the first one applied spans the snapshot's id
        apply_levels(bids, d["b"])
        apply_levels(asks, d["a"])
        last, applied = d["u"], applied + 1
    assert applied > 0
    assert sorted(bids.items(), reverse=True) == [(Decimal(p), q) for p, q in final["bids"]]
    assert sorted(asks.items()) == [(Decimal(p), q) for p, q in final["asks"]]

    trades, aggregates = got[f"{SYMBOL.lower()}@trade"], got[f"{SYMBOL.lower()}@aggTrade"]
    assert [t["t"] for t in trades] == expected
    assert [(a["a"], a["f"], a["l"]) for a in aggregates] == [(t, t, t) for t in expected]
    assert all(t["e"] == "trade" and t["s"] == SYMBOL and t["T"] > 0 for t in trades)
    assert [(a["p"], a["q"], a["m"]) for a in aggregates] == [
        (t["p"], t["q"], t["m"]) for t in trades
    ]


async def test_every_stream_kind_has_binances_payload(live: Live) -> None:
    stub = live.stack.engine.stub
    await stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount="10"))
    await stub.Deposit(epb.DepositRequest(user_id=8, asset="INR", amount="100000"))
    await sell(live, "1500", "3")
    await sell(live, "1510", "2")
    await live.published()
    s = SYMBOL.lower()
    streams = [f"{s}@depth5", f"{s}@bookTicker", f"{s}@ticker", f"{s}@miniTicker",
               f"{s}@kline_1m", "!ticker@arr"]  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{base(live)}/stream") as ws,
    ):
        early: list[Any] = []
        assert await request(ws, "SUBSCRIBE", *streams, frames=early) == {"result": None, "id": 3}
        assert (await request(ws, "LIST_SUBSCRIPTIONS", frames=early))["result"] == streams
        async with asyncio.timeout(30):
            while not any(f["stream"] == f"{s}@depth5" for f in early):
                early.append(await next_json(ws))
        # A partial depth stream starts with the book; the others with their state, if any.
        first = next(f for f in early if f["stream"] == f"{s}@depth5")
        assert first == {
            "stream": f"{s}@depth5",
            "data": {
                "lastUpdateId": first["data"]["lastUpdateId"],
                "bids": [],
                "asks": [["1500.00", "3"], ["1510.00", "2"]],
            },
        }
        depth = await rest(live, f"/api/v3/depth?symbol={SYMBOL}")
        assert first["data"]["lastUpdateId"] == depth["lastUpdateId"]
        bought = await stub.PlaceOrder(
            epb.PlaceOrderRequest(
                user_id=8, market=MARKET, side=cpb.SIDE_BUY, type=cpb.ORDER_TYPE_LIMIT,
                price="1500", quantity="1", time_in_force=cpb.TIME_IN_FORCE_GTC,
            )
        )  # fmt: skip
        assert bought.code == 0
        seen: dict[str, Any] = {}
        async with asyncio.timeout(30):
            while not (
                seen.get(f"{s}@ticker", {}).get("c") == "1500.00"
                and seen.get(f"{s}@depth5", {}).get("asks", [[0, 0]])[0] == ["1500.00", "2"]
                and seen.get(f"{s}@bookTicker", {}).get("A") == "2"
                and seen.get(f"{s}@kline_1m", {}).get("k", {}).get("c") == "1500.00"
                and seen.get(f"{s}@miniTicker", {}).get("c") == "1500.00"
                and any(
                    t["s"] == SYMBOL and t["c"] == "1500.00" for t in seen.get("!ticker@arr", [])
                )
            ):
                frame = await next_json(ws)
                seen[frame["stream"]] = frame["data"]

        book = seen[f"{s}@bookTicker"]
        assert set(book) == {"u", "s", "b", "B", "a", "A"}
        assert (book["s"], book["a"], book["b"]) == (SYMBOL, "1500.00", "0")
        ticker = seen[f"{s}@ticker"]
        assert (ticker["e"], ticker["s"], ticker["v"], ticker["n"]) == ("24hrTicker", SYMBOL,
                                                                          "1", 1)  # fmt: skip
        mini = seen[f"{s}@miniTicker"]
        assert (mini["e"], mini["v"], mini["q"]) == ("24hrMiniTicker", "1", "1500.00")
        kline = seen[f"{s}@kline_1m"]
        assert kline["e"] == "kline"
        assert kline["s"] == SYMBOL
        k = kline["k"]
        assert (k["i"], k["o"], k["h"], k["l"], k["c"], k["v"], k["n"]) == (
            "1m", "1500.00", "1500.00", "1500.00", "1500.00", "1", 1,
        )  # fmt: skip
        assert k["T"] - k["t"] == 59_999
        tickers = seen["!ticker@arr"]
        assert isinstance(tickers, list)
        assert all(t["e"] == "24hrTicker" for t in tickers)

        assert await request(ws, "UNSUBSCRIBE", *streams[1:]) == {"result": None, "id": 3}
        assert (await request(ws, "LIST_SUBSCRIPTIONS"))["result"] == streams[:1]
        assert await request(ws, "GET_PROPERTY", "combined") == {"result": True, "id": 3}


async def test_bad_requests_get_binances_errors_and_change_nothing(live: Live) -> None:
    s = SYMBOL.lower()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{base(live)}/ws/0") as ws,
    ):
        cases = [
            ("not json", 3),
            ("[1]", 2),
            ('{"method": "PUBLISH", "params": [], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": "x", "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": [], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": ["nopeinr@trade"], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": ["tatainr@kline_2m"], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": ["tatainr@depth7"], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": ["not-a-listen-key"], "id": 1}', 2),
            ('{"method": "SUBSCRIBE", "params": ["tatainr@trade"], "id": -1}', 2),
            ('{"method": "SET_PROPERTY", "params": ["speed", 1], "id": 1}', 2),
            (orjson.dumps({"method": "SUBSCRIBE", "id": 1,
                           "params": [f"{s}@{kind}" for kind in MANY]}).decode(), 2),
        ]  # fmt: skip
        for raw, code in cases:
            await ws.send_str(raw)
            reply = await next_json(ws)
            assert reply.get("error", {}).get("code") == code, (raw, reply)
            assert reply["error"]["msg"]
            assert reply["id"] in (1, None)
        assert await request(ws, "LIST_SUBSCRIPTIONS") == {"result": [], "id": 3}
        assert await request(ws, "SUBSCRIBE", f"{s}@trade") == {"result": None, "id": 3}

        for path in ("/ws/nopeinr@trade", "/stream?streams=tatainr@depth7", "/ws/abcdefghijk"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(base(live) + path)
            assert refused.value.status == 400


# 21 streams of one market, one more than the gateway's limit in these tests
MANY = (
    [f"kline_{i}" for i in ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")]
    + [f"depth{levels}{speed}" for levels in ("", "5", "10", "20") for speed in ("", "@100ms")]
    + ["trade", "aggTrade", "ticker", "miniTicker", "bookTicker"]
)


async def test_a_listen_key_streams_the_callers_orders_and_balances(live: Live) -> None:
    user, auth = await signup(live.stack, "listen@binance.test")
    await fund(live.stack, auth, "INR", "1000")
    key = await (
        await live.stack.client.post("/api/v1/auth/apikeys", json={"label": "k"}, headers=auth)
    ).json()
    headers = {"X-MBX-APIKEY": key["publicKey"]}
    created = await live.stack.client.post("/api/v3/userDataStream", headers=headers)
    assert created.status == 200
    listen_key = (await created.json())["listenKey"]
    again = await live.stack.client.post("/api/v3/userDataStream", headers=headers)
    assert (await again.json())["listenKey"] == listen_key  # the active key, kept longer
    kept = await live.stack.client.put(
        f"/api/v3/userDataStream?listenKey={listen_key}", headers=headers
    )
    assert (kept.status, await kept.json()) == (200, {})
    for bad in ({"X-MBX-APIKEY": "nope"}, {}):
        refused = await live.stack.client.post("/api/v3/userDataStream", headers=bad)
        assert (refused.status, (await refused.json())["code"]) == (401, -2015)
    unknown = await live.stack.client.put(
        "/api/v3/userDataStream?listenKey=abc123", headers=headers
    )
    assert (unknown.status, (await unknown.json())["code"]) == (400, -1125)
    await live.published()

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{base(live)}/ws/{listen_key}") as ws,
    ):
        await user_stream_live(live.stack, ws, user)
        placed = await live.stack.client.post(
            "/api/v1/order",
            json={"symbol": MARKET, "side": "Bid", "orderType": "Limit", "price": "100",
                  "quantity": "2", "clientId": 77},
            headers=auth,
        )  # fmt: skip
        assert placed.status == 200, await placed.text()
        order_id = int((await placed.json())["id"])
        events: dict[str, Any] = {}
        async with asyncio.timeout(30):
            while len(events) < 2:
                event = await next_json(ws)
                events[event["e"]] = event
        report = events["executionReport"]
        assert (report["s"], report["i"], report["c"], report["S"], report["o"]) == (
            SYMBOL, order_id, "77", "BUY", "LIMIT",
        )  # fmt: skip
        assert (report["x"], report["X"], report["p"], report["q"], report["z"]) == (
            "NEW", "NEW", "100.00", "2", "0",
        )  # fmt: skip
        position = events["outboundAccountPosition"]
        [inr] = position["B"]
        assert inr["a"] == "INR"
        assert Decimal(inr["l"]) >= 200
        assert Decimal(inr["f"]) + Decimal(inr["l"]) == 1000

        cancelled = await live.stack.client.delete(
            "/api/v1/order", json={"symbol": MARKET, "orderId": str(order_id)}, headers=auth
        )
        assert cancelled.status == 200, await cancelled.text()
        async with asyncio.timeout(30):
            while (event := await next_json(ws))["e"] != "executionReport":
                pass
        assert (event["x"], event["X"], event["i"]) == ("CANCELED", "CANCELED", order_id)

        closed = await live.stack.client.delete(
            f"/api/v3/userDataStream?listenKey={listen_key}", headers=headers
        )
        assert closed.status == 200
        async with asyncio.timeout(30):
            while (event := await next_json(ws))["e"] != "listenKeyExpired":
                pass
        assert event["listenKey"] == listen_key
        closing = await ws.receive(timeout=30)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused_key:
        async with aiohttp.ClientSession() as session:
            await session.ws_connect(f"{base(live)}/ws/{listen_key}")
    assert refused_key.value.status == 400
