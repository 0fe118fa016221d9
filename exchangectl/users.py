"""users lookup: who a user is (the ledger), what they hold and have open (the engine).

Balances the engine keeps at zero (an asset the user once touched) are left out."""

from __future__ import annotations

import argparse
from decimal import Decimal

from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchangectl.backends import Backends
from exchangectl.errors import CtlError
from exchangectl.orders import open_orders
from exchangectl.output import Result, fields, table


async def lookup(b: Backends, args: argparse.Namespace) -> Result:
    who: str = args.who.strip()
    request = (
        lpb.GetUserRequest(user_id=int(who)) if who.isdigit() else lpb.GetUserRequest(email=who)
    )
    try:
        user = await b.from_ledger(b.ledger.GetUser(request, timeout=b.timeout))
    except CtlError as exc:
        if exc.code == "NOT_FOUND":
            raise CtlError("USER_NOT_FOUND", f"no user {who!r}") from None
        raise
    balances = await b.from_engine(
        b.engine.GetBalances(epb.GetBalancesRequest(user_id=user.user_id), timeout=b.timeout)
    )
    held = [x for x in balances.balances if Decimal(x.available) or Decimal(x.locked)]
    orders = await open_orders(b, user.user_id, "")
    keys = await b.from_ledger(
        b.ledger.ListApiKeys(lpb.ListApiKeysRequest(user_id=user.user_id), timeout=b.timeout)
    )
    data = {
        "user_id": user.user_id,
        "email": user.email,
        "created_at_us": user.created_at_us,
        "balances": [
            {"asset": x.asset, "available": x.available, "locked": x.locked}
            for x in held
        ],
        "open_orders": len(orders),
        "api_keys": [
            {"key_id": k.key_id, "label": k.label, "public_key": k.public_key,
             "created_at_us": k.created_at_us, "active": not k.revoked_at_us}
            for k in keys.keys
        ],
    }  # fmt: skip
    active = sum(1 for k in keys.keys if not k.revoked_at_us)
    text = "\n\n".join(
        [
            fields(
                [
                    ("user", user.user_id),
                    ("email", user.email),
                    ("open orders", len(orders)),
                    ("api keys", f"{active} active, {len(keys.keys) - active} revoked"),
                ]
            ),
            table(
                ["ASSET", "AVAILABLE", "LOCKED"],
                [[x.asset, x.available, x.locked] for x in held],
            ),
        ]
    )
    return Result(data, text)
