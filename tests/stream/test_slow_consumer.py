"""A WebSocket client that stops reading is closed (1008 SLOW_CONSUMER) once it is a bounded
amount behind, while a client that reads goes on. The bound holds because the gateway caps
the kernel's send buffer (GATEWAY_WS_SEND_BUFFER_BYTES): left to itself, Linux grows it to
megabytes for such a client, and the gateway's queue limit would never see the backlog.

The lagging client is a raw socket with a small receive buffer, so that neither its kernel
nor a client library absorbs what the gateway sends."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.conftest import Stack
from tests.stream.conftest import Live
from tests.stream.test_ws import MARKET, subscribe

TRADES = 1500  # ~270 KB of frames: a fifteenth of what Linux would buffer for the client
ROUNDS = 6  # of TRADES / ROUNDS trades, each read by the reading client before the next
PRICE = "2100.00"


class RawClient:
    """A WebSocket client on a plain socket that reads only when told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_text(self, payload: bytes) -> None:
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        first, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length >= 126:
            length = int.from_bytes(await self.reader.readexactly(2 if length == 126 else 8))
        return first & 0x0F, await self.reader.readexactly(length)


async def slow_closes(stack: Stack) -> float:
    page = await (await stack.client.get("/metrics")).text()
    match = re.search(r"^gateway_ws_slow_closed_total (\S+)$", page, re.MULTILINE)
    return 0.0 if match is None else float(match[1])


async def place(stack: Stack, user: int, side: cpb.Side.ValueType, quantity: int) -> None:
    reply = await stack.engine.stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=user, market=MARKET, side=side, type=cpb.ORDER_TYPE_LIMIT,
            price=PRICE, quantity=str(quantity), time_in_force=cpb.TIME_IN_FORCE_GTC,
        )
    )  # fmt: skip
    assert reply.code == 0, reply.message


async def test_a_client_that_stops_reading_is_closed_and_one_that_reads_is_not(
    live: Live, stack_factory: Callable[..., Awaitable[Stack]]
) -> None:
    stack = await stack_factory(
        # 200 frames: room for a few of a reading client's interval batches (each may hold
        # dozens of trades) while the lagging one, ~1,000 frames behind, still overflows.
        stream_address=f"127.0.0.1:{live.stream_port}", ws_queue_frames=200,
        ws_send_buffer_bytes=4096,
    )  # fmt: skip
    topic = f"trade@{MARKET}"
    stub = stack.engine.stub
    await stub.Deposit(epb.DepositRequest(user_id=8, asset="INR", amount="10000000"))
    await stub.Deposit(epb.DepositRequest(user_id=9, asset="TATA", amount=str(TRADES)))
    await place(stack, 8, cpb.SIDE_BUY, TRADES)  # one resting buy that every sell fills
    before = await slow_closes(stack)

    lagging = await RawClient.connect(stack.url)
    lagging.send_text(orjson.dumps({"method": "SUBSCRIBE", "params": [topic], "id": 7}))
    opcode, ack = await lagging.frame()
    assert (opcode, orjson.loads(ack)) == (1, {"id": 7, "result": None})

    async with aiohttp.ClientSession() as session:
        reading = await session.ws_connect(stack.url.replace("http://", "ws://") + "/ws")
        assert await subscribe(reading, topic) == {"id": 7, "result": None}
        # In rounds, each read before the next is placed, so that each goes out in batches
        # of its own whatever the gateway's cadence: the lagging client's buffers take a
        # whole batch while below their limit, and one batch of everything would fit.
        trades = 0
        for placed in range(TRADES // ROUNDS, TRADES + 1, TRADES // ROUNDS):
            for _ in range(TRADES // ROUNDS):  # a trade frame each, ~180 bytes: never merged
                await place(stack, 9, cpb.SIDE_SELL, 1)
            # The reading client gets every trade; meanwhile the lagging one is closed.
            async with asyncio.timeout(60):
                while trades < placed:
                    message = orjson.loads((await reading.receive()).data)
                    trades += message["stream"] == topic
        assert await slow_closes(stack) == before + 1
        assert not reading.closed
        await reading.close()

    # The lagging client finds its frames cut short by a close frame: 1008, SLOW_CONSUMER.
    async with asyncio.timeout(10):
        while (frame := await lagging.frame())[0] != 0x8:
            assert frame[0] == 0x1
    assert int.from_bytes(frame[1][:2]) == 1008
    assert frame[1][2:] == b"SLOW_CONSUMER"
    lagging.writer.close()
