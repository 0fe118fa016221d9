"""What publishing one engine message costs the publisher and Redis, apart from everything else.

Not a test: a measuring tool beside them (it reuses the ledger tests' random trader).
`python -m tests.stream.publish_cost BATCHES EVENTS` replays a seeded trading session (5
users, 2 markets) the way `Publisher.follow` handles the engine's stream: a set-up message
(listings, deposits, the first trading), then BATCHES messages of EVENTS events, each parsed
from its `EventBatch` bytes, applied by `Mirror.apply` and sent by `Publisher.send` to a
real Redis (a local server it starts; not faked, so redis-py's packing and parsing and the
socket calls count). 30 events is what the order benchmark's single orders give per 10 ms
linger: about a dozen orders and their fills.

The events are made once by an engine in this process and kept in `--events-file` (a
temporary file by default), so that a run under valgrind does only the replay:
`PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no python -m
tests.stream.publish_cost N 30` for N = 300 and N = 0; (I(300) - I(0)) / 300 is the
publisher's instructions per message (Redis is another process: valgrind does not count it).
It prints per message the publisher's CPU (this process), Redis's (its `INFO cpu`) and the
wall time, and with `--digest` a hash of every message published and of the state left in
Redis, to show that a change keeps the bytes the same (it subscribes in this process, so
its CPU figures are not the publisher's alone).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from redis.asyncio import Redis

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import Supervisor
from stream_svc.mirror import Mirror, Output
from stream_svc.publisher import Publisher
from stream_svc.settings import PublisherSettings

TRADING_EVENTS = 9_000  # replayable after the set-up: BATCHES x EVENTS at most
END_CHANNEL = "publish-cost.end"


async def make_events(path: Path) -> None:
    """A seeded session's events into `path` (one EventBatch), TRADING_EVENTS after a
    set-up of the funding and about 3,000 events of trading."""
    # Only when the file is missing: a replay under valgrind starts no engine.
    from tests.engine.conftest import running_engine
    from tests.ledger.events import all_events
    from tests.ledger.trading import Trader

    with tempfile.TemporaryDirectory(prefix="publish-cost-") as tmp:
        async with running_engine(Path(tmp), fsync=False) as engine:
            trader = Trader(engine.stub, seed=5)
            await trader.fund()
            while engine.runtime.engine.seq < 3_000 + TRADING_EVENTS:
                await trader.run(100)
            made = await all_events(engine.stub, engine.runtime.engine.seq)
    part = path.with_suffix(".part")
    part.write_bytes(epb.EventBatch(events=made).SerializeToString())
    part.replace(path)


def messages(path: Path, events: int) -> tuple[list[cpb.EngineEvent], list[bytes]]:
    """The set-up's events, then every message of `events` events the file holds, as the
    engine sends them (all of them whatever a run replays: the same work for any BATCHES)."""
    made = list(epb.EventBatch.FromString(path.read_bytes()).events)
    first = len(made) - TRADING_EVENTS
    return made[:first], [
        epb.EventBatch(events=made[start : start + events]).SerializeToString()
        for start in range(first, len(made) - events + 1, events)
    ]


async def _collect(redis: Redis, digest: hashlib._Hash, subscribed: asyncio.Event) -> None:
    async with redis.pubsub() as pubsub:
        await pubsub.psubscribe("*")
        subscribed.set()
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            if message["channel"] == END_CHANNEL.encode():
                return
            digest.update(b"%d:%b%d:%b" % (len(message["channel"]), message["channel"],
                                           len(message["data"]), message["data"]))  # fmt: skip


async def _state_digest(redis: Redis) -> str:
    digest = hashlib.sha256()
    for key in sorted(map(_bytes, await redis.keys("md.*"))):
        if key.startswith(b"md.state."):
            fields = await redis.hgetall(key)
            values = [_bytes(k) + _bytes(v) for k, v in fields.items()]
        else:
            values = list(map(_bytes, await redis.lrange(key, 0, -1)))
        digest.update(key + b"".join(sorted(values) if key.startswith(b"md.state.") else values))
    return digest.hexdigest()


def _bytes(value: bytes | str) -> bytes:
    """What this client returns: bytes (it is made without decode_responses)."""
    return value if isinstance(value, bytes) else value.encode()


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def run(
    setup: list[cpb.EngineEvent], replay: list[bytes], events: int, digest: bool
) -> dict[str, object]:
    """Publishes the set-up, then times the publishing of `replay` (of `events` events each)."""
    batches = len(replay)
    with tempfile.TemporaryDirectory(prefix="publish-cost-") as tmp:
        server = LocalRedis(Path(tmp) / "redis", free_port(), appendonly=False)
        async with Supervisor([server.spec()], prefix_output=False):
            redis = Redis.from_url(server.url, socket_timeout=5, socket_connect_timeout=5)
            published = hashlib.sha256()
            subscribed = asyncio.Event()
            collector = asyncio.create_task(_collect(Redis.from_url(server.url), published,
                                                     subscribed)) if digest else None  # fmt: skip
            if collector is not None:
                await subscribed.wait()
            settings = PublisherSettings(
                host="127.0.0.1", port=0, engine_address="", ledger_address="",
                redis_url=server.url, ledger_wait_seconds=0.0, recent_trades=200,
                grace_seconds=1.0, log_level="INFO",
            )  # fmt: skip
            publisher = Publisher(settings, redis)
            mirror = publisher.mirror = Mirror({}, {}, {}, 0)
            await publisher.send(Output())  # the script, as a fresh start loads it
            await publisher.send(mirror.apply(setup))
            redis_before = await _redis_cpu(redis)
            cpu, started = time.process_time(), time.perf_counter()
            for raw in replay:
                await publisher.send(mirror.apply(list(epb.EventBatch.FromString(raw).events)))
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            redis_cpu = await _redis_cpu(redis) - redis_before
            result: dict[str, object] = {
                "batches": batches,
                "events_per_batch": events,
                "envelopes": publisher.published,
                "publisher_cpu_ms_per_batch": round(cpu * 1000 / max(1, batches), 4),
                "redis_cpu_ms_per_batch": round(redis_cpu * 1000 / max(1, batches), 4),
                "wall_ms_per_batch": round(wall * 1000 / max(1, batches), 4),
            }
            if collector is not None:
                await redis.publish(END_CHANNEL, b"")
                await collector
                result["published_sha256"] = published.hexdigest()
                result["state_sha256"] = await _state_digest(redis)
            await redis.aclose()
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stream.publish_cost")
    parser.add_argument("batches", type=int, nargs="?", default=300)
    parser.add_argument("events", type=int, nargs="?", default=30, help="events per message")
    parser.add_argument(
        "--events-file", type=Path,
        default=Path(tempfile.gettempdir()) / "publish-cost-events-seed5.bin",
    )  # fmt: skip
    parser.add_argument("--digest", action="store_true", help="hash what was published")
    args = parser.parse_args(argv)
    if not args.events_file.exists():
        asyncio.run(make_events(args.events_file))
    setup, replay = messages(args.events_file, args.events)
    if args.batches > len(replay):
        parser.error(f"the events file holds {len(replay)} messages of {args.events} events")
    result = asyncio.run(run(setup, replay[: args.batches], args.events, args.digest))
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
