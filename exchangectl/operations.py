"""snapshot, reconcile and status: the engine's and the ledger's operations, and a health
overview of every service."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchangectl.backends import Backends, open_channel
from exchangectl.errors import EXIT_OK, EXIT_PROBLEM, check_result
from exchangectl.output import Result, fields, table
from launcher.stack import LOCALHOST, StackSettings

SERVING = "SERVING"

T = TypeVar("T")


async def snapshot(b: Backends, args: argparse.Namespace) -> Result:
    reply = await b.from_engine(
        b.engine.Snapshot(epb.SnapshotRequest(), metadata=b.admin, timeout=b.timeout)
    )
    check_result(reply.code, reply.message)
    data = {
        "seq": reply.seq,
        "file": reply.file,
        "size_bytes": reply.size_bytes,
        "duration_us": reply.duration_us,
    }
    text = (
        f"snapshot at seq {reply.seq} written: {reply.file},"
        f" {reply.size_bytes} bytes in {reply.duration_us / 1000:.1f} ms"
    )
    return Result(data, text)


async def reconcile(b: Backends, args: argparse.Namespace) -> Result:
    reply = await b.from_ledger(b.ledger.Reconcile(lpb.ReconcileRequest(), timeout=b.timeout))
    differences = [
        {"user_id": d.user_id, "asset": d.asset,
         "engine_available": d.engine_available, "engine_locked": d.engine_locked,
         "ledger_available": d.ledger_available, "ledger_locked": d.ledger_locked}
        for d in reply.differences
    ]  # fmt: skip
    data = {
        "seq": reply.seq,
        "balances_checked": reply.balances_checked,
        "differences": differences,
    }
    if not differences:
        checked = f"{reply.balances_checked} balances at seq {reply.seq}"
        return Result(data, f"the ledger agrees with the engine: {checked}")
    rows = [
        [d["user_id"], d["asset"], f"{d['engine_available']} / {d['engine_locked']}",
         f"{d['ledger_available']} / {d['ledger_locked']}"]
        for d in differences
    ]  # fmt: skip
    text = (
        f"{len(differences)} of {reply.balances_checked} balances differ at seq {reply.seq}\n"
        + table(["USER", "ASSET", "ENGINE AVAIL / LOCKED", "LEDGER AVAIL / LOCKED"], rows)
    )
    return Result(data, text, EXIT_PROBLEM)


def local_services() -> list[tuple[str, str]]:
    """Every service `make run` starts, at the ports the same environment gives them."""
    s = StackSettings.from_env()
    services = [
        ("publisher", f"{LOCALHOST}:{s.publisher_port}"),
        ("stream", f"{LOCALHOST}:{s.stream_grpc_port}"),
        ("gateway", f"http://{LOCALHOST}:{s.gateway_port}/health"),
    ]
    if s.market_maker:
        services += [
            ("mm", f"{LOCALHOST}:{s.mm_health_port}"),
            ("flow", f"{LOCALHOST}:{s.flow_health_port}"),
        ]
    return services


def parse_service(text: str) -> tuple[str, str]:
    """NAME=ADDRESS, where ADDRESS is host:port (gRPC health) or an http(s) URL (200 = up)."""
    name, sep, address = text.partition("=")
    if not sep or not name or not address:
        raise argparse.ArgumentTypeError(f"expected NAME=ADDRESS, got {text!r}")
    return name, address


async def status(b: Backends, args: argparse.Namespace) -> Result:
    targets = [("engine", b.engine_address), ("ledger", b.ledger_address)]
    targets += local_services() if args.local else []
    targets += args.service
    health, engine, ingest = await asyncio.gather(
        asyncio.gather(*(_health(address, b.timeout) for _, address in targets)),
        _optional(b.engine.GetStatus(epb.GetStatusRequest(), timeout=b.timeout)),
        _optional(b.ledger.GetIngestStatus(lpb.GetIngestStatusRequest(), timeout=b.timeout)),
    )
    services = [
        {"service": name, "address": address, "status": state}
        for (name, address), state in zip(targets, health, strict=True)
    ]
    lag = engine.seq - ingest.last_seq if engine is not None and ingest is not None else None
    problems = [f"{s['service']} is {s['status']}" for s in services if s["status"] != SERVING]
    if engine is not None and engine.journal_failure:
        problems.append(f"the engine refuses commands: {engine.journal_failure}")
    if args.max_lag is not None and lag is not None and lag > args.max_lag:
        problems.append(f"the ledger is {lag} events behind (more than {args.max_lag})")
    data: dict[str, Any] = {
        "services": services,
        "engine": None if engine is None else {
            "seq": engine.seq, "last_snapshot_seq": engine.last_snapshot_seq,
            "queued_commands": engine.queued_commands, "journal_failure": engine.journal_failure,
            "markets": engine.markets, "open_orders": engine.open_orders,
            "max_triggers_total": engine.max_triggers_total,
        },
        "ledger": None if ingest is None else {
            "last_seq": ingest.last_seq, "connected": ingest.connected, "lag_events": lag,
        },
        "problems": problems,
    }  # fmt: skip
    lines = [table(["SERVICE", "ADDRESS", "STATUS"], [list(s.values()) for s in services]), ""]
    if engine is not None:
        lines.append(
            fields(
                [
                    ("engine seq", engine.seq),
                    ("last snapshot", engine.last_snapshot_seq),
                    ("queued commands", engine.queued_commands),
                    ("open orders", engine.open_orders),
                    ("pending triggers per user", engine.max_triggers_total),
                    ("journal", engine.journal_failure or "ok"),
                ]
            )
        )
    if ingest is not None:
        connected = "subscribed" if ingest.connected else "not subscribed to the engine"
        behind = "" if lag is None else f", {lag} events behind the engine"
        lines.append(f"ledger:          stored up to seq {ingest.last_seq} ({connected}{behind})")
    lines += [f"problem: {p}" for p in problems]
    return Result(data, "\n".join(lines).rstrip(), EXIT_PROBLEM if problems else EXIT_OK)


async def _optional(call: Awaitable[T]) -> T | None:
    """The reply, or None when the service does not answer (status reports it as down)."""
    try:
        return await call
    except grpc.aio.AioRpcError:
        return None


async def _health(address: str, timeout: float) -> str:  # noqa: ASYNC109
    """SERVING, NOT_SERVING, or why it could not be asked."""
    if address.startswith(("http://", "https://")):
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=timeout), trust_env=False
                ) as session,
                session.get(address) as response,
            ):
                return SERVING if response.status == 200 else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"DOWN ({type(exc).__name__})"
    async with open_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
        except grpc.aio.AioRpcError as exc:
            return f"DOWN ({exc.code().name})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
