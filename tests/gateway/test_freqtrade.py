"""freqtrade's Binance exchange layer (`freqtrade.exchange.Binance`, what its bot trades
through, live: `dry_run` false) on the gateway's Binance face with only the ccxt URLs pointed
here: it loads and validates the markets and a config with `stoploss_on_exchange`, reads
balances, rests and cancels a limit entry, enters and exits by market against a user on the
Backpack face, and places and cancels a stop-loss on the exchange. freqtrade is synchronous
(its own event loop inside), so it runs on a thread while the stack serves on the test's
loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from freqtrade.enums import RunMode
from freqtrade.exceptions import InvalidOrderException
from freqtrade.exchange import Binance

from tests.gateway.binance_client import ccxt_config
from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key
from tests.gateway.test_binance_public import order
from tests.gateway.test_rest import fund, signup

PAIR = "TATA/INR"
STOPLOSS = {"stoploss": "limit", "stoploss_on_exchange": True}


def config(url: str, key: dict[str, Any]) -> dict[str, Any]:
    """A freqtrade config as its docs have a user write it, with the gateway's URLs."""
    ccxt = ccxt_config(url)
    pricing = {"price_side": "same", "use_order_book": True, "order_book_top": 1}
    return {
        "dry_run": False,
        "runmode": RunMode.LIVE,
        "trading_mode": "spot",
        "stake_currency": "INR",
        "timeframe": "1m",
        "exchange": {
            "name": "binance",
            "key": key["apiKey"],
            "secret": key["secret"],
            "ccxt_config": ccxt,
            "ccxt_async_config": ccxt,
            "pair_whitelist": [PAIR],
            "enable_ws": False,
        },
        "order_types": {"entry": "limit", "exit": "market", **STOPLOSS},
        "order_time_in_force": {"entry": "GTC", "exit": "GTC"},
        "entry_pricing": pricing,
        "exit_pricing": pricing,
    }


@pytest.fixture
async def traders(stack: Stack) -> AsyncIterator[tuple[Any, dict[str, str], dict[str, str]]]:
    """freqtrade on alice's HMAC key, alice's bearer auth, and bob on the Backpack face."""
    _, alice = await signup(stack, "freqtrade@binance.test")
    _, bob = await signup(stack, "backpack@binance.test")
    await fund(stack, alice, "INR", "100000")
    await fund(stack, bob, "TATA", "10")
    await fund(stack, bob, "INR", "100000")
    key = await hmac_key(stack, alice)
    exchange = await asyncio.to_thread(Binance, config(stack.url, key))
    yield exchange, alice, bob
    await asyncio.to_thread(exchange.close)


async def backpack_balances(stack: Stack, auth: dict[str, str]) -> dict[str, Decimal]:
    response = await stack.client.get("/api/v1/capital", headers=auth)
    assert response.status == 200, await response.text()
    return {a: Decimal(b["available"]) for a, b in (await response.json()).items()}


async def test_freqtrade_trades_live_on_the_binance_face(
    stack: Stack, traders: tuple[Any, dict[str, str], dict[str, str]]
) -> None:
    exchange, alice, bob = traders
    run = asyncio.to_thread
    assert exchange.markets[PAIR]["active"]
    assert exchange.get_option("stoploss_on_exchange")  # the config validated with it
    assert (await run(exchange.get_balances))["INR"]["free"] == 100000

    # A limit entry below the book rests; freqtrade cancels it (as on an entry timeout).
    entry = await run(lambda: exchange.create_order(
        pair=PAIR, ordertype="limit", side="buy", amount=1, rate=1500, leverage=1.0))  # fmt: skip
    assert (await run(exchange.fetch_order, entry["id"], PAIR))["status"] == "open"
    assert (await run(exchange.get_balances))["INR"]["used"] == 1501.5  # with the taker fee
    cancelled = await run(exchange.cancel_order_with_result, entry["id"], PAIR, 1)
    assert (cancelled["status"], cancelled["filled"]) == ("canceled", 0)

    # A market entry fills against bob's ask on the Backpack face.
    await order(stack, bob, side="Ask", orderType="Limit", price="1600", quantity="2")
    bought = await run(lambda: exchange.create_order(
        pair=PAIR, ordertype="market", side="buy", amount=1, rate=1600, leverage=1.0))  # fmt: skip
    bought = await run(exchange.fetch_order, bought["id"], PAIR)
    assert (bought["status"], bought["filled"], bought["average"]) == ("closed", 1, 1600)
    since = datetime.fromtimestamp(bought["timestamp"] / 1000, UTC)
    # The history is the ledger's, written a moment after the fill: poll it.
    deadline = time.monotonic() + 30
    while not (fills := await run(exchange.get_trades_for_order, bought["id"], PAIR, since)):
        assert time.monotonic() < deadline, "the fill never reached the trade history"
        await asyncio.sleep(0.1)
    assert [(t["price"], t["amount"]) for t in fills] == [(1600, 1)]
    held = Decimal(str((await run(exchange.get_balances))["TATA"]["free"]))
    assert held > 0

    # The stop-loss on the exchange waits below the last price.
    stop = await run(lambda: exchange.create_stoploss(
        pair=PAIR, amount=float(held), stop_price=1400, order_types=STOPLOSS, side="sell",
        leverage=1.0))  # fmt: skip
    stop = await run(exchange.fetch_stoploss_order, stop["id"], PAIR)
    assert (stop["status"], stop["info"]["type"], stop["stopPrice"]) == (
        "open",
        "STOP_LOSS_LIMIT",
        1400,
    )
    # Unlike Binance's, a pending trigger locks nothing here (README: trigger orders).
    assert (await run(exchange.get_balances))["TATA"]["free"] == float(held)
    assert (await run(exchange.cancel_stoploss_order, stop["id"], PAIR))["status"] == "canceled"
    with pytest.raises(InvalidOrderException):  # already gone: Binance's -2011 / -2013
        await run(exchange.cancel_order, "999999999", PAIR)

    # The exit sells by market into bob's bid.
    await order(stack, bob, side="Bid", orderType="Limit", price="1550", quantity="5")
    sold = await run(lambda: exchange.create_order(
        pair=PAIR, ordertype="market", side="sell", amount=float(held), rate=1550,
        leverage=1.0))  # fmt: skip
    sold = await run(exchange.fetch_order, sold["id"], PAIR)
    assert (sold["status"], sold["average"]) == ("closed", 1550)

    # freqtrade's balances are the Backpack face's balances of the same account.
    seen = await run(exchange.get_balances)
    mine = await backpack_balances(stack, alice)
    assert Decimal(str(seen["INR"]["free"])) == mine["INR"] < 100000 - 1600 + 1550 + 1
    assert Decimal(str(seen["TATA"]["free"])) == mine.get("TATA", Decimal(0)) == 0
