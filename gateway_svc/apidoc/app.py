"""The operations gateway_svc/app.py routes itself: the live streams (WebSocket and SSE),
health, metrics and this document."""

from __future__ import annotations

from gateway_svc.apidoc.operations import OPS, STREAMS, Operations, as_json, query
from gateway_svc.apidoc.schemas import TEXT, ref

DOC_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"

WS_DESCRIPTION = (
    'Send `{"method": "SUBSCRIBE", "params": [streams], "id": any}` (or '
    "UNSUBSCRIBE). Streams: `depth`, `trade`, `ticker`, `bookTicker` as `depth.TATA_INR` or "
    "`depth@TATA_INR`; `kline.<1m|5m|15m|30m|1h|4h|1d|1w>.TATA_INR`; and the caller's "
    "`account.orderUpdate[.MARKET]` and `account.balanceUpdate`, which need `token` (the "
    "bearer token) or `signature` ([key, signature, timestamp, window], ED25519 over "
    "`instruction=subscribe&timestamp=..&window=..`) in the frame. Frames: `{stream, data}` "
    "with Backpack's payloads (times in microseconds); depth diffs carry `U`/`u` engine "
    "sequence ids: sync with `GET /api/v1/depth`'s `lastUpdateId`; a diff whose `U` is past "
    "its `u` restarts the chain after lost updates: fetch the depth again. Trades come one "
    "per frame; `trade@TATA_INR@batch` instead sends one frame per interval whose `data` is "
    "the list of every trade of it, in order. Errors: `{id, error: "
    "{code, name, message}}` with codes 4000 INVALID_FRAME, 4001 UNKNOWN_METHOD, 4002 "
    "TOO_MANY_STREAMS, 4003 UNAUTHORIZED, 4004 INVALID_MARKET, 4005 TOO_MANY_CONNECTIONS "
    "(private streams: GATEWAY_WS_CONNECTIONS per user), 4006 INVALID_STREAM, 4007 "
    "UNAVAILABLE."
)
SSE_DESCRIPTION = (
    "The WebSocket frames as `text/event-stream` events whose id is the engine sequence "
    "number; reconnecting with `Last-Event-ID` replays the frames after it while the gateway "
    "still keeps them (the last 1000 per stream). Private streams take the bearer token."
)


def describe(p: Operations) -> None:
    add = p.add
    # fmt: off
    add("get", "/ws", "websocket", "Live market data over WebSocket (also at /)", STREAMS,
        {"application/json": {"schema": TEXT}}, status=101, description=WS_DESCRIPTION)
    add("get", "/api/v1/stream", "stream", "Live market data as Server-Sent Events", STREAMS,
        {"text/event-stream": {"schema": TEXT}}, errors=(400, 401), params=(
            query("topics", {"type": "string", "maxLength": 2000},
                  "comma-separated streams, as over WebSocket", required=True,
                  example="depth@TATA_INR,trade.TATA_INR"),
        ), description=SSE_DESCRIPTION)
    add("get", "/health", "health", "Ready when the engine, the ledger and Redis answer", OPS,
        as_json(ref("Health")))
    add("get", "/metrics", "metrics", "Prometheus metrics", OPS, {"text/plain": {"schema": TEXT}})
    add("get", DOC_PATH, "openapi", "This document", OPS, as_json({"type": "object"}))
    add("get", DOCS_PATH, "docs", "This document, as a page", OPS, {"text/html": {"schema": TEXT}})
    # fmt: on
    for path in ("/ws", "/api/v1/stream"):
        p.paths[path]["get"]["x-streaming"] = True  # never ends: no request/response checks
    p.paths["/health"]["get"]["responses"]["503"] = {
        "description": "a backend is down; the same body says which",
        "content": as_json(ref("Health")),
    }
