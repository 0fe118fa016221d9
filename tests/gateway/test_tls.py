"""The gateway over HTTPS and WSS with a test CA, and a renewed certificate taken live."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bench.certs import Authority
from gateway_svc.app import create_app
from gateway_svc.tls import reloading, server_context
from tests.gateway.conftest import gateway_settings


async def test_https_and_wss_with_a_reloaded_certificate(
    engine: Any, ledger_address: Any, redis_url: str, tmp_path: Path
) -> None:
    ca = Authority(tmp_path / "pki")
    first = ca.issue("gateway")
    app = create_app(gateway_settings(engine.address, ledger_address[0], redis_url))
    context = server_context(str(first.cert), str(first.key))
    app.cleanup_ctx.append(reloading(context, str(first.cert), str(first.key), every=0.05))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    trusted = ssl.create_default_context(cafile=str(ca.ca))
    url = f"https://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/api/v1/markets", ssl=trusted) as response:
                assert response.status == 200
                assert "max-age" in response.headers["Strict-Transport-Security"]
            served = await _served_certificate(server.port, trusted)
            async with session.ws_connect(f"wss://127.0.0.1:{server.port}/ws", ssl=trusted) as ws:
                assert not ws.closed
            # Without the CA the certificate is not trusted.
            try:
                await session.get(f"{url}/api/v1/markets")
                raise AssertionError("an untrusted certificate was accepted")
            except aiohttp.ClientConnectorCertificateError:
                pass
        # A renewed pair is written over the files: new connections get it.
        renewed = ca.issue("gateway-renewed")
        os.replace(renewed.key, first.key)
        os.replace(renewed.cert, first.cert)
        async with asyncio.timeout(30):
            while True:
                if await _served_certificate(server.port, trusted) != served:
                    break
                await asyncio.sleep(0.05)
    finally:
        await server.close()


async def _served_certificate(port: int | None, trusted: ssl.SSLContext) -> bytes:
    """The certificate a new TLS connection is shown (DER)."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusted)
    try:
        peer: Any = writer.get_extra_info("ssl_object")
        der: bytes = peer.getpeercert(binary_form=True)
        return der
    finally:
        writer.close()
