"""`--tls` for the order benchmark: the gateway serves HTTPS and every gRPC hop is mutual
TLS, as the prod overlay runs them, with a throwaway CA made for the run (the tests' own
helper, tests/certs.py). PostgreSQL and Redis stay plaintext: the figure is the cost of
TLS at the edge and on the mesh.

One certificate (naming 127.0.0.1) serves every service: per-service certificates would
cost the same handshakes and records. The supervisor's readiness probes hold no
certificate, so each gRPC service also answers health in plaintext on GRPC_HEALTH_PORT,
as for the kubelet in the prod overlay.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import grpc

from bench.services import LOCALHOST
from launcher.health import HttpProbe
from launcher.ports import free_port
from launcher.supervisor import ServiceSpec
from tests.certs import Authority


@dataclass(frozen=True)
class HttpsProbe:
    """Readiness of the gateway on HTTPS: GET `url` answers 200, its certificate of `ca`."""

    url: str
    ca: Path

    @property
    def target(self) -> str:
        return f"https {self.url.removesuffix('/health')}"

    async def check(self, timeout: float) -> bool:  # noqa: ASYNC109
        context = ssl.create_default_context(cafile=str(self.ca))
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.get(self.url, ssl=context) as response,
            ):
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False


@dataclass(frozen=True)
class BenchTls:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> BenchTls:
        authority = Authority(folder, "bench CA")
        pem = authority.issue("bench")
        return cls(authority.ca, pem.cert, pem.key)

    def _mesh_env(self) -> dict[str, str]:
        return {
            "GRPC_TLS_CA": str(self.ca),
            "GRPC_TLS_CERT": str(self.cert),
            "GRPC_TLS_KEY": str(self.key),
        }

    def grpc_service(self, spec: ServiceSpec) -> ServiceSpec:
        """`spec`, a gRPC service, under mutual TLS; its health also in plaintext for the
        supervisor's probe."""
        port = free_port()
        env = {**spec.env, **self._mesh_env(), "GRPC_HEALTH_PORT": str(port)}
        return replace(spec, env=env, health_address=f"{LOCALHOST}:{port}")

    def gateway(self, spec: ServiceSpec) -> ServiceSpec:
        """`spec`, a gateway, serving HTTPS and calling the services under mutual TLS."""
        env = {
            **spec.env,
            **self._mesh_env(),
            "GATEWAY_TLS_CERT": str(self.cert),
            "GATEWAY_TLS_KEY": str(self.key),
        }
        probe = spec.ready_probe
        if isinstance(probe, HttpProbe):
            probe = HttpsProbe(probe.url.replace("http://", "https://", 1), self.ca)
        return replace(spec, env=env, ready_probe=probe)

    def client_context(self) -> ssl.SSLContext:
        """What the load generator trusts: the run's CA."""
        return ssl.create_default_context(cafile=str(self.ca))

    def channel(self, address: str) -> grpc.aio.Channel:
        """The benchmark's own channel to a service, with the run's certificate."""
        credentials = grpc.ssl_channel_credentials(
            self.ca.read_bytes(), self.key.read_bytes(), self.cert.read_bytes()
        )
        return grpc.aio.secure_channel(address, credentials)
