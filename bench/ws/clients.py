"""The benchmark's WebSocket clients: one process of many picows clients, each checking every
frame it is sent.

picows parses frames in C and hands each to `on_ws_frame`; a client parses its JSON and
checks it: depth diffs in one unbroken chain (each `U` the previous `u` + 1) and trade ids
without gaps (only the benchmark's market trades, so ids are consecutive), whether each
trade came in its own frame (`trade.S`) or in a batch frame (`trade@S@batch`, never
empty, its ids consecutive within it and after the previous one's). Frames inside the
measured window are counted and each depth diff and trade in them timed from its own
engine timestamp `E` (one machine, one clock). Several such processes share the clients
(`--client-processes`), so that the load generator is not the limit on its own single core.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from time import time_ns
from typing import Any

import orjson
from orjson import loads
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from servicekit.clock import now_us

CONNECT_CONCURRENCY = 50  # per process; all of them stay below the gateway's backlog (128)
CONNECT_TIMEOUT_S = 120.0  # per client, from its turn to its SUBSCRIBE being acknowledged
FD_WANTED = 65_536  # descriptors for 20,000+ clients on one gateway, and its others


def raise_fd_limit() -> int:
    """Raise this process's open-file limit (children inherit it, the gateway too): to
    FD_WANTED where the hard limit may be raised (root or CAP_SYS_RESOURCE, as in a
    container), else to the hard limit. Returns the limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_WANTED:
        with contextlib.suppress(ValueError, OSError):  # not allowed: the hard limit it is
            resource.setrlimit(resource.RLIMIT_NOFILE, (FD_WANTED, FD_WANTED))
            return FD_WANTED
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass


def clients_process(
    url: str, first: int, count: int, topics: tuple[str, ...], conn: Connection
) -> None:
    """Clients `first` .. `first + count - 1`; answers on `conn` (see `_clients`)."""
    raise_fd_limit()
    install_uvloop()
    asyncio.run(_clients(url, first, count, topics, conn))


@dataclass
class ClientTally:
    """What this process's clients received; frames count only inside the window."""

    count: int
    window: tuple[int, int] = (sys.maxsize, sys.maxsize)
    connected: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    error_frames: Counter[str] = field(default_factory=Counter)
    frames: list[int] = field(default_factory=list)  # per connected client, in the window
    delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    trade_delays_us: array.array[int] = field(default_factory=lambda: array.array("q"))
    depth_gaps: int = 0  # diffs whose U is not the previous u + 1
    trades_missing: int = 0  # trade ids skipped over
    trades_repeated: int = 0  # trade ids not above the last one
    trade_frames: int = 0  # frames of trades in the window (a batch frame holds several)
    batches_empty: int = 0  # batch frames without a trade
    tried: asyncio.Event = field(default_factory=asyncio.Event)

    def attempt_done(self) -> None:
        if self.connected + sum(self.failures.values()) == self.count:
            self.tried.set()

    def result(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "delays_us": self.delays_us,
            "trade_delays_us": self.trade_delays_us,
            "closes": dict(self.closes),
            "error_frames": dict(self.error_frames),
            "depth_gaps": self.depth_gaps,
            "trades_missing": self.trades_missing,
            "trades_repeated": self.trades_repeated,
            "trade_frames": self.trade_frames,
            "batches_empty": self.batches_empty,
        }


async def _clients(
    url: str, first: int, count: int, topics: tuple[str, ...], conn: Connection
) -> None:
    """Connects, says how that went, waits for the window, measures it, sends the tally, and
    keeps the clients connected until told "done"."""
    tally = ClientTally(count)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.perf_counter()
    clients = [BenchClient(first + i, topics, tally) for i in range(count)]
    tasks = [asyncio.create_task(client.run(url, gate)) for client in clients]
    await tally.tried.wait()
    conn.send(
        {
            "connected": tally.connected,
            "connection_failures": sum(tally.failures.values()),
            "failure_reasons": dict(tally.failures.most_common(5)),
            "connect_seconds": round(time.perf_counter() - started, 2),
        }
    )
    tally.window = await asyncio.to_thread(conn.recv)
    await asyncio.sleep(max(0.0, (tally.window[1] - now_us()) / 1e6))
    tally.frames = [client.counted for client in clients if client.connected]
    conn.send(tally.result())
    await asyncio.to_thread(conn.recv)  # done: the gateway was read with us connected
    for client in clients:
        client.disconnect()
    await asyncio.gather(*tasks, return_exceptions=True)


class BenchClient(WSListener):
    """One WebSocket client: subscribes, then checks and times every frame."""

    def __init__(self, index: int, topics: tuple[str, ...], tally: ClientTally) -> None:
        super().__init__()
        self.index, self.topics, self.tally = index, topics, tally
        self.transport: WSTransport | None = None
        self.acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_u = self.last_t = 0
        self.counted = 0  # its frames inside the window
        self.closed_by_server = False
        self.connected = False  # acknowledged

    async def run(self, url: str, gate: asyncio.Semaphore) -> None:
        try:
            async with gate, asyncio.timeout(CONNECT_TIMEOUT_S):
                transport, _ = await ws_connect(lambda: self, url, read_buffer_init_size=4096)
                await self.acknowledged
        except Exception as exc:  # counted, and the run goes on with the others
            self.tally.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            self.tally.attempt_done()
            self.disconnect()
            return
        self.connected = True
        self.tally.connected += 1
        self.tally.attempt_done()
        await transport.wait_disconnected()
        if not self.closed_by_server and not self.acknowledged.cancelled():
            self.tally.closes["lost"] += self.transport is not None

    def disconnect(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.disconnect()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        subscribe = {"method": "SUBSCRIBE", "params": list(self.topics), "id": self.index}
        transport.send(WSMsgType.TEXT, orjson.dumps(subscribe))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.acknowledged.done():
            self.acknowledged.set_exception(ConnectionError("closed before the ack"))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.TEXT:
            self.text(frame.get_payload_as_bytes())
        elif kind == WSMsgType.CLOSE:
            self.closed_by_server = True
            reason = (frame.get_close_message() or b"").decode(errors="replace")
            self.tally.closes[f"{frame.get_close_code().value} {reason}"] += 1
            transport.disconnect()

    def text(self, payload: bytes) -> None:
        """Checks and times one frame. The hot path of the whole load generator (every
        client, every frame): locals, one JSON parse, one branch per check."""
        received = time_ns() // 1000
        message = loads(payload)
        data = message.get("data")
        if data is None:
            self.control(message)
            return
        start, end = self.tally.window
        if data.__class__ is list:
            self.batch(data, received, start <= received < end)
            return
        if data["e"] == "trade":
            t, last = data["t"], self.last_t
            if t != last + 1 and last:
                self.tally.trades_repeated += t <= last
                self.tally.trades_missing += max(0, t - last - 1)
            if t > last:
                self.last_t = t
            if start <= received < end:
                self.counted += 1
                self.tally.trade_frames += 1
                delay = received - data["E"]
                self.tally.delays_us.append(delay)
                self.tally.trade_delays_us.append(delay)
            return
        if data["U"] != self.last_u + 1 and self.last_u:
            self.tally.depth_gaps += 1
        self.last_u = data["u"]
        if start <= received < end:
            self.counted += 1
            self.tally.delays_us.append(received - data["E"])

    def batch(self, trades: list[dict[str, Any]], received: int, inside: bool) -> None:
        """Checks one batch frame's trades, as `text` checks single ones, and times each from
        its own `E`: the first of a batch waited longest for its frame."""
        tally = self.tally
        if not trades:
            tally.batches_empty += 1
            return
        last = self.last_t
        for trade in trades:
            t = trade["t"]
            if t != last + 1 and last:
                tally.trades_repeated += t <= last
                tally.trades_missing += max(0, t - last - 1)
            if t > last:
                last = t
        self.last_t = last
        if inside:
            self.counted += 1
            tally.trade_frames += 1
            delays = [received - trade["E"] for trade in trades]
            tally.delays_us.extend(delays)
            tally.trade_delays_us.extend(delays)

    def control(self, message: dict[str, Any]) -> None:
        """A frame without data: this client's acknowledgement, or an error frame."""
        if message.get("id") == self.index and not self.acknowledged.done():
            if "error" in message:
                self.acknowledged.set_exception(ConnectionError(message["error"]["name"]))
            else:
                self.acknowledged.set_result(None)
        else:
            self.tally.error_frames[message.get("error", {}).get("name", "?")] += 1
