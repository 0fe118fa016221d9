"""What the page shows changes without a reload: the markets list follows the ticker
streams, and after the WebSocket drops the page says it is reconnecting, reconnects,
resyncs the book from REST and follows the streams again."""

from __future__ import annotations

import re

from playwright.async_api import Browser, WebSocketRoute, expect

from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.web.conftest import ARTIFACTS
from tests.web.test_trading import MARKET, sell_as


async def test_the_markets_list_is_live(live: Live, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(f"{live.stack.url}/markets")
    row = page.locator(f'tr[data-market="{MARKET}"]')
    await expect(page.get_by_test_id("markets").locator("tbody tr")).to_have_count(4)
    await expect(row.locator('[data-field="last"]')).to_have_text("—")
    await expect(page.get_by_test_id("connection")).to_have_text("Live")

    # Two trades, the second higher: the row shows the last price and a green change.
    _, alice = await signup(live.stack, "alice@live.test")
    _, bob = await signup(live.stack, "bob@live.test")
    await fund(live.stack, alice, "INR", "100000")
    await fund(live.stack, bob, "TATA", "100")
    for price in ("1000.00", "1100.00"):
        response = await live.stack.client.post(
            "/api/v1/order",
            json={"symbol": MARKET, "side": "Bid", "price": price, "quantity": "3"},
            headers=alice,
        )
        assert response.status == 200, await response.text()
        await sell_as(live, bob, price, "3")
    await expect(row.locator('[data-field="last"]')).to_have_text("1,100.00")
    await expect(row.locator('[data-field="change"]')).to_have_text("+10.00%")
    await expect(row.locator('[data-field="change"]')).to_have_class(re.compile(r"\bup\b"))
    await expect(row.locator('[data-field="volume"]')).to_have_text("6 TATA")
    await page.screenshot(path=ARTIFACTS / "markets-desktop.png")
    await page.close()


async def test_the_page_reconnects_and_resyncs_the_book(live: Live, browser: Browser) -> None:
    page = await browser.new_page()
    blocked = False
    routes: list[WebSocketRoute] = []

    async def through(ws: WebSocketRoute) -> None:
        # The real gateway behind Playwright's WebSocket route, which the test can cut.
        if blocked:
            await ws.close()
            return
        ws.connect_to_server()
        routes.append(ws)

    await page.route_web_socket(re.compile(r"/ws$"), through)
    _, alice = await signup(live.stack, "alice@drop.test")
    await fund(live.stack, alice, "TATA", "100")
    await sell_as(live, alice, "2000.00", "1")

    await page.goto(f"{live.stack.url}/trade/{MARKET}")
    status = page.get_by_test_id("connection")
    asks = page.get_by_test_id("asks")
    await expect(status).to_have_text("Live")
    await expect(asks.locator('tr[data-price="2000.00"]')).to_have_count(1)

    # The connection drops and stays down: the page says so.
    blocked = True
    await routes[-1].close()
    await expect(status).to_have_text("Reconnecting…")
    # Meanwhile the book changes: the page cannot know.
    await live.stack.client.delete("/api/v1/orders", json={"symbol": MARKET}, headers=alice)
    await sell_as(live, alice, "2100.00", "2")

    # Back: live again, and the book is the engine's (resynced from REST)...
    async with page.expect_request(re.compile(r"/api/v1/depth\?")) as resync:
        blocked = False
        await expect(status).to_have_text("Live")
    assert "symbol=TATA_INR" in (await resync.value).url
    await expect(asks.locator('tr[data-price="2100.00"]')).to_have_count(1)
    await expect(asks.locator('tr[data-price="2000.00"]')).to_have_count(0)
    # ...and follows the stream again.
    await sell_as(live, alice, "2050.00", "4")
    await expect(asks.locator('tr[data-price="2050.00"] td').nth(1)).to_have_text("4")
    assert len(routes) >= 2
    await page.close()
