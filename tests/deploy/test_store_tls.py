"""The services reach PostgreSQL and Redis over TLS as the prod overlay configures them:
real servers that speak TLS only, with certificates of a test CA, and the very URLs of
k8s/overlays/prod/config with this machine's host, port and files put in.

PostgreSQL: the ledger opens its pool (and applies its migrations) with `sslmode=
verify-full`, and the server sees an encrypted session; a server whose certificate is
not of the CA is refused. Redis: the gateway's pool and stream_svc's client (both
`from_url`) talk to a TLS-only server that requires a client certificate; without one,
or in plaintext, they cannot.
"""

from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import pytest_asyncio
import redis.exceptions
from redis.asyncio import BlockingConnectionPool, Redis

from launcher.osuser import hand_over
from launcher.ports import free_port
from launcher.postgres import SUPERUSER, UNSAFE_FAST, LocalPostgres
from launcher.spec import ServiceSpec
from launcher.supervisor import Supervisor
from ledger_svc.server import LedgerRuntime
from tests.certs import Authority, Pem
from tests.deploy.manifests import K8S
from tests.ledger.test_service import ledger_settings

PROD_CONFIG = K8S / "overlays" / "prod" / "config"
MESH_DIR = "/etc/exchange/mesh"


def prod_value(file: str, name: str) -> str:
    """A variable's value in one of the prod overlay's env files."""
    for line in (PROD_CONFIG / file).read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.removeprefix(f"{name}=")
    raise AssertionError(f"{file} sets no {name}")


def localised(url: str, netloc: str, files: dict[str, Path]) -> str:
    """`url` pointing at `netloc`, its files of /etc/exchange/mesh replaced by `files`
    (by name: ca.crt, tls.crt, tls.key)."""
    parts = urlsplit(url)
    query = [(k, str(files[Path(v).name]) if v.startswith(MESH_DIR) else v)
             for k, v in parse_qsl(parts.query)]  # fmt: skip
    return parts._replace(netloc=netloc, query=urlencode(query)).geturl()


@dataclass(frozen=True)
class Mesh:
    ca: Authority
    client: Pem  # a service's certificate

    def files(self, ca: Path | None = None) -> dict[str, Path]:
        return {"ca.crt": ca or self.ca.ca, "tls.crt": self.client.cert, "tls.key": self.client.key}


@pytest.fixture
def mesh(tmp_path: Path) -> Mesh:
    ca = Authority(tmp_path / "ca")
    return Mesh(ca, ca.issue("ledger"))


def server_pem(mesh: Mesh, name: str, owner: str | None) -> Pem:
    """A server certificate in a folder of its own, readable by `owner` alone: what
    PostgreSQL demands of its key."""
    pem = mesh.ca.issue(name)
    folder = mesh.ca.folder / name
    folder.mkdir()
    moved = Pem(Path(shutil.move(pem.cert, folder)), Path(shutil.move(pem.key, folder)))
    moved.key.chmod(0o600)
    if owner is not None:
        hand_over(folder, owner)
        for path in (moved.cert, moved.key):
            shutil.chown(path, owner, owner)
    return moved


# --- PostgreSQL ---


@pytest_asyncio.fixture
async def tls_postgres(mesh: Mesh, tmp_path: Path) -> AsyncIterator[str]:
    """A server that has TLS on; its URL (host:port) for the prod DATABASE_URL."""
    owner = SUPERUSER if os.geteuid() == 0 else None
    pem = server_pem(mesh, "postgres", owner)
    settings = {
        **UNSAFE_FAST,
        "ssl": "on",
        "ssl_cert_file": str(pem.cert),
        "ssl_key_file": str(pem.key),
        "ssl_min_protocol_version": "TLSv1.2",
    }
    server = LocalPostgres(tmp_path / "data", free_port(), database="exchange", settings=settings)
    async with Supervisor([server.spec()], grace=5, prefix_output=False):
        yield server.url


def prod_database_url(server_url: str, files: dict[str, Path]) -> str:
    # The prod URL's user (exchange) becomes this server's superuser; the rest is kept.
    netloc = f"{SUPERUSER}@{urlsplit(server_url).netloc.split('@')[1]}"
    return localised(prod_value("ledger.env", "DATABASE_URL"), netloc, files)


async def test_the_ledger_opens_its_database_over_verified_tls(
    tls_postgres: str, mesh: Mesh
) -> None:
    url = prod_database_url(tls_postgres, mesh.files())
    assert dict(parse_qsl(urlsplit(url).query))["sslmode"] == "verify-full"
    runtime = await LedgerRuntime.open(ledger_settings(url, "127.0.0.1:1"))
    try:
        async with runtime.pool.acquire() as conn:
            encrypted = await conn.fetchval(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            migrations = await conn.fetchval("SELECT count(*) FROM schema_version")
        assert encrypted is True
        assert migrations > 0
    finally:
        await runtime.close()


async def test_a_database_with_a_certificate_of_another_ca_is_refused(
    tls_postgres: str, mesh: Mesh, tmp_path: Path
) -> None:
    stranger = Authority(tmp_path / "stranger", "another CA")
    url = prod_database_url(tls_postgres, mesh.files(ca=stranger.ca))
    with pytest.raises(ssl.SSLCertVerificationError):
        await LedgerRuntime.open(ledger_settings(url, "127.0.0.1:1"))


# --- Redis ---


@dataclass(frozen=True)
class TlsRedisProbe:
    url: str

    @property
    def target(self) -> str:
        return self.url

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        client = Redis.from_url(self.url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(await client.ping())
        except (redis.exceptions.ConnectionError, OSError):
            return False
        finally:
            await client.aclose()


@pytest_asyncio.fixture
async def tls_redis(mesh: Mesh) -> AsyncIterator[str]:
    """A server that speaks TLS only and requires a client certificate of the CA, as the
    prod overlay runs it; the prod REDIS_URL pointing at it."""
    pem = server_pem(mesh, "redis", None)
    port = free_port()
    url = localised(prod_value("redis.env", "REDIS_URL"), f"127.0.0.1:{port}", mesh.files())
    spec = ServiceSpec(
        name="redis-tls",
        argv=[
            "redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(pem.cert),
            "--tls-key-file", str(pem.key), "--tls-ca-cert-file", str(mesh.ca.ca),
            "--tls-auth-clients", "yes",
        ],
        ready_probe=TlsRedisProbe(url),
    )  # fmt: skip
    async with Supervisor([spec], grace=5, prefix_output=False):
        yield url


async def test_the_gateway_and_stream_reach_redis_over_tls_with_their_certificate(
    tls_redis: str,
) -> None:
    assert tls_redis.startswith("rediss://")
    # The gateway's pool (gateway_svc/app.py) and stream_svc's client (publisher.py).
    pool = BlockingConnectionPool.from_url(tls_redis, max_connections=2, timeout=2)
    gateway = Redis(connection_pool=pool)
    stream = Redis.from_url(tls_redis, socket_timeout=5, socket_connect_timeout=5)
    try:
        await gateway.set("tls", "yes")
        assert await stream.get("tls") == b"yes"
    finally:
        await gateway.aclose()
        await stream.aclose()


async def test_redis_refuses_clients_without_a_certificate_or_tls(tls_redis: str) -> None:
    parts = urlsplit(tls_redis)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("ssl_certfile", "ssl_keyfile")]
    anonymous = parts._replace(query=urlencode(query)).geturl()
    plaintext = parts._replace(scheme="redis", query="").geturl()
    for url in (anonymous, plaintext):
        client = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            with pytest.raises((redis.exceptions.ConnectionError, OSError)):
                await client.ping()
        finally:
            await client.aclose()
