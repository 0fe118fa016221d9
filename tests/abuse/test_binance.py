"""The Binance dialect under abuse: HMAC-signed requests whose signature, key, timestamp or
recvWindow is wrong, stale, from the future or replayed, and well-signed orders whose
parameters are malformed or name no market. Every one is a 4xx with Binance's error body
(`{code: <negative int>, msg}`) and a code its clients map, and leaves the engine's state as
it was."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
from aiohttp import ClientResponse
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from tests.abuse.conftest import ABUSE
from tests.abuse.rest import funded_user, state_hash
from tests.abuse.tally import TALLY
from tests.gateway.conftest import Stack
from tests.gateway.test_binance_hmac import hmac_key
from tradekit.binance import hmac_signature

AUTH_CODES = {-1021, -1022, -1100, -1102, -2014, -2015}
PARAM_CODES = {-1100, -1102, -1111, -1013, -1115, -1116, -1117, -1121, -2010}
ORDER = {"symbol": "TATAINR", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
         "quantity": "1", "price": "100"}  # fmt: skip
# (method, path, params)
REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/api/v3/account", {}),
    ("POST", "/api/v3/order", ORDER),
    ("DELETE", "/api/v3/openOrders", {"symbol": "TATAINR"}),
]


@pytest.fixture
async def key(stack: Stack) -> dict[str, Any]:
    """A funded user's HMAC key."""
    return await hmac_key(stack, await funded_user(stack, "binance-abuse@example.test"))


_last_ms = [0]


def _fresh_ms() -> int:
    """Now in ms, but never the same twice: a request repeated within one millisecond would
    carry the same signature and be refused as a replay."""
    _last_ms[0] = max(int(time.time() * 1000), _last_ms[0] + 1)
    return _last_ms[0]


def signed(secret: str, params: dict[str, str], **fields: str) -> dict[str, str]:
    """`params` with a fresh timestamp (unless given) and a correct signature last."""
    full = {**params, "timestamp": str(_fresh_ms()), **fields}
    return {**full, "signature": hmac_signature(secret, urlencode(full))}


async def judged(stack: Stack, send: Callable[[], Awaitable[ClientResponse]]) -> tuple[int, Any]:
    """No 5xx; a refusal is Binance's error body and changes nothing in the engine."""
    before = await state_hash(stack)
    response = await send()
    text = await response.text()
    body = orjson.loads(text) if response.content_type == "application/json" else None
    code = body.get("code", "") if isinstance(body, dict) and response.status >= 400 else ""
    TALLY.answer("binance", response.status, str(code))
    assert response.status < 500, (response.status, text)
    if response.status >= 400:
        assert isinstance(body, dict), text
        assert set(body) == {"code", "msg"}, body
        assert isinstance(body["code"], int), body
        assert body["code"] < 0, body
        assert isinstance(body["msg"], str), body
        assert body["msg"], body
        after = await state_hash(stack)
        TALLY.state("binance", changed=before != after)
        assert before == after, f"refused ({response.status} {code}) but the state changed"
    return response.status, body


def send(stack: Stack, method: str, path: str, api_key: str, query: str) -> Any:
    """The request with its query exactly as signed (yarl would otherwise unquote `%2C` and
    the like, and the signature of the changed string would not match)."""
    url = URL(f"{path}?{query}", encoded=True)
    return lambda: stack.client.request(method, url, headers={"X-MBX-APIKEY": api_key})


text = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
far = st.integers(70_000, 10**12)


@st.composite
def tampering(draw: st.DrawFn) -> dict[str, Any]:
    """What to do to a correctly signed request: 1 to 3 of these, each enough to refuse it."""
    now = int(time.time() * 1000)
    choices = {
        "signature": st.sampled_from(["", "00" * 32, "ZZ" * 32]) | text,
        "timestamp": far.map(lambda d: str(now - d))
        | far.map(lambda d: str(now + d))
        | st.sampled_from(["\u00b2", "9" * 5000, "-5", "1e12", " 5"]),
        "recvWindow": st.sampled_from(["0", "60001", "-1", "5000.0", "9" * 30]),
        "key": st.sampled_from(["A" * 64, "", "not a key", "A" * 63, "A" * 44]),
        "append": st.just("omitZeroBalances=true"),  # a parameter added after signing
    }
    names = draw(st.lists(st.sampled_from(sorted(choices)), unique=True, min_size=1, max_size=3))
    return {name: draw(choices[name]) for name in names}


@ABUSE
@given(request=st.sampled_from(REQUESTS), changes=tampering())
async def test_tampered_hmac_requests_are_refused_and_change_nothing(
    stack: Stack, key: dict[str, Any], request: tuple[str, str, dict[str, str]],
    changes: dict[str, Any],
) -> None:  # fmt: skip
    method, path, params = request
    fields = {k: changes[k] for k in ("timestamp", "recvWindow") if k in changes}
    # A changed timestamp or window is signed correctly: the server must refuse the value.
    query = signed(key["secret"], params, **fields)
    if "signature" in changes:
        query["signature"] = changes["signature"]
    sent = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    if "append" in changes:
        sent += "&" + changes["append"]
    api_key = changes.get("key", key["apiKey"])
    status, answer = await judged(stack, send(stack, method, path, api_key, sent))
    assert status in (400, 401), (changes, answer)
    assert answer["code"] in AUTH_CODES, (changes, answer)


@ABUSE
@given(request=st.sampled_from(REQUESTS))
async def test_a_replayed_hmac_request_is_refused(
    stack: Stack, key: dict[str, Any], request: tuple[str, str, dict[str, str]]
) -> None:
    method, path, params = request
    query = urlencode(signed(key["secret"], params))
    first, _ = await judged(stack, send(stack, method, path, key["apiKey"], query))
    assert first == 200
    again, answer = await judged(stack, send(stack, method, path, key["apiKey"], query))
    assert (again, answer["code"]) == (401, -1022)


bad_order_field = st.sampled_from(
    [
        ("symbol", st.sampled_from(["", "NOPE", "tatainr", "TATA_INR", "X" * 5000])),
        ("side", st.sampled_from(["", "buy", "HOLD"]) | text),
        ("type", st.sampled_from(["", "limit", "ICEBERG", "OCO"]) | text),
        ("timeInForce", st.sampled_from(["gtc", "GTX", "DAY"])),
        ("quantity", st.sampled_from(["", "0", "-1", "1e3", "NaN", "1.0000000001", "9" * 30])),
        ("price", st.sampled_from(["0", "-100", "inf", "100.001", "1,5", "9" * 30])),
        ("newClientOrderId", st.sampled_from(["a" * 37, "has space", "é"])),
        ("newOrderRespType", st.sampled_from(["full", "NONE"])),
        ("selfTradePreventionMode", st.sampled_from(["DECREMENT", "none"])),
        ("stopPrice", st.just("90")),  # not a stop order
        ("trailingDelta", st.just("100")),
        ("quoteOrderQty", st.just("100")),  # with quantity on a limit order
    ]
)


@st.composite
def malformed_order(draw: st.DrawFn) -> dict[str, str]:
    name, values = draw(bad_order_field)
    return {**ORDER, name: draw(values)}


@ABUSE
@given(params=malformed_order())
async def test_malformed_orders_are_refused_and_change_nothing(
    stack: Stack, key: dict[str, Any], params: dict[str, str]
) -> None:
    query = urlencode(signed(key["secret"], params))
    status, answer = await judged(stack, send(stack, "POST", "/api/v3/order", key["apiKey"], query))
    if params.get("quoteOrderQty"):  # a LIMIT order ignores it, as Binance does
        return
    assert status == 400, (query, answer)
    assert answer["code"] in PARAM_CODES, (params, answer)
    if params["symbol"] != ORDER["symbol"]:
        assert answer["code"] in (-1121, -1102, -1100), (params, answer)


async def test_unknown_symbols_and_broken_bodies(stack: Stack, key: dict[str, Any]) -> None:
    api_key = key["apiKey"]
    for path in ("/api/v3/depth", "/api/v3/klines", "/api/v3/ticker/24hr", "/api/v3/avgPrice"):
        status, answer = await judged(
            stack,
            lambda p=path: stack.client.get(f"{p}?symbol=NOPE&interval=1m"),  # type: ignore[misc]
        )
        assert (status, answer["code"]) == (400, -1121), path
    query = urlencode(signed(key["secret"], {**ORDER, "symbol": "NOPE"}))
    status, answer = await judged(stack, send(stack, "POST", "/api/v3/order", api_key, query))
    assert (status, answer["code"]) == (400, -1121)
    # The same parameter twice, and a body that is not a query string.
    twice = urlencode(signed(key["secret"], ORDER)) + "&side=SELL"
    status, answer = await judged(stack, send(stack, "POST", "/api/v3/order", api_key, twice))
    assert (status, answer["code"]) == (400, -1100)
    status, answer = await judged(
        stack,
        lambda: stack.client.post(
            "/api/v3/order",
            data=b"{not a form}",
            headers={"X-MBX-APIKEY": api_key, "Content-Type": "application/json"},
        ),
    )
    assert status == 400
    assert answer["code"] == -1100


async def test_exhausted_weight_and_order_budgets_refuse_and_change_nothing(
    stack_factory: Any,
) -> None:
    """Over the orders per 10 s: 429 -1015; over the weight per minute: 429 -1003 on every
    route, signed or not. Both with Retry-After, neither placing anything. A budget of 2 a
    minute comes back at one unit per 30 s, so the refusals do not depend on the test's pace."""
    stack: Stack = await stack_factory(binance_weight_1m=2, binance_orders_10s=1)
    key = await hmac_key(stack, await funded_user(stack, "binance-budget@example.test"))
    api_key, secret = key["apiKey"], key["secret"]
    answers: list[ClientResponse] = []

    def kept(method: str, path: str, params: dict[str, str]) -> Callable[[], Any]:
        async def go() -> ClientResponse:
            query = urlencode(signed(secret, params))
            answers.append(await send(stack, method, path, api_key, query)())
            return answers[-1]

        return go

    status, _ = await judged(stack, kept("POST", "/api/v3/order", ORDER))
    assert status == 200
    status, answer = await judged(stack, kept("POST", "/api/v3/order", {**ORDER, "price": "101"}))
    assert (status, answer["code"]) == (429, -1015)
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # Both orders spent the weight (the refused one too): everything is refused now.
    for method, path, params in [*REQUESTS, ("GET", "/api/v3/exchangeInfo", {})]:
        status, answer = await judged(stack, kept(method, path, params))
        assert (status, answer["code"]) == (429, -1003), path
        assert int(answers[-1].headers["Retry-After"]) >= 1


async def test_time_spans_wider_than_binance_allows_are_refused(
    stack: Stack, key: dict[str, Any]
) -> None:
    """allOrders and myTrades: startTime..endTime at most 24 hours; aggTrades: 1 hour. One
    millisecond more is 400 -1127 with Binance's message; exactly the span is answered."""
    hour = 3_600_000
    start = _fresh_ms() - 48 * hour
    spans = [("/api/v3/allOrders", 24, True), ("/api/v3/myTrades", 24, True),
             ("/api/v3/aggTrades", 1, False)]  # fmt: skip
    for path, hours, private in spans:
        for end, refused in ((start + hours * hour + 1, True), (start + hours * hour, False)):
            params = {"symbol": "TATAINR", "startTime": str(start), "endTime": str(end)}
            query = urlencode(signed(key["secret"], params) if private else params)
            status, answer = await judged(stack, send(stack, "GET", path, key["apiKey"], query))
            if refused:
                message = f"More than {hours} hours between startTime and endTime."
                assert (status, answer) == (400, {"code": -1127, "msg": message}), path
            else:
                assert (status, answer) == (200, []), path
