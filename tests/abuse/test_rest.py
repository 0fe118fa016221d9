"""Hostile REST input against the real stack: order bodies in both dialects, batches, the
faucet, raw bodies and query strings. Nothing may answer 5xx, every refusal carries a
documented code, and a refused request changes nothing in the engine."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from tests.abuse.conftest import ABUSE
from tests.abuse.hostile import (
    ASSETS,
    BAD_AMOUNTS,
    CLIENT_ERRORS,
    GOOD_QUANTITIES,
    MARKETS,
    hostile_amount,
    json_value,
    junk_text,
    off_tick_or_too_fine,
    order_body,
)
from tests.abuse.rest import funded_user, judged
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack

BODY_ENDPOINTS = [
    ("POST", "/api/v1/order"),
    ("POST", "/api/v1/orders"),
    ("DELETE", "/api/v1/order"),
    ("DELETE", "/api/v1/orders"),
    ("POST", "/api/v1/onramp"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/apikeys"),
]
QUERY_ENDPOINTS = [
    ("GET", "/api/v1/depth"),
    ("GET", "/api/v1/klines"),
    ("GET", "/api/v1/trades"),
    ("GET", "/api/v1/ticker"),
    ("GET", "/api/v1/market"),
    ("GET", "/api/v1/order"),
    ("GET", "/api/v1/orders"),
    ("GET", "/wapi/v1/history/orders"),
    ("GET", "/wapi/v1/history/fills"),
    ("DELETE", "/api/v1/order"),
]
QUERY_FIELDS = ["symbol", "market", "limit", "interval", "startTime", "endTime", "orderId",
                "clientId", "from", "to", "status", "userId"]  # fmt: skip
# What a refused limit order with a bad price, quantity, market or side may be told.
MAX_LINE = 8190  # aiohttp's limit on a request line
AMOUNT_ERRORS = {"INVALID_PRICE", "INVALID_QUANTITY", "INVALID_ORDER", "INVALID_CLIENT_REQUEST"}
MARKET_ERRORS = {"INVALID_MARKET", "INVALID_CLIENT_REQUEST"}


@pytest.fixture
async def auth(stack: Stack) -> dict[str, str]:
    """One funded user for all the examples of a test: valid orders can pass, and rest."""
    return await funded_user(stack, "hostile@example.test")


@ABUSE
@given(body=order_body(hostile=True))
async def test_hostile_order_bodies_are_refused_and_change_nothing(
    stack: Stack, auth: dict[str, str], body: dict[str, Any]
) -> None:
    await judged("rest", stack, lambda: stack.client.post("/api/v1/order", json=body, headers=auth))


@st.composite
def refused_limit_order(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A limit order, either dialect, with one field no market accepts; and the codes a
    refusal of it may carry."""
    market = draw(st.sampled_from(MARKETS))
    spec = draw(st.booleans())
    body: dict[str, Any] = {
        "market" if spec else "symbol": market,
        "side": draw(st.sampled_from(["buy", "sell"] if spec else ["Bid", "Ask"])),
        "orderType": "Limit",
        "price": "1600",
        "quantity": draw(st.sampled_from(GOOD_QUANTITIES[:2])),
    }
    kind = draw(st.sampled_from(["amount", "fine", "market"]))
    if kind == "amount":
        body[draw(st.sampled_from(["price", "quantity"]))] = draw(st.sampled_from(BAD_AMOUNTS))
        return body, AMOUNT_ERRORS
    if kind == "fine":
        field, value = draw(off_tick_or_too_fine(market))
        body[field] = value
        return body, AMOUNT_ERRORS
    unknown = st.sampled_from(["NOPE_INR", "TATA_USDT", "tata_inr", "INR_TATA", "X" * 32])
    body["market" if spec else "symbol"] = draw(
        unknown | junk_text.filter(lambda t: t not in MARKETS and t != "")
    )
    return body, MARKET_ERRORS


@ABUSE
@given(case=refused_limit_order())
async def test_amounts_no_market_allows_are_refused_with_their_code(
    stack: Stack, auth: dict[str, str], case: tuple[dict[str, Any], set[str]]
) -> None:
    body, codes = case
    status, answer = await judged(
        "rest", stack, lambda: stack.client.post("/api/v1/order", json=body, headers=auth)
    )
    assert status == 400, (body, answer)
    assert answer["code"] in codes, (body, answer)


@ABUSE
@given(
    orders=st.lists(order_body(hostile=True), max_size=5)
    | st.lists(json_value, max_size=5)
    | st.integers(101, 300).map(lambda n: [{"symbol": "TATA_INR"}] * n)
)
async def test_hostile_batches_answer_per_order_codes(
    stack: Stack, auth: dict[str, str], orders: list[Any]
) -> None:
    status, answer = await judged(
        "rest", stack, lambda: stack.client.post("/api/v1/orders", json=orders, headers=auth)
    )
    if status == 200:  # each order's own answer: an order, or a documented error
        assert len(answer) == len(orders)
        for item in answer:
            assert "orderId" in item or item["code"] in CLIENT_ERRORS, item


@ABUSE
@given(
    body=st.fixed_dictionaries(
        {"asset": st.sampled_from([*ASSETS, "NOPE", "inr", ""]) | json_value,
         "amount": hostile_amount | st.sampled_from(["1", "0.5", "100001", "0.001"])}
    )
)  # fmt: skip
async def test_hostile_faucet_requests_are_refused_and_change_nothing(
    stack: Stack, auth: dict[str, str], body: dict[str, Any]
) -> None:
    await judged(
        "rest", stack, lambda: stack.client.post("/api/v1/onramp", json=body, headers=auth)
    )


raw_body = st.one_of(
    st.binary(max_size=300),
    junk_text.map(str.encode),
    st.sampled_from(
        [
            b"null",
            b"1",
            b'"x"',
            b"true",
            b"1e400",
            b"NaN",
            b"[]",
            b"{",
            b'{"a":}',
            b"[" * 5000 + b"]" * 5000,
            b"\xff\xfe{}",
            b'{"price": Infinity}',
        ]
    ),
    st.integers(65_537, 200_000).map(lambda n: b'{"x": "' + b"a" * n + b'"}'),
)


@ABUSE
@given(endpoint=st.sampled_from(BODY_ENDPOINTS), body=raw_body, typed=st.booleans())
async def test_malformed_and_oversized_bodies_get_4xx(
    stack: Stack, auth: dict[str, str], endpoint: tuple[str, str], body: bytes, typed: bool
) -> None:
    method, path = endpoint
    headers = {**auth, "Content-Type": "application/json"} if typed else auth
    status, _ = await judged(
        "rest", stack, lambda: stack.client.request(method, path, data=body, headers=headers)
    )
    if len(body) > 65_536:
        assert status == 413


@ABUSE
@given(
    endpoint=st.sampled_from(QUERY_ENDPOINTS),
    query=st.dictionaries(
        st.sampled_from(QUERY_FIELDS) | junk_text,
        st.sampled_from(["", "-1", "1e400", "NaN", "9" * 30, "\u00b2", "TATA_INR", "1m"])
        | junk_text,
        max_size=4,
    ),
)
async def test_hostile_query_strings_get_4xx_or_an_answer(
    stack: Stack, auth: dict[str, str], endpoint: tuple[str, str], query: dict[str, str]
) -> None:
    method, path = endpoint
    pairs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    target = f"{path}?{pairs}"
    # The client sends the target as yarl re-quotes it (characters a query may hold, such as
    # "/" or ":", unescaped): that length is what the server's parser measures.
    if len(URL(target).raw_path_qs) > MAX_LINE:
        # aiohttp's HTTP parser refuses the request line before the app sees it: a plain
        # 400 without the JSON body (tallied under its own label, not an API code).
        response = await stack.client.request(method, target, headers=auth)
        TALLY.answer("rest", response.status, "(http parser: line too long)")
        assert response.status == 400
        return
    await judged("rest", stack, lambda: stack.client.request(method, target, headers=auth))
