"""A bad configuration is refused at start with a message that says what is wrong."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from mm_svc.config import DEFAULT_CONFIG_FILE, ConfigError, load_config
from servicekit.settings import SettingsError
from tests.engine.conftest import RunningEngine
from tests.mm.conftest import MARKET, config_text, write_config


def test_the_shipped_configuration_quotes_every_seeded_market() -> None:
    config = load_config(DEFAULT_CONFIG_FILE)
    assert [m.symbol for m in config.markets] == ["TATA_INR", "BTC_USDT", "ETH_USDT", "SOL_USDC"]
    tata = config.markets[0]
    assert tata.reference == "walk"
    assert tata.levels == 5  # from [defaults]
    assert tata.size == Decimal("10")
    assert config.markets[1].spread_bps == 10  # its own value over the default
    assert config.maker.user_id not in config.flow.users
    for market in config.markets:  # funded with its target: it starts flat, quoting both sides
        base = market.symbol.split("_")[0]
        assert config.maker.fund[base] == market.inventory_target


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"market": {"spread_bps": -5}}, "markets[TATA_INR].spread_bps must be > 0, got -5"),
        ({"market": {"levels": 0}}, "markets[TATA_INR].levels must be between 1 and 127, got 0"),
        ({"market": {"size": "ten"}}, "markets[TATA_INR].size must be a decimal number"),
        ({"market": {"reference": "oracle"}}, "reference must be book, walk or file, got 'oracle'"),
        ({"market": {"spred_bps": 5}}, "unknown setting(s): markets[TATA_INR].spred_bps"),
        ({"market": {"refill_below": "1.5"}}, "refill_below must be at most 1"),
        ({"market": {"skew_bps": 9999}}, "they must stay below 10000 so bids stay positive"),
        ({"market": {"max_position": "0"}}, "markets[TATA_INR].max_position must be > 0"),
        ({"market": {"reference": "file"}}, "markets[TATA_INR].file.path is required"),
        ({"maker": {"client_tag": 0}}, "maker.client_tag must be between 1 and 65535, got 0"),
        (
            {"maker": {"user_id": 601}},
            "the maker's user id 601 (maker.user_id, MM_USER_ID) is also a flow user",
        ),
        ({"maker": {"cycle_seconds": "1"}}, "maker.cycle_seconds must be a number, got '1'"),
        ({"maker_fund": {"INR": "-1"}}, "maker.fund.INR must be > 0, got -1"),
        ({"flow": {"users": [1, 1]}}, "flow.users lists a user twice"),
        ({"flow": {"market_order_share": 2}}, "market_order_share must be between 0.0 and 1.0"),
    ],
)
def test_a_wrong_value_is_named(
    tmp_path: Path, parts: dict[str, dict[str, object]], message: str
) -> None:
    path = write_config(tmp_path, config_text(**parts))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)
    assert str(path) in str(raised.value)


def test_a_market_listed_twice_is_refused(tmp_path: Path) -> None:
    text = (
        config_text()
        + "[[markets]]\n"
        + "".join(
            f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n" for k, v in MARKET.items()
        )
    )
    with pytest.raises(ConfigError, match="market TATA_INR is listed twice"):
        load_config(write_config(tmp_path, text))


def test_a_price_file_is_read_and_checked(tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("timestamp,price\n1700000000,1000.5\n2023-11-14T22:13:30Z,1001\n")
    text = (
        config_text(market={"reference": "file"})
        + '[markets.file]\npath = "prices.csv"\nspeed = 10\n'
    )
    config = load_config(write_config(tmp_path, text))
    file = config.markets[0].price_file
    assert file is not None
    assert file.points == ((1700000000.0, Decimal("1000.5")), (1700000010.0, Decimal("1001")))
    assert file.speed == 10

    prices.write_text("1700000000,1000\n1699999999,1001\n")
    with pytest.raises(ConfigError, match="line 2: time goes backwards"):
        load_config(write_config(tmp_path, text))
    prices.write_text("1700000000,1000\n1700000001,-3\n")
    with pytest.raises(ConfigError, match="line 2: price must be > 0"):
        load_config(write_config(tmp_path, text))


def test_environment_overrides_are_applied_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, config_text())
    monkeypatch.setenv("MM_USER_ID", "42")
    monkeypatch.setenv("MM_FUND", "false")
    monkeypatch.setenv("MM_CYCLE_SECONDS", "0.5")
    config = load_config(path)
    assert (config.maker.user_id, config.maker.fund_on_start) == (42, False)
    assert config.maker.cycle_seconds == 0.5

    monkeypatch.setenv("MM_MARKETS", "TATA_INR,BTC_USDT")
    with pytest.raises(ConfigError, match="MM_MARKETS names markets not in the file: BTC_USDT"):
        load_config(path)
    monkeypatch.setenv("MM_MARKETS", "TATA_INR")
    monkeypatch.setenv("MM_FUND", "maybe")
    with pytest.raises(SettingsError, match="MM_FUND must be true or false, got 'maybe'"):
        load_config(path)


def run_maker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_svc"],
        env={**os.environ, "MM_HEALTH_PORT": "0", "MM_METRICS_PORT": "0", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("module", ["mm_svc", "mm_svc.flow"])
def test_the_processes_exit_with_the_message(tmp_path: Path, module: str) -> None:
    path = write_config(tmp_path, config_text(market={"spread_bps": 0}))
    result = subprocess.run(
        [sys.executable, "-m", module], env={**os.environ, "MM_CONFIG": str(path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "mm_svc: configuration error: MM_CONFIG" in result.stderr
    assert "markets[TATA_INR].spread_bps must be > 0, got 0" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENGINE_ADDRESS": "engine"}, "ENGINE_ADDRESS must be host:port, got 'engine'"),
        ({"MM_HEALTH_PORT": "http"}, "MM_HEALTH_PORT must be an integer, got 'http'"),
        ({"MM_CONFIG": "/nonexistent/mm.toml"}, "MM_CONFIG /nonexistent/mm.toml: cannot read it"),
    ],
)
def test_bad_environment_is_refused(env: dict[str, str], message: str) -> None:
    result = run_maker(env)
    assert result.returncode == 1
    assert f"mm_svc: configuration error: {message}" in result.stderr


async def test_a_market_the_engine_does_not_list_stops_the_maker(
    engine: RunningEngine, tmp_path: Path
) -> None:
    path = write_config(tmp_path, config_text(market={"symbol": "DOGE_INR"}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mm_svc",
        env={**os.environ, "MM_CONFIG": str(path), "ENGINE_ADDRESS": engine.address,
             "MM_HEALTH_PORT": "0", "MM_METRICS_PORT": "0"},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await process.communicate()
    assert process.returncode == 1
    assert "mm_svc: the engine does not list the configured market(s) DOGE_INR" in stderr.decode()
