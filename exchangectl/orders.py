"""orders list/get/cancel-all, for one user or for a whole market.

Open orders are the engine's (its memory is the live book); an order the engine no longer
remembers is looked up in the ledger's history. Cancelling a market's orders cancels each
user's in turn, so halt the market first (`markets halt`) when nothing new may arrive meanwhile.
"""

from __future__ import annotations

import argparse
from typing import Any

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.ledger.v1 import ledger_pb2 as lpb
from exchangectl.backends import Backends
from exchangectl.errors import EXIT_USAGE, CtlError, check_result
from exchangectl.output import Result, enum_name, table


def order_dict(o: cpb.Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "client_order_id": o.client_order_id,
        "user_id": o.user_id,
        "market": o.market,
        "side": enum_name(cpb.Side.Name(o.side), "SIDE_"),
        "type": enum_name(cpb.OrderType.Name(o.type), "ORDER_TYPE_"),
        "price": o.price,
        "quantity": o.quantity,
        "quote_quantity": o.quote_quantity,
        "executed_quantity": o.executed_quantity,
        "status": enum_name(cpb.OrderStatus.Name(o.status), "ORDER_STATUS_"),
        "locked": o.locked,
        "created_at_us": o.created_at_us,
        "updated_at_us": o.updated_at_us,
    }


def orders_table(orders: list[dict[str, Any]]) -> str:
    rows = [
        [o["order_id"], o["user_id"], o["market"], o["side"], o["type"], o["price"] or "-",
         o["quantity"] or "-", o["executed_quantity"], o["status"]]
        for o in orders
    ]  # fmt: skip
    headers = ["ORDER", "USER", "MARKET", "SIDE", "TYPE", "PRICE", "QTY", "FILLED", "STATUS"]
    return table(headers, rows)


async def open_orders(b: Backends, user: int | None, market: str) -> list[cpb.Order]:
    if user is None:
        request = epb.GetOpenOrdersRequest(market=market, all_users=True)
    else:
        request = epb.GetOpenOrdersRequest(user_id=user, market=market)
    reply = await b.from_engine(b.engine.GetOpenOrders(request, timeout=b.timeout))
    return list(reply.orders)


def _user_or_market(args: argparse.Namespace) -> tuple[int | None, str]:
    if args.user is None and not args.market:
        raise CtlError("USAGE", "give --user, --market or both", EXIT_USAGE)
    return args.user, args.market or ""


async def list_orders(b: Backends, args: argparse.Namespace) -> Result:
    user, market = _user_or_market(args)
    orders = [order_dict(o) for o in await open_orders(b, user, market)]
    return Result({"orders": orders}, orders_table(orders))


async def get_order(b: Backends, args: argparse.Namespace) -> Result:
    request = epb.GetOrderRequest(user_id=args.user, order_id=args.order_id)
    reply = await b.from_engine(b.engine.GetOrder(request, timeout=b.timeout))
    if reply.code == cpb.RESULT_CODE_OK:
        order, source = reply.order, "engine"
    else:
        # Older than the engine's memory of closed orders: the ledger keeps them all. Its
        # history is newest first below a cursor, so the cursor just above the id finds it.
        history = lpb.GetOrderHistoryRequest(user_id=args.user, limit=1, cursor=args.order_id + 1)
        found = await b.from_ledger(b.ledger.GetOrderHistory(history, timeout=b.timeout))
        if not found.orders or found.orders[0].order_id != args.order_id:
            raise CtlError("ORDER_NOT_FOUND", f"user {args.user} has no order {args.order_id}")
        order, source = found.orders[0], "ledger"
    data = order_dict(order) | {"source": source}
    return Result(data, orders_table([data]))


async def cancel_all(b: Backends, args: argparse.Namespace) -> Result:
    user, market = _user_or_market(args)
    users = (
        [user]
        if user is not None
        else sorted({o.user_id for o in await open_orders(b, None, market)})
    )
    cancelled: list[dict[str, Any]] = []
    for who in users:
        request = epb.CancelAllOrdersRequest(user_id=who, market=market)
        reply = await b.from_engine(b.engine.CancelAllOrders(request, timeout=b.timeout))
        check_result(reply.code, reply.message)
        cancelled.extend(order_dict(o) for o in reply.orders)
    where = f" in {market}" if market else ""
    whose = f"of user {user}" if user is not None else f"of {len(users)} user(s)"
    text = f"cancelled {len(cancelled)} order(s) {whose}{where}"
    if cancelled:
        text += "\n" + orders_table(cancelled)
    return Result({"cancelled": cancelled, "users": users}, text)
