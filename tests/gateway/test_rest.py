"""The REST API end to end: gateway → engine and ledger, real PostgreSQL and Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.gateway.conftest import Stack
from tests.gateway.signing import signed_headers
from tests.monitoring.scrape import Page


async def signup(stack: Stack, email: str) -> tuple[int, dict[str, str]]:
    response = await stack.client.post(
        "/api/v1/auth/signup", json={"email": email, "password": "a good password"}
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    return int(body["userId"]), {"Authorization": f"Bearer {body['token']}"}


async def fund(stack: Stack, auth: dict[str, str], asset: str, amount: str) -> None:
    response = await stack.client.post(
        "/api/v1/onramp", json={"asset": asset, "amount": amount}, headers=auth
    )
    assert response.status == 200, await response.text()


async def error_of(response: Any) -> tuple[int, str]:
    body = await response.json()
    assert body["error"]["code"] == body["code"]
    return response.status, body["code"]


async def test_two_users_trade_in_the_spec_dialect(stack: Stack) -> None:
    alice, alice_auth = await signup(stack, "alice@example.com")
    bob, bob_auth = await signup(stack, "bob@example.com")
    await fund(stack, alice_auth, "TATA", "100")
    await fund(stack, bob_auth, "INR", "100000")
    client = stack.client

    sell = await client.post(
        "/api/v1/order",
        json={
            "market": "TATA_INR",
            "price": "1600",
            "quantity": "7",
            "side": "sell",
            "userId": alice,
        },
        headers=alice_auth,
    )
    assert sell.status == 200, await sell.text()
    sold = await sell.json()
    assert (sold["status"], sold["executedQty"], sold["fills"]) == ("New", "0", [])

    depth = await (await client.get("/api/v1/depth?symbol=TATA_INR")).json()
    assert depth["asks"] == [["1600.00", "7"]]
    assert depth["bids"] == []
    assert int(depth["lastUpdateId"]) > 0
    assert depth["timestamp"] > 1_600_000_000_000_000  # microseconds

    buy = await client.post(
        "/api/v1/order",
        json={"market": "TATA_INR", "price": "1601", "quantity": "10", "side": "buy"},
        headers=bob_auth,
    )
    bought = await buy.json()
    assert bought["userId"] == str(bob)
    assert bought["executedQty"] == "7"
    assert [(f["price"], f["qty"]) for f in bought["fills"]] == [("1600.00", "7")]
    assert bought["status"] == "PartiallyFilled"

    open_orders = await (
        await client.get("/api/v1/openOrders?market=TATA_INR", headers=bob_auth)
    ).json()
    assert [o["orderId"] for o in open_orders] == [bought["orderId"]]
    # Alice cannot see or cancel Bob's order; nothing changes.
    for response in (
        await client.get(f"/api/v1/order?orderId={bought['orderId']}", headers=alice_auth),
        await client.delete(
            "/api/v1/order",
            json={"orderId": bought["orderId"], "market": "TATA_INR"},
            headers=alice_auth,
        ),
    ):
        assert await error_of(response) == (404, "RESOURCE_NOT_FOUND")
    cancelled = await client.delete(
        "/api/v1/order", json={"orderId": bought["orderId"], "market": "TATA_INR"}, headers=bob_auth
    )
    assert (await cancelled.json())["status"] == "Cancelled"

    capital = await (await client.get("/api/v1/capital", headers=bob_auth)).json()
    assert capital["TATA"] == {"available": "7", "locked": "0", "staked": "0"}

    await stack.caught_up()
    trades = await (await client.get("/api/v1/trades?symbol=TATA_INR")).json()
    assert [(t["price"], t["quantity"], t["isBuyerMaker"]) for t in trades] == [
        ("1600.00", "7", False)
    ]
    now = int(time.time())
    klines = await (
        await client.get(f"/api/v1/klines?symbol=TATA_INR&interval=1m&startTime={now - 600}")
    ).json()
    assert [(k["open"], k["close"], k["volume"], k["trades"]) for k in klines] == [
        ("1600.00", "1600.00", "7", "1")
    ]
    # endTime holds the candle that began within its second, and not one after it.
    began = int(datetime.fromisoformat(klines[0]["start"]).replace(tzinfo=UTC).timestamp())
    for end, expected in ((began, 1), (began - 1, 0)):
        url = f"/api/v1/klines?symbol=TATA_INR&interval=1m&startTime={began - 60}&endTime={end}"
        assert len(await (await client.get(url)).json()) == expected
    ticker = await (await client.get("/api/v1/ticker/24hr?symbol=TATA_INR")).json()
    assert (ticker["lastPrice"], ticker["volume"], ticker["trades"]) == ("1600.00", "7", "1")
    tickers = await (await client.get("/api/v1/tickers")).json()
    assert "TATA_INR" in [t["symbol"] for t in tickers]
    history = await (
        await client.get("/wapi/v1/history/orders?symbol=TATA_INR", headers=bob_auth)
    ).json()
    assert [o["status"] for o in history] == ["Cancelled"]
    fills = await (await client.get("/wapi/v1/history/fills", headers=alice_auth)).json()
    assert [(f["side"], f["quantity"], f["isMaker"]) for f in fills] == [("Ask", "7", True)]


async def test_a_user_id_that_is_not_the_caller_is_forbidden(stack: Stack) -> None:
    _, auth = await signup(stack, "carol@example.com")
    await fund(stack, auth, "INR", "1000")
    response = await stack.client.post(
        "/api/v1/order",
        json={"market": "TATA_INR", "price": "10", "quantity": "1", "side": "buy", "userId": 999},
        headers=auth,
    )
    assert await error_of(response) == (403, "FORBIDDEN")
    capital = await (await stack.client.get("/api/v1/capital", headers=auth)).json()
    assert capital["INR"]["locked"] == "0.00"
    for bad in ("", "-1", "x"):  # not a user id at all: a bad request, not "someone else"
        response = await stack.client.get(f"/api/v1/capital?userId={bad}", headers=auth)
        assert await error_of(response) == (400, "INVALID_CLIENT_REQUEST")


async def test_bad_requests_get_4xx_with_stable_codes(stack: Stack) -> None:
    _, auth = await signup(stack, "dave@example.com")
    await fund(stack, auth, "INR", "1000")
    client = stack.client
    order = {
        "symbol": "TATA_INR",
        "side": "Bid",
        "orderType": "Limit",
        "price": "10",
        "quantity": "1",
    }
    cases = [
        (
            client.post("/api/v1/order", data=b"{not json", headers=auth),
            (400, "INVALID_CLIENT_REQUEST"),
        ),
        (
            client.post("/api/v1/order", json={**order, "symbol": "NOPE_INR"}, headers=auth),
            (400, "INVALID_MARKET"),
        ),
        (
            client.post("/api/v1/order", json={**order, "price": "10.001"}, headers=auth),
            (400, "INVALID_PRICE"),
        ),
        (
            client.post("/api/v1/order", json={**order, "price": "NaN"}, headers=auth),
            (400, "INVALID_PRICE"),
        ),
        (
            client.post("/api/v1/order", json={**order, "quantity": "-1"}, headers=auth),
            (400, "INVALID_QUANTITY"),
        ),
        (
            client.post("/api/v1/order", json={**order, "side": "Up"}, headers=auth),
            (400, "INVALID_CLIENT_REQUEST"),
        ),
        (
            client.post("/api/v1/order", json={**order, "quantity": 10**30}, headers=auth),
            (400, "INVALID_QUANTITY"),
        ),
        (
            client.post("/api/v1/order", json={**order, "price": "1000"}, headers=auth),
            (400, "INSUFFICIENT_FUNDS"),
        ),
        (client.post("/api/v1/order", json=order), (401, "UNAUTHORIZED")),
        (
            client.post("/api/v1/order", json=order, headers={"Authorization": "Bearer x.y.z"}),
            (401, "UNAUTHORIZED"),
        ),
        (
            client.post("/api/v1/order", data=b"x" * 70_000, headers=auth),
            (413, "PAYLOAD_TOO_LARGE"),
        ),
        (client.get("/api/v1/depth"), (400, "INVALID_CLIENT_REQUEST")),
        (client.get("/api/v1/depth?symbol=NOPE"), (400, "INVALID_MARKET")),
        (client.get("/api/v1/klines?symbol=TATA_INR&interval=7m"), (400, "INVALID_CLIENT_REQUEST")),
        (client.get("/api/v1/nothing-here"), (404, "RESOURCE_NOT_FOUND")),
        # A NUL names no market; PostgreSQL could not even compare it.
        (
            client.get("/wapi/v1/history/fills?symbol=TATA%00INR", headers=auth),
            (400, "INVALID_CLIENT_REQUEST"),
        ),
    ]
    for call, expected in cases:
        assert await error_of(await call) == expected
    capital = await (await client.get("/api/v1/capital", headers=auth)).json()
    assert capital["INR"] == {"available": "1000.00", "locked": "0.00", "staked": "0"}


async def test_signed_requests_are_verified(stack: Stack) -> None:
    _, auth = await signup(stack, "erin@example.com")
    client = stack.client
    created = await (
        await client.post("/api/v1/auth/apikeys", json={"label": "bot"}, headers=auth)
    ).json()
    secret = created["secret"]

    ok = await client.get("/api/v1/capital", headers=signed_headers(secret, "balanceQuery"))
    assert ok.status == 200
    headers = signed_headers(secret, "balanceQuery")
    assert (await client.get("/api/v1/capital", headers=headers)).status == 200
    assert await error_of(await client.get("/api/v1/capital", headers=headers)) == (
        401,
        "INVALID_SIGNATURE",
    )
    stale = signed_headers(secret, "balanceQuery", timestamp_ms=int(time.time() * 1000) - 60_000)
    assert await error_of(await client.get("/api/v1/capital", headers=stale)) == (
        401,
        "UNAUTHORIZED",
    )
    future = signed_headers(secret, "balanceQuery", timestamp_ms=int(time.time() * 1000) + 60_000)
    assert await error_of(await client.get("/api/v1/capital", headers=future)) == (
        401,
        "UNAUTHORIZED",
    )
    wide = signed_headers(secret, "balanceQuery", window_ms=120_000)
    assert await error_of(await client.get("/api/v1/capital", headers=wide)) == (
        401,
        "UNAUTHORIZED",
    )
    wrong = signed_headers(secret, "orderQuery")  # signed for another instruction
    assert await error_of(await client.get("/api/v1/capital", headers=wrong)) == (
        401,
        "INVALID_SIGNATURE",
    )

    revoked = await client.delete(
        "/api/v1/auth/apikeys", json={"keyId": created["keyId"]}, headers=auth
    )
    assert (await revoked.json())["revokedAt"] is not None
    after = await client.get("/api/v1/capital", headers=signed_headers(secret, "balanceQuery"))
    assert await error_of(after) == (401, "UNAUTHORIZED")


async def test_order_actions_are_rate_limited(stack_factory: Any) -> None:
    stack: Stack = await stack_factory(order_rate=2)
    _, auth = await signup(stack, "frank@example.com")
    await fund(stack, auth, "INR", "1000")
    order = {"symbol": "TATA_INR", "side": "Bid", "price": "1", "quantity": "1"}
    limited_before = await rate_limited(stack)
    statuses = []
    for _ in range(3):
        response = await stack.client.post("/api/v1/order", json=order, headers=auth)
        statuses.append(response.status)
    # The faucet call was the first of the two actions allowed in a burst.
    assert statuses == [200, 429, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert await rate_limited(stack) == limited_before + 2


async def rate_limited(stack: Stack) -> float:
    """The gateway's count of requests refused by the order rule (one registry per process,
    so tests compare before and after)."""
    page = Page(await (await stack.client.get("/metrics")).text())
    return page.value("gateway_rate_limited_total", rule="orders") or 0.0


async def test_health_and_metrics(stack: Stack) -> None:
    health = await stack.client.get("/health")
    assert health.status == 200
    assert (await health.json())["engine"] == "ok"
    metrics = await (await stack.client.get("/metrics")).text()
    assert "gateway_requests_total" in metrics


async def test_a_batch_answers_each_order_on_its_own(stack: Stack) -> None:
    _, auth = await signup(stack, "grace@example.com")
    await fund(stack, auth, "INR", "1000")
    order = {"symbol": "TATA_INR", "side": "Bid", "orderType": "Limit", "quantity": "1"}
    response = await stack.client.post(
        "/api/v1/orders",
        json=[{**order, "price": "100"}, {**order, "price": "5000"}],
        headers=auth,
    )
    assert response.status == 200
    placed, refused = await response.json()
    assert (placed["status"], placed["price"]) == ("New", "100.00")
    assert refused["code"] == refused["error"]["code"] == "INSUFFICIENT_FUNDS"
    assert refused["error"]["details"] == {
        "reason": "INSUFFICIENT_FUNDS",
        "asset": "INR",
        "required": "5005.00",  # price x quantity + the taker fee it may pay
        "available": "899.90",
    }
    capital = await (await stack.client.get("/api/v1/capital", headers=auth)).json()
    assert capital["INR"]["locked"] == "100.10"  # only the first order locks funds
