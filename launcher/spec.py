"""What to run: the description of one supervised service, and the error for a failed start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class ServiceStartError(RuntimeError):
    """A service exited, could not be executed, or did not become healthy in time."""


@dataclass(frozen=True)
class ServiceSpec:
    """One service to supervise.

    `env` is merged over the supervisor's own environment. With `health_address` set
    ("host:port"), the service is ready once grpc.health.v1 Check(`health_service`)
    answers SERVING; with None it is ready as soon as the process has started.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    health_address: str | None = None
    health_service: str = ""
    cwd: str | None = None
    ready_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("ServiceSpec.name must not be empty")
        if not self.argv:
            raise ValueError(f"ServiceSpec {self.name!r}: argv must not be empty")
        if self.ready_timeout <= 0:
            raise ValueError(f"ServiceSpec {self.name!r}: ready_timeout must be positive")
        # Own copies, so a caller mutating its list/dict cannot change a spec.
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", dict(self.env))
