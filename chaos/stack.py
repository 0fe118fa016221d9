"""The stack under test: exactly the services of `make run` (launcher.stack), on free
loopback ports with their data in one folder, supervised by the launcher's Supervisor.

Differences from `make run`, each for a reason:
- The PostgreSQL backend is chosen (`timescale`), not found: a run says which track of the
  ledger it exercised, and fails rather than falls back when TimescaleDB is not built.
- PostgreSQL does not fsync (NO_DISK_WAIT): a killed server loses nothing the OS holds, and
  this suite kills processes, not the machine.
- Every service binds 127.0.0.1 only and logs warnings and errors only.
- Password hashing is cheap (sign-ups are not under test) and the engine snapshots often, so
  that its recoveries load a snapshot and replay a journal tail.
- Readiness timeouts are generous: the machine is shared and recoveries replay history.
"""

from __future__ import annotations

import dataclasses
import random
import socket
from dataclasses import dataclass
from pathlib import Path

from launcher.postgres import NO_DISK_WAIT, LocalPostgres
from launcher.spec import ServiceSpec
from launcher.stack import LOCALHOST, StackSettings, admin_token, exchange_specs
from launcher.supervisor import RestartPolicy, Supervisor

READY_TIMEOUT = 120.0
# Backoff as the launcher's, capped lower: a trial kills the same service again soon.
RESTART_POLICY = RestartPolicy(initial=0.5, maximum=4.0, reset_after=10.0)

_COMMON_ENV = {
    "LOG_LEVEL": "WARNING",
    "ENGINE_HOST": LOCALHOST,
    "LEDGER_HOST": LOCALHOST,
    "STREAM_HOST": LOCALHOST,
    "STREAM_PUBLISHER_HOST": LOCALHOST,
    "GATEWAY_HOST": LOCALHOST,
}
_EXTRA_ENV = {
    "engine": {"ENGINE_SNAPSHOT_EVERY_EVENTS": "20000"},
    "ledger": {"LEDGER_ARGON2_TIME_COST": "1", "LEDGER_ARGON2_MEMORY_KIB": "1024"},
    "gateway": {"GATEWAY_FAUCET_CAP": "100000000"},  # users top up all run long
}


@dataclass(frozen=True)
class ChaosStack:
    settings: StackSettings
    specs: list[ServiceSpec]
    admin_token: str
    database_url: str

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    @property
    def engine_address(self) -> str:
        return f"{LOCALHOST}:{self.settings.engine_grpc_port}"

    @property
    def ledger_address(self) -> str:
        return f"{LOCALHOST}:{self.settings.ledger_grpc_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{LOCALHOST}:{self.settings.gateway_port}"

    def supervisor(self) -> Supervisor:
        """Children's output is relayed to our sys.stdout, line by line, prefixed by name
        (the runner points sys.stdout at a log file)."""
        return Supervisor(self.specs, grace=5.0, restart_policy=RESTART_POLICY)


def free_ports(count: int) -> list[int]:
    """Distinct free ports below Linux's ephemeral range (32768-60999): the services are
    restarted on their ports again and again, and a port in that range may meanwhile become
    the local end of some outgoing connection, or another test's pick."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind((LOCALHOST, port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def chaos_stack(root: Path, timescale: bool = False) -> ChaosStack:
    """The services of `make run` with every port free and every file under `root`, the
    ledger on TimescaleDB if `timescale`, else on plain PostgreSQL."""
    root.mkdir(parents=True, exist_ok=True)
    ports = iter(free_ports(18))
    settings = StackSettings(
        engine_grpc_port=next(ports),
        engine_metrics_port=next(ports),
        engine_data_dir=root / "engine",
        ledger_grpc_port=next(ports),
        ledger_metrics_port=next(ports),
        stream_grpc_port=next(ports),
        stream_metrics_port=next(ports),
        publisher_port=next(ports),
        publisher_metrics_port=next(ports),
        gateway_port=next(ports),
        postgres_port=next(ports),
        postgres_data_dir=root / "postgres",
        redis_port=next(ports),
        redis_data_dir=root / "redis",
        mm_health_port=next(ports),
        mm_metrics_port=next(ports),
        flow_health_port=next(ports),
        flow_metrics_port=next(ports),
    )
    postgres = LocalPostgres(
        settings.postgres_data_dir,
        settings.postgres_port,
        settings=NO_DISK_WAIT,
        timescale=timescale,
    )
    specs = []
    for spec in exchange_specs(settings):
        if spec.name == "postgres":
            spec = postgres.spec()
        env = {**spec.env, **_COMMON_ENV, **_EXTRA_ENV.get(spec.name, {})}
        ready_timeout = max(spec.ready_timeout, READY_TIMEOUT)
        specs.append(dataclasses.replace(spec, env=env, ready_timeout=ready_timeout))
    return ChaosStack(settings, specs, admin_token(settings), postgres.url)
