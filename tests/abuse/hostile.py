"""Hypothesis strategies for hostile input, and the error codes an answer may carry.

Values are drawn from what breaks parsers in practice: zero, negative, NaN, Infinity,
1e400, too many decimals, off-tick prices, huge quantities, unknown markets and assets,
wrong JSON types, unicode digits and very long strings.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Every stable code errors.py can answer a client's mistake with (never SERVER_ERROR, and
# never SERVICE_UNAVAILABLE while the stack is up).
CLIENT_ERRORS = frozenset(
    {
        "INVALID_CLIENT_REQUEST", "RESOURCE_NOT_FOUND", "METHOD_NOT_ALLOWED", "UNAUTHORIZED",
        "INVALID_SIGNATURE", "FORBIDDEN", "PAYLOAD_TOO_LARGE", "TOO_MANY_REQUESTS",
        "INVALID_QUANTITY", "INVALID_PRICE", "INVALID_ORDER", "INVALID_MARKET", "INVALID_ASSET",
        "TRADING_PAUSED", "ALREADY_EXISTS", "INSUFFICIENT_FUNDS", "DUPLICATE_CLIENT_ID",
        "FAUCET_LIMIT", "INVALID_PERMISSION", "INVALID_IP_ALLOWLIST", "INVALID_INTERVAL",
    }
)  # fmt: skip
# The WebSocket's error frames: code -> name (ws.py, documented in openapi.py).
WS_ERRORS = {
    4000: "INVALID_FRAME", 4001: "UNKNOWN_METHOD", 4002: "TOO_MANY_STREAMS",
    4003: "UNAUTHORIZED", 4004: "INVALID_MARKET", 4005: "TOO_MANY_CONNECTIONS",
    4006: "INVALID_STREAM", 4007: "UNAVAILABLE",
}  # fmt: skip

MARKETS = ["TATA_INR", "BTC_USDT"]
ASSETS = ["INR", "TATA", "USDT", "BTC"]

# Amounts no market may accept, whatever the rest of the order says.
BAD_AMOUNTS: list[Any] = [
    "0", "0.0", "-1", "-0.01", "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf",
    "1e400", "1E5", "1e-400", "0x10", "1_000", " 1", "1 ", "+1", "1.", ".5", "1..2", "--1",
    "\u0661\u0662\u0663", "\uff11\uff12", "1\u00b2", "0." + "0" * 40 + "1", "1" * 64, "9" * 40,
    "1" * 65, "99999999999999999999.99", "100000000000", "1e1000000000", "\x00", "1\x00",
    0, -1, -0.5, 1e300, 1.7976931348623157e308, 10**19, 2**64,
    True, False, [], {}, ["1"], {"value": "1"},
]  # fmt: skip
GOOD_PRICES = ["1600", "1600.5", "1600.25", "0.01", "25000.01"]
GOOD_QUANTITIES = ["1", "2", "0.001", "0.0001", "10"]

junk_text = st.text(max_size=40) | st.text(min_size=200, max_size=2000)
json_scalar = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | junk_text
)  # fmt: skip
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
hostile_amount = st.sampled_from(BAD_AMOUNTS) | json_value


def off_tick_or_too_fine(market: str) -> st.SearchStrategy[tuple[str, str]]:
    """(field, value) with more decimals than `market` allows in that field."""
    tick_digits, step_digits = {"TATA_INR": (2, 0), "BTC_USDT": (2, 4)}[market]
    return st.one_of(
        st.integers(1, 10**6).map(lambda n: ("price", f"{n}.{'0' * tick_digits}1")),
        st.integers(1, 100).map(lambda n: ("quantity", f"{n}.{'0' * step_digits}1")),
    )


@st.composite
def order_body(draw: st.DrawFn, *, hostile: bool) -> dict[str, Any]:
    """An order in either dialect; `hostile` makes every field a candidate for junk."""
    spec = draw(st.booleans())
    market = draw(st.sampled_from(MARKETS))
    side = draw(st.sampled_from(["buy", "sell"] if spec else ["Bid", "Ask"]))
    body: dict[str, Any] = {
        "market" if spec else "symbol": market,
        "side": side,
        "price": draw(st.sampled_from(GOOD_PRICES)),
        "quantity": draw(st.sampled_from(GOOD_QUANTITIES)),
    }
    if not spec:
        body["orderType"] = draw(st.sampled_from(["Limit", "Market", "limit"]))
    optional = {
        "timeInForce": st.sampled_from(["GTC", "IOC", "FOK", "ioc"]),
        "postOnly": st.booleans(),
        "clientId": st.integers(0, 2**32 - 1),
        "selfTradePrevention": st.sampled_from(["RejectTaker", "RejectMaker", "cancel_both"]),
        "quoteQuantity": st.sampled_from(["10", "100.5"]),
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=3)):
        body[name] = draw(optional[name])
    if hostile:
        junk = {
            "market": st.sampled_from(
                ["", "NOPE_INR", "tata_inr", "TATA-INR", "X" * 33, "\u0422\u0410\u0422\u0410_INR"]
            )
            | json_value,
            "symbol": json_value,
            "side": st.sampled_from(["", "BUY ", "bid\x00", "Sell", "long"]) | json_value,
            "price": hostile_amount,
            "quantity": hostile_amount,
            "quoteQuantity": hostile_amount,
            "orderType": junk_text | json_value,
            "timeInForce": junk_text | json_value,
            "postOnly": json_value,
            "clientId": st.sampled_from([-1, 2**32, 2**64, "²", "1" * 21, "0x1", 1.5]) | json_value,
            "selfTradePrevention": junk_text | json_value,
            "userId": st.sampled_from([0, 1, "2", -1, "9" * 30]),
            "triggerPrice": st.sampled_from(["1", "1600"]),
        }
        for name in draw(
            st.lists(st.sampled_from(sorted(junk)), unique=True, min_size=1, max_size=4)
        ):
            body[name] = draw(junk[name])
        if draw(st.booleans()):
            body[draw(junk_text)] = draw(json_value)  # an unknown field
    return body
