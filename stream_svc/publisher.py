"""The publisher: follows the engine's events and puts market data on Redis, once.

One instance runs (a second would only send duplicates, which consumers drop by id). It
starts from the engine's own state (balances, then each market's depth) and the ledger's
candles, then applies every event after that (see mirror.py) and, per engine batch,
publishes one Envelope per channel in one Redis command. It also keeps in Redis what a
new stream_svc replica needs to start: per market the ticker, best bid/ask, open candles
(hash `md.state.<MARKET>`) and the recent trades (list `md.trades.<MARKET>`, newest first).

Redis being down costs messages, never the mirror: publishing failures are logged and the
state is rewritten in full once Redis answers again; consumers see the gap by update id.
Trades are not state a later message replaces, and trade ids are global, so no consumer can
tell that one of a market's is missing: the publisher keeps each market's last
STREAM_RECENT_TRADES (from the ledger at start, then as they happen) and, whenever Redis
comes back, rewrites the recent-trades list from them and publishes them again, oldest
first, before anything newer (consumers drop the ones they already have by trade id). Redis
may come back without what it acknowledged (killed before its append-only file had it) or
without what the previous publisher could not send (killed while Redis was down); either
way no trade newer than a missing one gets out first. A send is one script: all of it is
applied or none, and a Redis that restarted no longer knows the script (NOSCRIPT), which is
how the publisher learns of a restart it never saw fail.
The engine going away ends the subscription: the publisher starts over from a fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

import grpc
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceStub
from exchange.stream.v1 import stream_pb2 as spb
from servicekit.clock import now_us
from servicekit.event_feed import EventFeed
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving
from servicekit.metrics import metrics_endpoint
from servicekit.mtls import channel as mesh_channel
from servicekit.mtls import listen
from stream_svc.candles import WINDOW_MINUTES, MarketCandles
from stream_svc.metrics import publisher_registry
from stream_svc.mirror import Items, MarketState, Mirror, Output, Scales
from stream_svc.redis_keys import market_channel, state_key, trades_key
from stream_svc.settings import PublisherSettings
from tradekit.candles import INTERVALS_S, Candle, bucket_start
from tradekit.money import parse_units

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub

log = logging.getLogger(__name__)

TICKER_EVERY_S = 5.0  # the 24h window moves even without trades
KLINE_PAGE = 1000
MAX_EVENTS_PER_SEND = 20_000
# One command for a whole send: redis-py packs and parses one command instead of one per
# channel (users' channels make dozens per batch), and Redis applies all of it or none.
# ARGV: the trades a list keeps, the fields end to end, then formats that split them
# (`struct.unpack`'s "c<length>" per field, at most FIELDS_PER_FORMAT each: Lua's C stack
# holds ~8,000 values). An operation is a letter and its arguments. One blob instead of a
# hundred arguments: redis-py encodes and frames each argument in Python, and one
# `struct.unpack` splits them in C, about what Redis spends reading them as arguments.
SEND = """
local keep = tonumber(ARGV[1]) - 1
-- The fields, and after them where the last format stopped.
local f = {struct.unpack(ARGV[3], ARGV[2])}
local n = #f - 1
for j = 4, #ARGV do  -- more than FIELDS_PER_FORMAT fields
    local part = {struct.unpack(ARGV[j], ARGV[2], f[n + 1])}
    for k = 1, #part do
        f[n + k] = part[k]
    end
    n = n + #part - 1
end
local i = 1
while i <= n do
    local op = f[i]
    if op == 'H' then  -- key n, then n fields and values: a market's state items
        local last = i + 2 + 2 * tonumber(f[i + 2])
        redis.call('HSET', f[i + 1], unpack(f, i + 3, last))
        i = last + 1
    elseif op == 'D' then  -- key: a recent-trades list about to be written again
        redis.call('DEL', f[i + 1])
        i = i + 2
    elseif op == 'L' then  -- key n, then n trades: pushed newest first, the list kept short
        local last = i + 2 + tonumber(f[i + 2])
        redis.call('LPUSH', f[i + 1], unpack(f, i + 3, last))
        redis.call('LTRIM', f[i + 1], 0, keep)
        i = last + 1
    else  -- 'P' channel envelope
        redis.call('PUBLISH', f[i + 1], f[i + 2])
        i = i + 3
    end
end
"""
Args = list[bytes]  # SEND's fields
FIELDS_PER_FORMAT = 4000
# One HSET per market's state and one LPUSH per market's trades, not one command per item:
# each command a script calls costs Redis more than its arguments. At most this many
# values a command (they pass through Lua's C stack).
VALUES_PER_COMMAND = 1000


def _formats(fields: Args) -> list[str]:
    """SEND's formats for `fields`. Never an empty field: "c0" means another thing."""
    lengths = list(map(len, fields))
    if 0 in lengths:
        raise ValueError("an empty field for SEND")
    return [
        "c" + "c".join(map(str, lengths[i : i + FIELDS_PER_FORMAT]))
        for i in range(0, len(lengths), FIELDS_PER_FORMAT)
    ]


def _push(args: Args, key: bytes, trades: Args) -> None:
    """LPUSHes of `trades` (oldest first) onto the list `key`."""
    for start in range(0, len(trades), VALUES_PER_COMMAND):
        part = trades[start : start + VALUES_PER_COMMAND]
        args += (b"L", key, b"%d" % len(part), *part)


def state_field(item: spb.MarketData) -> bytes | None:
    """The field of `md.state.<MARKET>` an item replaces, or None if it is not state."""
    kind = item.WhichOneof("body")
    if kind == "kline":
        return b"kline.%d" % item.kline.interval_s
    if kind == "ticker":
        return b"ticker"
    if kind == "book_ticker":
        return b"book_ticker"
    return None


async def bootstrap(
    engine: EngineServiceAsyncStub, ledger: LedgerServiceAsyncStub, ledger_wait_s: float
) -> Mirror:
    """A mirror of the engine's state now, with candles from the ledger's history."""
    listing = await engine.ListMarkets(epb.ListMarketsRequest())
    assets = {a.symbol: a.decimals for a in listing.assets}
    exported = await engine.ExportBalances(epb.ExportBalancesRequest())
    balances = {
        (b.user_id, b.asset): [
            parse_units(b.available, assets[b.asset]),
            parse_units(b.locked, assets[b.asset]),
        ]
        for b in exported.balances
    }
    markets: dict[str, MarketState] = {}
    for mk in listing.markets:
        scales = Scales(mk.base, mk.quote, assets[mk.base], assets[mk.quote])
        depth = await engine.GetDepth(epb.GetDepthRequest(market=mk.symbol))
        seq = max(depth.seq, exported.seq)
        state = MarketState(scales, applied=seq, last_update_id=seq)
        for side, levels in ((1, depth.bids), (2, depth.asks)):
            for lv in levels:
                price = parse_units(lv.price, scales.quote_decimals)
                state.levels[side][price] = parse_units(lv.quantity, scales.base_decimals)
        state.best = state.top()
        markets[mk.symbol] = state
    await _load_candles(ledger, markets, max((m.applied for m in markets.values()), default=0),
                        ledger_wait_s)  # fmt: skip
    return Mirror(assets, markets, balances, exported.seq)


async def _load_candles(
    ledger: LedgerServiceAsyncStub, markets: dict[str, MarketState], seq: int, wait_s: float
) -> None:
    """Candles and the last day's minutes from the ledger, once it has stored up to `seq`.

    The ledger's position is read before and after: if it moved, the read is retried, so
    that `candles_from` says exactly which trades the candles already hold."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            before = (await ledger.GetIngestStatus(lpb.GetIngestStatusRequest())).last_seq
            if before < seq and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            loaded = {symbol: await _market_candles(ledger, symbol, m.scales)
                      for symbol, m in markets.items()}  # fmt: skip
            after = (await ledger.GetIngestStatus(lpb.GetIngestStatusRequest())).last_seq
        except grpc.aio.AioRpcError as exc:
            if time.monotonic() >= deadline:
                log.warning(
                    "no ledger history: candles start empty", extra={"error": exc.code().name}
                )
                for m in markets.values():
                    m.candles_from = seq
                return
            await asyncio.sleep(0.5)
            continue
        if after == before or time.monotonic() >= deadline:
            break
    for symbol, m in markets.items():
        m.candles = loaded[symbol]
        m.candles_from = after
    if after < seq:
        log.warning(
            "ledger behind the engine: candles miss trades", extra={"ledger": after, "engine": seq}
        )


async def _market_candles(
    ledger: LedgerServiceAsyncStub, symbol: str, scales: Scales
) -> MarketCandles:
    now = now_us()
    start = bucket_start(now, 60) - (WINDOW_MINUTES - 1) * 60_000_000
    minutes: list[Candle] = []
    while True:
        page = await ledger.GetKlines(
            lpb.GetKlinesRequest(
                market=symbol, interval=lpb.KLINE_INTERVAL_1M, start_time_us=start, limit=KLINE_PAGE
            )
        )
        minutes += [_bar(k, scales) for k in page.klines]
        if len(page.klines) < KLINE_PAGE:
            break
        start = page.klines[-1].open_time_us + 60_000_000
    open_bars: dict[int, Candle] = {}
    for interval in INTERVALS_S:
        reply = await ledger.GetKlines(
            lpb.GetKlinesRequest(
                market=symbol, interval=lpb.KlineInterval.ValueType(interval),
                start_time_us=bucket_start(now, interval), limit=1,
            )
        )  # fmt: skip
        if reply.klines:
            open_bars[interval] = _bar(reply.klines[-1], scales)
    return MarketCandles(open_bars, minutes)


async def recent_trades(
    ledger: LedgerServiceAsyncStub, mirror: Mirror, limit: int
) -> dict[str, list[spb.MarketData]]:
    """Each market's last `limit` trades up to the mirror's position, oldest first, as the
    publisher sends them; none if the ledger does not answer (Redis's lists still count)."""
    out: dict[str, list[spb.MarketData]] = {}
    try:
        for symbol in mirror.markets:
            reply = await ledger.GetTrades(
                lpb.GetTradesRequest(market=symbol, limit=limit, before_id=0), timeout=10
            )
            out[symbol] = [_trade(t) for t in reversed(reply.trades) if t.seq <= mirror.seq]
    except grpc.aio.AioRpcError as exc:
        log.warning("no ledger trades: recent trades start empty", extra={"error": exc.code().name})
    return out


def _trade(t: lpb.Trade) -> spb.MarketData:
    taker_buys = t.taker_side == cpb.SIDE_BUY
    buy, sell = (
        (t.taker_order_id, t.maker_order_id) if taker_buys else (t.maker_order_id, t.taker_order_id)
    )
    return spb.MarketData(
        trade=spb.Trade(
            market=t.market, trade_id=t.trade_id, price=t.price, quantity=t.quantity,
            quote_quantity=t.quote_quantity, buyer_is_maker=not taker_buys,
            buy_order_id=buy, sell_order_id=sell, ts_us=t.ts_us, seq=t.seq,
        )
    )  # fmt: skip


def _copy(item: spb.MarketData) -> spb.MarketData:
    copy = spb.MarketData()
    copy.CopyFrom(item)
    return copy


def _bar(k: lpb.Kline, s: Scales) -> Candle:
    p = s.quote_decimals
    return Candle(
        k.open_time_us, parse_units(k.open, p), parse_units(k.high, p), parse_units(k.low, p),
        parse_units(k.close, p), parse_units(k.volume, s.base_decimals),
        parse_units(k.quote_volume, p), k.trades,
    )  # fmt: skip


class Publisher:
    def __init__(self, settings: PublisherSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.mirror: Mirror | None = None
        self._redis_lost = False
        self._script: str | None = None  # SEND's digest, once Redis has it
        self._tickers: dict[str, tuple[str, str, str, str, str, int]] = {}
        self.events_applied = 0
        self.batches = 0
        self.published = 0  # envelopes
        self.redis_failures = 0
        self.sent_seq = 0  # the engine's position up to which messages went to Redis (or failed)
        # By market: its last recent_trades trades, oldest first, sent or not.
        self.recent: dict[str, deque[spb.MarketData]] = {}

    async def send(self, out: Output) -> None:
        """Publishes one batch's messages (and the state they change) in one command."""
        self._remember(out.channels)
        if not out.channels and not self._redis_lost:
            return
        for _ in range(2):  # again at once if Redis restarted since the last send
            try:
                if self._script is None:  # a fresh start, or Redis restarted
                    self._script = await self.redis.script_load(SEND)
                if self._redis_lost:
                    await self._merge_listed_trades()
                published = await self._send(out)
            except NoScriptError:
                self._script = None
                self._redis_lost = True
                continue
            except (RedisError, OSError) as exc:
                self._script = None
                self.redis_failures += 1
                if not self._redis_lost:
                    log.warning(
                        "redis unavailable: market data dropped", extra={"error": repr(exc)}
                    )
                self._redis_lost = True
                return
            self.published += published
            if self._redis_lost:
                log.info("redis back: state and recent trades rewritten")
                self._redis_lost = False
            return

    async def _send(self, out: Output) -> int:
        assert self._script is not None
        args: Args = []
        envelopes = {channel: env.SerializeToString() for channel, env in out.envelopes.items()}
        if self._redis_lost:
            if self.mirror is not None:
                self._write_full_state(args, self.mirror)
            envelopes.update(self._rewrite_trades(args, out.channels))
        for channel, items in out.channels.items():
            if channel.startswith("md."):
                self._write_state(args, channel[3:], items, trades=not self._redis_lost)
        for channel, raw in envelopes.items():
            args += (b"P", channel.encode(), raw)
        await self.redis.evalsha(
            self._script, 0, self.settings.recent_trades, b"".join(args), *_formats(args)
        )
        return len(envelopes)

    def _remember(self, channels: dict[str, Items]) -> None:
        for channel, items in channels.items():
            if channel.startswith("md."):
                # Copies: an item of the batch would keep its whole envelope in memory.
                trades = [_copy(item) for item in items if item.WhichOneof("body") == "trade"]
                if trades:
                    self._keep(channel[3:], trades)

    def _keep(self, market: str, trades: list[spb.MarketData]) -> None:
        """Adds `trades` to the market's recent ones: each trade once, in id order."""
        kept = self.recent.get(market)
        if kept is None:
            kept = self.recent[market] = deque(maxlen=self.settings.recent_trades)
        ids = [kept[-1].trade.trade_id] if kept else [0]
        ids += (t.trade.trade_id for t in trades)
        if all(a < b for a, b in itertools.pairwise(ids)):  # as they happen: newer, in order
            kept.extend(trades)
            return
        by_id = {t.trade.trade_id: t for t in (*kept, *trades)}
        kept.clear()
        kept.extend(by_id[i] for i in sorted(by_id))

    async def _merge_listed_trades(self) -> None:
        """Takes in the trades Redis's lists hold that this publisher does not (it started
        while the ledger was behind), so that a rewrite never drops one."""
        pipe = self.redis.pipeline(transaction=False)
        markets = list(self.mirror.markets) if self.mirror is not None else list(self.recent)
        for market in markets:
            pipe.lrange(trades_key(market), 0, -1)
        for market, raws in zip(markets, await pipe.execute(), strict=True):
            if raws:
                self._keep(market, [spb.MarketData.FromString(raw) for raw in reversed(raws)])

    def _rewrite_trades(self, args: Args, channels: dict[str, Items]) -> dict[str, bytes]:
        """Writes each market's recent-trades list again, and returns the envelopes of the
        markets' channels that need the recent trades not in them first: subscribers may
        have missed them."""
        out: dict[str, bytes] = {}
        for market, kept in self.recent.items():
            key, channel = trades_key(market).encode(), market_channel(market)
            args += (b"D", key)
            _push(args, key, [item.SerializeToString() for item in kept])
            batch = list(channels.get(channel, ()))
            sent = {i.trade.trade_id for i in batch if i.WhichOneof("body") == "trade"}
            missed = [t for t in kept if t.trade.trade_id not in sent]
            if missed:
                out[channel] = spb.Envelope(items=missed + batch).SerializeToString()
        return out

    def _write_state(
        self, args: Args, market: str, items: Iterable[spb.MarketData], trades: bool = True
    ) -> None:
        """The state items and trades of `items` into Redis."""
        fields: Args = []
        listed: Args = []
        for item in items:
            name = state_field(item)
            if name is not None:
                fields += (name, item.SerializeToString())
            elif trades and item.WhichOneof("body") == "trade":
                listed.append(item.SerializeToString())
        key = state_key(market).encode()
        for start in range(0, len(fields), VALUES_PER_COMMAND):
            part = fields[start : start + VALUES_PER_COMMAND]
            args += (b"H", key, b"%d" % (len(part) // 2), *part)
        _push(args, trades_key(market).encode(), listed)

    def _write_full_state(self, args: Args, mirror: Mirror) -> None:
        ts = now_us()
        for symbol in mirror.markets:
            items = [
                mirror.book_ticker(symbol, mirror.seq, ts),
                *mirror.klines(symbol, mirror.seq, ts),
            ]
            ticker = mirror.ticker(symbol, mirror.seq, ts)
            if ticker is not None:
                items.append(ticker)
            self._write_state(args, symbol, items)

    async def tick_tickers(self) -> None:
        """Publishes tickers that changed because time passed (trades left the window)."""
        mirror = self.mirror
        if mirror is None:
            return
        out = Output()
        ts = now_us()
        for symbol in mirror.markets:
            item = mirror.ticker(symbol, mirror.seq, ts)
            if item is None:
                continue
            t = item.ticker
            fingerprint = (t.open, t.high, t.low, t.last, t.volume, t.trades)
            if self._tickers.get(symbol) != fingerprint:
                self._tickers[symbol] = fingerprint
                out.add(market_channel(symbol), item)
        await self.send(out)

    async def follow(self, engine: EngineServiceAsyncStub, ledger: LedgerServiceAsyncStub) -> None:
        """Bootstraps, then publishes every batch until the engine's stream ends."""
        mirror = await bootstrap(engine, ledger, self.settings.ledger_wait_seconds)
        self.mirror = mirror
        recent = await recent_trades(ledger, mirror, self.settings.recent_trades)
        for symbol, trades in recent.items():
            self._keep(symbol, trades)
        self._redis_lost = True  # write the whole state once: a fresh start
        await self.send(Output())
        self.sent_seq = mirror.seq
        log.info("publishing", extra={"from_seq": mirror.seq + 1, "markets": len(mirror.markets)})
        call = engine.Subscribe(
            epb.SubscribeRequest(from_seq=mirror.seq + 1, linger_ms=self.settings.linger_ms)
        )
        # Every batch that arrived while the last one was sent goes out together: one
        # mirror flush and one Redis round trip for all of them.
        feed: EventFeed[cpb.EngineEvent] = EventFeed(call)
        try:
            while True:
                try:
                    events = await feed.take(MAX_EVENTS_PER_SEND)
                except ConnectionError:
                    return  # the engine ended the stream: start over
                out = mirror.apply(events)
                self.events_applied += len(events)
                self.batches += 1
                await self.send(out)
                self.sent_seq = mirror.seq
        finally:
            call.cancel()
            await feed.close()


async def run(
    publisher: Publisher, engine: EngineServiceAsyncStub, ledger: LedgerServiceAsyncStub
) -> None:
    """Follows the engine forever, starting over after each failure (with backoff).

    The backoff starts over once a follow got going, and stays short: every moment the
    engine is back but not followed, its trades only reach subscribers as recent trades."""
    delay = 0.2
    while True:
        mirror = publisher.mirror
        try:
            await publisher.follow(engine, ledger)
        except grpc.aio.AioRpcError as exc:
            if publisher.mirror is not mirror:  # it bootstrapped: this is a new outage
                delay = 0.2
            log.warning("engine unavailable", extra={"error": exc.code().name, "retry_s": delay})
        else:
            delay = 0.2
            log.warning("engine stream ended; starting over")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def _tickers(publisher: Publisher) -> None:
    while True:
        await asyncio.sleep(TICKER_EVERY_S)
        await publisher.tick_tickers()


async def serve(settings: PublisherSettings) -> None:
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    engine_channel = mesh_channel(settings.engine_address, options=options)
    ledger_channel = mesh_channel(settings.ledger_address, options=options)
    publisher = Publisher(settings, redis)
    server = grpc.aio.server()
    health = add_health_and_reflection(server, [])
    port = listen(server, f"{settings.host}:{settings.port}")
    registry = publisher_registry(publisher)
    async with metrics_endpoint(
        "stream", registry, settings.host, settings.metrics_port, "STREAM_PUBLISHER_METRICS_PORT"
    ):
        await server.start()
        tasks = [
            asyncio.create_task(
                run(publisher, EngineServiceStub(engine_channel), LedgerServiceStub(ledger_channel))
            ),
            asyncio.create_task(_tickers(publisher)),
        ]
        await set_serving(health, [])
        log.info(
            "publisher serving health",
            extra={"port": port, "metrics_port": settings.metrics_port},
        )

        async def stop() -> None:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine_channel.close()
            await ledger_channel.close()
            await redis.aclose()

        await serve_until_signalled(server, health, grace=settings.grace_seconds, on_stop=stop)


def main() -> None:
    from servicekit.memory import tune_gc
    from servicekit.process import start_process

    settings = start_process("publisher", PublisherSettings.from_env)
    tune_gc()  # per-event objects form no cycles; the default collector walks them often
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
