"""Deposits and withdrawals; market status and market configuration."""

import pytest

from engine_svc.core.commands import AddAsset, AddMarket, SetMarketStatus
from engine_svc.core.types import Code, MarketStatus
from tests.engine.core.driver import Exchange, Fill
from tradekit.markets import Asset, MarketSpec
from tradekit.money import MAX_UNITS, format_units


def test_deposit_and_withdraw(ex: Exchange) -> None:
    ex.deposit("alice", "100.50", "INR")
    ex.withdraw("alice", "0.50", "INR")
    assert ex.balances("alice") == {"INR": ("100.00", "0.00")}
    assert ex.engine.accounts.supply["INR"] == 10000
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.withdraw("alice", "100.01", "INR"))
    ex.withdraw("alice", "100", "INR")
    assert ex.balances("alice") == {}


def test_locked_funds_cannot_be_withdrawn(ex: Exchange) -> None:
    ex.deposit("alice", "100", "INR")
    ex.buy("alice", "1", at="50")  # locks 50.00 + maker fee 0.05
    assert ex.balances("alice") == {"INR": ("49.95", "50.05")}
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.withdraw("alice", "50", "INR"))
    ex.withdraw("alice", "49.95", "INR")
    assert ex.balances("alice") == {"INR": ("0.00", "50.05")}


def test_withdrawing_what_was_never_held_is_refused(ex: Exchange) -> None:
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.withdraw("alice", "1", "BTC"))


def test_the_fee_account_neither_deposits_nor_trades(ex: Exchange) -> None:
    ex.rejects(Code.INVALID_USER, lambda: ex.deposit("fees", "1", "INR"))
    ex.rejects(Code.INVALID_USER, lambda: ex.withdraw("fees", "1", "INR"))
    ex.rejects(Code.INVALID_USER, lambda: ex.sell("fees", "1", at="100"))


def test_total_supply_is_bounded(ex: Exchange) -> None:
    most = format_units(MAX_UNITS, 8)
    ex.deposit("alice", most, "BTC")
    ex.rejects(Code.BALANCE_LIMIT, lambda: ex.deposit("bob", "0.00000001", "BTC"))
    ex.withdraw("alice", "0.00000001", "BTC")
    ex.deposit("bob", "0.00000001", "BTC")


def test_a_halted_market_refuses_orders_but_allows_cancels(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "1000", "INR")
    first = ex.sell("alice", "2", at="100")
    ex.sell("alice", "2", at="101")

    assert [type(e).__name__ for e in ex.halt("TATA_INR").events] == ["MarketStatusChanged"]
    assert ex.halt("TATA_INR").events == []  # already halted: nothing happens

    ex.rejects(Code.MARKET_HALTED, lambda: ex.buy("bob", "1", at="101"))
    ex.rejects(Code.MARKET_HALTED, lambda: ex.market_buy("bob", "1"))
    ex.cancel("alice", first.order_id)
    ex.cancel_all("alice", market="TATA_INR")
    ex.deposit("bob", "1", "INR")  # funds are not tied to a market

    ex.reopen("TATA_INR")
    ex.sell("alice", "1", at="100")
    assert ex.buy("bob", "1", at="100").trades == [Fill("1", "100.00", "alice", "bob")]


def test_other_markets_keep_trading_while_one_is_halted(ex: Exchange) -> None:
    ex.deposit("alice", "1", "BTC")
    ex.deposit("bob", "100000", "USDT")
    ex.halt("TATA_INR")
    ex.sell("alice", "0.01", at="30000", market="BTC_USDT")
    out = ex.buy("bob", "0.01", at="30000", market="BTC_USDT")
    assert out.trades == [Fill("0.01000000", "30000.000000", "alice", "bob")]


def test_status_of_an_unknown_market_is_refused(ex: Exchange) -> None:
    ex.rejects(Code.UNKNOWN_MARKET, lambda: ex.apply(SetMarketStatus("NOPE", MarketStatus.HALTED)))


def spec(**changes: object) -> MarketSpec:
    fields: dict[str, object] = {
        "symbol": "BTC_INR",
        "base": "BTC",
        "quote": "INR",
        "tick_size": "0.01",
        "step_size": "1",
        "min_quantity": "1",
        "min_notional": "1",
        "max_quantity": "100",
        "max_price": "10000000",
        "maker_fee_bps": 10,
        "taker_fee_bps": 20,
    }
    fields.update(changes)
    return MarketSpec(**fields)  # type: ignore[arg-type]


def test_a_market_that_settles_exactly_is_listed(ex: Exchange) -> None:
    ex.apply(AddMarket(spec()))
    assert "BTC_INR" in ex.engine.markets


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        # tick 0.01 INR x step 0.0001 BTC = 0.000001 INR: finer than INR's 2 decimals
        ({"step_size": "0.0001", "min_quantity": "0.0001"}, Code.INVALID_MARKET_CONFIG),
        ({"step_size": "0.5", "min_quantity": "0.5"}, Code.INVALID_MARKET_CONFIG),
        ({"tick_size": "0.001"}, Code.INVALID_MARKET_CONFIG),  # finer than INR itself
        ({"tick_size": "0"}, Code.INVALID_MARKET_CONFIG),
        ({"step_size": "0"}, Code.INVALID_MARKET_CONFIG),
        ({"tick_size": "-0.01"}, Code.INVALID_MARKET_CONFIG),
        ({"tick_size": "NaN"}, Code.INVALID_MARKET_CONFIG),
        ({"max_price": "1e9"}, Code.INVALID_MARKET_CONFIG),
        ({"min_quantity": "1.5", "step_size": "1"}, Code.INVALID_MARKET_CONFIG),
        ({"max_quantity": "0"}, Code.INVALID_MARKET_CONFIG),
        ({"min_quantity": "200"}, Code.INVALID_MARKET_CONFIG),
        ({"max_price": "0"}, Code.INVALID_MARKET_CONFIG),
        ({"max_price": "0.015"}, Code.INVALID_MARKET_CONFIG),
        ({"max_price": "100000000000000000", "max_quantity": "1000"}, Code.INVALID_MARKET_CONFIG),
        ({"maker_fee_bps": -1}, Code.INVALID_MARKET_CONFIG),
        ({"taker_fee_bps": 1001}, Code.INVALID_MARKET_CONFIG),
        ({"max_triggers": -1}, Code.INVALID_MARKET_CONFIG),
        ({"symbol": "BTCINR"}, Code.INVALID_MARKET_CONFIG),
        ({"symbol": "INR_INR", "base": "INR"}, Code.INVALID_MARKET_CONFIG),
        ({"symbol": "XYZ_INR", "base": "XYZ"}, Code.UNKNOWN_ASSET),
        ({"symbol": "TATA_INR", "base": "TATA"}, Code.ALREADY_EXISTS),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else None,
)
def test_a_bad_market_config_is_refused(
    ex: Exchange, changes: dict[str, object], code: Code
) -> None:
    ex.rejects(code, lambda: ex.apply(AddMarket(spec(**changes))))
    assert "BTC_INR" not in ex.engine.markets


@pytest.mark.parametrize(
    ("asset", "code"),
    [
        (Asset("INR", 2), Code.ALREADY_EXISTS),
        (Asset("inr", 2), Code.INVALID_MARKET_CONFIG),
        (Asset("", 2), Code.INVALID_MARKET_CONFIG),
        (Asset("A-B", 2), Code.INVALID_MARKET_CONFIG),
        (Asset("X" * 17, 2), Code.INVALID_MARKET_CONFIG),
        (Asset("NEW", -1), Code.INVALID_MARKET_CONFIG),
        (Asset("NEW", 19), Code.INVALID_MARKET_CONFIG),
    ],
)
def test_a_bad_asset_is_refused(ex: Exchange, asset: Asset, code: Code) -> None:
    ex.rejects(code, lambda: ex.apply(AddAsset(asset)))
