"""Binance's WebSocket face, on the gateway's own fan-out (upstream.py, cadence.py).

- `/ws/<name>[/<name>...]`: raw payloads of the streams named (streams.py); a listen key
  (user_data.py) names the caller's user-data stream. A name of up to 8 characters without
  `@` only labels the connection (ccxt opens `/ws/0`, `/ws/1`, ... and subscribes later).
- `/stream?streams=<name>/<name>`: the same as `{"stream": <name>, "data": <payload>}`.
- Frames in, on both: `{"method": "SUBSCRIBE"|"UNSUBSCRIBE", "params": [names], "id": ..}`,
  `LIST_SUBSCRIPTIONS`, and `SET_PROPERTY`/`GET_PROPERTY` of `combined`; answered with
  `{"result": .., "id": ..}` or `{"error": {"code": 2|3, "msg": ..}, "id": ..}` (Binance's
  codes: 3 is a frame that is not JSON, 2 any other bad request). A bad frame never closes
  the connection.
- `/ws-api/v3`: the WebSocket API's `userDataStream.subscribe.signature` (how ccxt's binance
  class watches spot orders and balances), `userDataStream.unsubscribe`, `ping`, `time`;
  answers `{"id", "status", "result"|"error"}`, events `{"subscriptionId", "event"}`.

Each stream reads the same upstream topic as the other dialects (one per gateway). A
message's payload is rendered once per stream kind and its frame once per wrapper, then the
same bytes go to every connection that gets it; partial depth is rendered once per batch from
the upstream's book, which is at the batch's last diff when the batch goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, cast

import grpc
import orjson
from aiohttp import web
from redis.exceptions import RedisError

from exchange.engine.v1 import engine_pb2 as epb
from gateway_svc.binance import client_ids, user_data
from gateway_svc.binance.auth import verify
from gateway_svc.binance.dialect import binance_symbol
from gateway_svc.binance.errors import binance_code
from gateway_svc.binance.streams import ARRAYS, Stream, StreamError, parse_stream, partial, payload
from gateway_svc.connection import Connection
from gateway_svc.context import BACKENDS, Backends, backends
from gateway_svc.errors import ApiError
from gateway_svc.fences import Scope, admit
from gateway_svc.frames import frame, ws_text
from gateway_svc.private_streams import take_slot
from gateway_svc.streams import UPSTREAMS
from gateway_svc.subscriptions import FrameError, Wanted
from gateway_svc.upstream import Message, Pending, Upstream
from gateway_svc.ws import READY_SECONDS, serve_socket
from tradekit.topics import Topic

routes = web.RouteTableDef()

LABEL_CHARS = 8  # a path name this short, without "@", labels the connection
PARTIAL_WAIT = 100  # looks (10 ms apart) for a new upstream's book, for a first partial depth
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


class WsError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Part(Wanted):
    """One topic of a Binance stream (`!ticker@arr` and user data read several)."""

    stream: str = ""
    kind: str = ""
    levels: int = 0


class BinanceConnection(Connection):
    """A connection of Binance's face: its streams, each one or more `Part`s, and how its
    frames are wrapped (raw, combined, or the WebSocket API's events)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.combined = False
        self.api = False
        self.symbols: dict[str, str] = {}  # market -> Binance symbol
        self.streams: dict[str, list[str]] = {}  # stream -> its parts' names, in order
        self.subscription_ids = 0  # the WebSocket API's, given out so far
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def profile(self) -> Any:
        if self._profile is None:
            names = sorted((w.name, w.topic.name) for w in self.wanted.values())
            self._profile = ("binance", self.combined, self.api, tuple(names))
        return self._profile

    def add(self, stream: Stream) -> list[Upstream]:
        """Subscribes `stream`; returns the upstreams this connection is new to."""
        if stream.name in self.streams:
            return []
        names, joined = [], []
        for topic in stream.topics:
            name = stream.name if len(stream.topics) == 1 else f"{stream.name}#{topic.name}"
            part = Part(name, topic, stream=stream.name, kind=stream.kind, levels=stream.levels)
            upstream = self.subscribe(part)
            names.append(name)
            if upstream is not None:
                joined.append(upstream)
        self.streams[stream.name] = names
        return joined

    def remove(self, stream: str) -> None:
        for name in self.streams.pop(stream, ()):
            self.unsubscribe(name)

    def close(self) -> None:
        self.streams.clear()
        super().close()

    def wrap(self, stream: str, data: bytes) -> bytes:
        if self.api:
            return b'{"subscriptionId":' + stream.encode() + b',"event":' + data + b"}"
        return frame(stream, data) if self.combined else data

    def _data(self, message: Message, part: Part) -> bytes:
        """The message's payload as `part` sends it, made once for all connections."""
        if part.kind == "user":
            build = functools.partial(user_data.event, message.item, self.symbols)
        else:
            symbol = self.symbols.get(part.topic.market, "")
            build = functools.partial(payload, part.kind, message.item, symbol)
        return message.cached(("binance", part.kind), build)

    def _frame(self, message: Message, part: Part) -> bytes:
        data = self._data(message, part)
        if not data:
            return b""
        out = ws_text(self.wrap(part.stream, data))
        if part.kind == "user":  # a balance's capital moves come first (rare: no caching)
            moves = user_data.capital_events(message.item)
            out = b"".join([*(ws_text(self.wrap(part.stream, m)) for m in moves), out])
        return out

    def partial_frame(self, part: Part) -> bytes:
        """The best `part.levels` levels of the upstream's book now; b"" before it has one."""
        upstream = self.upstreams.by_topic.get(part.topic.name)
        book = upstream.book if upstream is not None else None
        if book is None:
            return b""
        bids = list(islice(reversed(book.bids.values()), part.levels))
        asks = list(islice(book.asks.values(), part.levels))
        return ws_text(self.wrap(part.stream, partial(bids, asks, book.last_update_id)))

    def _render(self, pending: Pending) -> tuple[bytes, int]:
        mine = [pending[topic] for topic in self.by_topic if topic in pending]
        messages = mine[0] if len(mine) == 1 else sorted(chain.from_iterable(mine))
        frames: list[bytes] = []
        arrays: dict[str, dict[str, bytes]] = {}  # stream -> topic -> its latest payload
        for _, message in messages:
            for wanted in self.by_topic[message.topic]:
                part = cast(Part, wanted)
                key = ("binance-frame", self.combined, self.api, part.stream)
                if part.kind in ARRAYS:
                    arrays.setdefault(part.stream, {})[message.topic] = self._data(message, part)
                elif part.kind != "partial":
                    out = message.cached(key, functools.partial(self._frame, message, part))
                    if out:
                        frames.append(out)
                elif message is pending[message.topic][-1][1]:  # once a batch
                    out = message.cached(key, functools.partial(self.partial_frame, part))
                    if out:
                        frames.append(out)
        for stream, items in arrays.items():
            frames.append(ws_text(self.wrap(stream, b"[" + b",".join(items.values()) + b"]")))
        return b"".join(frames), len(frames)

    def failed(self, topic: str, code: str, message: str) -> None:
        for wanted in list(self.by_topic.get(topic, ())):
            part = cast(Part, wanted)
            self.put(ws_text(_error(2, f"Invalid request: {part.stream}: {message}", None)))
            self.remove(part.stream)


def _error(code: int, message: str, request_id: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "msg": message}, "id": request_id})


def _request_id(message: dict[str, Any]) -> Any:
    request_id = message.get("id")
    if request_id is None or (isinstance(request_id, str) and len(request_id) <= 64):
        return request_id
    if isinstance(request_id, int) and not isinstance(request_id, bool) and request_id >= 0:
        return request_id
    raise WsError(2, "Invalid request: request ID must be an unsigned integer or a short string")


async def _symbols(b: Backends, conn: BinanceConnection) -> dict[str, str]:
    """Binance symbol -> market, keeping the connection's market -> symbol map current."""
    markets = {binance_symbol(m): m.symbol for m in await b.markets.all()}
    conn.symbols = {market: symbol for symbol, market in markets.items()}
    return markets


async def read_event_names(app: web.Application) -> None:
    """On startup: user-data events of named orders this replica never saw get their names."""
    app[UPSTREAMS].prepare = client_ids.event_names(app[BACKENDS].ledger)


def _is_listen_key(name: str) -> bool:
    return "@" not in name and not name.startswith("!")


async def _claim(b: Backends, conn: BinanceConnection, user_id: int) -> None:
    """Makes the connection its user's (one of their GATEWAY_WS_CONNECTIONS)."""
    if conn.user_id == user_id:
        return
    try:
        await take_slot(b, conn, user_id)
    except FrameError as exc:
        raise WsError(2, f"Invalid request: {exc.message}") from None


async def _open_order_names(b: Backends, user_id: int) -> None:
    """Reads the names of the user's open orders' client ids before their user-data stream
    starts (events render from memory); without the ledger, events show the numbers."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        reply = await b.engine.stub.GetOpenOrders(epb.GetOpenOrdersRequest(user_id=user_id))
        await client_ids.learn(b.ledger, user_id, (o.client_order_id for o in reply.orders))


def _user_stream(name: str, user_id: int) -> Stream:
    topics = (Topic("orders", user_id=user_id), Topic("balances", user_id=user_id))
    return Stream(name, "user", topics)


async def _listen_stream(b: Backends, conn: BinanceConnection, key: str) -> Stream:
    try:
        user_id = await user_data.user_of(b.redis, key)
    except RedisError:
        raise WsError(2, "Invalid request: listen keys are unavailable; try again") from None
    if user_id is None:
        raise WsError(2, f"Invalid request: invalid listen key {key[:80]!r}")
    await _claim(b, conn, user_id)
    # Beside the subscription, not before it: events since the connection opened must not
    # wait on the ledger (an open order's event in between shows its number).
    for task in (
        asyncio.create_task(_open_order_names(b, user_id)),
        asyncio.create_task(_watch_key(b, conn, key)),
    ):
        conn.tasks.add(task)
        task.add_done_callback(conn.tasks.discard)
    return _user_stream(key, user_id)


async def _watch_key(b: Backends, conn: BinanceConnection, key: str) -> None:
    """Ends the key's stream with `listenKeyExpired` once the key is gone; the connection
    closes when that was its last stream."""
    while key in conn.streams:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(user_data.CHECK_SECONDS):
                await conn.closed.wait()
                return
        try:
            alive = await user_data.user_of(b.redis, key) is not None
        except RedisError:
            continue  # Redis is down: keep the stream rather than end everyone's
        if not alive and key in conn.streams:
            conn.put(ws_text(conn.wrap(key, user_data.expired(key))))
            conn.remove(key)
            if not conn.streams:
                conn.closed.set()


async def subscribe(b: Backends, conn: BinanceConnection, names: list[str]) -> None:
    """Subscribes the connection to `names` (streams or listen keys). Raises WsError."""
    new = [n for n in dict.fromkeys(names) if n not in conn.streams]
    most = b.settings.ws_max_topics
    if len(conn.streams) + len(new) > most:
        raise WsError(2, f"Invalid request: too many streams, at most {most} per connection")
    markets = await _symbols(b, conn)
    streams = []
    for name in new:
        if _is_listen_key(name):
            streams.append(await _listen_stream(b, conn, name))
            continue
        try:
            streams.append(parse_stream(name, markets))
        except StreamError as exc:
            raise WsError(2, f"Invalid request: {exc}") from None
    joined = [upstream for stream in streams for upstream in conn.add(stream)]
    await asyncio.gather(*(upstream.wait_ready(READY_SECONDS) for upstream in joined))
    for stream in streams:
        if stream.kind == "partial":
            await _first_partial(conn, cast(Part, conn.wanted[stream.name]))


async def _first_partial(conn: BinanceConnection, part: Part) -> None:
    """A new partial depth stream gets the book at once, not only at its next change."""
    for _ in range(PARTIAL_WAIT):
        out = conn.partial_frame(part)
        if out:
            conn.put(out)
            return
        await asyncio.sleep(0.01)


async def _handle_frame(b: Backends, connection: Connection, raw: str) -> bytes:
    """One client frame on a stream connection: the answer or the error."""
    conn = cast(BinanceConnection, connection)
    request_id: Any = None
    try:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise WsError(3, "Invalid JSON: the frame is not JSON") from None
        if not isinstance(message, dict):
            raise WsError(2, "Invalid request: the frame must be a JSON object")
        request_id = _request_id(message)
        method, params = message.get("method"), message.get("params", [])
        if method not in METHODS:
            raise WsError(2, f"Invalid request: method must be one of {', '.join(METHODS)}")
        if method == "LIST_SUBSCRIPTIONS":
            return orjson.dumps({"result": list(conn.streams), "id": request_id})
        if method in ("GET_PROPERTY", "SET_PROPERTY"):
            return orjson.dumps({"result": _property(conn, method, params), "id": request_id})
        if not (isinstance(params, list) and params and all(isinstance(p, str) for p in params)):
            raise WsError(2, "Invalid request: params must be a non-empty list of stream names")
        if method == "UNSUBSCRIBE":
            for name in params:
                conn.remove(name)
        else:
            await subscribe(b, conn, params)
        return orjson.dumps({"result": None, "id": request_id})
    except WsError as exc:
        return _error(exc.code, exc.message, request_id)


def _property(conn: BinanceConnection, method: str, params: Any) -> bool | None:
    if method == "GET_PROPERTY" and params == ["combined"]:
        return conn.combined
    if method == "SET_PROPERTY" and isinstance(params, list) and len(params) == 2:
        name, value = params
        if name == "combined" and isinstance(value, bool):
            conn.combined = value
            conn._profile = None
            return None
    raise WsError(2, "Invalid request: the only property is combined (true or false)")


def _connection(*args: Any, **kwargs: Any) -> Connection:
    return BinanceConnection(*args, **kwargs)


async def _serve(request: web.Request, names: list[str], *, combined: bool) -> web.StreamResponse:
    """Checks the streams named in the URL before the upgrade (400 INVALID_STREAM), then
    serves them."""
    b = backends(request)
    markets = {binance_symbol(m): m.symbol for m in await b.markets.all()}
    if len(names) > b.settings.ws_max_topics:
        raise ApiError(400, "TOO_MANY_STREAMS", f"at most {b.settings.ws_max_topics} streams")
    for name in names:
        if not _is_listen_key(name):
            try:
                parse_stream(name, markets)
            except StreamError as exc:
                raise ApiError(400, "INVALID_STREAM", str(exc)) from None
        elif await user_data.user_of(b.redis, name) is None:
            raise ApiError(400, "INVALID_LISTEN_KEY", "This listenKey does not exist.")

    async def opened(connection: Connection) -> None:
        conn = cast(BinanceConnection, connection)
        conn.combined = combined
        try:
            await subscribe(b, conn, names)
        except WsError as exc:
            conn.put(ws_text(_error(exc.code, exc.message, None)))

    return await serve_socket(request, _connection, _handle_frame, opened)


def _path_names(text: str) -> list[str]:
    names = [n for n in text.split("/") if n]
    return [n for n in names if not (_is_listen_key(n) and len(n) <= LABEL_CHARS)]


@routes.get("/ws/{streams:.+}")
async def raw_streams(request: web.Request) -> web.StreamResponse:
    return await _serve(request, _path_names(request.match_info["streams"]), combined=False)


@routes.get("/stream")
async def combined_streams(request: web.Request) -> web.StreamResponse:
    names = [n for n in request.query.get("streams", "").split("/") if n]
    return await _serve(request, names, combined=True)


# The WebSocket API (only what user data needs).


def _api_answer(request_id: Any, result: Any) -> bytes:
    return orjson.dumps({"id": request_id, "status": 200, "result": result})


def _api_error(request_id: Any, status: int, code: int, message: str) -> bytes:
    return orjson.dumps(
        {"id": request_id, "status": status, "error": {"code": code, "msg": message}}
    )


async def _signed_user(b: Backends, conn: BinanceConnection, params: dict[str, Any]) -> int:
    """The user of a signed WebSocket API request: its parameters but the signature, sorted
    by name, as `key=value` joined by `&`, is what the key signed."""
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    signature = text.pop("signature", "")
    message = "&".join(f"{k}={v}" for k, v in sorted(text.items()))
    # No replay guard: a subscription only reads (as for the gateway's own WebSocket).
    caller = await verify(text.get("apiKey", ""), text, message.encode(), signature, b.api_keys)
    assert caller.key is not None
    admit(Scope.READ, caller.key.permissions, caller.key.ip_allowlist, conn.address)
    return caller.user_id


async def _api_request(b: Backends, conn: BinanceConnection, message: dict[str, Any]) -> Any:
    method, params = message.get("method"), message.get("params", {})
    if not isinstance(params, dict):
        raise ApiError(400, "INVALID_CLIENT_REQUEST", "params must be an object.")
    if method == "ping":
        return {}
    if method == "time":
        return {"serverTime": int(time.time() * 1000)}
    if method == "userDataStream.subscribe.signature":
        user_id = await _signed_user(b, conn, params)
        try:
            await _claim(b, conn, user_id)
        except WsError as exc:
            raise ApiError(400, "INVALID_CLIENT_REQUEST", exc.message) from None
        await _open_order_names(b, user_id)
        subscription = conn.subscription_ids
        conn.subscription_ids += 1
        joined = conn.add(_user_stream(str(subscription), user_id))
        await asyncio.gather(*(upstream.wait_ready(READY_SECONDS) for upstream in joined))
        return {"subscriptionId": subscription}
    if method == "userDataStream.unsubscribe":
        which = params.get("subscriptionId")
        for stream in list(conn.streams) if which is None else [str(which)]:
            conn.remove(stream)
        return {}
    if method == "session.subscriptions":
        return [{"subscriptionId": int(stream)} for stream in conn.streams]
    raise ApiError(400, "INVALID_CLIENT_REQUEST", f"Unknown method {str(method)[:40]!r}.")


async def _handle_api_frame(b: Backends, connection: Connection, raw: str) -> bytes:
    conn = cast(BinanceConnection, connection)
    request_id: Any = None
    try:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "INVALID_CLIENT_REQUEST", "The frame is not JSON.") from None
        if not isinstance(message, dict):
            raise ApiError(400, "INVALID_CLIENT_REQUEST", "The frame must be a JSON object.")
        request_id = message.get("id")
        if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
            request_id = None
        return _api_answer(request_id, await _api_request(b, conn, message))
    except ApiError as exc:
        code, text = binance_code(exc)
        return _api_error(request_id, exc.status, code, text)


@routes.get("/ws-api/v3")
async def websocket_api(request: web.Request) -> web.StreamResponse:
    async def opened(connection: Connection) -> None:
        cast(BinanceConnection, connection).api = True

    return await serve_socket(request, _connection, _handle_api_frame, opened)
