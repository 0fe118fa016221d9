"""The gateway serves the built UI: its pages answer index.html (never cached), hashed
assets are cached for a year, and nothing outside the build folder or in the API's space
is served as a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway_svc.app import create_app
from gateway_svc.web import IMMUTABLE, NO_CACHE, Site
from tests.gateway.conftest import gateway_settings

INDEX = b"<!doctype html><title>Exchange</title>"
SCRIPT = b"console.log('built')"


@pytest.fixture
def build(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-Ab12Cd34.js").write_bytes(SCRIPT)
    (dist / "favicon.svg").write_text("<svg/>")
    (dist / ".built").write_text("")
    (tmp_path / "secret.txt").write_text("not for the web")
    return dist


async def client_for(web_dir: Path, **overrides: Any) -> TestClient[Any, Any]:
    # Backends are unreachable addresses: serving files must not need them.
    settings = gateway_settings(
        "127.0.0.1:1", "127.0.0.1:2", "redis://127.0.0.1:3/0", web_dir=str(web_dir), **overrides
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(build: Path) -> AsyncIterator[TestClient[Any, Any]]:
    client = await client_for(build, faucet_enabled=True, faucet_cap="250")
    yield client
    await client.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/markets",
        "/trade/TATA_INR",
        "/trade/btc_usdt/",
        "/login",
        "/signup",
        "/account",
        "/funds",
    ],
)
async def test_every_page_of_the_ui_is_index_html_never_cached(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert await response.read() == INDEX
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Cache-Control"] == NO_CACHE


async def test_hashed_assets_are_cached_for_a_year(client: TestClient[Any, Any]) -> None:
    response = await client.get("/assets/index-Ab12Cd34.js")
    assert response.status == 200
    assert await response.read() == SCRIPT
    assert "javascript" in response.headers["Content-Type"]
    assert response.headers["Cache-Control"] == IMMUTABLE
    head = await client.head("/assets/index-Ab12Cd34.js")
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(SCRIPT))
    favicon = await client.get("/favicon.svg")
    assert favicon.status == 200
    assert "immutable" not in favicon.headers["Cache-Control"]


async def test_the_ui_learns_whether_the_faucet_is_on(
    client: TestClient[Any, Any], build: Path
) -> None:
    response = await client.get("/web-config.json")
    assert response.status == 200
    assert await response.json() == {"faucet": True, "faucetCap": "250"}
    off = await client_for(build, faucet_enabled=False)
    try:
        assert (await (await off.get("/web-config.json")).json())["faucet"] is False
    finally:
        await off.close()


@pytest.mark.parametrize(
    "path",
    [
        "/nothing-here",
        "/trade/TATA_INR/extra",
        "/assets/missing.js",
        "/.built",
        "/assets/%2e%2e/%2e%2e/secret.txt",
        "/index.html/",
        "/api/v1/nothing",
    ],
)
async def test_other_paths_get_the_apis_json_404(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404
    body = await response.json()
    assert body["code"] == "RESOURCE_NOT_FOUND"


async def test_the_api_and_its_methods_are_untouched(client: TestClient[Any, Any]) -> None:
    status = await client.get("/api/v1/status")
    assert status.status == 200
    assert await status.json() == {"status": "Ok", "message": None}
    # A GET to a POST-only API route is still the API's 405, not the UI.
    signup = await client.get("/api/v1/auth/signup")
    assert signup.status == 405
    assert (await client.post("/markets")).status == 404


def test_site_never_resolves_outside_its_folder(build: Path) -> None:
    site = Site(build)
    assert site.file("/assets/index-Ab12Cd34.js") == (build / "assets/index-Ab12Cd34.js").resolve()
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/assets", "/", "/.built", "/a\0b"):
        assert site.file(path) is None
    (build / "assets" / "link.js").symlink_to(build.parent / "secret.txt")
    assert site.file("/assets/link.js") is None


async def test_without_a_build_the_pages_are_404_and_the_api_works(tmp_path: Path) -> None:
    client = await client_for(tmp_path / "not-built")
    try:
        assert (await client.get("/")).status == 404
        assert (await client.get("/trade/TATA_INR")).status == 404
        assert (await client.get("/api/v1/status")).status == 200
    finally:
        await client.close()
