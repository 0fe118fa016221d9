"""Restarts with real processes: the maker killed (-9) and started again, the engine killed
and recovered, and a SIGTERM. After each, the maker's orders are exactly one per slot, the
ones it had, and nothing was placed twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from launcher.ports import free_port
from mm_svc.client_ids import Slot, parse_slot, slot_id
from tests.mm.conftest import (
    MAKER,
    Service,
    config_text,
    engine_service,
    maker_service,
    metric,
    open_orders,
    write_config,
)

TAG = 0x4D4D
BUY, SELL = cpb.SIDE_BUY, cpb.SIDE_SELL
SLOTS = {Slot(side, level) for side in (BUY, SELL) for level in range(3)}


async def place(
    stub: epb_grpc.EngineServiceAsyncStub, side: int, price: str, qty: str, client_id: int
) -> int:
    reply = await stub.PlaceOrder(
        epb.PlaceOrderRequest(
            user_id=MAKER, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,  # type: ignore[arg-type]
            price=price, quantity=qty, client_order_id=client_id,
        )
    )  # fmt: skip
    assert reply.code == cpb.RESULT_CODE_OK, reply.message
    order_id: int = reply.order.order_id
    return order_id


async def quotes_by_slot(stub: epb_grpc.EngineServiceAsyncStub) -> dict[Slot | None, list[int]]:
    slots: dict[Slot | None, list[int]] = {}
    for order in await open_orders(stub):
        slot = parse_slot(TAG, "TATA_INR", order.client_order_id)
        slots.setdefault(slot, []).append(order.order_id)
    return slots


async def wait_for(metrics_port: int, name: str, above: float) -> None:
    """Waits until the maker's metric `name` is above `above` (e.g. cycles completed)."""
    async with asyncio.timeout(60):
        while await metric(metrics_port, name) <= above:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.05)


async def test_maker_and_engine_restarts_reconcile_without_duplicates(
    tmp_path: Path, services: list[Service]
) -> None:
    engine_port = free_port()
    engine = engine_service(tmp_path / "engine", engine_port)
    services.append(engine)
    await engine.start()
    address = f"127.0.0.1:{engine_port}"
    await engine.wait_healthy(address)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = epb_grpc.EngineServiceStub(channel)
        # What a crash can leave behind: the bid of level 0 placed (its reply lost), an
        # order of the maker's user that is not a quote, and a quote of a level no longer
        # configured.
        for asset, amount in (("INR", "10000000"), ("TATA", "2000")):
            await stub.Deposit(epb.DepositRequest(user_id=MAKER, asset=asset, amount=amount))
        adopted = await place(stub, BUY, "999.00", "10", slot_id(TAG, "TATA_INR", Slot(BUY, 0)))
        stray = await place(stub, BUY, "900.00", "1", 0)
        retired = await place(stub, SELL, "1100.00", "1", slot_id(TAG, "TATA_INR", Slot(SELL, 9)))

        config = write_config(tmp_path, config_text(maker={"cancel_on_stop": True}))
        maker, health, metrics = maker_service(config, engine_port)
        services.append(maker)
        await maker.start()
        await maker.wait_healthy(f"127.0.0.1:{health}")
        await wait_for(metrics, "mm_cycles_total", 2)

        slots = await quotes_by_slot(stub)
        assert set(slots) == SLOTS
        assert all(len(ids) == 1 for ids in slots.values())
        assert slots[Slot(BUY, 0)] == [adopted]  # kept: it was where it should be
        ids = {order_id for (order_id,) in slots.values()}
        assert stray not in ids
        assert retired not in ids
        assert await metric(metrics, "mm_quotes_placed_total") == 5
        assert await metric(metrics, "mm_quotes_cancelled_total") == 2

        # The maker dies without a word and comes back: it adopts every order it had.
        await maker.kill()
        maker, health, metrics = maker_service(config, engine_port)
        services.append(maker)
        await maker.start()
        await maker.wait_healthy(f"127.0.0.1:{health}")
        await wait_for(metrics, "mm_cycles_total", 3)
        assert await quotes_by_slot(stub) == slots
        assert await metric(metrics, "mm_quotes_placed_total") == 0
        assert await metric(metrics, "mm_quotes_cancelled_total") == 0

    # The engine dies (kill -9) and recovers from its journal; the maker rides it out.
    await engine.kill()
    await wait_for(metrics, "mm_engine_errors_total", 0)
    await engine.start()
    await engine.wait_healthy(address)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = epb_grpc.EngineServiceStub(channel)
        await wait_for(metrics, "mm_cycles_total", await metric(metrics, "mm_cycles_total") + 3)
        assert await quotes_by_slot(stub) == slots
        assert await metric(metrics, "mm_quotes_placed_total") == 0
        assert await metric(metrics, "mm_quotes_cancelled_total") == 0

        # SIGTERM: the maker cancels its quotes (cancel_on_stop) and exits 0.
        assert await maker.terminate() == 0
        assert await open_orders(stub) == []


async def test_the_maker_is_ready_only_once_the_engine_answers(
    tmp_path: Path, services: list[Service]
) -> None:
    engine_port = free_port()
    config = write_config(tmp_path, config_text())
    maker, health, metrics = maker_service(config, engine_port)
    services.append(maker)
    await maker.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{health}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest()
        reply = await stub.Check(check, wait_for_ready=True, timeout=60)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING  # no engine yet

        engine = engine_service(tmp_path / "engine", engine_port)
        services.append(engine)
        await engine.start()
        await maker.wait_healthy(f"127.0.0.1:{health}")
        await wait_for(metrics, "mm_cycles_total", 0)
        assert await maker.terminate() == 0
