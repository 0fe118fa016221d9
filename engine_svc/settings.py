"""The engine's configuration, read once from the environment at start."""

from dataclasses import dataclass, field
from pathlib import Path

from engine_svc.config import DEFAULT_MARKETS_FILE
from servicekit.settings import SettingsError, env_bool, env_float, env_int, env_path, env_str

MIN_ADMIN_TOKEN_CHARS = 32
DEV_DEPOSIT_SECRET = "development-only-deposit-address-secret"


@dataclass(frozen=True)
class EngineSettings:
    host: str
    port: int
    data_dir: Path
    markets_file: Path
    fsync: bool
    snapshot_every_events: int
    snapshot_every_seconds: float
    grace_seconds: float
    log_level: str
    # Bearer token the admin RPCs require (engine_svc.admin_auth); "" leaves them open.
    admin_token: str = field(default="", repr=False)
    metrics_port: int = 0  # GET /metrics (Prometheus); 0 = none
    # Derives every deposit address (engine_svc.deposit_addresses): the same on every engine
    # of a deployment. The default is for development only.
    deposit_address_secret: str = field(default=DEV_DEPOSIT_SECRET, repr=False)

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @classmethod
    def from_env(cls) -> "EngineSettings":
        admin_token = env_str("ENGINE_ADMIN_TOKEN", "")
        if admin_token and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
            raise SettingsError(
                f"ENGINE_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters"
            )
        return cls(
            host=env_str("ENGINE_HOST", "0.0.0.0"),
            port=env_int("ENGINE_GRPC_PORT", 50051, low=0, high=65535),
            data_dir=env_path("ENGINE_DATA_DIR", ".run/engine"),
            markets_file=env_path("ENGINE_MARKETS_FILE", str(DEFAULT_MARKETS_FILE)),
            fsync=env_bool("ENGINE_FSYNC", True),
            snapshot_every_events=env_int("ENGINE_SNAPSHOT_EVERY_EVENTS", 500_000, low=1),
            snapshot_every_seconds=env_float("ENGINE_SNAPSHOT_EVERY_SECONDS", 300.0, low=1.0),
            grace_seconds=env_float("ENGINE_SHUTDOWN_GRACE_SECONDS", 10.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            admin_token=admin_token,
            metrics_port=env_int("ENGINE_METRICS_PORT", 0, low=0, high=65535),
            deposit_address_secret=env_str("DEPOSIT_ADDRESS_SECRET", DEV_DEPOSIT_SECRET),
        )
