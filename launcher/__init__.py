"""Local process supervisor for the exchange: `python -m launcher` runs every service on one
machine (`make run`), and integration tests use `Supervisor` to run real services."""

from launcher.health import check_health
from launcher.spec import ServiceSpec, ServiceStartError
from launcher.supervisor import RestartPolicy, Supervisor

__all__ = ["RestartPolicy", "ServiceSpec", "ServiceStartError", "Supervisor", "check_health"]
