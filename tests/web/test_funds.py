"""The funds page in the browser, against the real stack: the deposit address per network;
a deposit that custody reports, pending below the network's confirmations and credited at
them; a withdrawal form that shows the fee and limits and says when a quantity is too
much, shows the server's own error for a malformed address, and requests one (with a memo,
shown in the history) whose funds lock at once; custody completes it and the history shows
it confirmed."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from exchange.engine.v1 import engine_pb2 as epb
from tests.gateway.test_rest import signup
from tests.stream.conftest import Live
from tests.web.conftest import ARTIFACTS
from tests.web.test_conditional import log_in
from tests.web.test_trading import DESKTOP

DEPOSIT_TX = "0x" + "ab" * 32
WITHDRAWAL_TX = "0x" + "cd" * 32
TO = "0x" + "12" * 20


async def test_deposit_and_withdraw_in_the_browser(live: Live, browser: Browser) -> None:
    base = live.stack.url
    _, dave = await signup(live.stack, "dave@funds.test")
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, base, "dave@funds.test")
    await page.get_by_role("link", name="Funds").click()
    await expect(page).to_have_url(f"{base}/funds")

    # One address per network, the same the API gives.
    deposit = page.get_by_test_id("deposit-address")
    address = deposit.locator('[data-field="address"]')
    await deposit.get_by_label("Asset").select_option("USDT")
    await deposit.get_by_label("Network").select_option("Solana")
    await expect(address).to_have_text(re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"))
    on_solana = await address.inner_text()
    await deposit.get_by_label("Network").select_option("Ethereum")
    await expect(address).to_have_text(re.compile(r"^0x[0-9a-fA-F]{40}$"))
    on_ethereum = await address.inner_text()
    await expect(deposit).to_contain_text("credited after 3 confirmations")
    response = await live.stack.client.get(
        "/wapi/v1/capital/deposit/address",
        params={"blockchain": "Ethereum", "symbol": "USDT"},
        headers=dave,
    )
    assert (await response.json())["address"] == on_ethereum != on_solana

    # Custody reports a transfer to it: pending at 1 of 3 confirmations, credited at 3.
    report = epb.ReportDepositRequest(
        asset="USDT",
        network="Ethereum",
        address=on_ethereum,
        quantity="250",
        transaction_hash=DEPOSIT_TX,
        confirmations=1,
    )
    assert (await live.stack.engine.stub.ReportDeposit(report)).code == 0
    deposit_row = page.get_by_test_id("deposits").locator("tbody tr")
    await expect(deposit_row).to_have_count(1)
    await expect(deposit_row.locator('[data-field="status"]')).to_have_text(
        "pending (1/3 confirmations)"
    )
    usdt = page.get_by_test_id("balances").locator('tr[data-asset="USDT"]')
    await expect(usdt).to_have_count(0)
    report.confirmations = 3
    assert (await live.stack.engine.stub.ReportDeposit(report)).code == 0
    await expect(deposit_row.locator('[data-field="status"]')).to_have_text("confirmed")
    await expect(deposit_row).to_contain_text("250.000000")
    await expect(usdt.locator('[data-field="available"]')).to_have_text("250.000000")

    # The withdrawal form shows the network's fee and limits, and what can go now.
    form = page.get_by_test_id("withdraw-form")
    await form.get_by_label("Asset").select_option("USDT")
    await form.get_by_label("Network").select_option("Ethereum")
    terms = form.get_by_test_id("withdraw-terms")
    await expect(terms.locator('[data-field="fee"]')).to_have_text("1 USDT")
    await expect(terms.locator('[data-field="minimum"]')).to_have_text("5 USDT")
    await expect(terms.locator('[data-field="maximum"]')).to_have_text("100,000 USDT")
    await expect(terms.locator('[data-field="daily"]')).to_contain_text("50,000 USDT")
    await expect(terms.locator('[data-field="most"]')).to_contain_text("249 USDT")

    # Too much: the form says so and sends nothing.
    await form.get_by_label("Address").fill(TO)
    await form.get_by_label(re.compile("^Quantity")).fill("300")
    await expect(form.get_by_role("alert")).to_have_text(
        re.compile(r"^Too much: you can withdraw at most 249 USDT on Ethereum now")
    )
    await form.get_by_role("button", name="Withdraw USDT").click()
    await expect(page.get_by_test_id("withdraw-result")).to_have_count(0)
    assert await page.get_by_test_id("withdrawals").count() == 0

    # A malformed address: the server's own error, shown as it is; nothing is locked.
    await form.get_by_label("Address").fill("not an address")
    await form.get_by_label(re.compile("^Quantity")).fill("100")
    await expect(form.get_by_test_id("withdraw-total")).to_have_text("101 USDT")
    await form.get_by_role("button", name="Withdraw USDT").click()
    result = page.get_by_test_id("withdraw-result")
    await expect(result).to_contain_text("not a Ethereum address")
    await expect(result).to_contain_text("(INVALID_CLIENT_REQUEST)")
    await expect(result).to_have_attribute("role", "alert")
    await expect(usdt.locator('[data-field="locked"]')).to_have_text("0.000000")

    # A good one, with a memo: quantity and fee are locked at once; it waits for custody.
    await form.get_by_label("Address").fill(TO)
    await form.get_by_label(re.compile("^Quantity")).fill("100")
    await form.get_by_label(re.compile("^Memo")).fill("tag 42")
    await form.get_by_role("button", name="Withdraw USDT").click()
    await expect(result).to_have_text(
        "Withdrawal of 100 USDT on Ethereum requested (fee 1 USDT): pending."
    )
    await expect(usdt.locator('[data-field="available"]')).to_have_text("149.000000")
    await expect(usdt.locator('[data-field="locked"]')).to_have_text("101.000000")
    await expect(terms.locator('[data-field="most"]')).to_contain_text("148 USDT")
    withdrawal_row = page.get_by_test_id("withdrawals").locator("tbody tr")
    await expect(withdrawal_row).to_have_count(1)
    await expect(withdrawal_row.locator('[data-field="status"]')).to_have_text(
        "pending (being sent)"
    )
    await expect(withdrawal_row.locator('[data-field="memo"]')).to_have_text("tag 42")
    await expect(form.get_by_label(re.compile("^Memo"))).to_have_value("")
    await page.screenshot(path=ARTIFACTS / "funds-desktop.png", full_page=True)

    # Custody sends it: confirmed with its transaction, the lock gone.
    withdrawal_id = int(await withdrawal_row.get_attribute("data-id") or 0)
    done = await live.stack.engine.stub.DecideWithdrawal(
        epb.DecideWithdrawalRequest(
            withdrawal_id=withdrawal_id,
            action=epb.WithdrawalAction.ACTION_COMPLETE,
            transaction_hash=WITHDRAWAL_TX,
        )
    )
    assert done.code == 0, done.message
    await expect(withdrawal_row.locator('[data-field="status"]')).to_have_text("confirmed")
    await expect(withdrawal_row.locator("code").last).to_have_attribute("title", WITHDRAWAL_TX)
    await expect(usdt.locator('[data-field="locked"]')).to_have_text("0.000000")

    assert errors == []
    await context.close()
