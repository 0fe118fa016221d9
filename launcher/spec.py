"""What to run: the description of one supervised service, and the error for a failed start."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from launcher.health import GrpcHealthProbe

# A step the supervisor awaits around a launch; it must be idempotent, as it runs again
# on every restart.
Hook = Callable[[], Awaitable[None]]


class ServiceStartError(RuntimeError):
    """A service exited, could not be executed, or did not become healthy in time."""


class ReadinessProbe(Protocol):
    """How the supervisor tells that a started service answers, so the next one may start."""

    @property
    def target(self) -> str:
        """Where the service answers, for messages and `make run`'s summary."""
        ...

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        """True if the service answers now; any failure is False."""
        ...


@dataclass(frozen=True)
class ServiceSpec:
    """One service to supervise.

    `env` is merged over the supervisor's own environment. The service is ready once
    `ready_probe` passes; `health_address` ("host:port") is the shorthand for a gRPC probe,
    ready when grpc.health.v1 Check(`health_service`) answers SERVING. With neither it is
    ready as soon as the process has started.

    `prepare` is awaited before each launch (e.g. initdb), `after_ready` each time the
    service became ready, before the next one starts (e.g. create the database they use).
    `user` runs the process as that OS user, which needs root: PostgreSQL refuses to run
    as root.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    health_address: str | None = None
    health_service: str = ""
    ready_probe: ReadinessProbe | None = None
    cwd: str | None = None
    ready_timeout: float = 30.0
    user: str | None = None
    prepare: Hook | None = field(default=None, compare=False)
    after_ready: Hook | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ServiceSpec.name must not be empty")
        if not self.argv:
            raise ValueError(f"ServiceSpec {self.name!r}: argv must not be empty")
        if self.ready_timeout <= 0:
            raise ValueError(f"ServiceSpec {self.name!r}: ready_timeout must be positive")
        if self.health_address is not None and self.ready_probe is not None:
            raise ValueError(
                f"ServiceSpec {self.name!r}: give health_address or ready_probe, not both"
            )
        # Own copies, so a caller mutating its list/dict cannot change a spec.
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", dict(self.env))

    @property
    def probe(self) -> ReadinessProbe | None:
        """The readiness probe in effect, if any."""
        if self.health_address is not None:
            return GrpcHealthProbe(self.health_address, self.health_service)
        return self.ready_probe
