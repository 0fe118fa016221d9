"""The gateway's configuration, read once from the environment at start."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway_svc.addresses import Network, parse_networks
from gateway_svc.cadence import DEFAULT_INTERVAL_MS
from servicekit.settings import SettingsError, env_bool, env_float, env_int, env_str

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    reuse_port: bool  # several gateway processes share the port; the kernel spreads connections
    engine_address: str
    ledger_address: str
    redis_url: str
    token_secret: str  # signs the browser's bearer tokens; the same on every replica
    token_ttl_seconds: int
    faucet_enabled: bool  # POST /api/v1/onramp credits the caller (demo deployments only)
    faucet_cap: str  # per user and asset, in whole units of the asset
    order_rate: int  # order actions per second per user
    market_rate: int  # market-data requests per second per client address
    ws_connections: int  # WebSocket connections per user
    max_body_bytes: int
    api_key_cache_seconds: float
    verify_on_thread: bool  # Ed25519 on a worker thread: pays only with a core to spare
    web_dir: str  # the built web UI, served at /
    stream_address: str  # stream_svc, for WebSocket and SSE market data
    ws_max_topics: int  # streams per connection
    ws_queue_frames: int  # frames a client may fall behind before it is closed
    ws_interval_ms: int  # a topic's frames go out at most this often (0: real time)
    ws_send_buffer_bytes: int  # the kernel's send buffer per WebSocket; 0: its own sizing
    ws_heartbeat_seconds: float  # ping interval; no pong in time closes the connection
    ws_idle_seconds: float  # a connection without subscriptions is closed after this
    ws_max_frame_bytes: int  # largest frame a client may send
    grace_seconds: float
    log_level: str
    # ENGINE_ADMIN_TOKEN: the faucet's deposits need the engine's admin credential.
    engine_admin_token: str = field(default="", repr=False)
    # Security (issue 23).
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For is believed
    cors_origins: tuple[str, ...] = ()  # web origins granted CORS and WebSocket access
    tls_cert: str = ""  # PEM files: with both, the gateway serves HTTPS and WSS only
    tls_key: str = ""
    # Binance face (issue 24). API_SECRET_SEAL_KEY seals HMAC secrets (32+ characters, the
    # same on every replica, kept for the keys' life); empty: no HMAC keys can be made or used.
    api_secret_seal_key: str = field(default="", repr=False)
    binance_weight_1m: int = 6000  # request weight per client address per minute
    binance_orders_10s: int = 100  # orders per user per 10 seconds

    @classmethod
    def from_env(cls) -> GatewaySettings:
        secret = env_str("GATEWAY_TOKEN_SECRET", "")
        faucet = env_bool("GATEWAY_FAUCET", False)
        if len(secret) < 32:
            raise SettingsError("GATEWAY_TOKEN_SECRET must be set to at least 32 characters")
        proxies = env_str("GATEWAY_TRUSTED_PROXIES", "")
        try:
            trusted_proxies = parse_networks([p for p in proxies.split(",") if p.strip()])
        except ValueError as exc:
            raise SettingsError(f"GATEWAY_TRUSTED_PROXIES: {exc}") from None
        port = env_int("GATEWAY_PORT", 8080, low=0, high=65535)
        own = f"http://127.0.0.1:{port},http://localhost:{port}"  # what `make run` prints
        cors_origins = tuple(
            o.strip().rstrip("/") for o in env_str("GATEWAY_CORS_ORIGINS", own).split(",")
        )
        tls_cert, tls_key = env_str("GATEWAY_TLS_CERT", ""), env_str("GATEWAY_TLS_KEY", "")
        if bool(tls_cert) != bool(tls_key):
            raise SettingsError("set both GATEWAY_TLS_CERT and GATEWAY_TLS_KEY, or neither")
        seal_key = env_str("API_SECRET_SEAL_KEY", "")
        if seal_key and len(seal_key) < 32:
            raise SettingsError("API_SECRET_SEAL_KEY must be at least 32 characters (or unset)")
        bad = [o for o in cors_origins if not _ORIGIN.fullmatch(o)]
        if bad:
            raise SettingsError(f"GATEWAY_CORS_ORIGINS: {bad[0]!r} is not scheme://host[:port]")
        return cls(
            host=env_str("GATEWAY_HOST", "0.0.0.0"),
            port=port,
            reuse_port=env_bool("GATEWAY_REUSE_PORT", False),
            engine_address=env_str("ENGINE_ADDRESS", "127.0.0.1:50051"),
            ledger_address=env_str("LEDGER_ADDRESS", "127.0.0.1:50052"),
            redis_url=env_str("REDIS_URL", "redis://127.0.0.1:56379/0"),
            token_secret=secret,
            token_ttl_seconds=env_int("GATEWAY_TOKEN_TTL_SECONDS", 3600, low=60),
            faucet_enabled=faucet,
            faucet_cap=env_str("GATEWAY_FAUCET_CAP", "100000"),
            order_rate=env_int("GATEWAY_ORDER_RATE", 10, low=1),
            market_rate=env_int("GATEWAY_MARKET_RATE", 100, low=1),
            ws_connections=env_int("GATEWAY_WS_CONNECTIONS", 5, low=1),
            max_body_bytes=env_int("GATEWAY_MAX_BODY_BYTES", 1_048_576, low=1024),
            api_key_cache_seconds=env_float("GATEWAY_API_KEY_CACHE_SECONDS", 5.0),
            verify_on_thread=env_bool("GATEWAY_VERIFY_ON_THREAD", False),
            web_dir=env_str("GATEWAY_WEB_DIR", "web/dist"),
            stream_address=env_str("STREAM_ADDRESS", "127.0.0.1:50053"),
            ws_max_topics=env_int("GATEWAY_WS_MAX_TOPICS", 100, low=1),
            ws_queue_frames=env_int("GATEWAY_WS_QUEUE_FRAMES", 5000, low=10),
            ws_interval_ms=env_int(
                "GATEWAY_WS_INTERVAL_MS", DEFAULT_INTERVAL_MS, low=0, high=60_000
            ),
            ws_send_buffer_bytes=env_int("GATEWAY_WS_SEND_BUFFER_BYTES", 65_536, low=0),
            ws_heartbeat_seconds=env_float("GATEWAY_WS_HEARTBEAT_SECONDS", 30.0, low=1.0),
            ws_idle_seconds=env_float("GATEWAY_WS_IDLE_SECONDS", 300.0, low=1.0),
            ws_max_frame_bytes=env_int("GATEWAY_WS_MAX_FRAME_BYTES", 65_536, low=1024),
            grace_seconds=env_float("GATEWAY_SHUTDOWN_GRACE_SECONDS", 10.0),
            log_level=env_str("LOG_LEVEL", "INFO"),
            engine_admin_token=env_str("ENGINE_ADMIN_TOKEN", ""),
            trusted_proxies=trusted_proxies,
            cors_origins=cors_origins,
            tls_cert=tls_cert,
            tls_key=tls_key,
            api_secret_seal_key=seal_key,
            binance_weight_1m=env_int("BINANCE_WEIGHT_1M", 6000, low=1),
            binance_orders_10s=env_int("BINANCE_ORDERS_10S", 100, low=1),
        )
