"""The benchmark's WebSocket clients: one process of many picows clients, each checking every
frame it is sent.

picows parses frames in C and hands each to `on_ws_frame`. A client checks every frame:
depth diffs in one unbroken chain (each `U` the previous `u` + 1) and trade ids without
gaps (only the benchmark's market trades, so ids are consecutive), whether each trade came
in its own frame (`trade.S`) or in a batch frame (`trade@S@batch`, never empty, its ids
consecutive within it and after the previous one's). Frames inside the measured window are
counted, and each depth diff and trade in them is timed from its own engine timestamp `E`
(one machine, one clock). Several such processes share the clients
(`--client-processes`), so that the load generator is not the limit on its own cores.

The gateway writes the same bytes to every subscriber of a topic, and what a frame's bytes
say is a function of those bytes alone: so each process parses a distinct frame once and
remembers what it says (`Frame`: its kind, its ids, its trades' `E`) for the next
`MEMO_FRAMES` distinct frames. Every frame is still checked by every client, against that
client's own previous `u` or trade id (identical bytes, identical content); only the JSON
parse and the checks inside one frame are shared. Nor is a delay computed per trade per
client: a frame in the window records its receipt times, and the delays (every receipt
minus every `E` of the frame) are counted exactly from those after the window
(bench/ws/delays.py).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import resource
import sys
import time
from collections import Counter
from collections.abc import Sequence
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


MEMO_FRAMES = 512  # distinct frames remembered: a run's latest are a few per interval


class Frame:
    """What one distinct frame says (parsed once per process), and when it was received in
    the window, by any client of the process. `receive` checks it for one client."""

    __slots__ = ("receipts", "stamps", "trades")

    def __init__(self, stamps: list[int], trades: bool) -> None:
        self.stamps = stamps  # the E of each of its messages
        self.trades = trades
        # µs, one per client receiving it; a list, as appending to an array("q") parses its
        # argument (PyArg_Parse), which costs as much as the rest of a frame's checks
        self.receipts: list[int] = []

    def receive(self, client: BenchClient, received: int, inside: bool) -> None:
        raise NotImplementedError


class Depth(Frame):
    __slots__ = ("first", "last")

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__([data["E"]], trades=False)
        self.first, self.last = data["U"], data["u"]

    def receive(self, client: BenchClient, received: int, inside: bool) -> None:
        if self.first != client.last_u + 1 and client.last_u:
            client.tally.depth_gaps += 1
        client.last_u = self.last
        if inside:
            client.counted += 1
            self.receipts.append(received)


class Trade(Frame):
    """One trade a frame (`trade.S`)."""

    __slots__ = ("t",)

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__([data["E"]], trades=True)
        self.t: int = data["t"]

    def receive(self, client: BenchClient, received: int, inside: bool) -> None:
        t, last = self.t, client.last_t
        if t != last + 1 and last:
            client.tally.trades_repeated += t <= last
            client.tally.trades_missing += max(0, t - last - 1)
        if t > last:
            client.last_t = t
        if inside:
            client.counted += 1
            self.receipts.append(received)


class Batch(Frame):
    """A batch frame (`trade@S@batch`): the checks within it made once, for a client whose
    last trade id is below its first (any other one checks all of it, as a new frame)."""

    __slots__ = ("ids", "last", "missing", "repeated")

    def __init__(self, trades: list[dict[str, Any]]) -> None:
        super().__init__([trade["E"] for trade in trades], trades=True)
        self.ids: tuple[int, ...] = tuple(trade["t"] for trade in trades)
        self.last, self.missing, self.repeated = checked(
            self.ids[1:], self.ids[0] if self.ids else 0
        )

    def receive(self, client: BenchClient, received: int, inside: bool) -> None:
        ids, tally = self.ids, client.tally
        if not ids:
            tally.batches_empty += 1
            return
        last = client.last_t
        if ids[0] > last:  # the first trade is new: the rest as checked when parsed
            if ids[0] != last + 1 and last:
                tally.trades_missing += ids[0] - last - 1
            tally.trades_missing += self.missing
            tally.trades_repeated += self.repeated
            client.last_t = self.last
        else:
            client.last_t, missing, repeated = checked(ids, last)
            tally.trades_missing += missing
            tally.trades_repeated += repeated
        if inside:
            client.counted += 1
            self.receipts.append(received)


def checked(ids: Sequence[int], last: int) -> tuple[int, int, int]:
    """Trade ids `ids` after `last` (0: none yet): the last id after them, how many ids were
    skipped over and how many were not above the last one."""
    missing = repeated = 0
    for t in ids:
        if t != last + 1 and last:
            repeated += t <= last
            missing += max(0, t - last - 1)
        if t > last:
            last = t
    return last, missing, repeated


def parsed(message: dict[str, Any]) -> Frame | None:
    """What a frame's message says; None for one without data (an ack or an error)."""
    data = message.get("data")
    if data is None:
        return None
    if data.__class__ is list:
        return Batch(data)
    return Trade(data) if data["e"] == "trade" else Depth(data)


class Memo:
    """The latest MEMO_FRAMES distinct frames' bytes and what they say (the oldest forgotten
    first), and every distinct frame for its receipts. The two last looked up are compared
    before the dict is: the gateway writes each interval's depth and trades frames to every
    client in turn, and hashing a batch frame's kilobyte costs more than its checks."""

    def __init__(self) -> None:
        self.frames: dict[bytes, Frame] = {}
        self.distinct: list[Frame] = []
        self.key, self.key_before = b"", b""  # no text frame is empty
        self.frame: Frame | None = None
        self.frame_before: Frame | None = None

    def get(self, payload: bytes) -> Frame | None:
        if payload == self.key:
            return self.frame
        if payload == self.key_before:
            return self.frame_before
        frame = self.frames.get(payload)
        if frame is not None:
            self.key_before, self.frame_before = self.key, self.frame
            self.key, self.frame = payload, frame
        return frame

    def add(self, payload: bytes, frame: Frame) -> None:
        frames = self.frames
        frames[payload] = frame
        if len(frames) > MEMO_FRAMES:
            del frames[next(iter(frames))]
        self.distinct.append(frame)
        self.key_before, self.frame_before = self.key, self.frame
        self.key, self.frame = payload, frame


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
    memo: Memo = field(default_factory=Memo)
    depth_gaps: int = 0  # diffs whose U is not the previous u + 1
    trades_missing: int = 0  # trade ids skipped over
    trades_repeated: int = 0  # trade ids not above the last one
    batches_empty: int = 0  # batch frames without a trade
    tried: asyncio.Event = field(default_factory=asyncio.Event)

    def attempt_done(self) -> None:
        if self.connected + sum(self.failures.values()) == self.count:
            self.tried.set()

    def result(self) -> dict[str, Any]:
        received = [frame for frame in self.memo.distinct if frame.receipts]
        return {
            "frames": self.frames,
            # (E values, trades or not, sorted receipts) per distinct frame received in the
            # window: bench/ws/delays.py counts their delays.
            "received": [
                (f.stamps, f.trades, array.array("q", sorted(f.receipts))) for f in received
            ],
            "closes": dict(self.closes),
            "error_frames": dict(self.error_frames),
            "depth_gaps": self.depth_gaps,
            "trades_missing": self.trades_missing,
            "trades_repeated": self.trades_repeated,
            "trade_frames": sum(len(f.receipts) for f in received if f.trades),
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

    # Slots: picows' WSListener is a C type, so a subclass's attributes would live in a
    # dict, read through the generic lookup on every frame.
    __slots__ = (
        "acknowledged", "closed_by_server", "connected", "counted", "index", "last_t",
        "last_u", "memo", "tally", "topics", "transport",
    )  # fmt: skip

    def __init__(self, index: int, topics: tuple[str, ...], tally: ClientTally) -> None:
        super().__init__()
        self.index, self.topics, self.tally = index, topics, tally
        self.memo = tally.memo
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
        client, every frame): a frame seen already is looked up, not parsed again."""
        received = time_ns() // 1000
        frame = self.memo.get(payload)
        if frame is None:
            message = loads(payload)
            frame = parsed(message)
            if frame is None:
                self.control(message)
                return
            self.memo.add(payload, frame)
        start, end = self.tally.window
        frame.receive(self, received, start <= received < end)

    def control(self, message: dict[str, Any]) -> None:
        """A frame without data: this client's acknowledgement, or an error frame."""
        if message.get("id") == self.index and not self.acknowledged.done():
            if "error" in message:
                self.acknowledged.set_exception(ConnectionError(message["error"]["name"]))
            else:
                self.acknowledged.set_result(None)
        else:
            self.tally.error_frames[message.get("error", {}).get("name", "?")] += 1
