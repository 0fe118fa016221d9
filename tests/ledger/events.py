"""Reading an engine's whole event stream, and the ledger entries a transfer stands for,
for tests that compare the ledger with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from ledger_svc.projection import FEE_ACCOUNT, TRANSFERS_PER_EVENT, Bucket, Kind, TransferRow

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


# A row of ledger_transfers as migration 0005 made it, one per movement, fees included.
Movement = tuple[int, int, int, int, int, int, int, int, int, int, str]
MOVEMENT_COLUMNS = (
    "transfer_id", "amount", "debit_user", "credit_user", "order_id", "trade_id", "ts_us",
    "debit_bucket", "credit_bucket", "kind", "asset",
)  # fmt: skip
# (entry_id, seq, user_id, asset, bucket, kind, amount, order_id, trade_id, ts_us)
Entry = tuple[int, int, int, str, int, int, int, int, int, int]


def movements(transfer: TransferRow) -> list[Movement]:
    """The movements a `ledger_transfers` row stands for: its own, then each fee it carries
    (the debtor's, then the creditor's) with the next transfer ids."""
    tid, amount, debit_user, credit_user, order_id, trade_id, ts, debit_fee, credit_fee, \
        credit_fee_order, debit_bucket, credit_bucket, kind, asset = transfer  # fmt: skip
    made = [(tid, amount, debit_user, credit_user, order_id, trade_id, ts, debit_bucket,
             credit_bucket, kind, asset)]  # fmt: skip
    for payer, order, bucket, fee in (
        (debit_user, order_id, debit_bucket, debit_fee),
        (credit_user, credit_fee_order, credit_bucket, credit_fee),
    ):
        if fee:
            made.append((tid + len(made), fee, payer, FEE_ACCOUNT, order, trade_id, ts, bucket,
                         int(Bucket.AVAILABLE), int(Kind.FEE), asset))  # fmt: skip
    return made


def entries(transfer: TransferRow) -> list[Entry]:
    """The entries a `ledger_transfers` row stands for: of each movement, the debit, then the
    credit."""
    made: list[Entry] = []
    for tid, amount, debit_user, credit_user, order, trade, ts, debit_bucket, credit_bucket, \
            kind, asset in movements(transfer):  # fmt: skip
        seq = tid // TRANSFERS_PER_EVENT
        made.append(
            (tid * 2, seq, debit_user, asset, debit_bucket, kind, -amount, order, trade, ts)
        )
        made.append((tid * 2 + 1, seq, credit_user, asset, credit_bucket, kind, amount, order,
                     trade, ts))  # fmt: skip
    return made
