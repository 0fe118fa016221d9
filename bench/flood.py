"""Rate limits under a flood: do they hold, and do other users notice?

`python -m bench.flood --seconds 10 --json` runs PostgreSQL, Redis, the engine,
the ledger and the gateway (`python -m gateway_svc`, with its default limits: 10 order
actions per second per user, 100 market-data requests per second per address) as child
processes, the way `make run` does, and drives them from this process in two phases of
`--seconds` each:

- `baseline`: a trader places one order every 1/`--trader-rate` s (bearer token) and a
  reader GETs /api/v1/depth every 1/`--reader-rate` s, from its own address;
- `flood`: the same, while one user POSTs orders from `--flood-clients` concurrent loops as
  fast as the gateway answers, and one address GETs /api/v1/depth the same way.

Every client speaks from its own loopback address (127.0.0.2, .3, ...: the whole 127/8 is
the loopback on Linux), so the gateway sees four addresses. For each phase it reports, per
client, the answers by status, the flooders' allowed (non-429) requests per second against
the limit (the allowed count can exceed limit x seconds by one burst at most), whether every
429 carried Retry-After, and the trader's and reader's latency p50/p99. `flood()` is the
measurement itself; tests/abuse/test_flood.py runs it against the in-process test stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.services import LOCALHOST, engine_spec, gateway_spec, ledger_spec, postgres_specs
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import Supervisor

MARKET = "TATA_INR"
PASSWORD = "flood password, long enough"
ORDER_RATE, MARKET_RATE = 10, 100  # the gateway's defaults
# Source addresses: the flooders', the trader's and the reader's.
ADDRESSES = {"order_flooder": "127.0.0.2", "market_flooder": "127.0.0.3",
             "trader": "127.0.0.4", "reader": "127.0.0.5"}  # fmt: skip


Send = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Client:
    """What one client was answered."""

    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds
    refusals_without_retry_after: int = 0

    @property
    def allowed(self) -> int:
        """Requests the rate limiter let through (whatever came of them then)."""
        return sum(n for status, n in self.statuses.items() if status != 429)

    def as_json(self, seconds: float, limit: int | None = None) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        out: dict[str, Any] = {
            "requests": sum(self.statuses.values()),
            "status": {str(s): n for s, n in sorted(self.statuses.items())},
            "codes": dict(sorted(self.codes.items())),
            "429_without_retry_after": self.refusals_without_retry_after,
            "latency_ms": {"p50": percentile_ms(ordered, 0.5), "p99": percentile_ms(ordered, 0.99)},
        }
        if limit is not None:
            # The first `limit` are the burst; the rest show the sustained rate.
            out |= {
                "limit_per_second": limit,
                "allowed": self.allowed,
                "allowed_max": round(limit * seconds + limit, 1),
                "allowed_per_second": round(self.allowed / seconds, 2),
                "allowed_per_second_beyond_burst": round(max(0, self.allowed - limit) / seconds, 2),
            }
        return out


def percentile_ms(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def session_from(address: str) -> aiohttp.ClientSession:
    """A session whose connections come from `address` (and are not limited in number)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=0)
    return aiohttp.ClientSession(connector=connector, trust_env=False)


async def _send(client: Client, request: Callable[[], Any]) -> None:
    started = time.perf_counter()
    async with request() as response:
        body = await response.read()
        client.latencies.append(time.perf_counter() - started)
    client.statuses[response.status] += 1
    if response.status >= 400:
        client.codes[str(json.loads(body).get("code", "")) if body else ""] += 1
    if response.status == 429 and not response.headers.get("Retry-After", "").isdigit():
        client.refusals_without_retry_after += 1


async def _paced(rate: float, until: float, send: Send) -> None:
    """`send` every 1/rate s (on schedule, not after the previous reply) until `until`."""
    interval, pending = 1.0 / rate, set[asyncio.Task[None]]()
    next_at = time.perf_counter()
    while next_at < until:
        task = asyncio.create_task(send())
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    await asyncio.gather(*pending)


async def _flat_out(loops: int, until: float, send: Send) -> None:
    async def loop() -> None:
        while time.perf_counter() < until:
            await send()

    await asyncio.gather(*(loop() for _ in range(loops)))


def _order(price: str) -> dict[str, str]:
    return {"symbol": MARKET, "side": "Bid", "orderType": "Limit", "price": price, "quantity": "1"}


@dataclass
class Phase:
    clients: dict[str, Client]
    seconds: float  # from the first request sent to the last answer read
    limits: dict[str, int]  # per second, of each flooder

    def as_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 2)} | {
            name: c.as_json(self.seconds, self.limits.get(name)) for name, c in self.clients.items()
        }


async def flood(
    base: str,
    trader_token: str,
    flooder_token: str,
    *,
    seconds: float,
    flooding: bool,
    trader_rate: float = 4.0,
    reader_rate: float = 20.0,
    flood_clients: int = 8,
    market_rate: int = MARKET_RATE,
) -> Phase:
    """One phase: the trader and the reader at their pace, with `flooding` the two flooders
    too (`market_rate`: the gateway's market-data limit, for the report). The trader's and
    the flooder's orders are small bids at 100 and 50 INR (funded: they rest)."""
    clients = {name: Client() for name in ADDRESSES if flooding or name in ("trader", "reader")}
    sessions = {name: session_from(ADDRESSES[name]) for name in clients}
    started = time.perf_counter()
    until = started + seconds

    def as_user(name: str, token: str, price: str) -> Send:
        auth, url, body = (
            {"Authorization": f"Bearer {token}"},
            f"{base}/api/v1/order",
            _order(price),
        )
        return lambda: _send(
            clients[name], lambda: sessions[name].post(url, json=body, headers=auth)
        )

    def depth(name: str) -> Send:
        url = f"{base}/api/v1/depth?symbol={MARKET}"
        return lambda: _send(clients[name], lambda: sessions[name].get(url))

    try:
        phases = [
            _paced(trader_rate, until, as_user("trader", trader_token, "100")),
            _paced(reader_rate, until, depth("reader")),
        ]
        if flooding:
            phases += [
                _flat_out(flood_clients, until, as_user("order_flooder", flooder_token, "50")),
                _flat_out(flood_clients, until, depth("market_flooder")),
            ]
        await asyncio.gather(*phases)
    finally:
        for session in sessions.values():
            await session.close()
    limits = {"order_flooder": ORDER_RATE, "market_flooder": market_rate}
    return Phase(clients, time.perf_counter() - started, limits)


# -- the stack, as child processes ---------------------------------------------------------


async def funded_token(session: aiohttp.ClientSession, base: str, email: str) -> str:
    async with session.post(
        f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
    ) as response:
        token = str((await response.json())["token"])
    async with session.post(
        f"{base}/api/v1/onramp",
        json={"asset": "INR", "amount": "10000000"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 200, await response.text()
    return token


async def run(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        work = Path(tmp)
        stores, database_url = postgres_specs(None, work, {})
        redis = LocalRedis(work / "redis", free_port(), appendonly=False)
        engine_port, ledger_port, gateway_port = free_port(), free_port(), free_port()
        engine_address, ledger_address = f"{LOCALHOST}:{engine_port}", f"{LOCALHOST}:{ledger_port}"
        specs = [
            *stores,
            redis.spec(),
            engine_spec(work / "engine", engine_port),
            ledger_spec(database_url, engine_address, ledger_port, ingest=True),
            gateway_spec(
                gateway_port,
                engine_address,
                ledger_address,
                redis.url,
                order_rate=ORDER_RATE,
                market_rate=MARKET_RATE,
            ),
        ]
        base = f"http://{LOCALHOST}:{gateway_port}"
        async with Supervisor(specs), session_from(LOCALHOST) as session:
            trader = await funded_token(session, base, "trader@example.com")
            flooder = await funded_token(session, base, "flooder@example.com")
            await asyncio.sleep(1.0)  # the sign-ups' market-data cost has drained
            baseline = await flood(base, trader, flooder, seconds=seconds, flooding=False)
            flooded = await flood(base, trader, flooder, seconds=seconds, flooding=True)
    return {
        "seconds_per_phase": seconds,
        "limits": {
            "orders_per_user_per_s": ORDER_RATE,
            "market_data_per_address_per_s": MARKET_RATE,
        },
        "baseline": baseline.as_json(),
        "flood": flooded.as_json(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    # The services' output, which the Supervisor relays to stdout, goes to stderr instead.
    with contextlib.redirect_stdout(sys.stderr):
        result = asyncio.run(run(args.seconds))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for phase in ("baseline", "flood"):
        print(f"{phase}:")
        for name, figures in result[phase].items():
            print(f"  {name:<15} {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
