"""Runs the ledger: connect, migrate, ingest in the background, serve gRPC.

Health turns SERVING once the schema is in place; queries are served while ingest catches
up. On SIGTERM: NOT_SERVING, drain calls, stop ingest (a batch being written either commits
whole or not at all), close the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg
import grpc
from argon2 import PasswordHasher, Type
from grpc_health.v1._async import HealthServicer
from prometheus_client import CollectorRegistry

from exchange.engine.v1.engine_pb2_grpc import EngineServiceStub
from exchange.ledger.v1 import ledger_pb2, ledger_pb2_grpc
from ledger_svc.db import create_pool
from ledger_svc.ingest import Ingest
from ledger_svc.metrics import DatabaseMetrics, IngestState
from ledger_svc.migrate import migrate, timescale_in_use, timescale_policies
from ledger_svc.service import LedgerServicer
from ledger_svc.settings import LedgerSettings
from ledger_svc.users import UserStore
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving
from servicekit.metrics import RpcMetrics, metrics_endpoint
from servicekit.mtls import channel as mesh_channel
from servicekit.mtls import listen
from servicekit.request_ids import ReceiveRequestId

log = logging.getLogger(__name__)

SERVICE_NAME = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name


@dataclass
class LedgerRuntime:
    """The ledger's connections and background ingest, ready to serve."""

    settings: LedgerSettings
    pool: asyncpg.Pool
    engine: grpc.aio.Channel
    ingest: Ingest | None
    registry: CollectorRegistry
    db_metrics: DatabaseMetrics
    ingest_task: asyncio.Task[None] | None = None
    rpc_metrics: RpcMetrics = field(init=False)

    def __post_init__(self) -> None:
        self.rpc_metrics = RpcMetrics(self.registry)
        if self.ingest is not None:
            self.registry.register(IngestState(self.ingest))

    @classmethod
    async def open(cls, settings: LedgerSettings) -> LedgerRuntime:
        pool = await create_pool(
            settings.database_url,
            connect_timeout=settings.db_connect_timeout,
            max_size=settings.db_pool_size,
        )
        async with pool.acquire() as conn:
            applied = await migrate(conn)
            if await timescale_in_use(conn):
                await timescale_policies(
                    conn,
                    compress_after_days=settings.trades_compress_after_days,
                    retain_days=settings.trades_retain_days,
                )
        if applied:
            log.info("schema migrated", extra={"applied": applied})
        engine = mesh_channel(
            settings.engine_address,
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
        )
        registry = CollectorRegistry()
        db_metrics = DatabaseMetrics(registry)
        ingest = (
            Ingest(
                pool,
                engine,
                max_batch_events=settings.max_batch_events,
                linger_ms=settings.linger_ms,
                on_stored=db_metrics.batch_stored,
            )
            if settings.ingest
            else None
        )
        return cls(settings, pool, engine, ingest, registry, db_metrics)

    def start(self) -> None:
        if self.ingest is not None:
            self.ingest_task = asyncio.create_task(self.ingest.run(), name="ingest")

    async def close(self) -> None:
        if self.ingest_task is not None:
            self.ingest_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.ingest_task
        await self.engine.close()
        await self.pool.close()


def create_server(
    runtime: LedgerRuntime, address: str
) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """The gRPC server with the ledger, health and reflection; returns the bound port."""
    server = grpc.aio.server(interceptors=[runtime.rpc_metrics, ReceiveRequestId()])
    hasher = PasswordHasher(
        time_cost=runtime.settings.argon2_time_cost,
        memory_cost=runtime.settings.argon2_memory_kib,
        type=Type.ID,
    )
    servicer = LedgerServicer(
        runtime.pool,
        EngineServiceStub(runtime.engine),
        runtime.ingest,
        UserStore(runtime.pool, hasher=hasher),
        runtime.db_metrics,
    )
    ledger_pb2_grpc.add_LedgerServiceServicer_to_server(servicer, server)
    health = add_health_and_reflection(server, [SERVICE_NAME])
    port = listen(server, address)
    return server, health, port


async def serve(settings: LedgerSettings) -> None:
    runtime = await LedgerRuntime.open(settings)
    async with metrics_endpoint(
        "ledger", runtime.registry, settings.host, settings.metrics_port, "LEDGER_METRICS_PORT"
    ):
        server, health, port = create_server(runtime, f"{settings.host}:{settings.port}")
        await server.start()
        runtime.start()
        await set_serving(health, [SERVICE_NAME])
        log.info(
            "ledger serving",
            extra={"host": settings.host, "port": port, "metrics_port": settings.metrics_port},
        )
        await serve_until_signalled(
            server, health, grace=settings.grace_seconds, on_stop=runtime.close
        )
