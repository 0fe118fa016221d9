"""Client order ids, cancels and cancel-all."""

from engine_svc.core.types import CloseReason, Code, OrderStatus
from tests.engine.core.driver import IOC, Exchange

CANCELLED = (OrderStatus.CANCELLED, CloseReason.USER_CANCELLED)


def funded(ex: Exchange) -> Exchange:
    for user in ("alice", "bob"):
        ex.deposit(user, "100", "TATA")
        ex.deposit(user, "100000", "INR")
        ex.deposit(user, "1", "BTC")
        ex.deposit(user, "100000", "USDT")
    return ex


def test_a_client_id_is_unique_among_a_users_open_orders(ex: Exchange) -> None:
    funded(ex)
    first = ex.sell("alice", "1", at="100", client_id=42)
    ex.rejects(Code.DUPLICATE_CLIENT_ID, lambda: ex.sell("alice", "1", at="101", client_id=42))
    ex.rejects(
        Code.DUPLICATE_CLIENT_ID, lambda: ex.buy("alice", "1", at="90", client_id=42, tif=IOC)
    )
    # another user may use the same client id
    ex.sell("bob", "1", at="102", client_id=42)

    ex.cancel("alice", client_id=42)
    again = ex.sell("alice", "1", at="101", client_id=42)
    assert again.rests
    assert again.order_id != first.order_id


def test_a_client_id_is_free_again_once_its_order_fills(ex: Exchange) -> None:
    funded(ex)
    ex.sell("alice", "1", at="100", client_id=7)
    out = ex.buy("bob", "1", at="100")
    assert len(out.trades) == 1
    assert ex.sell("alice", "1", at="100", client_id=7).rests


def test_an_order_that_never_rests_does_not_hold_its_client_id(ex: Exchange) -> None:
    funded(ex)
    ex.sell("alice", "1", at="100", client_id=9, tif=IOC)
    assert ex.sell("alice", "1", at="100", client_id=9).rests


def test_cancel_by_order_id(ex: Exchange) -> None:
    funded(ex)
    bid = ex.buy("alice", "2", at="100")
    assert ex.balances("alice")["INR"] == ("99799.80", "200.20")

    out = ex.cancel("alice", bid.order_id)

    assert out.closed(bid.order_id) == CANCELLED
    assert ex.bids() == []
    assert ex.balances("alice")["INR"] == ("100000.00", "0.00")
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("alice", bid.order_id))


def test_cancel_by_client_id(ex: Exchange) -> None:
    funded(ex)
    ask = ex.sell("alice", "3", at="100", client_id=5)
    out = ex.cancel("alice", client_id=5)
    assert out.closed(ask.order_id) == CANCELLED
    assert ex.balances("alice")["TATA"] == ("100", "0")
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("alice", client_id=5))


def test_cancel_of_a_partly_filled_order_releases_only_what_remains(ex: Exchange) -> None:
    funded(ex)
    ask = ex.sell("alice", "10", at="100")
    ex.buy("bob", "4", at="100")
    out = ex.cancel("alice", ask.order_id)
    assert out.closed(ask.order_id) == CANCELLED
    assert ex.balances("alice")["TATA"] == ("96", "0")


def test_nobody_can_cancel_another_users_order(ex: Exchange) -> None:
    funded(ex)
    ask = ex.sell("alice", "1", at="100", client_id=3)
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("bob", ask.order_id))
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("bob", client_id=3))
    assert ask.rests
    assert ex.engine.find_order(2, ask.order_id, 0) is None  # type: ignore[arg-type]


def test_cancel_with_a_market_must_name_the_orders_market(ex: Exchange) -> None:
    funded(ex)
    ask = ex.sell("alice", "1", at="100")
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("alice", ask.order_id, market="BTC_USDT"))
    ex.cancel("alice", ask.order_id, market="TATA_INR")


def test_cancel_with_no_id_finds_nothing(ex: Exchange) -> None:
    funded(ex)
    ex.sell("alice", "1", at="100")
    ex.rejects(Code.ORDER_NOT_FOUND, lambda: ex.cancel("alice"))


def test_cancel_all_of_a_user_optionally_in_one_market(ex: Exchange) -> None:
    funded(ex)
    a1 = ex.sell("alice", "1", at="100")
    a2 = ex.buy("alice", "1", at="90")
    a3 = ex.buy("alice", "0.001", at="30000", market="BTC_USDT")
    b1 = ex.sell("bob", "1", at="101")

    out = ex.cancel_all("alice", market="TATA_INR")
    assert out.closed_ids == [a1.order_id, a2.order_id]
    assert ex.open_ids("alice") == [a3.order_id]

    out = ex.cancel_all("alice")
    assert out.closed_ids == [a3.order_id]
    assert ex.open_ids("alice") == []
    assert ex.open_ids("bob") == [b1.order_id]
    assert ex.balances("alice") == {
        "BTC": ("1.00000000", "0.00000000"),
        "INR": ("100000.00", "0.00"),
        "TATA": ("100", "0"),
        "USDT": ("100000.000000", "0.000000"),
    }

    assert ex.cancel_all("alice").events == []  # nothing left: no events, not an error
    ex.rejects(Code.UNKNOWN_MARKET, lambda: ex.cancel_all("alice", market="NOPE_INR"))
