"""The fault suite's checks catch what they are for: a history where an acknowledged order is
missing, an order accepted twice, a refused order applied, a deposit lost or doubled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chaos.checks import Findings, check_acknowledgements
from chaos.journal import Truth
from chaos.record import AckedFill, AckedOrder, Outcome, Placement, Record, Transfer
from exchange.common.v1 import common_pb2 as cpb

ALICE, BOB = 11, 12


def history(*bodies: dict[str, Any]) -> Truth:
    """A Truth from events given as EngineEvent fields, numbered from seq 1."""
    listing: list[dict[str, Any]] = [
        {"asset_listed": cpb.AssetListed(asset=cpb.Asset(symbol="TATA", decimals=0))},
        {"asset_listed": cpb.AssetListed(asset=cpb.Asset(symbol="INR", decimals=2))},
        {"market_listed": cpb.MarketListed(market=cpb.Market(symbol="TATA_INR", base="TATA"))},
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
