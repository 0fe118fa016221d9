"""The simulated traders: they trade against the maker (beside another user's stops, some
of which they fire), keep few orders resting, are topped up when short, and clean up when
stopped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from mm_svc.config import Config
from tests.engine.conftest import RunningEngine
from tests.mm.conftest import (
    FLOW_USERS,
    MAKER,
    Harness,
    holdings,
    make_config,
    open_orders,
    pending_stops,
    rest_user_stops,
)

HarnessFactory = Callable[[Config], Awaitable[Harness]]


async def test_the_flow_trades_with_the_maker_and_keeps_few_orders_resting(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    h = await harness_factory(make_config(tmp_path, flow={"market_order_share": 0.3}))
    stops = await rest_user_stops(engine.stub)
    await h.maker.prepare()
    await h.flow.prepare()
    await h.maker.cycle()
    before = await holdings(engine.stub, MAKER, "TATA")

    for _ in range(20):
        for _ in range(3):
            await h.flow.step()
        await h.maker.cycle()
        for user in FLOW_USERS:
            assert len(await open_orders(engine.stub, user)) <= 3

    assert h.flow_metric("mm_flow_filled_base_total", market="TATA_INR") > 0
    assert await holdings(engine.stub, MAKER, "TATA") != before  # the maker was traded with
    results = {
        s.labels["type"] for m in h.flow_registry.collect() for s in m.samples
        if s.name == "mm_flow_orders_total" and s.labels["result"] == "RESULT_CODE_OK"
    }  # fmt: skip
    assert results == {"market", "limit"}

    assert set() < await pending_stops(engine.stub, stops) < stops  # some fired, some wait

    await h.flow.shutdown()  # cancel_on_stop
    for user in FLOW_USERS:
        assert await open_orders(engine.stub, user) == []


async def test_a_trader_short_of_funds_is_topped_up(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    config = make_config(
        tmp_path, flow={"users": [601], "market_order_share": 0},
        flow_fund={"INR": "50000", "TATA": "40"},
    )  # fmt: skip
    h = await harness_factory(config)
    await h.maker.prepare()
    await h.flow.prepare()
    await h.maker.cycle()
    assert await holdings(engine.stub, 601, "INR") == 50000
    for asset, amount in (("INR", "50000"), ("TATA", "40")):  # it spends everything elsewhere
        withdrawn = await engine.stub.Withdraw(
            epb.WithdrawRequest(user_id=601, asset=asset, amount=amount)
        )
        assert withdrawn.code == 0, withdrawn.message

    reply = await h.flow.step()
    assert reply is not None
    assert reply.code == cpb.RESULT_CODE_INSUFFICIENT_FUNDS
    deposits = h.flow_metric("mm_flow_deposits_total", asset="INR") + h.flow_metric(
        "mm_flow_deposits_total", asset="TATA"
    )
    assert deposits in (50000, 40)  # the short asset was topped up again
    held = {a: await holdings(engine.stub, 601, a) for a in ("INR", "TATA")}
    assert held in ({"INR": Decimal(50000), "TATA": 0}, {"INR": 0, "TATA": Decimal(40)})
