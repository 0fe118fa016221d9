"""A whole freqtrade bot (`FreqtradeBot`, from a config file as `freqtrade trade` reads it)
trading live (`dry_run` false) on the Binance face: a forced entry fills against a user on the
Backpack face, the bot's loop puts its stop-loss on the exchange (`stoploss_on_exchange`), a
forced exit cancels that stop and sells into the Backpack user's bid, and both faces agree on
the balances. The bot's calls are synchronous: they run on one thread (its database session
is per thread) while the stack serves on the test's loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
from freqtrade.configuration import Configuration
from freqtrade.configuration.directory_operations import create_userdata_dir
from freqtrade.enums import RunMode
from freqtrade.freqtradebot import FreqtradeBot
from freqtrade.rpc import RPC

from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key
from tests.gateway.test_binance_public import order
from tests.gateway.test_freqtrade import PAIR, backpack_balances, config
from tests.gateway.test_rest import fund, signup

T = TypeVar("T")
STRATEGY = '''
from freqtrade.strategy import IStrategy


class GatewayStrategy(IStrategy):
    """Never signals: the test forces entries and exits, as a user does over the bot's API."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 10}
    stoploss = -0.1

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        return dataframe
'''


def bot_config(tmp: Path, url: str, key: dict[str, Any]) -> Path:
    create_userdata_dir(str(tmp / "user_data"), create_dir=True)  # as `create-userdir` does
    (tmp / "strategies").mkdir()
    (tmp / "strategies" / "gateway_strategy.py").write_text(STRATEGY)
    exchange = config(url, key)
    settings = {
        **{k: exchange[k] for k in ("dry_run", "stake_currency", "timeframe", "trading_mode")},
        "exchange": exchange["exchange"],
        "entry_pricing": {**exchange["entry_pricing"], "price_side": "other"},
        "exit_pricing": {**exchange["exit_pricing"], "price_side": "other"},
        "order_types": {
            "entry": "limit",
            "exit": "limit",
            "stoploss": "limit",
            "stoploss_on_exchange": True,
        },
        "margin_mode": "",
        "max_open_trades": 1,
        "stake_amount": 1700,
        "unfilledtimeout": {"entry": 10, "exit": 10},
        "pairlists": [{"method": "StaticPairList"}],
        "strategy": "GatewayStrategy",
        "strategy_path": str(tmp / "strategies"),
        "db_url": "sqlite://",
        "user_data_dir": str(tmp / "user_data"),
        "initial_state": "running",
        "force_entry_enable": True,
        "bot_name": "gateway",
        "internals": {"process_throttle_secs": 5},
    }
    path = tmp / "config.json"
    path.write_bytes(orjson.dumps(settings))
    return path


async def until_in_book(stack: Stack, side: str) -> None:
    """Until the depth freqtrade prices by shows the side (it follows the engine closely,
    not at once)."""
    deadline = time.monotonic() + 30
    while not (await (await stack.client.get("/api/v3/depth?symbol=TATAINR")).json())[side]:
        assert time.monotonic() < deadline, f"no {side} in the book"
        await asyncio.sleep(0.05)


async def test_a_freqtrade_bot_trades_live_with_stoploss_on_exchange(
    stack: Stack, tmp_path: Path
) -> None:
    _, alice = await signup(stack, "bot@freqtrade.test")
    _, bob = await signup(stack, "counterparty@freqtrade.test")
    await fund(stack, alice, "INR", "10000")
    await fund(stack, bob, "TATA", "10")
    await fund(stack, bob, "INR", "100000")
    await order(stack, bob, side="Ask", orderType="Limit", price="1600", quantity="2")
    await until_in_book(stack, "asks")
    path = bot_config(tmp_path, stack.url, await hmac_key(stack, alice))
    # One thread for every call: freqtrade's database session is per thread.
    bot_thread = ThreadPoolExecutor(max_workers=1)

    async def run(call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(bot_thread, call)

    def start() -> FreqtradeBot:
        bot = FreqtradeBot(Configuration({"config": [str(path)]}, RunMode.LIVE).get_config())
        bot.startup()
        return bot

    bot = await run(start)
    try:
        rpc = RPC(bot)
        trade = await run(lambda: rpc._rpc_force_entry(PAIR, None, order_type="limit"))
        assert trade is not None
        entered = await run(lambda: (trade.is_open, trade.amount, trade.open_rate))
        assert entered == (True, 1, 1600)

        await run(bot.process)  # the loop: the stop-loss goes onto the exchange
        opened = await stack.client.get("/api/v1/orders?symbol=TATA_INR", headers=alice)
        [pending] = await opened.json()
        assert (pending["side"], pending["status"], pending["triggerPrice"]) == (
            "Ask", "TriggerPending", "1440.00",
        )  # fmt: skip
        stops = await run(lambda: [o.order_id for o in trade.open_sl_orders])
        assert stops == [pending["id"]]

        await order(stack, bob, side="Bid", orderType="Limit", price="1550", quantity="5")
        await until_in_book(stack, "bids")
        await run(lambda: rpc._rpc_force_exit(str(trade.id), "limit"))
        await run(bot.process)
        assert await run(lambda: (trade.is_open, trade.close_rate)) == (False, 1550)
        opened = await stack.client.get("/api/v1/orders?symbol=TATA_INR", headers=alice)
        assert await opened.json() == []  # the bot cancelled its stop before the exit
    finally:
        await run(bot.cleanup)
        bot_thread.shutdown()

    mine = await backpack_balances(stack, alice)
    assert mine.get("TATA", Decimal(0)) == 0
    assert 10000 - 1600 + 1550 - 10 < mine["INR"] < 10000 - 1600 + 1550
