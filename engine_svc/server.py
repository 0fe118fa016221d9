"""Runs the engine: recover, list the configured markets on first start, serve gRPC.

On SIGTERM: health NOT_SERVING, stop taking calls, finish what was submitted,
write a snapshot, close the journal.
"""

import asyncio
import logging
import time
from typing import Any

import grpc
import orjson
from grpc_health.v1._async import HealthServicer
from prometheus_client import CollectorRegistry

from engine_svc import convert
from engine_svc.admin_auth import AdminAuth
from engine_svc.config import listing_commands
from engine_svc.core.engine import Engine
from engine_svc.core.types import Code
from engine_svc.deposit_addresses import DepositAddresses
from engine_svc.hub import EventHub
from engine_svc.journal import Journal
from engine_svc.metrics import EngineMetrics
from engine_svc.recovery import recover
from engine_svc.sequencer import Sequencer
from engine_svc.serialized_events import SerializedEvents
from engine_svc.service import EngineServicer
from engine_svc.settings import EngineSettings
from engine_svc.snapshots import write_snapshot
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving
from servicekit.memory import collect_rarely, tune_gc
from servicekit.metrics import RpcMetrics, metrics_endpoint
from servicekit.mtls import listen
from servicekit.request_ids import ReceiveRequestId

log = logging.getLogger(__name__)

SERVICE_NAME = epb.DESCRIPTOR.services_by_name["EngineService"].full_name


class EngineRuntime:
    """The engine with its journal, sequencer and event hub, ready to serve."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = EngineMetrics(self.registry)
        self.rpc_metrics = RpcMetrics(self.registry)
        self.engine: Engine = recover(settings.journal_dir, settings.snapshot_dir)
        self.journal = Journal(
            settings.journal_dir, fsync=settings.fsync, on_sync=self.metrics.fsync_seconds.observe
        )
        self.hub = EventHub(
            lambda e: convert.event_to_proto(e, self.engine),
            settings.journal_dir,
            settings.snapshot_dir,
            last_seq=self.engine.seq,
        )
        self.sequencer = Sequencer(
            self.engine,
            self.journal,
            publish=self.hub.publish,
            snapshot=self._write_snapshot,
            snapshot_every=settings.snapshot_every_events,
            on_batch=self.metrics.batch_commands.observe,
            reload=lambda: recover(settings.journal_dir, settings.snapshot_dir),
        )
        self.metrics.watch(self.engine, self.sequencer)
        self._snapshot_writes: set[asyncio.Future[epb.SnapshotReply]] = set()
        self._latest_write: asyncio.Future[epb.SnapshotReply] | None = None
        self._forced = asyncio.Lock()

    def _write_snapshot(self, state: dict[str, Any]) -> None:
        """Encodes and writes off the event loop; `state` is already a private copy."""

        def write() -> epb.SnapshotReply:
            started = time.perf_counter()
            payload = orjson.dumps(state)
            path = write_snapshot(self.settings.snapshot_dir, state["seq"], payload)
            seconds = time.perf_counter() - started
            self.metrics.snapshot_seconds.observe(seconds)
            self.metrics.snapshot_bytes.set(path.stat().st_size)
            log.info(
                "snapshot written", extra={"snapshot": path.name, "seconds": round(seconds, 3)}
            )
            return epb.SnapshotReply(
                seq=state["seq"],
                file=path.name,
                size_bytes=path.stat().st_size,
                duration_us=int(seconds * 1_000_000),
            )

        future = asyncio.get_running_loop().run_in_executor(None, write)
        self._snapshot_writes.add(future)
        future.add_done_callback(self._snapshot_writes.discard)
        self._latest_write = future

    async def snapshot_now(self) -> epb.SnapshotReply:
        """Writes a snapshot at once (the Snapshot RPC) and says where, once it is durable."""
        async with self._forced:  # two writes of one seq would share a temporary file
            if self._snapshot_writes:
                await asyncio.gather(*self._snapshot_writes)
            self._latest_write = None
            await self.sequencer.snapshot_between_batches()
            if self._latest_write is None:
                return epb.SnapshotReply(
                    code=pb.RESULT_CODE_UNAVAILABLE,
                    message=f"no snapshot while the journal has failed: {self.sequencer.failed}",
                )
            return await self._latest_write

    async def start(self) -> None:
        self.sequencer.start()
        if not self.engine.markets:
            await self._list_configured_markets()

    async def _list_configured_markets(self) -> None:
        for command in listing_commands(self.settings.markets_file):
            outcome = await self.sequencer.submit(command)
            if outcome.code not in (Code.OK, Code.ALREADY_EXISTS):
                raise SystemExit(f"markets file {self.settings.markets_file}: {outcome.message}")

    async def snapshot_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_every_seconds)
            if self.engine.seq != self.sequencer.last_snapshot_seq:
                await self.sequencer.snapshot_between_batches()

    async def stop(self) -> None:
        await self.sequencer.close()
        if self.engine.seq != self.sequencer.last_snapshot_seq:
            await self.sequencer.snapshot_between_batches()
        if self._snapshot_writes:
            await asyncio.gather(*self._snapshot_writes)
        self.journal.close()


def create_server(
    runtime: EngineRuntime, address: str
) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """The gRPC server with the engine, health and reflection; returns the bound port."""
    token = runtime.settings.admin_token
    server = grpc.aio.server(
        interceptors=[
            runtime.rpc_metrics,
            ReceiveRequestId(),
            *([AdminAuth(token)] if token else []),
            SerializedEvents(),
        ],
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    engine_pb2_grpc.add_EngineServiceServicer_to_server(
        EngineServicer(
            runtime.engine,
            runtime.sequencer,
            runtime.hub,
            snapshot=runtime.snapshot_now,
            addresses=DepositAddresses(runtime.settings.deposit_address_secret),
        ),
        server,
    )
    health = add_health_and_reflection(server, [SERVICE_NAME])
    port = listen(server, address)
    return server, health, port


async def serve(settings: EngineSettings) -> None:
    collect_rarely()
    runtime = EngineRuntime(settings)
    tune_gc()  # the recovered state is in memory
    async with metrics_endpoint(
        "engine", runtime.registry, settings.host, settings.metrics_port, "ENGINE_METRICS_PORT"
    ):
        await runtime.start()
        server, health, port = create_server(runtime, f"{settings.host}:{settings.port}")
        if not settings.admin_token:
            log.warning(
                "ENGINE_ADMIN_TOKEN is not set: admin calls (Deposit, Withdraw, AddAsset,"
                " AddMarket, SetMarketStatus, SetTriggerLimit, Snapshot) are open to anyone"
                " who can reach this port"
            )
        await server.start()
        await set_serving(health, [SERVICE_NAME])
        log.info(
            "engine serving",
            extra={
                "host": settings.host,
                "port": port,
                "metrics_port": settings.metrics_port,
                "seq": runtime.engine.seq,
            },
        )
        snapshots = asyncio.create_task(runtime.snapshot_periodically())
        try:
            await serve_until_signalled(
                server, health, grace=settings.grace_seconds, on_stop=runtime.stop
            )
        finally:
            snapshots.cancel()
