"""Cross-origin requests: which web pages may call the API, by aiohttp-cors.

Only the configured origins (GATEWAY_CORS_ORIGINS; by default the gateway's own URL as
`make run` prints it) get CORS headers: their preflights are answered with the methods, the
signing headers and a max-age; any other origin gets no grant, so a browser keeps the
answer from its page. No credentials (cookies) are ever allowed: the API authenticates by
headers. A WebSocket upgrade carrying an `Origin` that is neither the gateway's own nor
configured is refused (403): browsers do not apply CORS to WebSockets.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp_cors
from aiohttp import hdrs, web

from gateway_svc.errors import ApiError

ALLOW_HEADERS = (
    "Content-Type",
    "Authorization",
    "X-API-Key",
    "X-Signature",
    "X-Timestamp",
    "X-Window",
    "X-Request-Id",
)
EXPOSE_HEADERS = (
    "X-Request-Id",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
)
MAX_AGE_SECONDS = 600


def allow_origins(app: web.Application, origins: tuple[str, ...]) -> None:
    """Answers preflights and tags answers for `origins` on every route added so far."""
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        allow_methods=("GET", "POST", "DELETE"),
        max_age=MAX_AGE_SECONDS,
    )
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in list(app.router.routes()):
        cors.add(route)
    _only_with_origin(app)


def _only_with_origin(app: web.Application) -> None:
    """aiohttp-cors tags answers in on_response_prepare, looking up the route's options
    before it looks for an Origin, and does nothing without one: requests that carry none
    (every API client) skip it here."""
    tag = app.on_response_prepare[-1]  # what aiohttp_cors.setup() appended
    if getattr(tag, "__name__", "") != "_on_response_prepare":
        raise RuntimeError("aiohttp-cors did not register its response handler last")

    async def tag_cross_origin(request: web.Request, response: web.StreamResponse) -> None:
        if hdrs.ORIGIN in request.headers:
            await tag(request, response)

    app.on_response_prepare[-1] = tag_cross_origin


def check_websocket_origin(request: web.Request, origins: tuple[str, ...]) -> None:
    """403 for a browser's upgrade from a page of another origin; clients that send no
    Origin (API clients, ccxt) are not browsers and pass."""
    origin = request.headers.get("Origin")
    if origin is None or origin in origins or urlsplit(origin).netloc == request.host:
        return
    raise ApiError(
        403,
        "FORBIDDEN",
        "WebSocket connections from this origin are not allowed",
        {"reason": "ORIGIN_NOT_ALLOWED"},
    )
