"""The engine's side of the ingest benchmark: the seeded workload (bench.workload, one
market, USERS users) as ready-made Execute batches, sent over one stream, and when the
engine acknowledged which seq."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bench.workload import PRICE_DECIMALS, QTY_DECIMALS, Add, generate
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from tradekit.money import format_units

MARKET = "TATA_INR"  # the workload's prices (tick 0.1) and quantities (step 1) fit it
USERS = 200  # buyers are the first half, sellers the second: no order meets its own user
DEPOSITS = (("INR", "10000000000"), ("TATA", "100000000"))


def _owner(order_id: int, buy: bool) -> int:
    half = USERS // 2
    return 1 + order_id % half + (0 if buy else half)


def funding_batch() -> epb.CommandBatch:
    commands = [
        epb.Command(deposit=epb.DepositRequest(user_id=user, asset=asset, amount=amount))
        for user in range(1, USERS + 1)
        for asset, amount in DEPOSITS
    ]
    return epb.CommandBatch(commands=commands)


def workload_batches(commands: int, seed: int, batch: int) -> list[epb.CommandBatch]:
    """The workload as ready-made request batches, built before the clock starts.

    Adds carry the workload id as client order id, and cancels name it with the order's
    owner, as a client would that does not wait for replies.
    """
    owners: dict[int, int] = {}
    built: list[epb.Command] = []
    for request_id, op in enumerate(generate(commands, seed)):
        if isinstance(op, Add):
            owners[op.id] = user = _owner(op.id, op.buy)
            place = epb.PlaceOrderRequest(
                user_id=user,
                market=MARKET,
                side=cpb.SIDE_BUY if op.buy else cpb.SIDE_SELL,
                type=cpb.ORDER_TYPE_LIMIT,
                price=format_units(op.price, PRICE_DECIMALS),
                quantity=format_units(op.qty, QTY_DECIMALS),
                time_in_force=cpb.TIME_IN_FORCE_GTC,
                client_order_id=op.id,
            )
            built.append(epb.Command(request_id=request_id, place_order=place))
        else:
            cancel = epb.CancelOrderRequest(
                user_id=owners.pop(op.id), market=MARKET, client_order_id=op.id
            )
            built.append(epb.Command(request_id=request_id, cancel_order=cancel))
    return [epb.CommandBatch(commands=built[i : i + batch]) for i in range(0, len(built), batch)]


# -- the engine's side: acknowledgements ----------------------------------------------------


@dataclass
class Acks:
    """When the engine acknowledged which seq, and what the replies said."""

    times: list[float] = field(default_factory=list)  # perf_counter() at each reply batch
    seqs: list[int] = field(default_factory=list)  # the highest seq acknowledged by then
    trades: int = 0
    rejections: int = 0
    first_rejection: str = ""

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def record(self, replies: epb.ReplyBatch) -> None:
        top = self.last_seq
        for reply in replies.replies:
            code, message, seq = _outcome(reply)
            if code:
                self.rejections += 1
                self.first_rejection = self.first_rejection or message
            top = max(top, seq)
            self.trades += len(reply.place_order.fills)
        self.times.append(time.perf_counter())
        self.seqs.append(top)


def _outcome(reply: epb.Reply) -> tuple[int, str, int]:
    """(result code, message, seq) of a reply, whichever command it answers."""
    kind = reply.WhichOneof("body")
    if kind == "place_order":
        p = reply.place_order
        return p.code, p.message, p.seq
    if kind == "cancel_order":
        c = reply.cancel_order
        return c.code, c.message, c.seq
    if kind == "balance":
        b = reply.balance
        return b.code, b.message, b.seq
    raise ValueError(f"unexpected reply {kind!r}")


async def execute(
    stub: epb_grpc.EngineServiceAsyncStub,
    batches: Sequence[epb.CommandBatch],
    acks: Acks,
    in_flight: int,
) -> None:
    """Send `batches` over one Execute stream, `in_flight` of them unanswered at most."""
    slots = asyncio.Semaphore(in_flight)

    async def requests() -> AsyncIterator[epb.CommandBatch]:
        for batch in batches:
            await slots.acquire()
            yield batch

    async for replies in stub.Execute(requests()):
        acks.record(replies)
        slots.release()
