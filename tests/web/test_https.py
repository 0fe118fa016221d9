"""The web UI over HTTPS and WSS: the page, its REST calls and its live streams all through a
gateway serving TLS with a test CA's certificate, which Chromium is told to trust by its
public key alone (no blanket "ignore certificate errors")."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import Browser, WebSocket, async_playwright, expect

from bench.certs import Authority
from gateway_svc.app import create_app
from gateway_svc.tls import server_context
from tests.gateway.conftest import gateway_settings
from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.web.conftest import ARTIFACTS, CHROMIUM_ARGS, WEB_BUILD, chromium_path
from tests.web.test_trading import MARKET, sell_as


def spki_pin(cert: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): how Chromium names a key it is to trust."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture
async def https_url(
    live: Live, ledger_address: tuple[str, object], tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """A second gateway on the same engine, ledger and stream, serving HTTPS: its URL and
    the pin of its certificate."""
    leaf = Authority(tmp_path / "pki").issue("gateway")
    settings = gateway_settings(
        live.stack.engine.address, ledger_address[0], live.redis_url,
        stream_address=f"127.0.0.1:{live.stream_port}",
    )  # fmt: skip
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server(ssl=server_context(str(leaf.cert), str(leaf.key)))
    try:
        yield f"https://127.0.0.1:{server.port}", spki_pin(leaf.cert)
    finally:
        await server.close()


@pytest.fixture
async def pinned_browser(https_url: tuple[str, str]) -> AsyncIterator[Browser]:
    if not WEB_BUILD.is_file():
        pytest.fail("web/dist is not built: run `make web` (or `make test`)")
    ARTIFACTS.mkdir(exist_ok=True)
    _, pin = https_url
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"],
        )
        yield launched
        await launched.close()


async def test_the_ui_trades_live_over_https_and_wss(
    live: Live, https_url: tuple[str, str], pinned_browser: Browser
) -> None:
    url, _ = https_url
    page = await pinned_browser.new_page()
    sockets: list[str] = []
    tickers: list[str | bytes] = []  # what the page was sent, to say why if it shows otherwise

    def opened(ws: WebSocket) -> None:
        sockets.append(ws.url)
        ws.on("framereceived", lambda p: tickers.append(p) if "ticker" in str(p) else None)

    page.on("websocket", opened)
    response = await page.goto(f"{url}/markets")
    assert response is not None
    assert response.ok
    assert page.url.startswith("https://")
    assert "max-age" in (await response.header_value("strict-transport-security") or "")
    row = page.locator(f'tr[data-market="{MARKET}"]')
    await expect(page.get_by_test_id("markets").locator("tbody tr")).to_have_count(4)
    # "Live" only once the page's WebSocket (wss://, as the page is https) has opened.
    await expect(page.get_by_test_id("connection")).to_have_text("Live")
    assert sockets
    assert all(ws.startswith(url.replace("https://", "wss://") + "/") for ws in sockets), sockets

    _, alice = await signup(live.stack, "alice@https.test")
    _, bob = await signup(live.stack, "bob@https.test")
    await fund(live.stack, alice, "INR", "100000")
    await fund(live.stack, bob, "TATA", "100")
    placed = await live.stack.client.post(
        "/api/v1/order",
        json={"symbol": MARKET, "side": "Bid", "price": "1200.00", "quantity": "2"},
        headers=alice,
    )
    assert placed.status == 200, await placed.text()
    await sell_as(live, bob, "1200.00", "2")
    try:
        await expect(row.locator('[data-field="last"]')).to_have_text("1,200.00")
        await expect(row.locator('[data-field="volume"]')).to_have_text("2 TATA")
    except AssertionError as error:
        rest = await (await live.stack.client.get("/api/v1/tickers")).text()
        raise AssertionError(f"ticker frames {tickers}, REST tickers now {rest}") from error
    await page.screenshot(path=ARTIFACTS / "markets-https.png")
    await page.close()
