"""Conditional orders: trigger orders fired on the last trade price, and take-profit /
stop-loss brackets (one cancels the other). The driver checks every invariant and the
event ledger after each command, so each test also proves a pending trigger locks nothing."""

import dataclasses
from functools import partial

import orjson

from engine_svc.core.commands import AddMarket, SetTriggerLimit
from engine_svc.core.events import OrderAccepted, TriggerFired, TriggerLimitSet
from engine_svc.core.markets import DEFAULT_MAX_TRIGGERS, MAX_TRIGGER_LIMIT
from engine_svc.core.members import NO_ID
from engine_svc.core.parse import parse_place
from engine_svc.core.state import dump_state, load_state, state_hash
from engine_svc.core.triggers import FiredTrigger
from engine_svc.core.types import ClientOrderId, CloseReason, Code, OrderType, Side
from tests.engine.core.driver import TATA, Exchange, seeded_listing, uid

BUY, SELL, MARKET = Side.BUY, Side.SELL, OrderType.MARKET
OCO = CloseReason.ONE_CANCELS_OTHER


def traded_at(ex: Exchange, price: str) -> None:
    """Funds everyone and makes `price` the last trade price (carol sells, dave buys)."""
    for user in ("alice", "bob", "carol", "dave"):
        ex.deposit(user, "1000", "TATA")
        ex.deposit(user, "1000000", "INR")
    ex.sell("carol", "1", at=price)
    ex.buy("dave", "1", at=price)


def test_a_trigger_needs_a_last_price_different_from_it(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.rejects(
        Code.TRIGGER_WOULD_FIRE,
        lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="90"),
    )
    traded_at(ex, "100")
    err = ex.rejects(
        Code.TRIGGER_WOULD_FIRE,
        lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="100"),
    )
    assert "last price" in err.message
    ex.rejects(
        Code.INVALID_PRICE, lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="99.999")
    )
    ex.rejects(
        Code.INVALID_QUANTITY, lambda: ex.conditional("alice", SELL, MARKET, qty="1.5", trigger="9")
    )


def test_a_pending_stop_locks_nothing_and_is_not_in_the_book(ex: Exchange) -> None:
    traded_at(ex, "100")
    before = ex.balances("alice")
    out = ex.conditional("alice", SELL, qty="5", price="94", trigger="95")
    assert out.placed_triggers[0].above is False
    assert ex.balances("alice") == before
    assert ex.asks() == []
    assert ex.bids() == []
    assert (
        ex.engine.find_trigger(out.placed_triggers[0].user, out.trigger_id, ClientOrderId(0))
        is not None
    )


def test_a_stop_fires_when_the_last_price_reaches_it_from_its_side(ex: Exchange) -> None:
    traded_at(ex, "100")
    stop = ex.conditional("alice", SELL, MARKET, qty="2", trigger="95").trigger_id
    ex.buy("bob", "5", at="90")  # resting bid for the stop to hit
    ex.sell("carol", "1", at="96")
    ex.buy("dave", "1", at="96")  # a trade at 96: not yet
    assert stop in ex.engine.triggers
    ex.sell("carol", "1", at="95")
    out = ex.buy("dave", "1", at="95")  # a trade at 95: reached
    assert out.fired == [stop]
    kinds = [type(e).__name__ for e in out.events]
    fired_at = kinds.index("TriggerFired")
    accepted = out.events[fired_at + 1]
    assert isinstance(accepted, OrderAccepted)
    assert accepted.order_id == stop
    assert [(f.qty, f.price, f.maker, f.taker) for f in out.trades][-1] == (
        "2",
        "90.00",
        "bob",
        "alice",
    )
    assert stop not in ex.engine.triggers


def test_a_buy_stop_above_fires_on_a_trade_at_or_above_it(ex: Exchange) -> None:
    traded_at(ex, "100")
    stop = ex.conditional("alice", BUY, qty="1", price="110", trigger="105").trigger_id
    ex.sell("bob", "3", at="105")
    out = ex.buy("dave", "1", at="105")
    assert out.fired == [stop]
    assert out.trades[-1].taker == "alice"
    assert out.trades[-1].price == "105.00"


def test_the_index_knows_the_nearest_pending_price_on_each_side(ex: Exchange) -> None:
    """The cascade skips a trade that lies strictly between them: nothing can fire."""
    traded_at(ex, "100")
    book = ex.engine.trigger_books[TATA]
    assert (book.lowest_above, book.highest_below) == (0, 0)  # none pending
    near = ex.conditional("alice", BUY, MARKET, qty="1", trigger="103").trigger_id
    far = ex.conditional("alice", BUY, MARKET, qty="1", trigger="105").trigger_id
    ex.conditional("bob", SELL, MARKET, qty="1", trigger="97")
    assert (book.lowest_above, book.highest_below) == (10300, 9700)  # paise
    ex.sell("carol", "1", at="102")
    assert ex.buy("dave", "1", at="102").fired == []
    ex.cancel("alice", near)
    assert book.lowest_above == 10500
    ex.sell("carol", "2", at="105")
    assert ex.buy("dave", "1", at="105").fired == [far]
    assert (book.lowest_above, book.highest_below) == (0, 9700)


def test_a_gap_through_several_stops_fires_them_nearest_first_then_oldest(ex: Exchange) -> None:
    traded_at(ex, "100")
    far = ex.conditional("alice", SELL, MARKET, qty="1", trigger="97").trigger_id
    near = ex.conditional("bob", SELL, MARKET, qty="1", trigger="99").trigger_id
    near_later = ex.conditional("alice", SELL, MARKET, qty="1", trigger="99").trigger_id
    mid = ex.conditional("bob", SELL, MARKET, qty="1", trigger="98").trigger_id
    ex.buy("dave", "10", at="50")
    ex.sell("carol", "1", at="96")
    out = ex.buy("dave", "1", at="96")  # jumps straight through all four
    assert out.fired == [near, near_later, mid, far]
    assert not ex.engine.triggers


def test_a_stops_firing_can_fire_another_in_the_same_command(ex: Exchange) -> None:
    traded_at(ex, "100")
    first = ex.conditional("alice", SELL, MARKET, qty="1", trigger="99").trigger_id
    second = ex.conditional("bob", SELL, MARKET, qty="1", trigger="97").trigger_id
    ex.buy("dave", "1", at="96")  # the first stop's sale trades here, reaching the second
    ex.buy("dave", "1", at="95")
    ex.sell("carol", "1", at="99")
    out = ex.buy("dave", "1", at="99")
    assert out.fired == [first, second]
    assert [t.price for t in out.trades] == ["99.00", "96.00", "95.00"]


def test_a_reached_trigger_fires_at_the_last_price_the_ones_before_it_left(
    ex: Exchange,
) -> None:
    """One trade at 97 reaches a buy stop at 99 and a sell stop at 98; the buy fires first
    and takes 101, so the sell fires with the last price at 101: above its own, which a
    trade reached all the same (TriggerFired says the last price when it fired)."""
    traded_at(ex, "100")
    near = ex.conditional("alice", BUY, MARKET, qty="1", trigger="99").trigger_id
    far = ex.conditional("bob", SELL, MARKET, qty="1", trigger="98").trigger_id
    ex.sell("carol", "1", at="101")
    ex.buy("dave", "5", at="90")
    ex.sell("carol", "1", at="97")
    out = ex.buy("dave", "1", at="97")
    assert out.fired == [near, far]
    assert [t.price for t in out.trades] == ["97.00", "101.00", "90.00"]
    fired = [(e.order_id, e.last_price) for e in out.events if isinstance(e, TriggerFired)]
    assert fired == [(near, 9700), (far, 10100)]


def test_a_trigger_that_cannot_pay_when_it_fires_fails_and_changes_nothing_else(
    ex: Exchange,
) -> None:
    traded_at(ex, "100")
    ex.withdraw("alice", "1000", "TATA")
    stop = ex.conditional("alice", SELL, qty="3", price="90", trigger="99").trigger_id
    ex.sell("carol", "1", at="99")
    before = ex.balances("alice")
    out = ex.buy("dave", "1", at="99")
    assert out.fired == [stop]
    assert out.failed == [(stop, Code.INSUFFICIENT_FUNDS)]
    assert ex.balances("alice") == before
    assert ex.asks() == []
    assert stop not in ex.engine.triggers
    failed = ex.engine.find_ended_trigger(uid("alice"), stop)  # still fetchable, with why
    assert failed is not None
    assert (failed.failure_code, failed.fired_at, failed.ended) == (
        Code.INSUFFICIENT_FUNDS, ex.ts, ex.ts,
    )  # fmt: skip
    assert ex.engine.find_ended_trigger(uid("bob"), stop) is None  # only by its owner


def test_cancel_by_id_client_id_and_cancel_all_cover_triggers(ex: Exchange) -> None:
    traded_at(ex, "100")
    by_id = ex.conditional("alice", SELL, MARKET, qty="1", trigger="90").trigger_id
    ex.conditional("alice", SELL, MARKET, qty="1", trigger="91", client_id=5)
    ex.rejects(Code.DUPLICATE_CLIENT_ID, lambda: ex.sell("alice", "1", at="120", client_id=5))
    ex.rejects(
        Code.DUPLICATE_CLIENT_ID,
        lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="92", client_id=5),
    )
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("bob", by_id))
    assert ex.cancel("alice", by_id).cancelled_triggers == [(by_id, CloseReason.USER_CANCELLED)]
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("alice", by_id))
    assert len(ex.cancel("alice", client_id=5).cancelled_triggers) == 1
    ex.conditional("alice", SELL, MARKET, qty="1", trigger="90")
    ex.conditional("alice", BUY, MARKET, qty="1", trigger="110")
    ex.sell("alice", "1", at="130")
    out = ex.cancel_all("alice")
    assert len(out.cancelled_triggers) == 2
    assert len(out.closed_ids) == 1
    assert not ex.engine.triggers


def test_a_cancel_racing_a_firing_meets_either_the_trigger_or_what_it_became(
    ex: Exchange,
) -> None:
    """One sequencer orders the cancel and the trade that fires: a trigger cancelled first
    never fires; cancelled after, the cancel meets the order it became (same id) if that
    rests, and finds nothing if it filled. Each keeps its trigger for queries."""
    traded_at(ex, "100")
    rests = ex.conditional("alice", SELL, qty="2", price="98", trigger="99").trigger_id
    fills = ex.conditional("bob", SELL, MARKET, qty="1", trigger="99").trigger_id
    first = ex.conditional("alice", SELL, MARKET, qty="1", trigger="99").trigger_id
    assert ex.cancel("alice", first).cancelled_triggers == [(first, CloseReason.USER_CANCELLED)]
    ex.buy("dave", "1", at="97")  # what bob's stop sells to
    ex.sell("carol", "1", at="99")
    move = ex.buy("dave", "1", at="99")
    assert move.fired == [rests, fills]  # the same price: acceptance order
    assert ex.engine.orders[rests].fired == FiredTrigger(9900, False, NO_ID, NO_ID, ex.ts)
    fired_at = ex.ts
    assert ex.cancel("alice", rests).closed_ids == [rests]  # the order it became
    closed = ex.engine.find_order(uid("alice"), rests, ClientOrderId(0))
    assert closed is not None
    assert closed.fired == FiredTrigger(9900, False, NO_ID, NO_ID, fired_at)
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("bob", fills))  # it filled
    cancelled = ex.engine.find_ended_trigger(uid("alice"), first)
    assert cancelled is not None
    assert (cancelled.reason, cancelled.fired_at) == (CloseReason.USER_CANCELLED, 0)


def test_pending_triggers_are_limited_per_user_and_market(ex: Exchange) -> None:
    traded_at(ex, "100")
    for i in range(DEFAULT_MAX_TRIGGERS):
        ex.conditional("alice", SELL, MARKET, qty="1", trigger=str(50 + i % 40))
    ex.rejects(
        Code.TRIGGER_LIMIT, lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="60")
    )
    ex.conditional("bob", SELL, MARKET, qty="1", trigger="60")  # another user's own count


def test_the_limit_in_all_markets_is_set_by_a_command_a_snapshot_keeps(ex: Exchange) -> None:
    traded_at(ex, "100")
    for trigger in ("60", "70"):
        ex.conditional("alice", SELL, MARKET, qty="1", trigger=trigger)
    out = ex.apply(SetTriggerLimit(2))
    assert [type(e) for e in out.events] == [TriggerLimitSet]
    assert ex.apply(SetTriggerLimit(2)).events == []  # unchanged: nothing to journal
    err = ex.rejects(
        Code.TRIGGER_LIMIT, lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="80")
    )
    assert "2 in all" in err.message
    ex.apply(SetTriggerLimit(1))  # below what she has: hers stay pending, new ones refused
    assert len(ex.engine.open_triggers(uid("alice"))) == 2
    for bad in (SetTriggerLimit(0), SetTriggerLimit(MAX_TRIGGER_LIMIT + 1)):
        ex.rejects(Code.INVALID_MARKET_CONFIG, partial(ex.apply, bad))
    restored = Exchange([])
    restored.engine = load_state(orjson.loads(orjson.dumps(dump_state(ex.engine))))
    assert restored.engine.max_triggers_total == 1
    assert state_hash(restored.engine) == state_hash(ex.engine)
    restored.ts, restored.ledger = ex.ts, ex.ledger
    ex.apply(SetTriggerLimit(3))
    ex.conditional("alice", SELL, MARKET, qty="1", trigger="80")
    assert state_hash(restored.engine) != state_hash(ex.engine)


def test_a_market_spec_sets_its_own_trigger_limit_and_a_snapshot_keeps_it() -> None:
    listing = [
        AddMarket(dataclasses.replace(c.spec, max_triggers=3))
        if isinstance(c, AddMarket) and c.spec.symbol == "TATA_INR"
        else c
        for c in seeded_listing()
    ]
    ex = Exchange(listing)
    traded_at(ex, "100")
    for trigger in ("60", "70", "80"):
        ex.conditional("alice", SELL, MARKET, qty="1", trigger=trigger)
    ex.rejects(
        Code.TRIGGER_LIMIT, lambda: ex.conditional("alice", SELL, MARKET, qty="1", trigger="90")
    )
    restored = Exchange([])
    restored.engine = load_state(orjson.loads(orjson.dumps(dump_state(ex.engine))))
    assert restored.engine.market("TATA_INR").max_triggers == 3
    assert state_hash(restored.engine) == state_hash(ex.engine)
    restored.ts, restored.ledger = ex.ts, ex.ledger
    restored.rejects(
        Code.TRIGGER_LIMIT,
        lambda: restored.conditional("alice", SELL, MARKET, qty="1", trigger="90"),
    )


def test_a_filled_bracket_order_creates_its_linked_legs_for_the_filled_quantity(
    ex: Exchange,
) -> None:
    traded_at(ex, "100")
    ex.sell("bob", "3", at="100")
    out = ex.conditional("alice", BUY, qty="3", price="100", tp="110", sl="95", sl_limit="94")
    tp, sl = out.placed_triggers
    assert (tp.side, tp.type, tp.qty, tp.trigger_price, tp.above) == (SELL, MARKET, 3, 11000, True)
    assert (sl.type, sl.price, sl.trigger_price, sl.above) == (OrderType.LIMIT, 9400, 9500, False)
    assert tp.sibling == sl.order_id
    assert sl.sibling == tp.order_id
    assert tp.parent == sl.parent == out.order_id
    assert ex.balances("alice")["TATA"] == ("1003", "0")  # the legs lock nothing

    # The stop-loss fires; the take-profit is cancelled in the same step.
    ex.buy("dave", "5", at="94")
    ex.sell("carol", "1", at="95")
    hit = ex.buy("dave", "1", at="95")
    assert hit.fired == [sl.order_id]
    assert hit.cancelled_triggers == [(tp.order_id, OCO)]
    assert not ex.engine.triggers


def test_a_partly_filled_bracket_order_gets_legs_when_cancelled(ex: Exchange) -> None:
    traded_at(ex, "100")
    ex.sell("bob", "2", at="100")
    parent = ex.conditional("alice", BUY, qty="5", price="100", sl="90").order_id
    assert not ex.engine.triggers  # still open
    out = ex.cancel("alice", parent)
    (leg,) = out.placed_triggers
    assert leg.qty == 2
    assert leg.parent == parent
    assert leg.sibling == 0


def test_a_bracket_order_cancelled_unfilled_or_by_cancel_all_leaves_nothing(
    ex: Exchange,
) -> None:
    traded_at(ex, "100")
    parent = ex.conditional("alice", BUY, qty="5", price="99", tp="120").order_id
    assert ex.cancel("alice", parent).placed_triggers == []
    ex.sell("bob", "1", at="99")
    ex.conditional("alice", BUY, qty="5", price="99", tp="120")
    out = ex.cancel_all("alice")
    assert out.placed_triggers == []
    assert not ex.engine.triggers


def test_when_one_move_reaches_both_legs_exactly_one_fires(ex: Exchange) -> None:
    traded_at(ex, "100")
    ex.sell("bob", "1", at="100")
    out = ex.conditional("alice", BUY, qty="1", price="100", tp="102", sl="98")
    tp, sl = (t.order_id for t in out.placed_triggers)
    # One market buy walks asks at 97 (reaches the stop-loss) then 103 (the take-profit).
    ex.sell("carol", "1", at="97")
    ex.sell("carol", "1", at="103")
    ex.buy("bob", "5", at="50")
    move = ex.market_buy("dave", "2")
    assert move.fired == [sl]
    assert move.cancelled_triggers == [(tp, OCO)]
    assert len([e for e in move.events if isinstance(e, TriggerFired)]) == 1


def test_bracket_prices_are_checked_when_the_order_is_placed(ex: Exchange) -> None:
    traded_at(ex, "100")
    ex.rejects(
        Code.INVALID_ORDER,
        lambda: ex.conditional("alice", BUY, qty="1", price="100", tp="90", sl="95"),
    )
    ex.rejects(
        Code.INVALID_ORDER,
        lambda: ex.conditional("alice", SELL, qty="1", price="100", tp="110", sl="105"),
    )
    ex.rejects(
        Code.INVALID_ORDER, lambda: ex.conditional("alice", BUY, qty="1", price="100", tp_limit="1")
    )
    ex.rejects(
        Code.INVALID_PRICE,
        lambda: ex.conditional("alice", BUY, qty="1", price="100", tp="110.001"),
    )
    ex.rejects(Code.INVALID_ORDER, lambda: ex.conditional("alice", BUY, qty="1", price="100"))


def test_a_trigger_with_a_bracket_gets_legs_once_the_order_it_became_fills(ex: Exchange) -> None:
    traded_at(ex, "100")
    stop = ex.conditional("alice", BUY, MARKET, qty="2", trigger="105", tp="120", sl="100")
    ex.sell("bob", "5", at="105")
    out = ex.buy("dave", "1", at="105")
    assert out.fired == [stop.trigger_id]
    legs = out.placed_triggers
    assert [leg.parent for leg in legs] == [stop.trigger_id] * 2
    assert [leg.qty for leg in legs] == [2, 2]


def test_pending_triggers_and_brackets_survive_a_snapshot(ex: Exchange) -> None:
    traded_at(ex, "100")
    ex.sell("bob", "1", at="100")
    ex.conditional("alice", BUY, qty="1", price="100", tp="110", sl="95")  # legs pending
    ex.conditional("alice", BUY, qty="2", price="99", tp="120")  # rests with its bracket
    ex.conditional("bob", SELL, MARKET, qty="1", trigger="97", client_id=3)
    data = orjson.loads(orjson.dumps(dump_state(ex.engine)))
    restored = load_state(data)
    assert state_hash(restored) == state_hash(ex.engine)
    assert len(restored.triggers) == 3
    assert restored.markets["TATA_INR"].last_price == 10000
    # Both continue alike: a fall to 95 fires bob's stop and alice's stop-loss.
    fired = []
    for user, side, qty, price in (
        ("dave", BUY, "5", "90"),
        ("carol", SELL, "3", "95"),
        ("dave", BUY, "1", "95"),
    ):
        command = parse_place(
            ex.engine.markets, user=uid(user), market="TATA_INR", side=int(side),
            order_type=int(OrderType.LIMIT), price=price, quantity=qty,
        )  # fmt: skip
        out = ex.apply(command)
        assert restored.apply(command, ex.ts) == out.events
        fired += out.fired
    assert len(fired) == 2
    assert state_hash(restored) == state_hash(ex.engine)
