"""A whole freqtrade bot (`FreqtradeBot`, from a config file as `freqtrade trade` reads it)
trading live (`dry_run` false) on the Binance face against users on the Backpack face: entries
and exits forced over its API with its stop-loss on the exchange (`stoploss_on_exchange`);
entries and exits from its strategy's signals on the candles it reads from `/api/v3/klines`;
and an entry that rests past `unfilledtimeout`, which the bot cancels. The bot's calls are
synchronous: they run on one thread (its database session is per thread) while the stack
serves on the test's loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
from freqtrade.configuration import Configuration
from freqtrade.configuration.directory_operations import create_userdata_dir
from freqtrade.enums import RunMode
from freqtrade.freqtradebot import FreqtradeBot
from freqtrade.persistence import Trade
from freqtrade.rpc import RPC

from tests.gateway.binance_client import binance
from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key
from tests.gateway.test_binance_public import order
from tests.gateway.test_freqtrade import PAIR, backpack_balances, config
from tests.gateway.test_rest import fund, signup

T = TypeVar("T")
FORCED = '''
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
SIGNALS = '''
from freqtrade.persistence import Trade
from freqtrade.strategy import IStrategy


class GatewayStrategy(IStrategy):
    """Enters on a candle with trades in it while it holds nothing (tagged with the candle's
    close), exits while it holds the pair."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 10}
    stoploss = -0.1
    # Analyse on every iteration, not once a candle: `holding` changes within one.
    process_only_new_candles = False

    def populate_indicators(self, dataframe, metadata):
        held = Trade.get_trades_proxy(pair=metadata["pair"], is_open=True)
        dataframe["holding"] = int(bool(held))
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        traded = (dataframe["volume"] > 0) & (dataframe["holding"] == 0)
        dataframe["enter_long"] = traded.astype(int)
        dataframe["enter_tag"] = "close " + dataframe["close"].astype(str)
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = dataframe["holding"]
        return dataframe
'''


def bot_config(
    tmp: Path, url: str, key: dict[str, Any], strategy: str = FORCED, **overrides: Any
) -> Path:
    create_userdata_dir(str(tmp / "user_data"), create_dir=True)  # as `create-userdir` does
    (tmp / "strategies").mkdir()
    (tmp / "strategies" / "gateway_strategy.py").write_text(strategy)
    exchange = config(url, key)
    settings = {
        **{k: exchange[k] for k in ("dry_run", "stake_currency", "timeframe", "trading_mode")},
        # The tests' candles are all of this minute, which freqtrade drops as unfinished
        # unless told the exchange sends finished candles only.
        "exchange": {**exchange["exchange"], "_ft_has_params": {"ohlcv_partial_candle": False}},
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
        **overrides,
    }
    path = tmp / "config.json"
    path.write_bytes(orjson.dumps(settings))
    return path


class Bot:
    """A started bot and a way to call it on its one thread."""

    def __init__(self, bot: FreqtradeBot, thread: ThreadPoolExecutor) -> None:
        self.bot = bot
        self._thread = thread

    async def run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def process_until(self, done: Callable[[], bool], what: str) -> None:
        """Iterate the bot's loop (as its worker does, without the throttle) until `done`."""
        deadline = time.monotonic() + 60
        await self.run(self.bot.process)
        while not await self.run(done):
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.1)
            await self.run(self.bot.process)


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[Bot]:
    # One thread for every call: freqtrade's database session is per thread.
    thread = ThreadPoolExecutor(max_workers=1)

    def start() -> FreqtradeBot:
        bot = FreqtradeBot(Configuration({"config": [str(path)]}, RunMode.LIVE).get_config())
        bot.startup()
        return bot

    try:
        bot = Bot(await asyncio.get_running_loop().run_in_executor(thread, start), thread)
        try:
            yield bot
        finally:
            await bot.run(bot.bot.cleanup)
    finally:
        thread.shutdown()


async def until_in_book(stack: Stack, side: str) -> None:
    """Until the depth freqtrade prices by shows the side (it follows the engine closely,
    not at once)."""
    deadline = time.monotonic() + 30
    while not (await (await stack.client.get("/api/v3/depth?symbol=TATAINR")).json())[side]:
        assert time.monotonic() < deadline, f"no {side} in the book"
        await asyncio.sleep(0.05)


async def bot_and_counterparty(stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    """The bot's user with 10,000 INR, and bob, who trades with it, with TATA and INR."""
    _, alice = await signup(stack, "bot@freqtrade.test")
    _, bob = await signup(stack, "counterparty@freqtrade.test")
    await fund(stack, alice, "INR", "10000")
    await fund(stack, bob, "TATA", "10")
    await fund(stack, bob, "INR", "100000")
    return alice, bob


async def a_candle(stack: Stack, bob: dict[str, str]) -> None:
    """Bob sells carol 1 TATA at 1600: a candle with a trade in it for the strategy."""
    _, carol = await signup(stack, "carol@freqtrade.test")
    await fund(stack, carol, "INR", "10000")
    await order(stack, bob, side="Ask", orderType="Limit", price="1600", quantity="1")
    await order(stack, carol, side="Bid", orderType="Limit", price="1600", quantity="1")
    await stack.caught_up()  # the ledger has the trade, so /api/v3/klines has its candle


async def history(stack: Stack, key: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The user's orders on the Binance face (`allOrders`): side, type, status, filled."""
    client = binance(stack.url, apiKey=key["apiKey"], secret=key["secret"])
    try:
        listed = await client.fetch_orders(PAIR)
    finally:
        await client.close()
    return [
        (o["info"]["side"], o["info"]["type"], o["info"]["status"], o["info"]["executedQty"])
        for o in listed
    ]


async def test_a_freqtrade_bot_trades_live_with_stoploss_on_exchange(
    stack: Stack, tmp_path: Path
) -> None:
    alice, bob = await bot_and_counterparty(stack)
    await order(stack, bob, side="Ask", orderType="Limit", price="1600", quantity="2")
    await until_in_book(stack, "asks")
    path = bot_config(tmp_path, stack.url, await hmac_key(stack, alice))
    async with running(path) as bot:
        rpc = RPC(bot.bot)
        trade = await bot.run(lambda: rpc._rpc_force_entry(PAIR, None, order_type="limit"))
        assert trade is not None
        entered = await bot.run(lambda: (trade.is_open, trade.amount, trade.open_rate))
        assert entered == (True, 1, 1600)

        await bot.run(bot.bot.process)  # the loop: the stop-loss goes onto the exchange
        opened = await stack.client.get("/api/v1/orders?symbol=TATA_INR", headers=alice)
        [pending] = await opened.json()
        assert (pending["side"], pending["status"], pending["triggerPrice"]) == (
            "Ask", "TriggerPending", "1440.00",
        )  # fmt: skip
        stops = await bot.run(lambda: [o.order_id for o in trade.open_sl_orders])
        assert stops == [pending["id"]]

        await order(stack, bob, side="Bid", orderType="Limit", price="1550", quantity="5")
        await until_in_book(stack, "bids")
        await bot.run(lambda: rpc._rpc_force_exit(str(trade.id), "limit"))
        await bot.run(bot.bot.process)
        assert await bot.run(lambda: (trade.is_open, trade.close_rate)) == (False, 1550)
        opened = await stack.client.get("/api/v1/orders?symbol=TATA_INR", headers=alice)
        assert await opened.json() == []  # the bot cancelled its stop before the exit

    mine = await backpack_balances(stack, alice)
    assert mine.get("TATA", Decimal(0)) == 0
    assert 10000 - 1600 + 1550 - 10 < mine["INR"] < 10000 - 1600 + 1550


async def test_a_freqtrade_strategy_enters_and_exits_on_its_signals(
    stack: Stack, tmp_path: Path
) -> None:
    alice, bob = await bot_and_counterparty(stack)
    await a_candle(stack, bob)
    await order(stack, bob, side="Ask", orderType="Limit", price="1600", quantity="2")
    await order(stack, bob, side="Bid", orderType="Limit", price="1550", quantity="5")
    await until_in_book(stack, "asks")
    await until_in_book(stack, "bids")
    key = await hmac_key(stack, alice)
    async with running(bot_config(tmp_path, stack.url, key, SIGNALS)) as bot:
        await bot.process_until(
            lambda: bool(Trade.get_trades_proxy()), "the strategy never entered"
        )
        [trade] = await bot.run(Trade.get_trades_proxy)
        entered = await bot.run(
            lambda: (trade.is_open, trade.amount, trade.open_rate, trade.enter_tag)
        )
        assert entered == (True, 1, 1600, "close 1600.0")  # the candle of bob's sale to carol

        await bot.process_until(lambda: not trade.is_open, "the strategy never exited")
        exited = await bot.run(lambda: (trade.close_rate, trade.exit_reason))
        assert exited == (1550, "exit_signal")

    assert await history(stack, key) == [
        ("BUY", "LIMIT", "FILLED", "1"),
        ("SELL", "STOP_LOSS_LIMIT", "CANCELED", "0"),
        ("SELL", "LIMIT", "FILLED", "1"),
    ]
    mine = await backpack_balances(stack, alice)
    assert mine.get("TATA", Decimal(0)) == 0
    assert 10000 - 1600 + 1550 - 10 < mine["INR"] < 10000 - 1600 + 1550


async def test_a_freqtrade_bot_cancels_an_entry_past_its_unfilled_timeout(
    stack: Stack, tmp_path: Path
) -> None:
    alice, bob = await bot_and_counterparty(stack)
    await a_candle(stack, bob)
    await order(stack, bob, side="Bid", orderType="Limit", price="1500", quantity="1")
    await until_in_book(stack, "bids")
    key = await hmac_key(stack, alice)
    path = bot_config(
        tmp_path, stack.url, key, SIGNALS,
        # The entry joins the best bid (bob's, ahead of it), so it rests.
        entry_pricing={**config(stack.url, key)["entry_pricing"], "price_side": "same"},
        unfilledtimeout={"entry": 1, "exit": 60, "unit": "seconds"},
    )  # fmt: skip
    async with running(path) as bot:
        await bot.process_until(
            lambda: bool(Trade.get_trades_proxy()), "the strategy never entered"
        )
        await bot.run(RPC(bot.bot)._rpc_pause)  # no new entries: the loop only manages this one
        [entry] = await bot.run(
            lambda: [o.order_id for o in Trade.get_trades_proxy()[0].open_orders]
        )
        assert await history(stack, key) == [("BUY", "LIMIT", "NEW", "0")]
        opened = await stack.client.get("/api/v1/orders?symbol=TATA_INR", headers=alice)
        assert [(o["id"], o["price"]) for o in await opened.json()] == [(entry, "1500.00")]
        locked = (await (await stack.client.get("/api/v1/capital", headers=alice)).json())["INR"]
        assert Decimal(locked["locked"]) > 1500

        await bot.process_until(lambda: not Trade.get_trades_proxy(), "the entry never timed out")

    assert await history(stack, key) == [("BUY", "LIMIT", "CANCELED", "0")]
    capital = (await (await stack.client.get("/api/v1/capital", headers=alice)).json())["INR"]
    assert (Decimal(capital["available"]), Decimal(capital["locked"])) == (
        Decimal(10000),
        Decimal(0),
    )
