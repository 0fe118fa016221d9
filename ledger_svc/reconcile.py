"""Reconciliation: the ledger's balances of record against the engine's, at one seq.

The engine exports every balance together with the seq they reflect (E). The ledger waits
until it has stored event E, then reads, in one snapshot, its balances and how far they go
(C >= E), takes the engine's events E+1..C again and subtracts what they moved (their
projection, as ingest stored it): both sides are then compared as of exactly E, while
trading goes on. Every (user, asset) that differs is reported; there should never be one.
Going back through the events, not the stored ledger entries, spares ingest an index on
the entries' seq.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc
from google.protobuf.json_format import MessageToDict

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc
from ledger_svc.db import Conn
from ledger_svc.projection import project
from ledger_svc.queries import Directory
from ledger_svc.writer import load_catalog, read_cursor
from tradekit.money import format_units, parse_units

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub


class NotCaughtUp(RuntimeError):
    """The ledger did not store the engine's latest events in time."""


async def reconcile(
    conn: Conn,
    engine: EngineServiceAsyncStub,
    *,
    catch_up_seconds: float = 30.0,
    poll_interval: float = 0.05,
) -> lpb.ReconcileReply:
    exported: epb.ExportBalancesReply = await engine.ExportBalances(epb.ExportBalancesRequest())
    seq = exported.seq
    try:
        async with asyncio.timeout(catch_up_seconds):
            # Polled, not awaited in memory: the replica ingesting may be another process.
            while await conn.fetchval("SELECT last_seq FROM ingest_cursor") < seq:  # noqa: ASYNC110
                await asyncio.sleep(poll_interval)
    except TimeoutError:
        raise NotCaughtUp(
            f"the ledger has not stored event {seq} after {catch_up_seconds}s"
        ) from None
    ledger, directory = await balances_as_of(conn, engine, seq)
    decimals = directory.asset_decimals
    engine_side = {
        (b.user_id, b.asset): [
            parse_units(b.available, decimals[b.asset]),
            parse_units(b.locked, decimals[b.asset]),
        ]
        for b in exported.balances
    }
    differences = []
    for key in sorted(engine_side.keys() | ledger.keys()):
        theirs = engine_side.get(key, [0, 0])
        ours = ledger.get(key, [0, 0])
        if theirs != ours:
            user, asset = key
            d = decimals[asset]
            differences.append(
                lpb.BalanceDifference(
                    user_id=user,
                    asset=asset,
                    engine_available=format_units(theirs[0], d),
                    engine_locked=format_units(theirs[1], d),
                    ledger_available=format_units(ours[0], d),
                    ledger_locked=format_units(ours[1], d),
                )
            )
    return lpb.ReconcileReply(
        seq=seq, balances_checked=len(engine_side.keys() | ledger.keys()), differences=differences
    )


async def balances_as_of(
    conn: Conn, engine: EngineServiceAsyncStub, seq: int
) -> tuple[dict[tuple[int, str], list[int]], Directory]:
    """The ledger's (available, locked) per (user, asset) as of event `seq`, which it has
    stored, and the directory of assets and markets."""
    ledger: dict[tuple[int, str], list[int]] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        stored = await read_cursor(conn)
        for user, asset, available, locked in await conn.fetch(
            "SELECT user_id, asset, available, locked FROM balances"
        ):
            ledger[(user, asset)] = [available, locked]
        catalog = await load_catalog(conn)
        directory = await Directory.load(conn)
    if stored > seq:
        later = project(await _events(engine, seq + 1, stored), catalog, seq + 1)
        for key, (available, locked) in later.balances.items():
            ours = ledger.setdefault(key, [0, 0])
            ours[0] -= available
            ours[1] -= locked
    return ledger, directory


async def _events(engine: EngineServiceAsyncStub, first: int, last: int) -> list[cpb.EngineEvent]:
    """Events `first`..`last` from the engine's stream."""
    events: list[cpb.EngineEvent] = []
    call = engine.Subscribe(epb.SubscribeRequest(from_seq=first))
    try:
        async for batch in call:
            events.extend(batch.events)
            if events and events[-1].seq >= last:
                return events[: last - first + 1]
    finally:
        call.cancel()
    raise ConnectionError(f"the engine's stream ended before event {last}")


async def _request(address: str, timeout: float) -> lpb.ReconcileReply:  # noqa: ASYNC109
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ledger_pb2_grpc.LedgerServiceStub(channel)
        reply: lpb.ReconcileReply = await stub.Reconcile(lpb.ReconcileRequest(), timeout=timeout)
        return reply


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ledger_svc.reconcile`: ask a running ledger to reconcile; exit 1 on any
    difference, 2 when it cannot answer."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--ledger", default="127.0.0.1:50052", help="the ledger's gRPC address")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
    args = parser.parse_args(argv)
    try:
        reply = asyncio.run(_request(args.ledger, args.timeout))
    except grpc.aio.AioRpcError as exc:
        print(f"reconcile failed: {exc.code().name} {exc.details()}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "seq": reply.seq,
                "balances_checked": reply.balances_checked,
                "differences": [MessageToDict(d) for d in reply.differences],
            },
            indent=2,
        )
    )
    return 1 if reply.differences else 0


if __name__ == "__main__":
    sys.exit(main())
