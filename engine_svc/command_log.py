"""One log line per order or funds command, with the request id it serves, so that one
order can be followed from the gateway's HTTP request into the engine.

Applied commands log at DEBUG (a busy engine applies thousands a second), rejections at
INFO. The request id is the command's `trace_id` (commands on the batched stream), else
the one the call's metadata set (unary calls, see servicekit.request_ids).
"""

import logging

from engine_svc.core.events import OrderAccepted
from engine_svc.core.types import Code
from engine_svc.sequencer import Outcome
from exchange.engine.v1 import engine_pb2 as epb
from servicekit.logs import request_id

log = logging.getLogger(__name__)

Body = (
    epb.PlaceOrderRequest
    | epb.CancelOrderRequest
    | epb.CancelAllOrdersRequest
    | epb.DepositRequest
    | epb.WithdrawRequest
)


def logs_command(outcome: Outcome) -> bool:
    """Whether `log_command` would log it (a check that spares busy callers the call)."""
    return log.isEnabledFor(logging.DEBUG if outcome.code == Code.OK else logging.INFO)


def log_command(kind: str, body: Body, outcome: Outcome, trace_id: str = "") -> None:
    if not logs_command(outcome):
        return
    level = logging.DEBUG if outcome.code == Code.OK else logging.INFO
    extra: dict[str, object] = {
        "command": kind,
        "user": body.user_id,
        "code": outcome.code.name,
        "request_id": trace_id or request_id.get(),
    }
    if isinstance(body, epb.DepositRequest | epb.WithdrawRequest):
        extra["asset"] = body.asset
    elif body.market:
        extra["market"] = body.market
    if outcome.events and isinstance(outcome.events[0], OrderAccepted):
        extra["order_id"] = outcome.events[0].order_id
    elif outcome.message:
        extra["reason"] = outcome.message
    log.log(level, "%s %s", kind, outcome.code.name.lower(), extra=extra)
