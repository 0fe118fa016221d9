"""Binance's weight-based limits: every `/api/v3` request costs its route's weight against
its client address's budget per minute, and every new order counts against its user's
orders per 10 seconds, both in Redis (`RateLimiter`, GCRA) so every replica counts the same.

Answers carry what is used, as Binance's do: `X-MBX-USED-WEIGHT-1M` and, on new orders,
`X-MBX-ORDER-COUNT-10S`. Over a budget: 429 with `Retry-After`, code -1003 (weight) or
-1015 (orders). With GCRA "used" is the budget less what a burst could still spend now,
which falls smoothly as time passes instead of all at once at a minute's edge.

The weights are Binance's published ones for the same requests. These limits replace the
per-address market-data rule on `/api/v3`; the per-user order rule of every dialect still
applies to orders and cancels (`context.caller`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from gateway_svc.binance.errors import PREFIX
from gateway_svc.context import RATE_HEADERS, backends
from gateway_svc.errors import ApiError, Handler
from gateway_svc.limits import Rule

WEIGHT_RULE = "binance-weight"
ORDERS_RULE = "binance-orders"
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
ORDERS_HEADER = "X-MBX-ORDER-COUNT-10S"

Weight = Callable[[Mapping[str, str]], int]


def _fixed(weight: int) -> Weight:
    return lambda _: weight


def _depth(p: Mapping[str, str]) -> int:
    limit = p.get("limit", "100")
    size = int(limit) if limit.isascii() and limit.isdigit() and len(limit) < 6 else 100
    return 5 if size <= 100 else 25 if size <= 500 else 50 if size <= 1000 else 250


def _per_symbol(one: int, every: int) -> Weight:
    return lambda p: one if p.get("symbol") else every


WEIGHTS: dict[tuple[str, str], Weight] = {
    ("GET", "/api/v3/ping"): _fixed(1),
    ("GET", "/api/v3/time"): _fixed(1),
    ("GET", "/api/v3/exchangeInfo"): _fixed(20),
    ("GET", "/api/v3/depth"): _depth,
    ("GET", "/api/v3/trades"): _fixed(25),
    ("GET", "/api/v3/aggTrades"): _fixed(4),
    ("GET", "/api/v3/historicalTrades"): _fixed(25),
    ("GET", "/api/v3/klines"): _fixed(2),
    ("GET", "/api/v3/uiKlines"): _fixed(2),
    ("GET", "/api/v3/ticker/24hr"): _per_symbol(2, 80),
    ("GET", "/api/v3/ticker/price"): _per_symbol(2, 4),
    ("GET", "/api/v3/ticker/bookTicker"): _per_symbol(2, 4),
    ("GET", "/api/v3/avgPrice"): _fixed(2),
    ("POST", "/api/v3/order"): _fixed(1),
    ("POST", "/api/v3/order/test"): _fixed(1),
    ("GET", "/api/v3/order"): _fixed(4),
    ("DELETE", "/api/v3/order"): _fixed(1),
    ("GET", "/api/v3/openOrders"): _per_symbol(6, 80),
    ("DELETE", "/api/v3/openOrders"): _fixed(1),
    ("GET", "/api/v3/allOrders"): _fixed(20),
    ("GET", "/api/v3/myTrades"): _fixed(20),
    ("GET", "/api/v3/account"): _fixed(20),
    ("GET", "/api/v3/rateLimit/order"): _fixed(40),
}
DEFAULT_WEIGHT = 2  # any other /api/v3 route (the listen-key routes weigh 2 at Binance too)


def weight_rule(request: web.Request) -> Rule:
    return Rule(WEIGHT_RULE, backends(request).settings.binance_weight_1m, 60.0)


def orders_rule(request: web.Request) -> Rule:
    return Rule(ORDERS_RULE, backends(request).settings.binance_orders_10s, 10.0)


def _headers(request: web.Request, found: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = request.setdefault(RATE_HEADERS, {})
    headers.update(found)
    return headers


@web.middleware
async def charge_weight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request's weight against its address before anything else is done."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    weigh = WEIGHTS.get((request.method, request.path))
    rule = weight_rule(request)
    cost = min(weigh(request.query) if weigh else DEFAULT_WEIGHT, rule.limit)
    decision = await backends(request).rate.hit(rule, f"ip:{request.remote}", cost)
    used = {WEIGHT_HEADER: str(rule.limit - decision.remaining)}
    if not decision.allowed:
        raise ApiError(
            429,
            "TOO_MANY_REQUESTS",
            f"Too many requests; current limit of IP is {rule.limit} request weight per 1 MINUTE.",
            headers={**used, **decision.headers()},
        )
    _headers(request, used)
    return await handler(request)


async def count_order(request: web.Request, user_id: int) -> None:
    """Count a new order of the user; 429 -1015 when over the budget."""
    rule = orders_rule(request)
    decision = await backends(request).rate.hit(rule, f"user:{user_id}")
    used = {ORDERS_HEADER: str(rule.limit - decision.remaining)}
    if not decision.allowed:
        raise ApiError(
            429,
            "TOO_MANY_ORDERS",
            f"Too many new orders; current limit is {rule.limit} orders per 10 SECOND.",
            headers={**_headers(request, used), **decision.headers()},
        )
    _headers(request, used)


async def order_count(request: web.Request, user_id: int) -> int:
    """The user's orders counted in the last 10 seconds, counting none."""
    return await backends(request).rate.used(orders_rule(request), f"user:{user_id}")
