"""Every field of every command, given something it must refuse.

Each input goes through `parse_place`/`parse_funds` (the service edge) and `Engine.apply`, must
be rejected with the code of that field, and must leave `state_hash` unchanged. The exchange
is busy when it happens: balances, resting orders on both sides, fees collected.
"""

from collections.abc import Callable
from typing import Any

import pytest

from engine_svc.core.commands import (
    AddMarket,
    CancelAllOrders,
    Command,
    Deposit,
    PlaceOrder,
    Withdraw,
)
from engine_svc.core.parse import MAX_CLIENT_ID
from engine_svc.core.types import (
    ClientOrderId,
    Code,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tests.engine.core.driver import Exchange, seeded_listing
from tradekit.markets import MarketSpec
from tradekit.money import MAX_UNITS

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK

# Not plain decimal notation, whatever the field.
NOT_DECIMAL = [
    "-1",
    "-0.01",
    "+1",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e400",
    "1e3",
    "1E3",
    " 1",
    "1 ",
    "1\n",
    "1.",
    ".5",
    "0x10",
    "0b1",
    "1_000",
    "1,5",
    "1.0.0",
    "--1",
    "\uff11",  # fullwidth digit one
    "\u0663",  # Arabic-Indic digit three
    "9" * 31,  # longer than any amount may be written
]
ZERO = ["0", "0.00", "00", "0.000000"]
TOO_LARGE = "9" * 30  # plain, but above 2**62 units


def busy() -> Exchange:
    """Seeded markets plus TATA_USDT (min quantity 5 above a step of 1), some balances, resting
    orders on both sides of TATA_INR and BTC_USDT, and one trade so fees have been paid."""
    tata_usdt = MarketSpec(
        "TATA_USDT", "TATA", "USDT", "0.01", "1", "5", "10", "1000", "1000", 10, 20
    )
    ex = Exchange([*seeded_listing(), AddMarket(tata_usdt)])
    for user in ("alice", "bob"):
        ex.deposit(user, "1000", "TATA")
        ex.deposit(user, "1000000", "INR")
        ex.deposit(user, "10", "BTC")
        ex.deposit(user, "1000000", "USDT")
    ex.sell("alice", "10", at="101")
    ex.buy("bob", "10", at="99", client_id=1)
    ex.sell("alice", "0.5", at="30000", market="BTC_USDT")
    ex.buy("bob", "0.5", at="29000", market="BTC_USDT")
    ex.buy("bob", "2", at="101")
    return ex


@pytest.fixture
def shop() -> Exchange:
    return busy()


def place(**changes: Any) -> dict[str, Any]:
    """A valid limit buy on TATA_INR, with `changes`."""
    fields: dict[str, Any] = {
        "user": "alice",
        "side": BUY,
        "order_type": LIMIT,
        "market": "TATA_INR",
        "price": "100",
        "qty": "1",
    }
    fields.update(changes)
    return fields


def market_buy(**changes: Any) -> dict[str, Any]:
    """A valid market buy on TATA_INR for 100 INR, with `changes`."""
    return place(**{"order_type": MARKET, "price": "", "qty": "", "quote": "100", **changes})


def cases(
    code: Code, make: Callable[..., dict[str, Any]], field: str, values: list[Any]
) -> list[Any]:
    return [pytest.param(make(**{field: v}), code, id=f"{field}={v!r}") for v in values]


PLACE_CASES = [
    # price: limit orders only
    *cases(Code.INVALID_PRICE, place, "price", [*NOT_DECIMAL, *ZERO, "", TOO_LARGE]),
    *cases(Code.INVALID_PRICE, place, "price", ["100.001", "100.0001"]),  # INR has 2 decimals
    pytest.param(place(price="1000000.01"), Code.INVALID_PRICE, id="price above max"),
    pytest.param(
        place(market="BTC_USDT", price="30000.001", qty="0.001"),
        Code.INVALID_PRICE,
        id="price off tick (USDT has 6 decimals, tick 0.01)",
    ),
    # quantity, limit and market orders
    *cases(Code.INVALID_QUANTITY, place, "qty", [*NOT_DECIMAL, *ZERO, "", TOO_LARGE]),
    *cases(Code.INVALID_QUANTITY, place, "qty", ["1.5", "0.1"]),  # TATA has 0 decimals
    pytest.param(place(qty="1000001"), Code.INVALID_QUANTITY, id="quantity above max"),
    pytest.param(
        place(market="BTC_USDT", price="30000", qty="0.00015"),
        Code.INVALID_QUANTITY,
        id="quantity off step (BTC has 8 decimals, step 0.0001)",
    ),
    pytest.param(
        place(market="BTC_USDT", price="30000", qty="0.000000001"),
        Code.INVALID_QUANTITY,
        id="quantity with more decimals than BTC",
    ),
    pytest.param(
        place(market="TATA_USDT", price="10", qty="4"), Code.BELOW_MIN_QUANTITY, id="below min qty"
    ),
    pytest.param(place(price="0.99"), Code.BELOW_MIN_NOTIONAL, id="below min notional (1 INR)"),
    pytest.param(
        place(market="BTC_USDT", price="30000", qty="0.0001"),
        Code.BELOW_MIN_NOTIONAL,
        id="below min notional (5 USDT)",
    ),
    *cases(
        Code.INVALID_QUANTITY,
        lambda **kw: place(order_type=MARKET, price="", tif=IOC, **kw),
        "qty",
        [*NOT_DECIMAL, *ZERO, TOO_LARGE, "1.5", "1000001"],
    ),
    # quote quantity: market buys only
    *cases(Code.INVALID_AMOUNT, market_buy, "quote", [*NOT_DECIMAL, *ZERO, TOO_LARGE, "100.001"]),
    pytest.param(market_buy(quote="0.99"), Code.BELOW_MIN_NOTIONAL, id="quote below min notional"),
    # market
    *cases(Code.UNKNOWN_MARKET, place, "market", ["NOPE_INR", "", "tata_inr", "TATA_INR ", "TATA"]),
    # enums
    *cases(Code.INVALID_ORDER, place, "side", [0, 3, -1, 2**31]),
    *cases(Code.INVALID_ORDER, place, "order_type", [0, 3, -1]),
    *cases(Code.INVALID_ORDER, place, "tif", [4, -1, 99]),
    *cases(Code.INVALID_ORDER, place, "stp", [4, -1, 99]),
    # client id
    *cases(Code.INVALID_ORDER, place, "client_id", [-1, MAX_CLIENT_ID + 1, 2**64]),
    # user
    *cases(Code.INVALID_USER, place, "user", [0, -1]),
    # combinations that make no sense
    pytest.param(place(tif=IOC, post_only=True), Code.INVALID_ORDER, id="post-only IOC"),
    pytest.param(place(tif=FOK, post_only=True), Code.INVALID_ORDER, id="post-only FOK"),
    pytest.param(place(quote="100"), Code.INVALID_ORDER, id="limit with quote quantity"),
    pytest.param(
        place(order_type=MARKET, qty="1"), Code.INVALID_ORDER, id="market order with a price"
    ),
    pytest.param(
        place(order_type=MARKET, price="", qty="1", tif=GTC),
        Code.INVALID_ORDER,
        id="market order GTC",
    ),
    pytest.param(
        place(order_type=MARKET, price="", qty="1", post_only=True),
        Code.INVALID_ORDER,
        id="market order post-only",
    ),
    pytest.param(market_buy(qty="1"), Code.INVALID_ORDER, id="market with qty and quote"),
    pytest.param(
        place(order_type=MARKET, price="", qty=""), Code.INVALID_ORDER, id="market with no size"
    ),
    pytest.param(market_buy(side=SELL), Code.INVALID_ORDER, id="market sell by quote"),
    pytest.param(market_buy(tif=FOK), Code.INVALID_ORDER, id="market FOK by quote"),
    # business rules, for completeness: rejected the same way
    pytest.param(place(qty="10000"), Code.INSUFFICIENT_FUNDS, id="insufficient funds"),
    pytest.param(place(user="bob", client_id=1), Code.DUPLICATE_CLIENT_ID, id="duplicate cid"),
    pytest.param(place(price="101", post_only=True), Code.POST_ONLY_WOULD_TAKE, id="post-only"),
    pytest.param(place(price="101", qty="9", tif=FOK), Code.FOK_NOT_FILLABLE, id="fok"),
]


@pytest.mark.parametrize(("fields", "code"), PLACE_CASES)
def test_place_rejects(shop: Exchange, fields: dict[str, Any], code: Code) -> None:
    shop.rejects(code, lambda: shop.place(**fields))


def test_the_largest_client_id_is_accepted(shop: Exchange) -> None:
    assert shop.place(**place(client_id=MAX_CLIENT_ID)).rests


FUNDS_CASES = [
    *cases(Code.INVALID_AMOUNT, lambda **kw: kw, "amount", [*NOT_DECIMAL, *ZERO, "", TOO_LARGE]),
    pytest.param({"amount": "1.001"}, Code.INVALID_AMOUNT, id="more decimals than INR"),
    pytest.param({"amount": "1", "asset": "XYZ"}, Code.UNKNOWN_ASSET, id="unknown asset"),
    pytest.param({"amount": "1", "asset": "inr"}, Code.UNKNOWN_ASSET, id="lower-case asset"),
    pytest.param({"amount": "1", "asset": ""}, Code.UNKNOWN_ASSET, id="empty asset"),
    pytest.param({"amount": "1", "user": 0}, Code.INVALID_USER, id="fee account"),
    pytest.param({"amount": "1", "user": -1}, Code.INVALID_USER, id="negative user"),
]


@pytest.mark.parametrize("withdraw", [False, True], ids=["deposit", "withdraw"])
@pytest.mark.parametrize(("fields", "code"), FUNDS_CASES)
def test_funds_rejects(shop: Exchange, fields: dict[str, Any], code: Code, withdraw: bool) -> None:
    user, asset = fields.get("user", "alice"), fields.get("asset", "INR")
    action = shop.withdraw if withdraw else shop.deposit
    shop.rejects(code, lambda: action(user, fields["amount"], asset))


def test_funds_rejects_amounts_that_parse_but_do_not_fit(shop: Exchange) -> None:
    shop.rejects(Code.INSUFFICIENT_FUNDS, lambda: shop.withdraw("alice", "2000000", "INR"))
    shop.rejects(Code.BALANCE_LIMIT, lambda: shop.deposit("alice", str(MAX_UNITS // 100), "INR"))


def raw_place(**changes: Any) -> PlaceOrder:
    fields: dict[str, Any] = {
        "user": UserId(1),
        "market": "TATA_INR",
        "side": BUY,
        "type": LIMIT,
        "price": 10000,
        "qty": 1,
        "quote_qty": 0,
        "tif": GTC,
        "post_only": False,
        "client_id": ClientOrderId(0),
        "stp": SelfTradePrevention.REJECT_TAKER,
    }
    fields.update(changes)
    return PlaceOrder(**fields)


RAW_MARKET_BUY: dict[str, Any] = {"type": MARKET, "price": 0, "qty": 0, "tif": IOC}

# Commands in integer units, as a journal or another caller could hand them to the engine:
# it must defend itself, not trust the parser.
RAW_CASES = [
    pytest.param(raw_place(price=-10000), Code.INVALID_PRICE, id="negative price"),
    pytest.param(raw_place(price=0), Code.INVALID_PRICE, id="zero price"),
    pytest.param(raw_place(price=10001 * 10**8), Code.INVALID_PRICE, id="price above max"),
    pytest.param(raw_place(qty=-1), Code.INVALID_QUANTITY, id="negative quantity"),
    pytest.param(raw_place(qty=0), Code.INVALID_QUANTITY, id="zero quantity"),
    pytest.param(raw_place(qty=MAX_UNITS), Code.INVALID_QUANTITY, id="huge quantity"),
    pytest.param(
        raw_place(market="BTC_USDT", price=30000 * 10**6 + 1, qty=10**6),
        Code.INVALID_PRICE,
        id="off tick",
    ),
    pytest.param(
        raw_place(market="BTC_USDT", price=30000 * 10**6, qty=10**6 + 1),
        Code.INVALID_QUANTITY,
        id="off step",
    ),
    pytest.param(
        raw_place(**RAW_MARKET_BUY, quote_qty=-100), Code.INVALID_AMOUNT, id="negative quote"
    ),
    pytest.param(
        raw_place(**RAW_MARKET_BUY, quote_qty=MAX_UNITS + 1), Code.INVALID_AMOUNT, id="huge quote"
    ),
    pytest.param(
        raw_place(**{**RAW_MARKET_BUY, "qty": -1}), Code.INVALID_QUANTITY, id="market qty < 0"
    ),
    pytest.param(raw_place(user=UserId(0)), Code.INVALID_USER, id="fee account places"),
    pytest.param(raw_place(market="NOPE"), Code.UNKNOWN_MARKET, id="unknown market"),
    pytest.param(Deposit(UserId(1), "INR", 0), Code.INVALID_AMOUNT, id="deposit 0"),
    pytest.param(Deposit(UserId(1), "INR", -5), Code.INVALID_AMOUNT, id="deposit < 0"),
    pytest.param(Deposit(UserId(1), "INR", MAX_UNITS + 1), Code.INVALID_AMOUNT, id="deposit huge"),
    pytest.param(Deposit(UserId(1), "XYZ", 1), Code.UNKNOWN_ASSET, id="deposit unknown asset"),
    pytest.param(Withdraw(UserId(1), "INR", -5), Code.INVALID_AMOUNT, id="withdraw < 0"),
    pytest.param(Withdraw(UserId(1), "INR", 0), Code.INVALID_AMOUNT, id="withdraw 0"),
    pytest.param(CancelAllOrders(UserId(1), "NOPE"), Code.UNKNOWN_MARKET, id="cancel-all unknown"),
]


@pytest.mark.parametrize(("command", "code"), RAW_CASES)
def test_engine_rejects_raw_commands(shop: Exchange, command: Command, code: Code) -> None:
    shop.rejects(code, lambda: shop.apply(command))
