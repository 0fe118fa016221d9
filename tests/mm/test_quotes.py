"""The quote planner alone: targets, skew, tolerance, and the limits as properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.common.v1 import common_pb2 as cpb
from mm_svc.client_ids import Side, Slot, parse_slot, slot_id
from mm_svc.config import MarketConfig
from mm_svc.quotes import MarketState, OpenQuote, plan_market, targets
from mm_svc.units import MarketRules
from tests.mm.conftest import make_config

BUY, SELL = cpb.SIDE_BUY, cpb.SIDE_SELL
D = Decimal
RULES = MarketRules(
    symbol="TATA_INR", base="TATA", quote="INR", tick=D("0.01"), step=D("1"), min_qty=D("1"),
    min_notional=D("1"), max_qty=D("1000000"), max_price=D("1000000"), maker_fee_bps=10,
    quote_unit=D("0.01"),
)  # fmt: skip


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> MarketConfig:
    config = make_config(
        tmp_path_factory.mktemp("cfg"),
        market={"levels": 3, "size_growth": "2", "max_order_size": "30", "max_open_orders": 5,
                "max_position": "45", "skew_bps": 20},
    )  # fmt: skip
    return config.markets[0]


def state(position: str = "0", reference: str = "1000") -> MarketState:
    return MarketState(D(reference), D(position), None, None)


def test_targets_alternate_sides_inner_first_up_to_the_open_order_limit(
    market: MarketConfig,
) -> None:
    quotes = targets(market, RULES, state())
    assert [(q.slot, q.price, q.qty) for q in quotes.values()] == [
        (Slot(BUY, 0), D("999.00"), D(10)), (Slot(SELL, 0), D("1001.00"), D(10)),
        (Slot(BUY, 1), D("998.00"), D(20)), (Slot(SELL, 1), D("1002.00"), D(20)),
        (Slot(BUY, 2), D("997.00"), D(30)),  # 40 capped at max_order_size; 5 orders at most
    ]  # fmt: skip


def test_skew_moves_quotes_against_the_position(market: MarketConfig) -> None:
    flat = targets(market, RULES, state("0"))
    long = targets(market, RULES, state("45"))  # at the maximum: 20 bps lower
    short = targets(market, RULES, state("-20"))
    for slot in flat:
        assert long[slot].price < flat[slot].price < short[slot].price
    assert long[Slot(BUY, 0)].price == D("997.00")  # 1000 x (1 - 0.002) x (1 - 0.001)


def test_quotes_never_cross_the_others(market: MarketConfig) -> None:
    crowded = MarketState(D("1000"), D(0), others_bid=D("1000.50"), others_ask=D("998.50"))
    quotes = targets(market, RULES, crowded)
    assert all(q.price <= D("998.49") for s, q in quotes.items() if s.side == BUY)
    assert all(q.price >= D("1000.51") for s, q in quotes.items() if s.side == SELL)


def quote(slot: Slot, price: str, remaining: str, order_id: int = 1) -> OpenQuote:
    return OpenQuote(order_id, slot.side, D(price), D(remaining), slot)


def test_an_order_is_kept_within_tolerance_and_replaced_beyond(market: MarketConfig) -> None:
    funds = {"INR": D("1000000"), "TATA": D("1000")}
    near = quote(Slot(BUY, 0), "999.40", "10")  # 4 bps from 999.00: within 5
    far = quote(Slot(SELL, 0), "1001.60", "10", 2)  # 6 bps from 1001.00
    plan = plan_market(market, RULES, state(), [near, far], funds, replace=True)
    assert plan.kept == [near]
    assert [c.order for c in plan.cancels] == [far]
    assert "price 1001.60 -> 1001.00" in plan.cancels[0].reason

    half_filled = quote(Slot(BUY, 1), "998.00", "9")  # below half of 20: refill
    plan = plan_market(market, RULES, state(), [half_filled], funds, replace=True)
    assert [c.order for c in plan.cancels] == [half_filled]

    stray = OpenQuote(7, BUY, D("900"), D("1"), None)
    plan = plan_market(market, RULES, state(), [stray], funds, replace=True)
    assert [(c.order, c.reason) for c in plan.cancels] == [(stray, "not a quote")]
    plan = plan_market(market, RULES, state(), [stray], funds, replace=False)
    assert plan.kept == [stray]  # after the cancels: counted, not touched
    assert len(plan.places) == 4


def open_quote(side: Side, level: int, cents: int, qty: int) -> OpenQuote:
    return OpenQuote(0, side, D(cents) / 100, D(qty), Slot(side, level))


open_quotes = st.lists(
    st.builds(
        open_quote, st.sampled_from([BUY, SELL]), st.integers(0, 3),
        st.integers(95_000, 105_000), st.integers(1, 40),
    ),
    max_size=8,
    unique_by=lambda q: q.slot,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(-60, 60),
    reference=st.integers(90_000, 110_000),
    orders=open_quotes,
    inr=st.integers(0, 80_000),
    tata=st.integers(0, 100),
    replace=st.booleans(),
)
def test_every_plan_respects_the_limits(
    market: MarketConfig,
    position: int,
    reference: int,
    orders: list[OpenQuote],
    inr: int,
    tata: int,
    replace: bool,
) -> None:
    funds = {"INR": D(inr), "TATA": D(tata)}
    view = MarketState(D(reference) / 100, D(position), None, None)
    plan = plan_market(market, RULES, view, orders, funds, replace=replace)

    after = [(o.side, o.remaining, o.slot) for o in plan.kept] + [
        (q.slot.side, q.qty, q.slot) for q in plan.places
    ]
    slots = [slot for _, _, slot in after]
    assert len(slots) == len(set(slots))  # one order per slot
    assert sorted(plan.kept + [c.order for c in plan.cancels], key=id) == sorted(orders, key=id)
    if replace:
        assert len(after) <= market.max_open_orders
        bids = sum((qty for side, qty, _ in after if side == BUY), D(0))
        asks = sum((qty for side, qty, _ in after if side == SELL), D(0))
        assert position + bids <= max(market.max_position, D(position))
        assert -position + asks <= max(market.max_position, D(-position))
    else:
        assert plan.cancels == []
    for placed in plan.places:
        assert placed.qty <= market.max_order_size
        assert RULES.acceptable(placed.price, placed.qty)
    spent_inr = sum(RULES.lock(BUY, q.price, q.qty) for q in plan.places if q.slot.side == BUY)
    spent_tata = sum(q.qty for q in plan.places if q.slot.side == SELL)
    assert spent_inr + funds["INR"] == inr  # the locks came out of the funds...
    assert spent_tata + funds["TATA"] == tata
    assert funds["INR"] >= 0  # ...and fitted in them
    assert funds["TATA"] >= 0


def test_client_ids_name_a_slot_of_one_market_and_one_maker() -> None:
    ident = slot_id(0x4D4D, "TATA_INR", Slot(SELL, 4))
    assert parse_slot(0x4D4D, "TATA_INR", ident) == Slot(SELL, 4)
    assert parse_slot(0x4D4E, "TATA_INR", ident) is None  # another maker's
    assert parse_slot(0x4D4D, "BTC_USDT", ident) is None  # another market's
    assert parse_slot(0x4D4D, "TATA_INR", 12345) is None
    assert ident < 2**64
    assert (
        len({slot_id(1, "TATA_INR", Slot(s, lv)) for s in (BUY, SELL) for lv in range(127)}) == 254
    )


def test_lock_and_affordable_match_the_engines_rounding() -> None:
    # 3 x 999.99 = 2999.97 INR, fee 10 bps = 2.99997, rounded up to 3.00.
    assert RULES.lock(BUY, D("999.99"), D("3")) == D("3002.97")
    assert RULES.affordable(BUY, D("999.99"), D("3002.97")) == 3
    assert RULES.affordable(BUY, D("999.99"), D("3002.96")) == 2
    assert RULES.affordable(SELL, D("999.99"), D("7.5")) == 7
