"""The local exchange: which services `python -m launcher` runs, in start order.

Services come up in list order and stop in reverse, so a service is listed after everything
it depends on (stores first, then the engine, then its consumers, the gateway last).

PostgreSQL and Redis run locally unless DATABASE_URL or REDIS_URL points at a server
elsewhere; either way `StackSettings.database_url` and `.redis_url` are the URLs to hand to
the services that use them.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from launcher.health import HttpProbe
from launcher.postgres import LocalPostgres, timescale_bin_dir
from launcher.redis_server import LocalRedis
from launcher.spec import ServiceSpec
from servicekit.admin_token import ENV as ADMIN_TOKEN_ENV

LOCALHOST = "127.0.0.1"

_DATABASE_SCHEMES = ("postgresql", "postgres")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class StackSettings:
    """Where the local services listen and keep their data, from the launcher's environment.

    `external_database_url` and `external_redis_url` are DATABASE_URL and REDIS_URL: None
    runs that store locally. The local ports are unusual ones, so that `make run` does not
    clash with a PostgreSQL or Redis the machine already runs.
    """

    engine_grpc_port: int = 50051
    engine_metrics_port: int = 9151
    engine_data_dir: Path = Path(".run/engine")
    ledger_grpc_port: int = 50052
    ledger_metrics_port: int = 9152
    stream_grpc_port: int = 50053
    stream_metrics_port: int = 9153
    publisher_port: int = 50054
    publisher_metrics_port: int = 9154
    gateway_port: int = 8080
    external_database_url: str | None = None
    external_redis_url: str | None = None
    postgres_port: int = 55432
    postgres_data_dir: Path = Path(".run/postgres")
    redis_port: int = 56379
    redis_data_dir: Path = Path(".run/redis")
    market_maker: bool = True  # EXCHANGE_MM=off runs the exchange without mm_svc
    mm_health_port: int = 50061
    mm_metrics_port: int = 9161
    flow_health_port: int = 50062
    flow_metrics_port: int = 9162

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] = os.environ, cwd: Path | None = None
    ) -> StackSettings:
        """Read settings; relative paths are taken from `cwd` (default: the current directory).

        Raises ValueError naming the variable that is wrong.
        """
        base = Path.cwd() if cwd is None else cwd

        def path(name: str, default: Path) -> Path:
            return base / environ.get(name, str(default))

        return cls(
            engine_grpc_port=_port(environ, "ENGINE_GRPC_PORT", cls.engine_grpc_port),
            engine_metrics_port=_port(environ, "ENGINE_METRICS_PORT", cls.engine_metrics_port),
            engine_data_dir=path("ENGINE_DATA_DIR", cls.engine_data_dir),
            ledger_grpc_port=_port(environ, "LEDGER_GRPC_PORT", cls.ledger_grpc_port),
            ledger_metrics_port=_port(environ, "LEDGER_METRICS_PORT", cls.ledger_metrics_port),
            stream_grpc_port=_port(environ, "STREAM_GRPC_PORT", cls.stream_grpc_port),
            stream_metrics_port=_port(environ, "STREAM_METRICS_PORT", cls.stream_metrics_port),
            publisher_port=_port(environ, "STREAM_PUBLISHER_PORT", cls.publisher_port),
            publisher_metrics_port=_port(
                environ, "STREAM_PUBLISHER_METRICS_PORT", cls.publisher_metrics_port
            ),
            gateway_port=_port(environ, "GATEWAY_PORT", cls.gateway_port),
            external_database_url=_url(environ, "DATABASE_URL", _DATABASE_SCHEMES),
            external_redis_url=_url(environ, "REDIS_URL", _REDIS_SCHEMES),
            postgres_port=_port(environ, "POSTGRES_PORT", cls.postgres_port),
            postgres_data_dir=path("POSTGRES_DATA_DIR", cls.postgres_data_dir),
            redis_port=_port(environ, "REDIS_PORT", cls.redis_port),
            redis_data_dir=path("REDIS_DATA_DIR", cls.redis_data_dir),
            market_maker=_on_off(environ, "EXCHANGE_MM", cls.market_maker),
            mm_health_port=_port(environ, "MM_HEALTH_PORT", cls.mm_health_port),
            mm_metrics_port=_port(environ, "MM_METRICS_PORT", cls.mm_metrics_port),
            flow_health_port=_port(environ, "MM_FLOW_HEALTH_PORT", cls.flow_health_port),
            flow_metrics_port=_port(environ, "MM_FLOW_METRICS_PORT", cls.flow_metrics_port),
        )

    @property
    def local_postgres(self) -> LocalPostgres | None:
        """The PostgreSQL server to run here, or None when DATABASE_URL names one."""
        return None if self.external_database_url is not None else self._postgres()

    @property
    def local_redis(self) -> LocalRedis | None:
        """The Redis server to run here, or None when REDIS_URL names one."""
        return None if self.external_redis_url is not None else self._redis()

    @property
    def database_url(self) -> str:
        """The PostgreSQL database the services use, local or not."""
        return self.external_database_url or self._postgres().url

    @property
    def redis_url(self) -> str:
        """The Redis the services use, local or not."""
        return self.external_redis_url or self._redis().url

    def _postgres(self) -> LocalPostgres:
        timescale = timescale_bin_dir() is not None
        return LocalPostgres(self.postgres_data_dir, self.postgres_port, timescale=timescale)

    def _redis(self) -> LocalRedis:
        return LocalRedis(self.redis_data_dir, self.redis_port)


def exchange_specs(settings: StackSettings) -> list[ServiceSpec]:
    """The services of the local exchange, in start order."""
    stores = [settings.local_postgres, settings.local_redis]
    admin = {ADMIN_TOKEN_ENV: admin_token(settings)}
    return [
        *(store.spec() for store in stores if store is not None),
        ServiceSpec(
            name="engine",
            argv=[sys.executable, "-m", "engine_svc"],
            env={
                "ENGINE_GRPC_PORT": str(settings.engine_grpc_port),
                "ENGINE_DATA_DIR": str(settings.engine_data_dir),
                "ENGINE_METRICS_PORT": str(settings.engine_metrics_port),
                **admin,
            },
            health_address=f"{LOCALHOST}:{settings.engine_grpc_port}",
        ),
        ServiceSpec(
            name="ledger",
            argv=[sys.executable, "-m", "ledger_svc"],
            env={
                "LEDGER_GRPC_PORT": str(settings.ledger_grpc_port),
                "LEDGER_METRICS_PORT": str(settings.ledger_metrics_port),
                "DATABASE_URL": settings.database_url,
                "ENGINE_ADDRESS": f"{LOCALHOST}:{settings.engine_grpc_port}",
            },
            health_address=f"{LOCALHOST}:{settings.ledger_grpc_port}",
        ),
        ServiceSpec(
            name="publisher",
            argv=[sys.executable, "-m", "stream_svc.publisher"],
            env={
                "STREAM_PUBLISHER_PORT": str(settings.publisher_port),
                "STREAM_PUBLISHER_METRICS_PORT": str(settings.publisher_metrics_port),
                "ENGINE_ADDRESS": f"{LOCALHOST}:{settings.engine_grpc_port}",
                "LEDGER_ADDRESS": f"{LOCALHOST}:{settings.ledger_grpc_port}",
                "REDIS_URL": settings.redis_url,
            },
            health_address=f"{LOCALHOST}:{settings.publisher_port}",
        ),
        ServiceSpec(
            name="stream",
            argv=[sys.executable, "-m", "stream_svc"],
            env={
                "STREAM_GRPC_PORT": str(settings.stream_grpc_port),
                "STREAM_METRICS_PORT": str(settings.stream_metrics_port),
                "ENGINE_ADDRESS": f"{LOCALHOST}:{settings.engine_grpc_port}",
                "REDIS_URL": settings.redis_url,
            },
            health_address=f"{LOCALHOST}:{settings.stream_grpc_port}",
        ),
        ServiceSpec(
            name="gateway",
            argv=[sys.executable, "-m", "gateway_svc"],
            env={
                "GATEWAY_PORT": str(settings.gateway_port),
                "ENGINE_ADDRESS": f"{LOCALHOST}:{settings.engine_grpc_port}",
                "LEDGER_ADDRESS": f"{LOCALHOST}:{settings.ledger_grpc_port}",
                "STREAM_ADDRESS": f"{LOCALHOST}:{settings.stream_grpc_port}",
                "REDIS_URL": settings.redis_url,
                # A local demo: the faucet is on, and the token secret is per data folder.
                "GATEWAY_FAUCET": "true",
                "GATEWAY_TOKEN_SECRET": os.environ.get("GATEWAY_TOKEN_SECRET")
                or local_secret(settings.engine_data_dir.parent / "gateway-secret"),
                # Seals HMAC key secrets (the Binance face); kept like the token secret.
                "API_SECRET_SEAL_KEY": os.environ.get("API_SECRET_SEAL_KEY")
                or local_secret(settings.engine_data_dir.parent / "seal-key"),
                **admin,  # the faucet deposits
            },
            ready_probe=HttpProbe(f"http://{LOCALHOST}:{settings.gateway_port}/health"),
        ),
        *(market_maker_specs(settings) if settings.market_maker else []),
    ]


def market_maker_specs(settings: StackSettings) -> list[ServiceSpec]:
    """The market maker and a gentle simulated flow on the seeded markets (mm_svc/mm.toml)."""
    engine = f"{LOCALHOST}:{settings.engine_grpc_port}"
    runs = [
        ("mm", "mm_svc", settings.mm_health_port, settings.mm_metrics_port),
        ("flow", "mm_svc.flow", settings.flow_health_port, settings.flow_metrics_port),
    ]
    return [
        ServiceSpec(
            name=name,
            argv=[sys.executable, "-m", module],
            env={
                "ENGINE_ADDRESS": engine,
                "MM_HOST": LOCALHOST,
                "MM_HEALTH_PORT": str(health),
                "MM_METRICS_PORT": str(metrics),
                ADMIN_TOKEN_ENV: admin_token(settings),  # funding deposits
            },
            health_address=f"{LOCALHOST}:{health}",
        )
        for name, module, health, metrics in runs
    ]


def admin_token(settings: StackSettings) -> str:
    """The engine's admin credential (ENGINE_ADMIN_TOKEN, else one kept per data folder, which
    exchangectl reads too: `exchangectl --token-file .run/admin-token`)."""
    return os.environ.get(ADMIN_TOKEN_ENV) or local_secret(admin_token_file(settings))


def admin_token_file(settings: StackSettings) -> Path:
    return settings.engine_data_dir.parent / "admin-token"


def local_secret(path: Path) -> str:
    """A random secret kept in `path` (made on first use), so tokens survive restarts."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def summary(settings: StackSettings, specs: Sequence[ServiceSpec]) -> str:
    """One line per service saying where it answers, e.g. `engine  grpc 127.0.0.1:50051`,
    plus the stores used from elsewhere (passwords hidden)."""
    rows = [
        (spec.name, spec.probe.target if spec.probe is not None else "running") for spec in specs
    ]
    if settings.external_database_url is not None:
        rows.insert(0, ("postgres", f"{_redact(settings.external_database_url)} (external)"))
    if settings.external_redis_url is not None:
        rows.insert(1, ("redis", f"{_redact(settings.external_redis_url)} (external)"))
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"{name:<{width}}  {where}" for name, where in rows)


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


def _on_off(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    if raw:
        raise ValueError(f"{name}={environ[name]!r} must be on or off")
    return default


def _url(environ: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = environ.get(name)
    if raw is None or raw == "":
        return None
    if urlsplit(raw).scheme not in schemes:
        # Not echoed: it may hold a password.
        raise ValueError(f"{name} must be a URL starting with one of {', '.join(schemes)}://")
    return raw


def _redact(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
