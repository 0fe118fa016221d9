"""Reading an engine's whole event stream, and the ledger entries a transfer stands for,
for tests that compare the ledger with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from ledger_svc.projection import TRANSFERS_PER_EVENT, TransferRow

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub


async def all_events(stub: EngineServiceAsyncStub, last_seq: int) -> list[cpb.EngineEvent]:
    """Events 1..last_seq, from the engine's Subscribe."""
    events: list[cpb.EngineEvent] = []
    call = stub.Subscribe(epb.SubscribeRequest(from_seq=1))
    async for batch in call:
        events.extend(batch.events)
        if events and events[-1].seq >= last_seq:
            break
    call.cancel()
    return events[:last_seq]


# (entry_id, seq, user_id, asset, bucket, kind, amount, order_id, trade_id, ts_us)
Entry = tuple[int, int, int, str, int, int, int, int, int, int]


def entries(transfer: TransferRow) -> list[Entry]:
    """The two entries a `ledger_transfers` row stands for: the debit, then the credit."""
    tid, amount, debit_user, credit_user, order_id, trade_id, ts, debit_bucket, credit_bucket, \
        kind, asset = transfer  # fmt: skip
    seq = tid // TRANSFERS_PER_EVENT
    return [
        (tid * 2, seq, debit_user, asset, debit_bucket, kind, -amount, order_id, trade_id, ts),
        (tid * 2 + 1, seq, credit_user, asset, credit_bucket, kind, amount, order_id, trade_id,
         ts),
    ]  # fmt: skip
