"""The order path's Redis step alone: signed rate-limit hits through the gateway's batch.

`python -m gateway_svc.bench_redis --turns 300 --per-turn 12` runs `--turns` turns of the event
loop, each with `--per-turn` concurrent `RateLimiter.hit` calls carrying a fresh signature
(the GCRA and first-use script a signed order runs), through `RedisBatch` against a real
Redis (`--redis-url`, or a `redis-server` this process starts on a free port), after 20
turns of warm-up, and prints the CPU time of this process per hit.

Its use is counting instructions, which the machine's load does not change: run it under
`valgrind --tool=cachegrind --cache-sim=no` (PYTHONHASHSEED=0) with `--turns N` and with
`--turns 0`; the difference divided by N x per-turn is the instructions of one hit
(reports/order-path-profile.md, session 17). valgrind does not follow the Redis server
it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from gateway_svc.limits import RateLimiter, Rule
from gateway_svc.redis_batch import RedisBatch, gateway_redis
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import Supervisor

WARMUP_TURNS = 20
SUBJECTS = 64


async def measure(redis_url: str, turns: int, per_turn: int) -> float:
    """CPU seconds per hit of `turns` turns after the warm-up."""
    redis = gateway_redis(redis_url)
    rate = RateLimiter(RedisBatch(redis))
    rule = Rule("orders", 10**9, 1.0)  # never refuses: every hit runs the whole script
    run = secrets.token_hex(8)  # signatures new to the server, whatever ran before
    used = 0

    async def turn() -> None:
        nonlocal used
        hits = []
        for i in range(per_turn):
            used += 1
            signature = f"{run}{used:048d}"
            hits.append(
                rate.hit(rule, f"user:{i % SUBJECTS}", signature=signature, signature_ttl_ms=10_000)
            )
        for decision in await asyncio.gather(*hits):
            if not decision.allowed:
                raise RuntimeError("a hit was refused")

    try:
        for _ in range(WARMUP_TURNS):
            await turn()
        started = time.process_time()
        for _ in range(turns):
            await turn()
        return (time.process_time() - started) / max(1, turns * per_turn)
    finally:
        await redis.aclose()


async def run(redis_url: str | None, turns: int, per_turn: int) -> float:
    if redis_url is not None:
        return await measure(redis_url, turns, per_turn)
    with tempfile.TemporaryDirectory(prefix="bench-redis-turn-") as tmp:
        server = LocalRedis(Path(tmp), free_port(), appendonly=False)
        async with Supervisor([server.spec()], prefix_output=False):
            return await measure(server.url, turns, per_turn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--per-turn", type=int, default=12, help="hits in one loop turn")
    parser.add_argument("--redis-url", help="an existing server (emptied of nothing)")
    args = parser.parse_args()
    import uvloop

    seconds = uvloop.run(run(args.redis_url, args.turns, args.per_turn))
    print(f"{args.turns} turns of {args.per_turn}: {seconds * 1e6:.1f} us of CPU per hit")


if __name__ == "__main__":
    main()
