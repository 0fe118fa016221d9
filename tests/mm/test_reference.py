"""Reference prices (book, seeded walk, replayed file) and the accounting of fills."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from exchange.common.v1 import common_pb2 as cpb
from mm_svc.config import PriceFile, WalkConfig
from mm_svc.fills import Fill, FillTracker, Inventory
from mm_svc.reference import BookReference, BookView, PriceReplay, RandomWalk

D = Decimal
EMPTY = BookView(None, None, None)


def test_the_book_reference_is_the_others_mid_else_the_last_trade_else_the_last_one() -> None:
    source = BookReference(D("1000"))
    assert source.price(EMPTY) == 1000
    assert source.price(BookView(D("1001"), D("1003"), D("990"))) == 1002
    assert source.price(BookView(D("1001"), None, None)) == 1002  # one side: keeps the last
    assert source.price(BookView(None, None, D("995.5"))) == D("995.5")


def test_a_walk_is_the_same_for_a_seed_and_moves_by_its_volatility() -> None:
    walk = WalkConfig(seed=5, drift_bps=D(0), volatility_bps=D(10))

    def path(config: WalkConfig) -> list[Decimal]:
        source = RandomWalk(D("100"), config, floor=D("0.01"))
        return [source.price(EMPTY) for _ in range(200)]

    first = path(walk)
    assert path(walk) == first
    assert path(WalkConfig(6, D(0), D(10))) != first
    steps = [abs(b / a - 1) * 10_000 for a, b in zip([D(100), *first], first, strict=False)]
    assert max(steps) < 60  # 10 bps x |z|, z from a normal draw
    assert sum(steps) / len(steps) > 4  # it does move: E|z| x 10 ~ 8 bps

    drifting = path(WalkConfig(5, D(50), D(0)))  # +50 bps a step, no noise
    assert drifting[1] == drifting[0] * D("1.005")
    assert RandomWalk(D("0.02"), WalkConfig(1, D(-9000), D(0)), D("0.01")).price(EMPTY) == D(
        "0.01"
    )  # never below the floor


def test_a_price_file_replays_at_its_speed_and_loops(tmp_path: Path) -> None:
    points = ((100.0, D("10")), (110.0, D("11")), (130.0, D("13")))
    now = [0.0]
    replay = PriceReplay(PriceFile(tmp_path / "p.csv", 10.0, True, points), clock=lambda: now[0])
    seen = []
    for t in (0.0, 0.9, 1.0, 2.9, 3.0, 3.5):  # seconds of the clock; x10 in the file
        now[0] = t
        seen.append(replay.price(EMPTY))
    assert seen == [10, 10, 11, 11, 10, 10]  # at 3.0 the 30 s span loops to the start

    once = PriceReplay(PriceFile(tmp_path / "p.csv", 10.0, False, points), clock=lambda: now[0])
    now[0] = 100.0
    assert once.price(EMPTY) == 13  # stays at the last price


def order(order_id: int, side: int, executed: str, quote: str, fees: str) -> cpb.Order:
    return cpb.Order(
        order_id=order_id, market="TATA_INR", side=side,  # type: ignore[arg-type]
        executed_quantity=executed, executed_quote_quantity=quote, fees_paid=fees,
    )  # fmt: skip


def test_fills_are_the_growth_of_executed_amounts_counted_once() -> None:
    tracker = FillTracker()
    assert tracker.observe(order(1, cpb.SIDE_BUY, "3", "3000", "3"), new=False) is None  # adopted
    fill = tracker.observe(order(1, cpb.SIDE_BUY, "5", "4998", "5"))
    assert fill == Fill("TATA_INR", cpb.SIDE_BUY, D(2), D(1998), D(2))
    assert fill.price == 999
    assert tracker.observe(order(1, cpb.SIDE_BUY, "5", "4998", "5")) is None
    assert tracker.observe(order(2, cpb.SIDE_SELL, "1", "1001", "1"), new=True) is not None
    tracker.forget(1)
    assert tracker.tracked() == {2}


def test_average_cost_pnl() -> None:
    inventory = Inventory()
    inventory.apply(Fill("M", cpb.SIDE_BUY, D(10), D(1000), D(1)))  # long 10 at 100
    inventory.apply(Fill("M", cpb.SIDE_BUY, D(10), D(1200), D(1)))  # long 20 at 110
    assert (inventory.position, inventory.average) == (D(20), D(110))
    inventory.apply(Fill("M", cpb.SIDE_SELL, D(5), D(600), D(1)))  # 5 x (120 - 110)
    assert inventory.realized == 50 - 3
    assert inventory.unrealized(D(100)) == 15 * -10
    inventory.apply(Fill("M", cpb.SIDE_SELL, D(20), D(2000), D(0)))  # flips: short 5 at 100
    assert inventory.realized == 47 + 15 * (100 - 110)
    assert (inventory.position, inventory.average) == (D(-5), D(100))
    assert inventory.unrealized(D(90)) == 50
