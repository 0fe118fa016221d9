"""The local exchange: which services `python -m launcher` runs, in start order.

Services come up in list order and stop in reverse, so a service is listed after everything
it depends on (stores first, then the engine, then its consumers, the gateway last).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from launcher.spec import ServiceSpec

LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class StackSettings:
    """Where the local services listen and keep their data, from the launcher's environment."""

    engine_grpc_port: int = 50051
    engine_data_dir: Path = Path(".run/engine")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] = os.environ, cwd: Path | None = None
    ) -> StackSettings:
        """Read settings; relative paths are taken from `cwd` (default: the current directory).

        Raises ValueError naming the variable that is wrong.
        """
        base = Path.cwd() if cwd is None else cwd
        return cls(
            engine_grpc_port=_port(environ, "ENGINE_GRPC_PORT", cls.engine_grpc_port),
            engine_data_dir=base / environ.get("ENGINE_DATA_DIR", str(cls.engine_data_dir)),
        )


def exchange_specs(settings: StackSettings) -> list[ServiceSpec]:
    """The services of the local exchange, in start order."""
    return [
        ServiceSpec(
            name="engine",
            argv=[sys.executable, "-m", "engine_svc"],
            env={
                "ENGINE_GRPC_PORT": str(settings.engine_grpc_port),
                "ENGINE_DATA_DIR": str(settings.engine_data_dir),
            },
            health_address=f"{LOCALHOST}:{settings.engine_grpc_port}",
        ),
    ]


def summary(specs: list[ServiceSpec]) -> str:
    """One line per service saying where it answers, e.g. `engine  grpc 127.0.0.1:50051`."""
    width = max((len(spec.name) for spec in specs), default=0)
    lines = []
    for spec in specs:
        where = f"grpc {spec.health_address}" if spec.health_address else "running"
        lines.append(f"{spec.name:<{width}}  {where}")
    return "\n".join(lines)


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{name}={port} is outside 1..65535")
    return port
