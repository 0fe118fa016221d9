"""Conditional orders in the browser, against the real stack: a stop-limit sell waits in
open orders as TriggerPending with its trigger price and locks nothing, and is cancelled; a
stop at the last price is refused by the server; a stop-market buy fires when a trade
reaches it and fills; a limit buy with take-profit and stop-loss fills and leaves its two
linked legs pending, and cancelling one cancels both."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.web.conftest import ARTIFACTS
from tests.web.test_trading import DESKTOP, MARKET, PASSWORD, sell_as


async def log_in(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".user .email")).to_have_text(email)


async def buy_as(live: Live, auth: dict[str, str], price: str, quantity: str) -> None:
    response = await live.stack.client.post(
        "/api/v1/order",
        json={"symbol": MARKET, "side": "Bid", "price": price, "quantity": quantity},
        headers=auth,
    )
    assert response.status == 200, await response.text()


async def test_stops_and_take_profit_stop_loss_in_the_browser(live: Live, browser: Browser) -> None:
    base = live.stack.url
    _, carol = await signup(live.stack, "carol@stops.test")
    await fund(live.stack, carol, "TATA", "10")
    await fund(live.stack, carol, "INR", "100000")
    _, alice = await signup(live.stack, "alice@stops.test")
    _, bob = await signup(live.stack, "bob@stops.test")
    await fund(live.stack, alice, "TATA", "100")
    await fund(live.stack, bob, "INR", "100000")
    # The market's last price: 1600.
    await sell_as(live, alice, "1600.00", "1")
    await buy_as(live, bob, "1600.00", "1")

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, base, "carol@stops.test")
    await page.goto(f"{base}/trade/{MARKET}")
    await expect(page.get_by_test_id("connection")).to_have_text("Live")
    form = page.get_by_test_id("order-form")
    hint = page.get_by_test_id("trigger-hint")
    open_rows = page.get_by_test_id("open-orders").locator("tbody tr")

    # A stop-limit sell: the form says which way the price must go; it waits, locking nothing.
    await form.get_by_role("tab", name="Sell").click()
    await form.get_by_role("button", name="Stop limit", exact=True).click()
    await expect(form.get_by_test_id("available")).to_have_text("10")
    await form.get_by_label(re.compile("^Trigger price")).fill("1500")
    await expect(hint).to_contain_text("Fires when the last price (now 1,600.00) falls to 1,500.00")
    await form.get_by_label(re.compile("^Price")).fill("1490")
    await form.get_by_label(re.compile("^Quantity")).fill("2")
    await form.get_by_role("button", name="Sell TATA").click()
    await expect(page.get_by_test_id("order-placed")).to_have_text(
        "Stop sell 2 TATA at 1,490.00 when the last price reaches 1,500.00: TriggerPending"
    )
    await expect(open_rows).to_have_count(1)
    stop = open_rows.first
    await expect(stop.locator('[data-field="type"]')).to_have_text("Stop limit")
    await expect(stop.locator('[data-field="trigger"]')).to_have_text("≤ 1,500.00")
    await expect(stop.locator('[data-field="status"]')).to_have_text("TriggerPending")
    await expect(stop).to_contain_text("1,490.00")
    await expect(form.get_by_test_id("available")).to_have_text("10")
    await expect(page.get_by_test_id("asks").locator('tr[data-price="1490.00"]')).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / "trade-stop-desktop.png", full_page=True)

    # Cancelled from open orders.
    await stop.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)

    # At the last price a stop would fire at once: the form warns, the server refuses.
    await form.get_by_label(re.compile("^Trigger price")).fill("1600")
    await form.get_by_label(re.compile("^Quantity")).fill("2")
    await expect(hint).to_contain_text("would fire at once")
    await form.get_by_role("button", name="Sell TATA").click()
    await expect(page.get_by_test_id("order-error")).to_contain_text("last price")
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)

    # A stop-market buy above the price fires when a trade reaches 1700, and fills.
    await form.get_by_role("tab", name="Buy").click()
    await form.get_by_role("button", name="Stop market", exact=True).click()
    await expect(form.get_by_label(re.compile("^Price"))).to_have_count(0)
    await form.get_by_label(re.compile("^Trigger price")).fill("1700")
    await expect(hint).to_contain_text("rises to 1,700.00")
    await form.get_by_label(re.compile("^Quantity")).fill("1")
    await form.get_by_role("button", name="Buy TATA").click()
    await expect(page.get_by_test_id("order-placed")).to_contain_text("TriggerPending")
    await expect(open_rows.first.locator('[data-field="type"]')).to_have_text("Stop market")
    await expect(open_rows.first.locator('[data-field="trigger"]')).to_have_text("≥ 1,700.00")
    await sell_as(live, alice, "1710.00", "1")
    await sell_as(live, alice, "1700.00", "1")
    await buy_as(live, bob, "1700.00", "1")
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)
    await page.get_by_role("tab", name="Balances").click()
    tata = page.get_by_test_id("balances").locator('tr[data-asset="TATA"]')
    await expect(tata.locator('[data-field="available"]')).to_have_text("11")
    await page.get_by_role("tab", name=re.compile("^Open orders")).click()

    # A limit buy with take-profit and stop-loss: the client checks the legs' order first.
    await form.get_by_role("button", name="Limit", exact=True).click()
    await form.get_by_label(re.compile("^Price")).fill("1600")
    await form.get_by_label(re.compile("^Quantity")).fill("3")
    await form.get_by_label("Take profit / stop loss").check()
    bracket = form.get_by_test_id("bracket")
    await bracket.get_by_label("Take-profit trigger").fill("1400")
    await bracket.get_by_label("Stop-loss trigger").fill("1800")
    await expect(bracket).to_contain_text("A buy's take-profit must lie above its stop-loss")
    await bracket.get_by_label("Take-profit trigger").fill("1800")
    await bracket.get_by_label("Stop-loss trigger").fill("1400")
    await bracket.get_by_label("Stop-loss limit").fill("1390")
    await expect(bracket.get_by_role("alert")).to_have_count(0)
    await sell_as(live, alice, "1600.00", "3")
    await form.get_by_role("button", name="Buy TATA").click()
    await expect(page.get_by_test_id("order-placed")).to_have_text(
        "Buy 3 TATA at 1,600.00, with take-profit 1,800.00 and stop-loss 1,400.00: Filled"
    )
    await expect(open_rows).to_have_count(2)
    take_profit = page.get_by_test_id("open-orders").locator("tr", has_text="Take profit")
    stop_loss = page.get_by_test_id("open-orders").locator("tr", has_text="Stop loss")
    await expect(take_profit.locator('[data-field="type"]')).to_have_text("Take profit market")
    await expect(take_profit.locator('[data-field="trigger"]')).to_have_text("≥ 1,800.00")
    await expect(stop_loss.locator('[data-field="type"]')).to_have_text("Stop loss limit")
    await expect(stop_loss.locator('[data-field="trigger"]')).to_have_text("≤ 1,400.00")
    await expect(stop_loss).to_contain_text("1,390.00")
    for leg in (take_profit, stop_loss):
        await expect(leg).to_contain_text("Sell")
        await expect(leg.locator('[data-field="status"]')).to_have_text("TriggerPending")
    await page.screenshot(path=ARTIFACTS / "trade-bracket-desktop.png", full_page=True)

    # One cancels the other: cancelling the take-profit cancels the stop-loss too.
    await take_profit.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)

    assert errors == []
    await context.close()
