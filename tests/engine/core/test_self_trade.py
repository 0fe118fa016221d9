"""Self-trade prevention: an order never trades with an order of the same user.

REJECT_TAKER (the default): the incoming order stops, its remainder is cancelled, the resting
order stays. CANCEL_MAKER: the resting order is cancelled, the incoming one goes on.
CANCEL_BOTH: both stop.
"""

from engine_svc.core.types import CloseReason, Code, OrderStatus
from tests.engine.core.driver import CANCEL_BOTH, CANCEL_MAKER, FOK, Exchange, Fill

SELF_TRADE = (OrderStatus.CANCELLED, CloseReason.SELF_TRADE)


def funded(ex: Exchange) -> Exchange:
    for user in ("alice", "bob", "carol"):
        ex.deposit(user, "50", "TATA")
        ex.deposit(user, "10000", "INR")
    return ex


def test_reject_taker_is_the_default(ex: Exchange) -> None:
    funded(ex)
    ask = ex.sell("alice", "5", at="100")

    out = ex.buy("alice", "3", at="100")

    assert out.trades == []
    assert out.closed() == SELF_TRADE
    assert ask.rests
    assert ex.asks() == [("100.00", "5")]
    assert ex.balances("alice") == {"INR": ("10000.00", "0.00"), "TATA": ("45", "5")}


def test_reject_taker_keeps_the_fills_before_its_own_order(ex: Exchange) -> None:
    funded(ex)
    ex.sell("bob", "2", at="99")
    ex.sell("alice", "5", at="100")
    ex.sell("carol", "5", at="100")

    out = ex.buy("alice", "9", at="100")

    assert out.trades == [Fill("2", "99.00", maker="bob", taker="alice")]
    assert out.closed() == SELF_TRADE
    assert ex.asks() == [("100.00", "10")]
    assert ex.bids() == []


def test_cancel_maker_cancels_the_resting_order_and_goes_on(ex: Exchange) -> None:
    funded(ex)
    own = ex.sell("alice", "5", at="100")
    ex.sell("carol", "5", at="100")

    out = ex.buy("alice", "3", at="100", stp=CANCEL_MAKER)

    assert out.closed(own.order_id) == SELF_TRADE
    assert out.trades == [Fill("3", "100.00", maker="carol", taker="alice")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    assert ex.asks() == [("100.00", "2")]
    assert ex.balances("alice")["TATA"] == ("53", "0")  # her 5 came back, she bought 3


def test_cancel_maker_can_rest_after_clearing_its_own_orders(ex: Exchange) -> None:
    funded(ex)
    own = ex.sell("alice", "5", at="100")
    out = ex.buy("alice", "3", at="100", stp=CANCEL_MAKER)
    assert out.closed(own.order_id) == SELF_TRADE
    assert out.rests
    assert ex.bids() == [("100.00", "3")]
    assert ex.asks() == []


def test_cancel_both_stops_both_orders(ex: Exchange) -> None:
    funded(ex)
    own = ex.sell("alice", "5", at="100")
    ex.sell("carol", "5", at="101")

    out = ex.buy("alice", "7", at="101", stp=CANCEL_BOTH)

    assert out.trades == []
    assert out.closed(own.order_id) == SELF_TRADE
    assert out.closed() == SELF_TRADE
    assert ex.asks() == [("101.00", "5")]
    assert ex.balances("alice") == {"INR": ("10000.00", "0.00"), "TATA": ("50", "0")}


def test_market_orders_prevent_self_trades_too(ex: Exchange) -> None:
    funded(ex)
    ex.buy("alice", "5", at="100")
    out = ex.market_sell("alice", "2")
    assert out.trades == []
    assert out.closed() == SELF_TRADE
    assert ex.bids() == [("100.00", "5")]

    out = ex.market_sell("alice", "2", stp=CANCEL_MAKER)
    assert out.trades == []
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.bids() == []


def test_fok_counts_only_what_it_could_take_before_its_own_order(ex: Exchange) -> None:
    funded(ex)
    ex.sell("bob", "2", at="99")
    ex.sell("alice", "5", at="100")
    ex.sell("carol", "5", at="100")
    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.buy("alice", "4", at="100", tif=FOK))
    ex.rejects(
        Code.FOK_NOT_FILLABLE, lambda: ex.buy("alice", "4", at="100", tif=FOK, stp=CANCEL_BOTH)
    )
    # cancelling her own maker, she can fill 2 from bob and 2 from carol
    out = ex.buy("alice", "4", at="100", tif=FOK, stp=CANCEL_MAKER)
    assert out.trades == [
        Fill("2", "99.00", maker="bob", taker="alice"),
        Fill("2", "100.00", maker="carol", taker="alice"),
    ]
    assert ex.asks() == [("100.00", "3")]
