"""The fault suite's checks catch what they are for: a history where an acknowledged order is
missing, an order accepted twice, a refused order applied, a deposit lost or doubled, a
trigger lost, fired twice or early, both legs of a pair fired, a recovery that forgot or
revived a trigger, a trigger's ledger row or history entries missing or doubled, a trade a
WebSocket subscriber missed or was sent twice."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from chaos.checks import (
    Findings,
    check_acknowledgements,
    check_pending_triggers,
    check_trigger_rows,
)
from chaos.depth import DepthWatcher
from chaos.journal import Truth
from chaos.record import AckedFill, AckedOrder, Outcome, Placement, Record, Transfer
from chaos.trades import TradeLog
from exchange.common.v1 import common_pb2 as cpb

ALICE, BOB = 11, 12


def history(*bodies: dict[str, Any]) -> Truth:
    """A Truth from events given as EngineEvent fields, numbered from seq 1."""
    listing: list[dict[str, Any]] = [
        {"asset_listed": cpb.AssetListed(asset=cpb.Asset(symbol="TATA", decimals=0))},
        {"asset_listed": cpb.AssetListed(asset=cpb.Asset(symbol="INR", decimals=2))},
        {
            "market_listed": cpb.MarketListed(
                market=cpb.Market(symbol="TATA_INR", base="TATA", quote="INR")
            )
        },
    ]
    truth = Truth()
    for seq, body in enumerate([*listing, *bodies], start=1):
        truth.apply(cpb.EngineEvent(seq=seq, ts_us=seq, **body))
    return truth


def accepted(order_id: int, user: int, client_id: int) -> dict[str, Any]:
    order = cpb.Order(order_id=order_id, user_id=user, client_order_id=client_id,
                      market="TATA_INR")  # fmt: skip
    return {"order_accepted": cpb.OrderAccepted(order=order)}


def trade(trade_id: int, maker: int, taker: int) -> dict[str, Any]:
    fill = cpb.Fill(trade_id=trade_id, market="TATA_INR", price="950", quantity="2",
                    maker_order_id=maker, taker_order_id=taker)  # fmt: skip
    return {"trade_executed": cpb.TradeExecuted(fill=fill)}


def closed(order_id: int, status: int, executed: str) -> dict[str, Any]:
    return {"order_closed": cpb.OrderClosed(order_id=order_id, status=status,  # type: ignore[arg-type]
                                            executed_quantity=executed)}  # fmt: skip


def trigger_placed(
    order_id: int, user: int, client_id: int, price: str, above: bool, parent: int = 0
) -> dict[str, Any]:
    order = cpb.Order(order_id=order_id, user_id=user, client_order_id=client_id,
                      market="TATA_INR", trigger_price=price, trigger_above=above,
                      parent_order_id=parent, status=cpb.ORDER_STATUS_TRIGGER_PENDING)  # fmt: skip
    return {"trigger_placed": cpb.TriggerPlaced(order=order)}


def trigger_fired(order_id: int, last_price: str) -> dict[str, Any]:
    return {"trigger_fired": cpb.TriggerFired(order_id=order_id, market="TATA_INR",
                                              last_price=last_price)}  # fmt: skip


def trigger_cancelled(order_id: int) -> dict[str, Any]:
    return {"trigger_cancelled": cpb.TriggerCancelled(order_id=order_id, market="TATA_INR")}


def trade_at(trade_id: int, price: str, maker: int = 100, taker: int = 101) -> dict[str, Any]:
    fill = cpb.Fill(trade_id=trade_id, market="TATA_INR", price=price, quantity="1",
                    maker_order_id=maker, taker_order_id=taker)  # fmt: skip
    return {"trade_executed": cpb.TradeExecuted(fill=fill)}


def deposited(user: int, amount: str) -> dict[str, Any]:
    return {"deposited": cpb.Deposited(user_id=user, asset="INR", amount=amount)}


def placed(user: int, client_id: int, order_id: int, status: str, executed: str) -> Placement:
    order = AckedOrder(order_id, user, status, Decimal(executed))
    fills = (AckedFill(7, Decimal("950"), Decimal("2")),) if executed != "0" else ()
    return Placement(user, client_id, "TATA_INR", Outcome.ACKED, order, fills)


def findings_of(record: Record, truth: Truth) -> dict[str, int]:
    found = Findings()
    check_acknowledgements(record, truth, {ALICE, BOB}, found)
    return dict(found.counts)


def test_a_history_that_holds_every_acknowledgement_passes() -> None:
    record = Record()
    record.place(placed(ALICE, 1, 100, "New", "0"))
    record.place(placed(BOB, 1, 101, "Filled", "2"))
    record.place(Placement(BOB, 2, "TATA_INR", Outcome.UNKNOWN))  # applied or not: both fine
    record.deposits.append(Transfer(ALICE, "INR", Decimal("10.5"), Outcome.ACKED))
    truth = history(
        deposited(ALICE, "10.50"),
        accepted(100, ALICE, 1),
        accepted(101, BOB, 1),
        trade(7, maker=100, taker=101),
        closed(101, cpb.ORDER_STATUS_FILLED, "2"),
    )
    assert findings_of(record, truth) == {}


def test_an_acknowledged_order_missing_from_the_history_is_lost() -> None:
    record = Record()
    record.place(placed(ALICE, 1, 100, "New", "0"))
    assert findings_of(record, history()) == {"lost": 1}


def test_an_acknowledged_fill_missing_from_the_history_is_lost() -> None:
    record = Record()
    record.place(placed(BOB, 1, 101, "PartiallyFilled", "2"))
    assert findings_of(record, history(accepted(101, BOB, 1))) == {"lost": 2}  # fill, quantity


def test_a_final_result_that_changed_is_wrong() -> None:
    record = Record()
    record.place(placed(BOB, 1, 101, "Filled", "2"))
    truth = history(
        accepted(100, ALICE, 1),
        accepted(101, BOB, 1),
        trade(7, maker=100, taker=101),
        closed(101, cpb.ORDER_STATUS_CANCELLED, "2"),
    )
    assert findings_of(record, truth) == {"phantom": 1, "wrong": 1}  # Alice's order was never sent


def test_one_client_id_accepted_twice_is_a_duplicate() -> None:
    record = Record()
    record.place(Placement(ALICE, 1, "TATA_INR", Outcome.UNKNOWN))
    truth = history(accepted(100, ALICE, 1), accepted(101, ALICE, 1))
    assert findings_of(record, truth) == {"duplicate": 1}


def test_a_refused_order_that_was_applied_is_found() -> None:
    record = Record()
    record.place(Placement(ALICE, 1, "TATA_INR", Outcome.REFUSED))
    assert findings_of(record, history(accepted(100, ALICE, 1))) == {"refused_but_applied": 1}


def test_deposits_are_counted_against_what_was_acknowledged_and_what_may_have_been() -> None:
    record = Record()
    record.deposits.append(Transfer(ALICE, "INR", Decimal("5"), Outcome.ACKED))
    record.deposits.append(Transfer(BOB, "INR", Decimal("5"), Outcome.UNKNOWN))
    assert findings_of(record, history()) == {"lost": 1}
    twice = history(deposited(ALICE, "5"), deposited(ALICE, "5"), deposited(BOB, "5"))
    assert findings_of(record, twice) == {"duplicate": 1}


# ---- triggers ---------------------------------------------------------------------------


def pending_stop(user: int, client_id: int, order_id: int) -> Placement:
    order = AckedOrder(order_id, user, "TriggerPending", Decimal(0))
    return Placement(user, client_id, "TATA_INR", Outcome.ACKED, order)


def test_a_trigger_that_fired_once_and_became_its_order_passes() -> None:
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "940", above=False),
        trade_at(2, "940"),
        trigger_fired(200, "940"),
        accepted(200, ALICE, 1),  # the order it became keeps its id and client id
    )
    assert findings_of(record, truth) == {}


def test_an_acknowledged_trigger_missing_from_the_history_is_lost() -> None:
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    assert findings_of(record, history(trade_at(1, "950"))) == {"lost": 1}


def test_a_trigger_the_price_reached_that_never_fired_is_lost() -> None:
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "960", above=True),
        trade_at(2, "955"),
        trade_at(3, "961"),  # through it: it should have fired
        trade_at(4, "950"),
    )
    assert findings_of(record, truth) == {"lost": 1}


def test_a_trigger_fired_twice_or_fired_and_cancelled_is_a_duplicate() -> None:
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    record.place(pending_stop(ALICE, 2, 201))
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "940", above=False),
        trigger_placed(201, ALICE, 2, "940", above=False),
        trade_at(2, "940"),
        trigger_fired(200, "940"),
        accepted(200, ALICE, 1),
        trigger_fired(201, "940"),
        accepted(201, ALICE, 2),
        trigger_fired(200, "940"),  # a replay that fired it again
        trigger_cancelled(201),
    )
    assert findings_of(record, truth) == {"duplicate": 2}


def test_a_trigger_fired_before_the_price_reached_it_is_wrong() -> None:
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "940", above=False),
        trigger_fired(200, "945"),
        accepted(200, ALICE, 1),
    )
    assert findings_of(record, truth) == {"wrong": 1}


def test_a_trigger_a_trade_reached_may_fire_after_others_moved_the_price_away() -> None:
    """One trade at 940 reaches both; the first fired takes 955 before the second fires
    (engine_svc/core: test_a_reached_trigger_fires_at_the_last_price_the_ones_before_it_left)."""
    record = Record()
    record.place(pending_stop(ALICE, 1, 200))
    record.place(pending_stop(ALICE, 2, 201))
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "945", above=False),
        trigger_placed(201, ALICE, 2, "942", above=False),
        trade_at(2, "940"),
        trigger_fired(200, "940"),
        accepted(200, ALICE, 1),
        trade_at(3, "955", maker=102, taker=200),
        trigger_fired(201, "955"),
        accepted(201, ALICE, 2),
    )
    assert findings_of(record, truth) == {}


def test_both_legs_of_a_take_profit_stop_loss_pair_firing_is_a_duplicate() -> None:
    record = Record()
    record.place(placed(BOB, 1, 101, "Filled", "2"))
    truth = history(
        accepted(100, ALICE, 0),
        accepted(101, BOB, 1),
        trade(7, maker=100, taker=101),
        closed(101, cpb.ORDER_STATUS_FILLED, "2"),
        trigger_placed(300, BOB, 0, "960", above=True, parent=101),
        trigger_placed(301, BOB, 0, "940", above=False, parent=101),
        trade_at(8, "960"),
        trigger_fired(300, "960"),
        accepted(300, BOB, 0),
        trade_at(9, "940"),
        trigger_fired(301, "940"),  # its other leg should have been cancelled
        accepted(301, BOB, 0),
    )
    assert findings_of(record, truth) == {"duplicate": 1}


def test_an_acknowledged_cancel_of_a_trigger_that_fired_instead_is_wrong() -> None:
    record = Record()
    record.cancelled.append(AckedOrder(200, ALICE, "Cancelled", Decimal(0)))
    record.place(pending_stop(ALICE, 1, 200))
    cancelled = history(trade_at(1, "950"), trigger_placed(200, ALICE, 1, "940", above=False),
                        trigger_cancelled(200))  # fmt: skip
    assert findings_of(record, cancelled) == {}
    fired = history(trade_at(1, "950"), trigger_placed(200, ALICE, 1, "940", above=False),
                    trade_at(2, "939"), trigger_fired(200, "939"))  # fmt: skip
    # The cancel was acknowledged wrongly, and what fired never became an order.
    assert findings_of(record, fired) == {"wrong": 1, "lost": 1}


def pending_in_engine(*order_ids: int) -> list[cpb.Order]:
    return [cpb.Order(order_id=i, status=cpb.ORDER_STATUS_TRIGGER_PENDING) for i in order_ids]


def test_the_engine_must_hold_exactly_the_pending_triggers_of_its_history() -> None:
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "940", above=False),
        trigger_placed(201, ALICE, 2, "960", above=True),
        trigger_cancelled(201),
    )
    for held, expected in (
        (pending_in_engine(200), {}),
        (pending_in_engine(), {"lost": 1}),  # a recovery forgot it
        (pending_in_engine(200, 201), {"duplicate": 1}),  # a recovery brought it back
    ):
        found = Findings()
        check_pending_triggers("TATA_INR", held, truth, found)
        assert dict(found.counts) == expected


def test_each_trigger_has_one_ledger_row_and_one_pending_entry() -> None:
    truth = history(
        trade_at(1, "950"),
        trigger_placed(200, ALICE, 1, "940.5", above=False),
        trigger_placed(201, ALICE, 2, "960", above=True),
        trade_at(2, "940"),
        trigger_fired(200, "940"),
        accepted(200, ALICE, 1),
    )
    fired_row = {"status": 1, "trigger_price": 94050, "triggered_at_us": 5}
    pending_row = {"status": 7, "trigger_price": 96000, "triggered_at_us": None}
    good = {(200, 7): 1, (201, 7): 1}

    def judged(rows: dict[int, Any], entries: dict[tuple[int, int], int]) -> dict[str, int]:
        found = Findings()
        check_trigger_rows(dict(rows), entries, truth, found)
        return dict(found.counts)

    assert judged({200: fired_row, 201: pending_row}, good) == {}
    assert judged({200: fired_row}, good) == {"lost": 1}
    assert judged({200: {**fired_row, "triggered_at_us": None}, 201: pending_row}, good) == {
        "wrong": 1
    }
    assert judged({200: fired_row, 201: {**pending_row, "status": 4}}, good) == {"wrong": 1}
    assert judged({200: fired_row, 201: pending_row}, {**good, (201, 7): 2}) == {"duplicate": 1}
    assert judged({200: fired_row, 201: pending_row}, {(200, 7): 1}) == {"lost": 1}


def test_a_subscribers_trades_are_judged_per_connection_span() -> None:
    """Between the first and the last trade a connection was sent, one missing, one sent
    twice, one out of order or one the market never made is a finding; what a connection
    missed before it began (a reconnect) is not. Each trade is judged once over trials."""
    bodies = [accepted(100, ALICE, 1), accepted(101, BOB, 1)]
    truth = history(*bodies, *(trade(t, maker=100, taker=101) for t in range(1, 8)))
    clean = TradeLog(2)
    for t in (3, 4, 5):
        clean.add("TATA_INR", t)
    f = Findings()
    clean.judge("interval", truth, f)
    assert not f.counts
    assert clean.ids["TATA_INR"] == [5]  # judged: only the span's bound is kept
    clean.add("TATA_INR", 6)
    clean.judge("interval", truth, f)
    assert not f.counts

    for sent, kind in (((2, 4, 5), "stream_gap"), ((2, 3, 3, 4), "duplicate"),
                       ((2, 4, 3), "stream"), ((7, 8, 9), "wrong")):  # fmt: skip
        log, f = TradeLog(1), Findings()
        for t in sent:
            log.add("TATA_INR", t)
        later = history(*bodies, *(trade(t, maker=100, taker=101) for t in (*range(1, 8), 9)))
        log.judge("real_time", later, f)
        assert kind in f.counts, (sent, dict(f.counts))
        assert "real_time, connection 1, TATA_INR" in f.examples[kind][0]


async def test_a_batched_subscribers_frames_go_to_its_trade_log_trade_by_trade() -> None:
    """A `trade@<M>@batch` frame's trades are judged as single ones, in the frame's order:
    one missing inside a frame or between two is a finding; a frame without a trade is
    counted (the suite's finding)."""
    bodies = [accepted(100, ALICE, 1), accepted(101, BOB, 1)]
    truth = history(*bodies, *(trade(t, maker=100, taker=101) for t in range(1, 8)))
    async with aiohttp.ClientSession() as http:  # not used: no frame is read from a socket
        watcher = DepthWatcher(http, "http://gateway", ["TATA_INR"], batched=True)
    assert watcher.topics("TATA_INR") == ("depth.TATA_INR", "trade@TATA_INR@batch")
    for frames, found in ((([2, 3], [4], [5, 6]), {}), (([2, 3], [5, 6]), {"stream_gap": 1}),
                          (([2, 4, 5],), {"stream_gap": 1})):  # fmt: skip
        log, f = TradeLog(1), Findings()
        for ids in frames:
            watcher.trades("trade@TATA_INR@batch", [{"e": "trade", "t": t} for t in ids], log)
        log.judge("interval_batch", truth, f)
        assert dict(f.counts) == found, frames
    assert watcher.empty_batches == 0
    watcher.trades("trade@TATA_INR@batch", [], TradeLog(1))
    assert watcher.empty_batches == 1
