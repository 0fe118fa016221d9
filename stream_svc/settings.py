"""Configuration of stream_svc and of its publisher, read once from the environment."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import SettingsError, env_float, env_int, env_str


def _redis_url() -> str:
    url = env_str("REDIS_URL", "redis://127.0.0.1:56379/0")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"REDIS_URL must be a redis:// URL, got {url!r}")
    return url


@dataclass(frozen=True)
class PublisherSettings:
    host: str
    port: int  # gRPC health only
    engine_address: str
    ledger_address: str
    redis_url: str
    ledger_wait_seconds: float  # how long to wait for the ledger's history at start
    recent_trades: int  # per market, in Redis and in memory: what bridges an outage
    grace_seconds: float
    log_level: str
    metrics_port: int = 0  # 0: no /metrics
    linger_ms: int = 10  # the engine gathers this long of batches per message (0-1000)

    @classmethod
    def from_env(cls) -> PublisherSettings:
        return cls(
            host=env_str("STREAM_PUBLISHER_HOST", "0.0.0.0"),
            port=env_int("STREAM_PUBLISHER_PORT", 50054, low=0, high=65535),
            engine_address=env_str("ENGINE_ADDRESS", "127.0.0.1:50051"),
            ledger_address=env_str("LEDGER_ADDRESS", "127.0.0.1:50052"),
            redis_url=_redis_url(),
            ledger_wait_seconds=env_float("STREAM_LEDGER_WAIT_SECONDS", 30.0),
            recent_trades=env_int("STREAM_RECENT_TRADES", 200, low=1, high=1000),
            grace_seconds=env_float("STREAM_SHUTDOWN_GRACE_SECONDS", 5.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            metrics_port=env_int("STREAM_PUBLISHER_METRICS_PORT", 0, low=0, high=65535),
            linger_ms=env_int("STREAM_PUBLISHER_LINGER_MS", 10, low=0, high=1000),
        )


@dataclass(frozen=True)
class StreamSettings:
    host: str
    port: int
    engine_address: str
    redis_url: str
    queue_items: int  # per subscriber; a subscriber that falls this far behind is dropped
    grace_seconds: float
    log_level: str
    metrics_port: int = 0  # 0: no /metrics

    @classmethod
    def from_env(cls) -> StreamSettings:
        return cls(
            host=env_str("STREAM_HOST", "0.0.0.0"),
            port=env_int("STREAM_GRPC_PORT", 50053, low=0, high=65535),
            engine_address=env_str("ENGINE_ADDRESS", "127.0.0.1:50051"),
            redis_url=_redis_url(),
            queue_items=env_int("STREAM_QUEUE_ITEMS", 10_000, low=10),
            grace_seconds=env_float("STREAM_SHUTDOWN_GRACE_SECONDS", 5.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            metrics_port=env_int("STREAM_METRICS_PORT", 0, low=0, high=65535),
        )
