"""The ledger's configuration, read once from the environment at start."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import SettingsError, env_bool, env_float, env_int, env_str

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:55432/exchange"


@dataclass(frozen=True)
class LedgerSettings:
    host: str
    port: int
    database_url: str
    engine_address: str
    ingest: bool  # False for a read-only replica: it serves queries, another one ingests
    max_batch_events: int
    db_connect_timeout: float
    db_pool_size: int
    trades_compress_after_days: int  # TimescaleDB only
    trades_retain_days: int  # TimescaleDB only; 0 = forever
    argon2_time_cost: int
    argon2_memory_kib: int
    grace_seconds: float
    log_level: str
    metrics_port: int = 0  # GET /metrics (Prometheus); 0 = none
    linger_ms: int = 10  # the engine gathers this long of batches per message (0-1000)

    @classmethod
    def from_env(cls) -> LedgerSettings:
        database_url = env_str("DATABASE_URL", DEFAULT_DATABASE_URL)
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError(f"DATABASE_URL must be a postgresql:// URL, got {database_url!r}")
        return cls(
            host=env_str("LEDGER_HOST", "0.0.0.0"),
            port=env_int("LEDGER_GRPC_PORT", 50052, low=0, high=65535),
            database_url=database_url,
            engine_address=env_str("ENGINE_ADDRESS", "127.0.0.1:50051"),
            ingest=env_bool("LEDGER_INGEST", True),
            max_batch_events=env_int("LEDGER_MAX_BATCH_EVENTS", 20_000, low=1),
            db_connect_timeout=env_float("LEDGER_DB_CONNECT_TIMEOUT_SECONDS", 60.0),
            db_pool_size=env_int("LEDGER_DB_POOL_SIZE", 8, low=2),
            trades_compress_after_days=env_int("LEDGER_TRADES_COMPRESS_AFTER_DAYS", 7, low=1),
            trades_retain_days=env_int("LEDGER_TRADES_RETAIN_DAYS", 0, low=0),
            argon2_time_cost=env_int("LEDGER_ARGON2_TIME_COST", 3, low=1),
            argon2_memory_kib=env_int("LEDGER_ARGON2_MEMORY_KIB", 65_536, low=8),
            grace_seconds=env_float("LEDGER_SHUTDOWN_GRACE_SECONDS", 10.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            metrics_port=env_int("LEDGER_METRICS_PORT", 0, low=0, high=65535),
            linger_ms=env_int("LEDGER_LINGER_MS", 10, low=0, high=1000),
        )
