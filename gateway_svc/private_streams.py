"""Private streams: who a WebSocket client is (a bearer token or a signed subscription), and
the per-user connection slot (GATEWAY_WS_CONNECTIONS across replicas) its connection holds."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_svc.auth import verify_signed
from gateway_svc.connection import Connection
from gateway_svc.context import Backends
from gateway_svc.fences import Scope, admit
from gateway_svc.limits import LimitsUnavailable
from gateway_svc.subscriptions import FrameError


async def authenticate(b: Backends, message: dict[str, Any], address: str) -> int | None:
    token = message.get("token")
    if isinstance(token, str) and token:
        return b.tokens.verify(token)
    signature = message.get("signature")
    if signature is None:
        return None
    if not (isinstance(signature, list) and len(signature) == 4
            and all(isinstance(x, str) for x in signature)):  # fmt: skip
        raise FrameError(4003, "UNAUTHORIZED", "signature must be [key, signature, ts, window]")
    names = ("X-API-Key", "X-Signature", "X-Timestamp", "X-Window")
    headers = dict(zip(names, signature, strict=True))
    # No replay guard: a subscription only reads, and clients such as ccxt sign several
    # subscriptions within one millisecond, which makes identical signatures.
    caller = await verify_signed(headers, "subscribe", {}, b.api_keys, None)
    assert caller.key is not None
    admit(Scope.READ, caller.key.permissions, caller.key.ip_allowlist, address)
    return caller.user_id


async def take_slot(b: Backends, conn: Connection, user: int) -> None:
    """Counts the connection against its user's limit (GATEWAY_WS_CONNECTIONS, all replicas)."""
    if conn.slot is not None:
        raise FrameError(4003, "UNAUTHORIZED", "this connection already belongs to a user")
    try:
        slot = await b.connections.acquire(str(user), b.settings.ws_connections)
    except LimitsUnavailable:
        raise FrameError(4007, "UNAVAILABLE", "try again shortly") from None
    if slot is None:
        limit = b.settings.ws_connections
        raise FrameError(4005, "TOO_MANY_CONNECTIONS", f"at most {limit} connections per user")
    conn.user_id, conn.slot = user, slot


async def keep_slot(b: Backends, conn: Connection) -> None:
    """Refreshes the connection's slot while it lives; closes it if the slot was lost."""
    while True:
        await asyncio.sleep(b.connections.refresh_interval)
        if conn.slot is None or conn.user_id is None:
            continue
        try:
            held = await b.connections.refresh(str(conn.user_id), conn.slot)
        except LimitsUnavailable:
            continue  # Redis is down: keep the connection rather than drop everyone
        if not held:
            conn.closed.set()
            return
