"""The audit log of record: append and read, never change (the table's trigger refuses it).

Invariants: every record gets its id and time here, not from the caller; `details` is a
JSON object; a record once written is never updated or deleted by anything.
"""

from __future__ import annotations

import json

from exchange.ledger.v1 import ledger_pb2 as lpb
from ledger_svc.db import Conn
from servicekit.clock import now_us

MAX_FIELD_CHARS = 320  # an action, actor, address or request id longer than this is refused
MAX_DETAILS_CHARS = 4096
_MAX_BIGINT = 2**63 - 1


class InvalidRecord(ValueError):
    """A field is missing, too long, or not what it says."""


def _checked(record: lpb.AuditRecord) -> dict[str, object]:
    if not record.action or not record.actor:
        raise InvalidRecord("action and actor are required")
    for name in ("action", "actor", "address", "request_id"):
        value = getattr(record, name)
        if len(value) > MAX_FIELD_CHARS or not value.isprintable():
            raise InvalidRecord(f"{name} must be printable, at most {MAX_FIELD_CHARS} characters")
    if record.user_id > _MAX_BIGINT:
        raise InvalidRecord("user_id is not a user id")
    if len(record.details_json) > MAX_DETAILS_CHARS:
        raise InvalidRecord(f"details_json is longer than {MAX_DETAILS_CHARS} characters")
    try:
        details = json.loads(record.details_json or "{}")
    except json.JSONDecodeError:
        raise InvalidRecord("details_json is not JSON") from None
    if not isinstance(details, dict):
        raise InvalidRecord("details_json must be a JSON object")
    return details


async def append(db: Conn, record: lpb.AuditRecord) -> lpb.AuditRecord:
    details = _checked(record)
    row = await db.fetchrow(
        """INSERT INTO audit_log (ts_us, action, actor, user_id, address, request_id, details)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING audit_id, ts_us""",
        now_us(),
        record.action,
        record.actor,
        record.user_id or None,
        record.address,
        record.request_id,
        json.dumps(details),
    )
    assert row is not None
    stored = lpb.AuditRecord()
    stored.CopyFrom(record)
    stored.audit_id, stored.ts_us = row["audit_id"], row["ts_us"]
    stored.details_json = json.dumps(details, sort_keys=True)
    return stored


async def list_records(db: Conn, request: lpb.ListAuditRequest) -> lpb.ListAuditReply:
    limit = min(request.limit or 100, 1000)
    rows = await db.fetch(
        """SELECT audit_id, ts_us, action, actor, coalesce(user_id, 0) AS user_id, address,
                  request_id, details::text AS details
           FROM audit_log
           WHERE ($1 = 0 OR user_id = $1) AND ($2 = '' OR action = $2)
             AND ($3 = 0 OR audit_id < $3)
           ORDER BY audit_id DESC LIMIT $4""",
        min(request.user_id, _MAX_BIGINT),
        request.action,
        min(request.cursor, _MAX_BIGINT),
        limit + 1,
    )
    records = [
        lpb.AuditRecord(
            audit_id=r["audit_id"],
            ts_us=r["ts_us"],
            action=r["action"],
            actor=r["actor"],
            user_id=r["user_id"],
            address=r["address"],
            request_id=r["request_id"],
            details_json=r["details"],
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    return lpb.ListAuditReply(records=records, next_cursor=records[-1].audit_id if more else 0)
