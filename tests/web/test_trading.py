"""A person trades in the browser, against the real stack: sign up, deposit, create and
revoke an API key, place a limit order (a bad one first), see it in open orders and in the
book, get it filled by a second user, see the trade and the balance change, cancel, cancel
all, switch the chart's interval, and read the server's own error. The trade page is saved
as screenshots at desktop and phone widths."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Page, ViewportSize, expect

from tests.gateway.test_rest import fund, signup
from tests.stream.conftest import Live
from tests.web.conftest import ARTIFACTS

MARKET = "TATA_INR"
PASSWORD = "a good password"
DESKTOP = ViewportSize(width=1440, height=900)
PHONE = ViewportSize(width=390, height=844)


async def sign_up(page: Page, base: str, email: str) -> None:
    await page.goto(f"{base}/signup")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(f"{base}/account")
    await expect(page.locator(".user .email")).to_have_text(email)


async def place(page: Page, side: str, price: str, quantity: str) -> None:
    form = page.get_by_test_id("order-form")
    await form.get_by_role("tab", name=side).click()
    await form.get_by_role("button", name="Limit", exact=True).click()
    await form.get_by_label(re.compile("^Price")).fill(price)
    await form.get_by_label(re.compile("^Quantity")).fill(quantity)
    await form.get_by_role("button", name=f"{side} TATA").click()


async def sell_as(live: Live, auth: dict[str, str], price: str, quantity: str) -> dict[str, Any]:
    response = await live.stack.client.post(
        "/api/v1/order",
        json={"symbol": MARKET, "side": "Ask", "price": price, "quantity": quantity},
        headers=auth,
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_a_person_trades_in_the_browser(live: Live, browser: Browser) -> None:
    base = live.stack.url
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Sign up, then deposit INR with the faucet.
    await sign_up(page, base, "carol@web.test")
    deposit = page.get_by_test_id("deposit-form")
    await deposit.get_by_label("Asset").select_option("INR")
    await deposit.get_by_label("Amount").fill("100000")
    await deposit.get_by_role("button", name="Deposit").click()
    await expect(page.get_by_text("Deposited 100,000.00 INR.")).to_be_visible()
    inr = page.get_by_test_id("balances").locator('tr[data-asset="INR"]')
    await expect(inr.locator('[data-field="available"]')).to_have_text("100,000.00")

    # An API key: its secret is shown once, it is listed, and it can be revoked.
    keys = page.get_by_test_id("api-key-form")
    await keys.get_by_label("Label").fill("my bot")
    await keys.get_by_role("button", name="Create key").click()
    new_key = page.get_by_test_id("new-key")
    await expect(new_key.locator('[data-field="secret"]')).to_have_text(re.compile(r"^\S{40,}$"))
    listed = page.get_by_test_id("api-keys").locator("tbody tr")
    await expect(listed).to_have_count(1)
    await expect(listed.first).to_contain_text("my bot")
    await expect(listed.first).to_contain_text("Active")
    await listed.first.get_by_role("button", name="Revoke").click()
    await expect(listed.first).to_contain_text("Revoked")
    await expect(new_key).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / "account-desktop.png", full_page=True)

    # To the market from the markets list.
    await page.get_by_role("link", name="Markets").click()
    await page.locator(f'tr[data-market="{MARKET}"]').click()
    await expect(page).to_have_url(f"{base}/trade/{MARKET}")
    await expect(page.get_by_test_id("connection")).to_have_text("Live")
    await expect(page.get_by_test_id("order-book")).to_have_attribute("data-synced", "true")
    await expect(page.get_by_test_id("available")).to_have_text("100,000.00")

    # Too many decimals: the form says so and sends nothing.
    await place(page, "Buy", "1600.123", "5")
    await expect(page.get_by_text("The price can have at most 2 decimals")).to_be_visible()
    await expect(page.get_by_test_id("order-placed")).to_have_count(0)
    assert await page.get_by_test_id("open-orders").count() == 0

    # A limit buy rests: in open orders, in the book, and its funds are locked.
    await place(page, "Buy", "1600.10", "5")
    await expect(page.get_by_test_id("order-placed")).to_contain_text("New")
    open_rows = page.get_by_test_id("open-orders").locator("tbody tr")
    await expect(open_rows).to_have_count(1)
    await expect(open_rows.first).to_contain_text("1,600.10")
    bid = page.get_by_test_id("bids").locator('tr[data-price="1600.10"]')
    await expect(bid).to_contain_text("5")
    await expect(page.get_by_test_id("available")).not_to_have_text("100,000.00")

    # A second user sells 2 into it: the trade shows, the order fills in part, TATA arrives.
    _, bob = await signup(live.stack, "bob@web.test")
    await fund(live.stack, bob, "TATA", "100")
    await sell_as(live, bob, "1600.10", "2")
    trade = page.get_by_test_id("recent-trades").locator("tbody tr").first
    await expect(trade).to_contain_text("1,600.10")
    await expect(trade.locator("td").nth(1)).to_have_text("2")
    await expect(bid.locator("td").nth(1)).to_have_text("3")
    await expect(open_rows.first).to_contain_text("PartiallyFilled")
    await expect(page.get_by_test_id("market-bar").locator('[data-field="last"]')).to_have_text(
        "1,600.10"
    )
    await expect(page.get_by_test_id("chart")).not_to_have_attribute("data-candles", "0")
    await page.get_by_role("tab", name="Balances").click()
    tata = page.get_by_test_id("balances").locator('tr[data-asset="TATA"]')
    await expect(tata.locator('[data-field="available"]')).to_have_text("2")
    await page.get_by_role("tab", name="Fills").click()
    await expect(page.get_by_test_id("fills").locator("tbody tr")).to_have_count(1)
    await expect(page.get_by_test_id("fills")).to_contain_text("Maker")
    await page.get_by_role("tab", name="Order history").click()
    await expect(page.get_by_test_id("order-history")).to_contain_text("PartiallyFilled")

    # Chart intervals: each one loads its own candles (the trade's among them).
    chart = page.get_by_test_id("chart")
    for interval in ("1h", "1w", "5m"):
        await page.get_by_role("button", name=interval, exact=True).click()
        await expect(chart).to_have_attribute("data-interval", interval)
        await expect(chart).to_have_attribute("data-candles", "1")
    await expect(page.get_by_role("button", name="5m", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )

    # Screenshots of the trade page, desktop and phone, with an order resting.
    await page.get_by_role("tab", name=re.compile("^Open orders")).click()
    await page.screenshot(path=ARTIFACTS / "trade-desktop.png", full_page=True)
    phone = await browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, storage_state=await context.storage_state()
    )
    phone_page = await phone.new_page()
    await phone_page.goto(f"{base}/trade/{MARKET}")
    await expect(phone_page.get_by_test_id("order-book")).to_have_attribute("data-synced", "true")
    await expect(phone_page.get_by_test_id("recent-trades").locator("tbody tr")).to_have_count(1)
    await phone_page.screenshot(path=ARTIFACTS / "trade-phone.png", full_page=True)
    await phone.close()

    # The server's own error, shown as it is: selling more TATA than the account holds.
    await place(page, "Sell", "1700", "50")
    await expect(page.get_by_test_id("order-error")).to_contain_text("INSUFFICIENT_FUNDS")

    # Cancel the resting order: it leaves open orders and the book.
    await open_rows.first.get_by_role("button", name="Cancel").click()
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)
    await expect(bid).to_have_count(0)

    # Cancel all: two orders, one click.
    await place(page, "Buy", "1500", "1")
    await expect(open_rows).to_have_count(1)
    await place(page, "Buy", "1501", "1")
    await expect(open_rows).to_have_count(2)
    await page.get_by_role("button", name="Cancel all").click()
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)
    await expect(page.get_by_test_id("bids").locator("tr")).to_have_count(0)

    # A price clicked in the book fills the form.
    await sell_as(live, bob, "1650.50", "1")
    await page.get_by_test_id("asks").locator('tr[data-price="1650.50"]').click()
    await expect(
        page.get_by_test_id("order-form").get_by_label(re.compile("^Price"))
    ).to_have_value("1650.50")

    # A market buy takes that ask.
    form = page.get_by_test_id("order-form")
    await form.get_by_role("tab", name="Buy").click()
    await form.get_by_role("button", name="Market", exact=True).click()
    await form.get_by_label(re.compile("^Quantity")).fill("1")
    await form.get_by_role("button", name="Buy TATA").click()
    await expect(page.get_by_test_id("order-placed")).to_contain_text("Filled")
    await page.get_by_role("tab", name="Balances").click()
    await expect(tata.locator('[data-field="available"]')).to_have_text("3")

    # Half of the TATA balance, on the step, by one click.
    await form.get_by_role("tab", name="Sell").click()
    await form.get_by_role("button", name="50%").click()
    await expect(form.get_by_label(re.compile("^Quantity"))).to_have_value("1")

    # Log out, and back in.
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("link", name="Log in")).to_be_visible()
    await expect(page.get_by_test_id("open-orders")).to_have_count(0)
    await page.get_by_role("link", name="Log in").click()
    await page.get_by_label("Email").fill("carol@web.test")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".user .email")).to_have_text("carol@web.test")

    assert errors == []
    await context.close()
