"""Binance's string client order ids, kept per user and numeric id (issue 24).

The gateway derives the numeric id from the string and writes the pair here before it places
the order; the first name of an id stays (a later one for the same id is the same string,
or a hash collision that must not rename an order).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger_svc.db import Conn

MAX_NAME_CHARS = 36
MAX_IDS = 1000
_MAX_BIGINT = 2**63 - 1


class InvalidName(ValueError):
    """An id outside 1..2^63-1, a name that is empty or too long, too many ids."""


async def name(db: Conn, user_id: int, client_order_id: int, text: str) -> None:
    if not (0 < user_id <= _MAX_BIGINT and 0 < client_order_id <= _MAX_BIGINT):
        raise InvalidName("user_id and client_order_id must be 1 to 2^63-1")
    if not 0 < len(text) <= MAX_NAME_CHARS or not text.isprintable():
        raise InvalidName(f"name must be 1 to {MAX_NAME_CHARS} printable characters")
    await db.execute(
        """INSERT INTO client_order_names (user_id, client_order_id, name) VALUES ($1, $2, $3)
           ON CONFLICT (user_id, client_order_id) DO NOTHING""",
        user_id,
        client_order_id,
        text,
    )


async def names(db: Conn, user_id: int, ids: Sequence[int]) -> dict[int, str]:
    if len(ids) > MAX_IDS:
        raise InvalidName(f"at most {MAX_IDS} ids")
    wanted = [i for i in ids if 0 < i <= _MAX_BIGINT]
    if not wanted or not 0 < user_id <= _MAX_BIGINT:
        return {}
    rows = await db.fetch(
        """SELECT client_order_id, name FROM client_order_names
           WHERE user_id = $1 AND client_order_id = ANY($2::bigint[])""",
        user_id,
        wanted,
    )
    return {row["client_order_id"]: row["name"] for row in rows}
