"""Reconciliation: the ledger's balances of record against the engine's, at one seq.

The engine exports every balance together with the seq they reflect (E). The ledger waits
until it has stored event E, then reads, in one snapshot, its balances and the entries stored
after E, and subtracts those: both sides are then compared as of exactly E, while trading
goes on. Every (user, asset) that differs is reported; there should never be one.
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

from engine_svc.core.money import format_units, parse_units
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.ledger.v1 import ledger_pb2_grpc
from ledger_svc.db import Conn
from ledger_svc.projection import Bucket
from ledger_svc.queries import Directory

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
    ledger: dict[tuple[int, str], list[int]] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for user, asset, available, locked in await conn.fetch(
            "SELECT user_id, asset, available, locked FROM balances"
        ):
            ledger[(user, asset)] = [available, locked]
        for user, asset, bucket, amount in await conn.fetch(
            """SELECT user_id, asset, bucket, sum(amount) FROM ledger_entries
               WHERE seq > $1 AND bucket <> $2 GROUP BY user_id, asset, bucket""",
            seq,
            Bucket.EXTERNAL,
        ):
            ledger.setdefault((user, asset), [0, 0])[bucket - 1] -= int(amount)
        directory = await Directory.load(conn)
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
