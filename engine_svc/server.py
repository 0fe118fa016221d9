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

from engine_svc import convert
from engine_svc.config import listing_commands
from engine_svc.core.engine import Engine
from engine_svc.core.types import Code
from engine_svc.hub import EventHub
from engine_svc.journal import Journal
from engine_svc.recovery import recover
from engine_svc.sequencer import Sequencer
from engine_svc.service import EngineServicer
from engine_svc.settings import EngineSettings
from engine_svc.snapshots import write_snapshot
from exchange.engine.v1 import engine_pb2, engine_pb2_grpc
from servicekit.grpc_server import add_health_and_reflection, serve_until_signalled, set_serving

log = logging.getLogger(__name__)

SERVICE_NAME = engine_pb2.DESCRIPTOR.services_by_name["EngineService"].full_name


class EngineRuntime:
    """The engine with its journal, sequencer and event hub, ready to serve."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.engine: Engine = recover(settings.journal_dir, settings.snapshot_dir)
        self.journal = Journal(settings.journal_dir, fsync=settings.fsync)
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
        )
        self._snapshot_writes: set[asyncio.Future[Any]] = set()

    def _write_snapshot(self, state: dict[str, Any]) -> None:
        """Encodes and writes off the event loop; `state` is already a private copy."""

        def write() -> None:
            started = time.perf_counter()
            path = write_snapshot(self.settings.snapshot_dir, state["seq"], orjson.dumps(state))
            log.info(
                "snapshot written",
                extra={"snapshot": path.name, "seconds": round(time.perf_counter() - started, 3)},
            )

        future = asyncio.get_running_loop().run_in_executor(None, write)
        self._snapshot_writes.add(future)
        future.add_done_callback(self._snapshot_writes.discard)

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
                self.sequencer.take_snapshot()

    async def stop(self) -> None:
        await self.sequencer.close()
        if self.engine.seq != self.sequencer.last_snapshot_seq:
            self.sequencer.take_snapshot()
        if self._snapshot_writes:
            await asyncio.gather(*self._snapshot_writes)
        self.journal.close()


def create_server(
    runtime: EngineRuntime, address: str
) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """The gRPC server with the engine, health and reflection; returns the bound port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    engine_pb2_grpc.add_EngineServiceServicer_to_server(
        EngineServicer(runtime.engine, runtime.sequencer, runtime.hub), server
    )
    health = add_health_and_reflection(server, [SERVICE_NAME])
    port = server.add_insecure_port(address)
    return server, health, port


async def serve(settings: EngineSettings) -> None:
    runtime = EngineRuntime(settings)
    await runtime.start()
    server, health, port = create_server(runtime, f"{settings.host}:{settings.port}")
    await server.start()
    await set_serving(health, [SERVICE_NAME])
    log.info(
        "engine serving", extra={"host": settings.host, "port": port, "seq": runtime.engine.seq}
    )
    snapshots = asyncio.create_task(runtime.snapshot_periodically())
    try:
        await serve_until_signalled(
            server, health, grace=settings.grace_seconds, on_stop=runtime.stop
        )
    finally:
        snapshots.cancel()
