"""stream_svc's state and fan-out: Redis in, per-topic subscriber queues out.

Per market it keeps the book (checked by update id, resynced from the engine's depth on a
gap), the recent trades, the ticker, the best bid/ask and the open candles. Every book diff
it sends continues its own id chain (first id = previous last id + 1); after a resync
(Redis lost messages or restarted, the publisher started over) it sends the new book whole,
as a snapshot, because the updates in between are lost: a diff from the old book to the
new one would be wrong for a client whose book lies between the two.

A subscriber gets the topic's state first, then its updates, through a bounded queue; one
that falls a whole queue behind is dropped (the gateway reconnects and gets a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from exchange.engine.v1 import engine_pb2 as epb
from exchange.stream.v1 import stream_pb2 as spb
from stream_svc.redis_keys import state_key, trades_key
from tradekit.book import Book, Gap
from tradekit.topics import Topic

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

log = logging.getLogger(__name__)

# Recent trades per market, as many as the publisher lists by default: they bridge an outage
# of this hub for the gateway, so they bound how many trades one can last.
RECENT_TRADES = 200
LOADED_WAIT_S = 5.0  # at most this long a subscriber waits for its market's state from Redis
T = TypeVar("T")


class SlowSubscriber(Exception):
    """The subscriber's queue overflowed; it was dropped."""


class UnknownMarket(Exception):
    pass


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[spb.MarketData | None]
    overflowed: bool = False

    async def next(self) -> spb.MarketData:
        """The next update. Raises SlowSubscriber once the queue overflowed."""
        item = await self.queue.get()
        if item is None:
            raise SlowSubscriber
        return item

    def put(self, item: spb.MarketData) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue = asyncio.Queue(1)  # drop the backlog now; the reader sees the end
            self.queue.put_nowait(None)


@dataclass
class MarketCache:
    symbol: str
    book: Book | None = None  # None until the first resync
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[spb.DepthUpdate] | None = None  # diffs held while resyncing
    trades: deque[spb.MarketData] = field(default_factory=lambda: deque(maxlen=RECENT_TRADES))
    # ticker, best bid/ask and open candles: the latest item by the name of its topic
    state: dict[str, spb.MarketData] = field(default_factory=dict)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)  # state and trades from Redis

    @property
    def last_trade_id(self) -> int:
        return self.trades[-1].trade.trade_id if self.trades else 0


class StreamHub:
    def __init__(self, engine: EngineServiceAsyncStub, redis: Redis, queue_items: int) -> None:
        self.engine = engine
        self.redis = redis
        self.queue_items = queue_items
        self.markets: dict[str, MarketCache] = {}
        self.topics: dict[str, set[Subscriber]] = {}
        self.users: dict[int, int] = {}  # user id -> subscribers of their topics
        self.connected = asyncio.Event()
        self.resyncs = 0
        self.fanned_out = 0  # messages handed to subscribers
        self.dropped = 0  # subscribers dropped for being slow
        self._pubsub: PubSub | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- subscribers ----

    @contextlib.asynccontextmanager
    async def subscription(
        self, topic: Topic
    ) -> AsyncIterator[tuple[list[spb.MarketData], Subscriber]]:
        """The topic's state now and a subscriber that gets every update after it.
        Raises UnknownMarket."""
        snapshot: list[spb.MarketData] = []
        if topic.market:
            cache = self.markets.get(topic.market) or await self._listed_market(topic.market)
            if cache is None:
                raise UnknownMarket(topic.market)
            if topic.kind == "depth":
                await cache.ready.wait()
            else:  # the recent trades and state from Redis, which bridge a restart
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LOADED_WAIT_S):
                        await cache.loaded.wait()
        sub = Subscriber(asyncio.Queue(self.queue_items))
        # Snapshot and registration in one step: no update can fall between them.
        if topic.market:
            snapshot = self._snapshot(self.markets[topic.market], topic)
        self.topics.setdefault(topic.name, set()).add(sub)
        if topic.user_id:
            await self._watch_user(topic.user_id)
        try:
            yield snapshot, sub
        finally:
            if sub.overflowed:
                self.dropped += 1
            subs = self.topics.get(topic.name)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.topics[topic.name]
            if topic.user_id:
                await self._unwatch_user(topic.user_id)

    def _snapshot(self, cache: MarketCache, topic: Topic) -> list[spb.MarketData]:
        if topic.kind == "depth":
            assert cache.book is not None
            return [spb.MarketData(depth=cache.book.snapshot())]
        if topic.kind == "trade":
            recent = []
            for item in cache.trades:
                copy = spb.MarketData()
                copy.CopyFrom(item)
                copy.trade.recent = True
                recent.append(copy)
            return recent
        state = cache.state.get(topic.name)
        return [state] if state is not None else []

    def _fan_out(self, topic: str, item: spb.MarketData) -> None:
        subs = self.topics.get(topic, ())
        for sub in subs:
            sub.put(item)
        self.fanned_out += len(subs)

    # ---- Redis ----

    async def run(self) -> None:
        """Reads Redis forever; after each (re)connection, reloads state and resyncs books.

        The market list comes from the engine in the background: markets also appear as
        their first messages arrive, and Redis alone is enough to serve trades and tickers."""
        self._spawn(self._list_markets(), "list markets")
        delay = 0.2
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe("md.*")
                for user in self.users:
                    await pubsub.subscribe(f"user.{user}")
                self._pubsub = pubsub
                for cache in list(self.markets.values()):  # _list_markets may add some
                    self._start_resync(cache)
                    await self._load_state(cache)
                self.connected.set()
                delay = 0.2
                async for message in pubsub.listen():
                    self._on_message(message)
            except (RedisError, OSError) as exc:
                log.warning("redis lost", extra={"error": repr(exc), "retry_s": delay})
            finally:
                self.connected.clear()
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _list_markets(self) -> None:
        await self._adopt(
            await self._retry(lambda: self.engine.ListMarkets(epb.ListMarketsRequest()))
        )

    async def _adopt(self, listing: epb.ListMarketsReply) -> None:
        """Takes on the listed markets this hub does not know yet."""
        for mk in listing.markets:
            if mk.symbol not in self.markets:
                cache = self._add_market(mk.symbol)
                if self.connected.is_set():
                    await self._load_state(cache)

    def _add_market(self, symbol: str) -> MarketCache:
        """A new market's cache, its book resyncing at once: diffs that arrive meanwhile
        (even while its state loads) are held, never applied to a missing book."""
        cache = self.markets[symbol] = MarketCache(symbol)
        self._start_resync(cache)
        return cache

    async def _listed_market(self, symbol: str) -> MarketCache | None:
        """A market this hub has not seen yet: asks the engine, which may have listed it
        since (or this hub may have just started), so that a subscriber is not refused a
        market that exists."""
        try:
            await self._adopt(await self.engine.ListMarkets(epb.ListMarketsRequest(), timeout=5))
        except grpc.aio.AioRpcError:
            return None
        return self.markets.get(symbol)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def _watch_user(self, user: int) -> None:
        self.users[user] = self.users.get(user, 0) + 1
        if self.users[user] == 1 and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.subscribe(f"user.{user}")

    async def _unwatch_user(self, user: int) -> None:
        self.users[user] -= 1
        if self.users[user] == 0:
            del self.users[user]
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(f"user.{user}")

    def _on_message(self, message: dict[str, object]) -> None:
        if message.get("type") not in ("message", "pmessage"):
            return
        channel = message["channel"]
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        envelope = spb.Envelope.FromString(message["data"])  # type: ignore[arg-type]
        prefix, _, key = name.partition(".")
        if prefix == "md":
            cache = self.markets.get(key)
            if cache is None:  # listed since we started, or before the engine's list came
                cache = self._add_market(key)
                self._spawn(self._load_quietly(cache), f"load {key}")
            for item in envelope.items:
                self._market_item(cache, item)
        elif prefix == "user":
            for item in envelope.items:
                kind = "orders" if item.HasField("order_update") else "balances"
                self._fan_out(f"{kind}.{key}", item)

    def _market_item(self, cache: MarketCache, item: spb.MarketData) -> None:
        kind = item.WhichOneof("body")
        if kind == "depth":
            self._depth(cache, item.depth)
        elif kind == "trade":
            if item.trade.trade_id > cache.last_trade_id:
                cache.trades.append(item)
                self._fan_out(f"trade.{cache.symbol}", item)
        else:
            self._state(cache, item)

    def _state(self, cache: MarketCache, item: spb.MarketData) -> None:
        topic = _state_topic(item, cache.symbol)
        if topic is None:
            return
        body = getattr(item, item.WhichOneof("body") or "")
        current = cache.state.get(topic)
        if (
            current is not None
            and getattr(current, current.WhichOneof("body") or "").seq > body.seq
        ):
            return  # older than what we have
        cache.state[topic] = item
        self._fan_out(topic, item)

    async def _load_state(self, cache: MarketCache) -> None:
        """The market's state and recent trades from Redis. Trades newer than any seen go
        out to subscribers (those of an outage); older ones the bus delivered after (a
        market first seen there) take their place before them."""
        fields = await self.redis.hgetall(state_key(cache.symbol))
        for raw in fields.values():
            self._state(cache, spb.MarketData.FromString(_raw(raw)))
        raws = await self.redis.lrange(trades_key(cache.symbol), 0, -1)
        trades = [spb.MarketData.FromString(_raw(raw)) for raw in reversed(raws)]
        last, have = cache.last_trade_id, {t.trade.trade_id for t in cache.trades}
        older = [t for t in trades if t.trade.trade_id < last and t.trade.trade_id not in have]
        if older:
            merged = sorted([*older, *cache.trades], key=lambda t: t.trade.trade_id)
            cache.trades.clear()
            cache.trades.extend(merged)
        for item in trades:
            self._market_item(cache, item)
        cache.loaded.set()

    async def _load_quietly(self, cache: MarketCache) -> None:
        """`_load_state` in the background; Redis failing meanwhile is the read loop's to
        handle, which loads every market again once it reconnects."""
        with contextlib.suppress(RedisError, OSError):
            await self._load_state(cache)

    # ---- books ----

    def _depth(self, cache: MarketCache, diff: spb.DepthUpdate) -> None:
        if cache.pending is not None:
            cache.pending.append(diff)
            return
        book = cache.book
        if book is None:  # not resynced yet (Redis delivered before the market was listed)
            self._start_resync(cache, [diff])
            return
        before = book.last_update_id
        try:
            if not book.apply(diff):
                return
        except Gap as gap:
            log.info("book gap: resync", extra={"market": cache.symbol, "gap": str(gap)})
            self._start_resync(cache, [diff])
            return
        out = spb.DepthUpdate()
        out.CopyFrom(diff)
        out.first_update_id = before + 1
        self._fan_out(f"depth.{cache.symbol}", spb.MarketData(depth=out))

    def _start_resync(
        self, cache: MarketCache, pending: list[spb.DepthUpdate] | None = None
    ) -> None:
        if cache.pending is not None:
            cache.pending.extend(pending or ())
            return  # one is running
        cache.pending = list(pending or ())
        self._spawn(self._resync(cache), f"resync {cache.symbol}")

    async def _resync(self, cache: MarketCache) -> None:
        self.resyncs += 1
        while True:
            depth = await self._retry(
                lambda: self.engine.GetDepth(epb.GetDepthRequest(market=cache.symbol))
            )
            fresh = Book.from_levels(
                cache.symbol, list(depth.bids), list(depth.asks), depth.seq, depth.ts_us
            )
            held, cache.pending = cache.pending or [], []
            try:
                for diff in held:
                    fresh.apply(diff)
            except Gap:
                continue  # the engine moved past what we hold: take a newer snapshot
            break
        cache.pending = None
        old, cache.book = cache.book, fresh
        cache.ready.set()
        if old is None:
            return
        if fresh.last_update_id < old.last_update_id:
            log.warning("engine depth older than the book", extra={"market": cache.symbol})
            return
        self._fan_out(f"depth.{cache.symbol}", spb.MarketData(depth=fresh.snapshot()))

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = 0.1
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                log.warning("engine unavailable", extra={"error": exc.code().name})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _state_topic(item: spb.MarketData, market: str) -> str | None:
    """The topic a state item (ticker, best bid/ask, open candle) belongs to, else None."""
    kind = item.WhichOneof("body")
    if kind == "ticker":
        return Topic("ticker", market=market).name
    if kind == "book_ticker":
        return Topic("bookTicker", market=market).name
    if kind == "kline":
        return Topic("kline", market=market, interval_s=item.kline.interval_s).name
    return None
