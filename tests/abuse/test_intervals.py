"""Interval frames under abuse, against the live stack (engine -> Redis -> stream_svc ->
gateway). An interval the gateway does not offer (negative, huge, not a number, fractional,
another script's digits) is refused with 400 INVALID_INTERVAL on the WebSocket upgrade and on
SSE alike, and opens nothing; `?interval=0` is real time and accepted on both. A SUBSCRIBE
frame naming an interval in its topic (`depth@TATA_INR@100ms`, `kline.1.5m.TATA_INR`) gets an
error frame with its stable code and subscribes nothing, the connection staying usable. A
client asking real time and then not reading is closed with 1008 SLOW_CONSUMER once a
bounded number of frames behind, while a bystander on the same gateway is unaffected. Each
case is filed under "intervals" in the abuse report.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import socket
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc.streams import OPEN
from tests.abuse.hostile import WS_ERRORS
from tests.abuse.rest import judged
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack
from tests.stream.conftest import Live
from tests.stream.test_ws import next_json, subscribe

SUITE = "intervals"
MARKET = "TATA_INR"
QUIET = "BTC_USDT"  # the sentinel's market: nothing else trades there
BUYER, SELLER = 8, 9
# Neither 0 (real time) nor the gateway's own 100: negative, huge, not a number, fractional,
# signed or padded, other scripts' digits, and a NUL.
BAD = ["-1", "-100", "-0", "5", "99", "101", "0100", "9" * 30, "9" * 5000,
       "18446744073709551716", "fast", "", "null", "100ms", "1e2", "0x64", "0.1", "100.0",
       "99.5", "+100", " 100", "100 ", "\u0661\u0660\u0660", "\uff11\uff10\uff10",
       "%00"]  # fmt: skip
# Topics carrying an interval the gateway has no such stream for.
BAD_TOPICS = [f"depth@{MARKET}@100ms", f"depth.{MARKET}@0ms", f"trade@{MARKET}@-1",
              f"bookTicker@{MARKET}@1.5", f"ticker.{MARKET}@1000ms", f"kline.0m.{MARKET}",
              f"kline.-1m.{MARKET}", f"kline.1.5m.{MARKET}", f"kline.{'9' * 30}m.{MARKET}",
              f"kline.1M.{MARKET}", f"kline.fast.{MARKET}", f"kline..{MARKET}",
              "kline.1m",
              # and stream options other than the spec's trade@<M>@batch
              f"trade.{MARKET}@batch", f"depth@{MARKET}@batch", f"trade@{MARKET}@batched",
              f"trade@{MARKET}@batch@batch"]  # fmt: skip
SENTINEL_ASK = "99000"
SSE = f"/api/v1/stream?topics=depth@{MARKET}"


def is_ask(frame: Any, price: str) -> bool:
    """Whether `frame` is a bookTicker whose best ask is `price` (its tick's decimals)."""
    ask = frame.get("data", {}).get("a")
    return (
        str(frame.get("stream")).startswith("bookTicker")
        and bool(ask)
        and Decimal(ask) == Decimal(price)
    )


def upgrade() -> dict[str, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13"}  # fmt: skip


async def place(
    stack: Stack, market: str, side: cpb.Side.ValueType, price: str, quantity: str
) -> None:
    reply = await stack.engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=BUYER if side == cpb.SIDE_BUY else SELLER, market=market, side=side,
            type=cpb.ORDER_TYPE_LIMIT, price=price, quantity=quantity,
            time_in_force=cpb.TIME_IN_FORCE_GTC,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message


async def fund(stack: Stack, trades: int) -> None:
    for user, asset, amount in ((BUYER, "INR", "100000000"), (SELLER, "TATA", str(trades)),
                                (SELLER, "BTC", "1")):  # fmt: skip
        await stack.engine.stub.Deposit(
            epb.DepositRequest(user_id=user, asset=asset, amount=amount)
        )


async def test_an_interval_the_gateway_does_not_offer_is_refused(live: Live) -> None:
    client = live.stack.client
    opened = client.app[OPEN]
    with TALLY.case(SUITE, "an interval not offered: 400 INVALID_INTERVAL, nothing opened"):
        for bad in BAD:
            value = bad if bad == "%00" else quote(bad)
            for path, headers in ((f"/ws?interval={value}", upgrade()),
                                  (f"/?interval={value}", upgrade()),
                                  (f"{SSE}&interval={value}", {})):  # fmt: skip
                send = functools.partial(client.get, path, headers=headers)
                status, body = await judged(SUITE, live.stack, send)
                assert (status, body["code"]) == (400, "INVALID_INTERVAL"), (bad[:40], path[:60])
                assert not opened, (bad[:40], path[:60])


async def test_real_time_is_accepted_on_both(live: Live) -> None:
    with TALLY.case(SUITE, "interval=0: real time, accepted"):
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{live.ws_url}?interval=0") as ws,
        ):
            assert await subscribe(ws, f"trade@{MARKET}") == {"id": 7, "result": None}
        TALLY.answer(SUITE, 101)
        response = await live.stack.client.get(f"{SSE}&interval=0")
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        response.close()
        TALLY.answer(SUITE, response.status)


async def test_a_topic_naming_an_interval_subscribes_nothing(live: Live) -> None:
    """Every bad SUBSCRIBE gets its error frame; then, while a bystander is sent the market's
    depth, trade and candle, the abuser is sent nothing but the one topic it subscribed to
    afterwards: the bystander's frames and any the abuser wrongly held leave in the same
    flush (one cadence), so the abuser would have had them before its sentinel."""
    stack = live.stack
    await fund(stack, 10)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(live.ws_url) as abuser,
        session.ws_connect(live.ws_url) as bystander,
    ):
        watched = [f"depth.{MARKET}", f"trade.{MARKET}", f"kline.1m.{MARKET}"]
        assert await subscribe(bystander, *watched) == {"id": 7, "result": None}
        with TALLY.case(SUITE, "a topic with an interval in a SUBSCRIBE frame: error frame"):
            for topic in BAD_TOPICS:
                reply = await subscribe(abuser, topic)
                error = reply.get("error", {})
                assert reply["id"] == 7, reply
                assert error.get("code") in (4004, 4006), (topic, reply)
                assert WS_ERRORS[error["code"]] == error["name"], reply
                TALLY.answer(SUITE, "ws", error["name"])
            batch = orjson.dumps({"method": "SUBSCRIBE", "params": BAD_TOPICS[:3], "id": 8})
            await abuser.send_str(batch.decode())
            assert (await next_json(abuser))["error"]["code"] in (4004, 4006)
        with TALLY.case(SUITE, "a topic with an interval in a SUBSCRIBE frame: nothing subscribed"):
            await place(stack, MARKET, cpb.SIDE_BUY, "2100.00", "1")
            await place(stack, MARKET, cpb.SIDE_SELL, "2100.00", "1")
            seen: set[str] = set()
            async with asyncio.timeout(30):
                while not {f"trade.{MARKET}", f"depth.{MARKET}"} <= seen:
                    seen.add((await next_json(bystander))["stream"])
            sentinel = f"bookTicker.{QUIET}"
            assert await subscribe(abuser, sentinel) == {"id": 7, "result": None}
            await place(stack, QUIET, cpb.SIDE_SELL, SENTINEL_ASK, "0.5")
            frames: list[Any] = []
            async with asyncio.timeout(30):
                while not frames or not is_ask(frames[-1], SENTINEL_ASK):
                    frames.append(await next_json(abuser))
            assert {frame["stream"] for frame in frames} == {sentinel}, frames
            assert not abuser.closed


async def raw_client(url: str, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket on a plain socket with a small receive buffer, read only when asked to:
    neither its kernel nor a client library absorbs what the gateway sends."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = orjson.dumps({"method": "SUBSCRIBE", "params": [f"trade@{MARKET}"], "id": 7})
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return reader, writer


async def close_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Reads (late) until the server's close frame: its code and reason."""
    async with asyncio.timeout(60):
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8))
            payload = await reader.readexactly(length)
            if first & 0x0F == 0x8:
                return int.from_bytes(payload[:2]), payload[2:]


async def test_a_real_time_client_that_stops_reading_is_closed(
    live: Live, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(
        stream_address=f"127.0.0.1:{live.stream_port}", ws_queue_frames=20,
        ws_send_buffer_bytes=4096,
    )  # fmt: skip
    most = 10_000  # trades at most: far more than the 20-frame queue and the capped buffers hold
    await fund(stack, most)
    opened = stack.client.app[OPEN]
    with TALLY.case(SUITE, "interval=0 client that stops reading: 1008 SLOW_CONSUMER"):
        await place(stack, MARKET, cpb.SIDE_BUY, "2200.00", str(most))
        reader, writer = await raw_client(stack.url, "/ws?interval=0")
        async with aiohttp.ClientSession() as session:
            # A bystander on a quiet topic of the same gateway.
            url = stack.url.replace("http://", "ws://") + "/ws"
            bystander = await session.ws_connect(url)
            topic = f"bookTicker.{QUIET}"
            assert await subscribe(bystander, topic) == {"id": 7, "result": None}
            async with asyncio.timeout(30):
                while not (stalled := [conn for conn in opened if conn.interval_ms == 0]):  # noqa: ASYNC110 - the gateway's handler registers it
                    await asyncio.sleep(0.01)
            (stalled,) = stalled
            placed = 0
            # A trade frame each, never merged in real time. The stream may lag behind the
            # placements, so once all are placed their frames get time to arrive.
            while not stalled.slow and placed < most:
                await place(stack, MARKET, cpb.SIDE_SELL, "2200.00", "1")
                placed += 1
            async with asyncio.timeout(60):
                while not stalled.slow:  # noqa: ASYNC110 - the gateway's writer decides it
                    await asyncio.sleep(0.05)
            code, reason = await close_frame(reader)
            writer.close()
            assert (code, reason) == (1008, b"SLOW_CONSUMER")
            TALLY.answer(SUITE, "ws", "SLOW_CONSUMER")
            await place(stack, QUIET, cpb.SIDE_SELL, SENTINEL_ASK, "0.5")
            async with asyncio.timeout(30):
                while not is_ask(await next_json(bystander), SENTINEL_ASK):
                    pass
            assert not bystander.closed
            await bystander.close()
