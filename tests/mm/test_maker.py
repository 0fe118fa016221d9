"""The maker against a real engine, cycle by cycle: a two-sided book within its spread under
taker flow, every limit held, only fundable orders, rejections survived; the first two with
another user's stops resting in the market, some of which fire into the maker's quotes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from mm_svc.client_ids import parse_slot
from mm_svc.config import Config
from tests.engine.conftest import RunningEngine, deposit
from tests.mm.conftest import (
    MAKER,
    TAKER,
    Harness,
    holdings,
    make_config,
    market_order,
    open_orders,
    pending_stops,
    remaining,
    rest_user_stops,
)

HarnessFactory = Callable[[Config], Awaitable[Harness]]
BUY, SELL = cpb.SIDE_BUY, cpb.SIDE_SELL
TICK = Decimal("0.01")


async def test_the_maker_holds_a_two_sided_book_within_its_spread_under_taker_flow(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, market={"skew_bps": 10})
    h = await harness_factory(config)
    stops = await rest_user_stops(engine.stub)
    await h.maker.prepare()
    await h.flow.prepare()
    spread, tolerance = Decimal(20), Decimal(5)

    for _ in range(40):
        for _ in range(4):
            await h.flow.step()
        await h.maker.cycle()

        depth = await engine.stub.GetDepth(epb.GetDepthRequest(market="TATA_INR", limit=1))
        best_bid, best_ask = Decimal(depth.bids[0].price), Decimal(depth.asks[0].price)
        reference = Decimal(str(h.maker_metric("mm_reference_price", market="TATA_INR")))
        # The market's spread is at most the maker's (quotes may sit anywhere within the
        # requote tolerance of their targets, and round outwards to the tick).
        assert best_bid < best_ask
        assert best_ask - best_bid <= reference * (spread + 2 * tolerance) / 10_000 + 2 * TICK
        sides = {order.side for order in await open_orders(engine.stub)}
        assert sides == {BUY, SELL}

    # The flow really traded with the maker, both ways, and the maker requoted after it.
    assert h.maker_metric("mm_fills_total", market="TATA_INR", side="buy") > 0
    assert h.maker_metric("mm_fills_total", market="TATA_INR", side="sell") > 0
    assert h.maker_metric("mm_quotes_placed_total", market="TATA_INR", side="buy") > 3
    assert h.maker_metric("mm_quotes_cancelled_total", market="TATA_INR", side="sell") > 0
    assert h.flow_metric(
        "mm_flow_orders_total", market="TATA_INR", type="market", side="buy",
        result="RESULT_CODE_OK",
    ) > 0  # fmt: skip
    # The near stops fired among the maker's quotes, the far ones still wait.
    assert set() < await pending_stops(engine.stub, stops) < stops


async def test_position_open_orders_and_order_size_limits_hold_while_takers_push(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    # Sizes 10, 20, 40 capped at 30; at most 5 orders; position within 45 of 100 TATA.
    config = make_config(
        tmp_path,
        market={"levels": 3, "size_growth": "2", "max_order_size": "30", "max_open_orders": 5,
                "inventory_target": "100", "max_position": "45"},
        maker_fund={"INR": "1000000", "TATA": "100"},
    )  # fmt: skip
    h = await harness_factory(config)
    stops = await rest_user_stops(engine.stub)
    await h.maker.prepare()
    await h.maker.cycle()
    await deposit(engine.stub, TAKER, "TATA", "1000")
    await deposit(engine.stub, TAKER, "INR", "1000000")
    seen_full_long = seen_full_short = False

    async def check() -> Decimal:
        orders = await open_orders(engine.stub)
        position = await holdings(engine.stub, MAKER, "TATA") - 100
        bids = sum((remaining(o) for o in orders if o.side == BUY), Decimal(0))
        asks = sum((remaining(o) for o in orders if o.side == SELL), Decimal(0))
        assert len(orders) <= 5
        assert all(Decimal(o.quantity) <= 30 for o in orders)
        # Even if every open order filled, the position would stay within its bounds.
        assert position + bids <= 45
        assert -position + asks <= 45
        if position == 45:
            assert bids == 0  # the side that would grow it is not quoted
        if position == -45:
            assert asks == 0
        return position

    for side in [SELL] * 6 + [BUY] * 12:
        await market_order(engine.stub, TAKER, side, "25")
        await h.maker.cycle()
        position = await check()
        seen_full_long |= position == 45
        seen_full_short |= position == -45

    assert seen_full_long
    assert seen_full_short
    assert set() < await pending_stops(engine.stub, stops) < stops  # some fired, some wait
    assert h.maker_metric("mm_orders_rejected_total", market="TATA_INR",
                          reason="RESULT_CODE_INSUFFICIENT_FUNDS") == 0  # fmt: skip


async def test_the_maker_only_places_what_its_balance_funds(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    # 15,000 INR and no TATA: bids of 10, 15, 22 at ~999 would need ~47,000 INR.
    config = make_config(
        tmp_path,
        market={"inventory_target": "0"},
        maker_fund={"INR": "15000"},
    )
    h = await harness_factory(config)
    await h.maker.prepare()
    await h.maker.cycle()

    orders = await open_orders(engine.stub)
    assert orders
    assert {o.side for o in orders} == {BUY}
    balances = await engine.stub.GetBalances(epb.GetBalancesRequest(user_id=MAKER))
    inr = next(b for b in balances.balances if b.asset == "INR")
    assert Decimal(inr.locked) <= 15000
    assert Decimal(inr.available) < Decimal(1000)  # it used what it had...
    assert sum(remaining(o) for o in orders) < 47  # ...and no more
    assert h.maker_metric("mm_orders_rejected_total", market="TATA_INR",
                          reason="RESULT_CODE_INSUFFICIENT_FUNDS") == 0  # fmt: skip


async def test_a_quote_within_tolerance_is_kept_and_a_drifted_one_replaced(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, market={"levels": 1})
    h = await harness_factory(config)
    await h.maker.prepare()
    await h.maker.cycle()
    first = {o.side: o for o in await open_orders(engine.stub)}
    assert Decimal(first[BUY].price) == Decimal("999.00")
    assert Decimal(first[SELL].price) == Decimal("1001.00")

    # Nothing moved: the same orders stay, nothing is sent.
    await h.maker.cycle()
    assert {o.order_id for o in await open_orders(engine.stub)} == {
        o.order_id for o in first.values()
    }
    assert h.maker_metric("mm_quotes_placed_total", market="TATA_INR", side="buy") == 1

    # Someone else quotes 1000.20 / 1000.60 inside the maker's spread: the reference (their
    # mid) moves 4 bps, within the tolerance: nothing changes.
    await deposit(engine.stub, TAKER, "TATA", "10")
    await deposit(engine.stub, TAKER, "INR", "20000")
    await quote(engine, "1000.20", "1000.60")
    await h.maker.cycle()
    assert {o.order_id for o in await open_orders(engine.stub)} == {
        o.order_id for o in first.values()
    }

    # They move to 1000.50 / 1000.90: the mid, 1000.70, is 7 bps away: both are replaced.
    await engine.stub.CancelAllOrders(epb.CancelAllOrdersRequest(user_id=TAKER))
    await quote(engine, "1000.50", "1000.90")
    await h.maker.cycle()
    moved = {o.side: o for o in await open_orders(engine.stub)}
    assert Decimal(moved[BUY].price) == Decimal("999.69")  # 1000.70 - 10 bps, rounded down
    assert Decimal(moved[SELL].price) == Decimal("1001.71")  # + 10 bps, rounded up
    assert moved[BUY].order_id != first[BUY].order_id
    # The replacement reuses its slot's client id: one order per slot, always.
    assert moved[BUY].client_order_id == first[BUY].client_order_id
    assert h.maker_metric("mm_quotes_cancelled_total", market="TATA_INR", side="buy") == 1


async def quote(engine: RunningEngine, bid: str, ask: str) -> None:
    """The taker rests a bid and an ask of 1 TATA."""
    for side, price in ((BUY, bid), (SELL, ask)):
        reply = await engine.stub.PlaceOrder(
            epb.PlaceOrderRequest(
                user_id=TAKER, market="TATA_INR", side=side, type=cpb.ORDER_TYPE_LIMIT,
                price=price, quantity="1",
            )
        )  # fmt: skip
        assert reply.code == cpb.RESULT_CODE_OK, reply.message


async def test_rejections_do_not_stop_the_maker(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, market={"levels": 2})
    h = await harness_factory(config)
    await h.maker.prepare()
    halt = epb.SetMarketStatusRequest(market="TATA_INR", status=cpb.MARKET_STATUS_HALTED)
    assert (await engine.stub.SetMarketStatus(halt)).code == cpb.RESULT_CODE_OK

    await h.maker.cycle()
    await h.maker.cycle()
    assert await open_orders(engine.stub) == []
    assert h.maker_metric(
        "mm_orders_rejected_total", market="TATA_INR", reason="RESULT_CODE_MARKET_HALTED"
    ) == 8  # fmt: skip

    reopen = epb.SetMarketStatusRequest(market="TATA_INR", status=cpb.MARKET_STATUS_OPEN)
    assert (await engine.stub.SetMarketStatus(reopen)).code == cpb.RESULT_CODE_OK
    await h.maker.cycle()
    assert len(await open_orders(engine.stub)) == 4


async def test_its_orders_carry_slot_ids_and_fills_update_pnl_and_inventory(
    engine: RunningEngine, harness_factory: HarnessFactory, tmp_path: Path
) -> None:
    config = make_config(tmp_path, market={"levels": 2})
    h = await harness_factory(config)
    await h.maker.prepare()
    await h.maker.cycle()
    slots = {
        parse_slot(0x4D4D, "TATA_INR", o.client_order_id) for o in await open_orders(engine.stub)
    }
    assert slots == {(BUY, 0), (SELL, 0), (BUY, 1), (SELL, 1)}

    await deposit(engine.stub, TAKER, "INR", "100000")
    await deposit(engine.stub, TAKER, "TATA", "100")
    await market_order(engine.stub, TAKER, BUY, "10")  # lifts the ask at 1001.00
    await h.maker.cycle()
    await market_order(engine.stub, TAKER, SELL, "10")  # hits the bid requoted around 1001
    await h.maker.cycle()

    assert h.maker_metric("mm_fills_total", market="TATA_INR", side="sell") == 1
    assert h.maker_metric("mm_fills_total", market="TATA_INR", side="buy") == 1
    assert h.maker_metric("mm_filled_base_total", market="TATA_INR", side="sell") == 10
    assert h.maker_metric("mm_inventory", asset="TATA") == 2000
    assert h.maker_metric("mm_position", market="TATA_INR") == 0
    # Sold 10 at 1001.00; the reference became that last price, so the bid moved to
    # 999.99 (1001 - 10 bps, rounded down) and bought 10 back there: 10 x 1.01 = 10.10,
    # less maker fees of 10 bps on each side, 10.01 and 10.00 (rounded up).
    assert h.maker_metric("mm_realized_pnl", market="TATA_INR") == -9.91
