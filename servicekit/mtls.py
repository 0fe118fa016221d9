"""Mutual TLS between the services: one deployment CA, a certificate per service.

With GRPC_TLS_CA, GRPC_TLS_CERT and GRPC_TLS_KEY (PEM files, all three or none) every gRPC
server listens with TLS and requires a client certificate signed by the CA, and every
client presents its own certificate and checks the server's against the same CA (the
certificate must name the host the client dials). Without them, servers and clients speak
plaintext, which `make run` uses on loopback. GRPC_HEALTH_PORT, where set, serves the
health service alone in plaintext, for probes that hold no certificate (the kubelet's).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from servicekit.settings import SettingsError

ENV_FILES = ("GRPC_TLS_CA", "GRPC_TLS_CERT", "GRPC_TLS_KEY")
ENV_HEALTH_PORT = "GRPC_HEALTH_PORT"


@dataclass(frozen=True)
class MeshTls:
    ca: bytes  # PEM: the deployment CA
    cert: bytes  # PEM: this service's certificate
    key: bytes = field(repr=False)  # PEM: its private key

    @classmethod
    def from_env(cls) -> MeshTls | None:
        paths = [os.environ.get(name, "") for name in ENV_FILES]
        if not any(paths):
            return None
        if not all(paths):
            raise SettingsError(f"set all of {', '.join(ENV_FILES)} for mutual TLS, or none")
        try:
            ca, cert, key = (Path(p).read_bytes() for p in paths)
        except OSError as exc:
            raise SettingsError(f"mutual TLS: cannot read {exc.filename}: {exc.strerror}") from None
        return cls(ca, cert, key)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


@functools.cache
def mesh() -> MeshTls | None:
    """This process's mesh TLS, read from the environment once."""
    return MeshTls.from_env()


def listen(server: grpc.aio.Server, address: str) -> int:
    """Binds `address` with mutual TLS when configured, else plaintext; the bound port."""
    tls = mesh()
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, tls.server_credentials())


def channel(
    address: str,
    *,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
) -> grpc.aio.Channel:
    """A channel to another service: with this service's certificate when configured."""
    tls = mesh()
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, tls.channel_credentials(), options=options, interceptors=interceptors
    )


async def health_only_server(health: HealthServicer, host: str) -> grpc.aio.Server | None:
    """The plaintext health-only server on GRPC_HEALTH_PORT, started; None when unset."""
    port = os.environ.get(ENV_HEALTH_PORT, "")
    if not port:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{ENV_HEALTH_PORT} must be a port number, got {port!r}")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server
