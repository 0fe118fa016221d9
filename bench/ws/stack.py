"""The benchmark's services: Redis, the engine, the publisher, stream_svc and one gateway
on free ports, and no ledger."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.services import LOCALHOST, engine_spec
from launcher.health import HttpProbe
from launcher.ports import free_port
from launcher.redis_server import LocalRedis
from launcher.supervisor import ServiceSpec

SECRET = "bench-ws-token-secret-0123456789abcdefgh"  # 40 characters


@dataclass(frozen=True)
class Stack:
    specs: list[ServiceSpec]
    engine: str
    stream: str
    gateway: str  # http://host:port


def stack(work_dir: Path, queue_frames: int, interval_ms: int) -> Stack:
    """Redis, engine, publisher, stream_svc and one gateway on free ports; no ledger."""
    redis = LocalRedis(work_dir / "redis", free_port(), appendonly=False)
    engine_port, stream_port, gateway_port = free_port(), free_port(), free_port()
    publisher_port, nobody = free_port(), free_port()
    engine = f"{LOCALHOST}:{engine_port}"
    stream = f"{LOCALHOST}:{stream_port}"
    common = {"ENGINE_ADDRESS": engine, "REDIS_URL": redis.url, "LOG_LEVEL": "WARNING"}
    publisher = ServiceSpec(
        name="publisher",
        argv=[sys.executable, "-m", "stream_svc.publisher"],
        env={
            **common,
            "STREAM_PUBLISHER_HOST": LOCALHOST,
            "STREAM_PUBLISHER_PORT": str(publisher_port),
            "LEDGER_ADDRESS": f"{LOCALHOST}:{nobody}",
            "STREAM_LEDGER_WAIT_SECONDS": "1",
        },
        health_address=f"{LOCALHOST}:{publisher_port}",
    )
    stream_spec = ServiceSpec(
        name="stream",
        argv=[sys.executable, "-m", "stream_svc"],
        env={**common, "STREAM_HOST": LOCALHOST, "STREAM_GRPC_PORT": str(stream_port)},
        health_address=stream,
    )
    base = f"http://{LOCALHOST}:{gateway_port}"
    gateway = ServiceSpec(
        name="gateway",
        argv=[sys.executable, "-m", "gateway_svc"],
        env={
            **common,
            "GATEWAY_HOST": LOCALHOST,
            "GATEWAY_PORT": str(gateway_port),
            "LEDGER_ADDRESS": f"{LOCALHOST}:{nobody}",
            "STREAM_ADDRESS": stream,
            "GATEWAY_TOKEN_SECRET": SECRET,
            "GATEWAY_WS_QUEUE_FRAMES": str(queue_frames),
            "GATEWAY_WS_INTERVAL_MS": str(interval_ms),
        },
        ready_probe=HttpProbe(f"{base}/api/v1/markets"),
    )
    engine_svc = engine_spec(work_dir / "engine", engine_port)
    # The driver's deposits carry no admin token, whatever the caller's environment holds.
    engine_svc = dataclasses.replace(engine_svc, env={**engine_svc.env, "ENGINE_ADMIN_TOKEN": ""})
    specs = [redis.spec(), engine_svc, publisher, stream_spec, gateway]
    return Stack(specs, engine, stream, base)
