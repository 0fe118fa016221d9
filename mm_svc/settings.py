"""The process's settings, read once from the environment at start (the maker and the flow
read the same variables; the launcher gives each its own ports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mm_svc.config import DEFAULT_CONFIG_FILE, Config, load_config
from servicekit.settings import SettingsError, env_float, env_int, env_path, env_str


@dataclass(frozen=True)
class MmSettings:
    engine_address: str
    host: str
    health_port: int
    metrics_port: int  # 0 = no metrics endpoint
    grace_seconds: float
    log_level: str
    config: Config
    # ENGINE_ADMIN_TOKEN: funding (the engine's Deposit) needs the engine's admin credential.
    engine_admin_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, health_port: int, metrics_port: int) -> MmSettings:
        """`health_port` and `metrics_port` are the defaults of MM_HEALTH_PORT and
        MM_METRICS_PORT, which differ between the maker and the flow."""
        engine_address = env_str("ENGINE_ADDRESS", "127.0.0.1:50051")
        host, _, port = engine_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"ENGINE_ADDRESS must be host:port, got {engine_address!r}")
        return cls(
            engine_address=engine_address,
            host=env_str("MM_HOST", "0.0.0.0"),
            health_port=env_int("MM_HEALTH_PORT", health_port, low=0, high=65535),
            metrics_port=env_int("MM_METRICS_PORT", metrics_port, low=0, high=65535),
            grace_seconds=env_float("MM_SHUTDOWN_GRACE_SECONDS", 5.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            config=load_config(env_path("MM_CONFIG", str(DEFAULT_CONFIG_FILE))),
            engine_admin_token=env_str("ENGINE_ADMIN_TOKEN", ""),
        )
