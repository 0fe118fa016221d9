"""Kill -9 the real engine in the middle of a stream of orders: nothing acknowledged is lost,
no trigger fires twice, and a restart keeps the triggers left pending (the same state hash).

With several clients streaming as fast as they can, the sequencer always has the next
batch to apply while the last one is being synced, so the kill lands mid-pipeline.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from launcher.ports import free_port
from launcher.supervisor import ServiceSpec, Supervisor

USERS = range(1, 11)
DEPOSITS = {"INR": Decimal("10000000"), "TATA": Decimal("100000")}


def order(rng: random.Random, client_id: int) -> epb.Command:
    """A limit order; one in ten is a stop (some refused: at the last price), one in twenty
    has a stop-loss near its price, so triggers wait and fire in cascades up to the kill."""
    side = rng.choice([pb.SIDE_BUY, pb.SIDE_SELL])
    price = rng.randint(1590, 1610)
    request = epb.PlaceOrderRequest(
        user_id=rng.choice(USERS),
        market="TATA_INR",
        side=side,
        type=pb.ORDER_TYPE_LIMIT,
        price=f"{price}.00",
        quantity=str(rng.randint(1, 20)),
        time_in_force=rng.choice([pb.TIME_IN_FORCE_GTC, pb.TIME_IN_FORCE_IOC]),
        client_order_id=client_id,
        self_trade_prevention=pb.SELF_TRADE_PREVENTION_CANCEL_MAKER,
    )
    kind = rng.random()
    if kind < 0.1:
        request.trigger_price = f"{rng.randint(1590, 1610)}.00"
    elif kind < 0.15:
        request.stop_loss_trigger_price = f"{price - 5 if side == pb.SIDE_BUY else price + 5}.00"
    return epb.Command(request_id=client_id, place_order=request)


async def stream_orders(
    stub: epb_grpc.EngineServiceAsyncStub,
    acked: dict[int, epb.PlaceOrderReply],
    sent: set[int],
    enough: asyncio.Event,
    *,
    stream: int,
    pause: float,
) -> None:
    """Sends batches until the connection breaks, recording every acknowledged reply."""
    rng = random.Random(7 + stream)
    next_id = 1 + stream * 1_000_000  # client ids of each stream apart

    async def batches() -> AsyncIterator[epb.CommandBatch]:
        nonlocal next_id
        while True:
            batch = []
            for _ in range(rng.randint(1, 40)):
                batch.append(order(rng, next_id))
                sent.add(next_id)
                next_id += 1
            yield epb.CommandBatch(commands=batch)
            await asyncio.sleep(pause)

    try:
        async for replies in stub.Execute(batches()):
            for reply in replies.replies:
                acked[reply.request_id] = reply.place_order
            # Accepted ones: the check after the kill counts those, and some are refused.
            if sum(r.code == 0 for r in acked.values()) >= 1500:
                enough.set()
    except grpc.aio.AioRpcError:
        return


async def all_events(stub: epb_grpc.EngineServiceAsyncStub) -> list[pb.EngineEvent]:
    last = (await stub.GetStateHash(epb.GetStateHashRequest())).seq
    events: list[pb.EngineEvent] = []
    async for batch in stub.Subscribe(epb.SubscribeRequest(from_seq=1)):
        events.extend(batch.events)
        if events[-1].seq >= last:
            return events
    return events


@pytest.mark.parametrize(
    ("streams", "pause"), [(1, 0.002), (4, 0.0)], ids=["one-paced-stream", "four-busy-streams"]
)
async def test_sigkill_mid_stream_loses_no_acknowledged_order(
    tmp_path: Path, streams: int, pause: float
) -> None:
    port = free_port()
    spec = ServiceSpec(
        name="engine",
        argv=[sys.executable, "-m", "engine_svc"],
        env={
            "ENGINE_GRPC_PORT": str(port),
            "ENGINE_HOST": "127.0.0.1",
            "ENGINE_DATA_DIR": str(tmp_path),
            "ENGINE_SNAPSHOT_EVERY_EVENTS": "3000",  # recovery crosses a snapshot too
        },
        health_address=f"127.0.0.1:{port}",
    )
    address = f"127.0.0.1:{port}"
    acked: dict[int, epb.PlaceOrderReply] = {}
    sent: set[int] = set()
    async with Supervisor([spec], grace=5.0) as supervisor:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = epb_grpc.EngineServiceStub(channel)
            for user in USERS:
                for asset, amount in DEPOSITS.items():
                    deposited = await stub.Deposit(
                        epb.DepositRequest(user_id=user, asset=asset, amount=str(amount))
                    )
                    assert deposited.code == 0
            enough = asyncio.Event()
            streaming = asyncio.gather(
                *(
                    stream_orders(stub, acked, sent, enough, stream=i, pause=pause)
                    for i in range(streams)
                )
            )
            await asyncio.wait_for(enough.wait(), 60)
            await asyncio.sleep(random.Random().uniform(0, 0.05))  # a random moment
            await supervisor.kill("engine")
            await asyncio.wait_for(streaming, 10)
        await supervisor.wait_healthy("engine")
        assert supervisor.restarts("engine") == 1

        async with grpc.aio.insecure_channel(address) as channel:
            stub = epb_grpc.EngineServiceStub(channel)
            events = await all_events(stub)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))

            # By client id: a fired trigger's order keeps the trigger's id and client id;
            # stop-loss legs have none.
            accepted = {
                o.client_order_id: o
                for e in events
                for o in (e.order_accepted.order, e.trigger_placed.order)
                if o.client_order_id
            }
            # Each trigger fired at most once, and only after it was placed.
            placed: set[int] = set()
            fired: list[int] = []
            for e in events:
                if e.HasField("trigger_placed"):
                    placed.add(e.trigger_placed.order.order_id)
                elif e.HasField("trigger_fired"):
                    assert e.trigger_fired.order_id in placed
                    fired.append(e.trigger_fired.order_id)
            assert fired, "no trigger fired before the kill"
            assert len(fired) == len(set(fired)), "a trigger fired twice"
            trades = {
                e.trade_executed.fill.trade_id: e.trade_executed.fill
                for e in events
                if e.HasField("trade_executed")
            }
            # Every acknowledged order is there, with the fills it was told about.
            ok = {cid: r for cid, r in acked.items() if r.code == 0}
            assert len(ok) >= 1500
            for cid, reply in ok.items():
                assert accepted[cid].order_id == reply.order.order_id
                for fill in reply.fills:
                    assert trades[fill.trade_id] == fill
            # Nothing that was never sent, and nothing beyond what may have been in flight.
            assert set(accepted) <= sent

            # Conservation: balances of every account add up to the deposits.
            totals = {asset: Decimal(0) for asset in DEPOSITS}
            for user in [0, *USERS]:
                balances = await stub.GetBalances(epb.GetBalancesRequest(user_id=user))
                for b in balances.balances:
                    assert Decimal(b.available) >= 0
                    assert Decimal(b.locked) >= 0
                    totals[b.asset] += Decimal(b.available) + Decimal(b.locked)
            assert totals == {a: amount * len(USERS) for a, amount in DEPOSITS.items()}

            before = await stub.GetStateHash(epb.GetStateHashRequest())
            book = await stub.GetOpenOrders(
                epb.GetOpenOrdersRequest(market="TATA_INR", all_users=True)
            )
            assert any(o.status == pb.ORDER_STATUS_TRIGGER_PENDING for o in book.orders)

        # A graceful restart (snapshot on SIGTERM) and a crash restore the same state.
        await supervisor.restart("engine")
        async with grpc.aio.insecure_channel(address) as channel:
            after = await epb_grpc.EngineServiceStub(channel).GetStateHash(
                epb.GetStateHashRequest()
            )
        assert (after.state_hash, after.seq) == (before.state_hash, before.seq)
