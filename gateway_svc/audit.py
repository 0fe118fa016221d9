"""The gateway's entries in the audit log: sign-ups, log-ins (failed ones too), API keys.

Each entry carries the actor, the account, the client's address (after the trusted-proxy
rule), the request id and the time the ledger stores it. Writing one must not turn an
answered request into a failed one: a ledger that cannot take the entry is logged loudly.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import orjson
from aiohttp import web

from exchange.ledger.v1 import ledger_pb2 as lpb
from gateway_svc.context import backends
from servicekit.logs import request_id

log = logging.getLogger(__name__)


async def record(
    request: web.Request, action: str, actor: str, user_id: int = 0, **details: Any
) -> None:
    entry = lpb.AuditRecord(
        action=action,
        actor="".join(c if c.isprintable() else "?" for c in actor[:320]),
        user_id=user_id,
        address=request.remote or "",
        request_id=request_id.get() or "",
        details_json=orjson.dumps(details).decode(),
    )
    try:
        await backends(request).ledger.AppendAudit(entry, timeout=5)
    except grpc.aio.AioRpcError as exc:
        log.error("audit entry not stored: %s %s (%s)", action, actor, exc.code().name)
