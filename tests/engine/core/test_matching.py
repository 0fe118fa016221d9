"""Matching on TATA_INR (tick 0.01 INR, step 1 TATA, maker 10 bps, taker 20 bps).

Fees are paid in INR: added to what a buyer pays, taken from what a seller gets.
Every amount below is worked out by hand in the comments.
"""

from engine_svc.core.types import CloseReason, Code, OrderStatus
from tests.engine.core.driver import FOK, IOC, Exchange, Fill


def test_sell_7_then_buy_10_trades_7_at_the_makers_price_and_rests_3(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "20000", "INR")

    ex.sell("alice", "7", at="1600")
    assert ex.balances("alice") == {"TATA": ("3", "7")}

    out = ex.buy("bob", "10", at="1601")

    assert out.trades == [Fill("7", "1600.00", maker="alice", taker="bob")]
    # notional 7 x 1600 = 11200.00; maker fee 10 bps = 11.20; taker fee 20 bps = 22.40
    assert out.fees == [("11.20", "22.40")]
    assert ex.bids() == [("1601.00", "3")]
    assert ex.asks() == []
    # bob locked 16010.00 + 20 bps (32.02) = 16042.02 up front. Resting 3 at 1601 needs
    # 4803.00 + its maker fee ceil(4.803) = 4.81; the rest comes back: 7 x 1.00 of price
    # improvement plus 4.81 of fee he locked at the taker rate = 11.81.
    assert out.released == "11.81"
    assert ex.balances("bob") == {
        "INR": ("3969.79", "4807.81"),  # 20000 - 11200 - 22.40 - 4807.81
        "TATA": ("7", "0"),
    }
    assert ex.balances("alice") == {"INR": ("11188.80", "0.00"), "TATA": ("3", "0")}
    assert ex.balances("fees") == {"INR": ("33.60", "0.00")}

    # Later carol sells into bob's rest: he pays exactly the 4.81 maker fee he kept locked.
    ex.deposit("carol", "3", "TATA")
    later = ex.sell("carol", "3", at="1601")
    assert later.trades == [Fill("3", "1601.00", maker="bob", taker="carol")]
    assert later.fees == [("4.81", "9.61")]  # ceil(4.803), ceil(9.606)
    assert later.closed(out.order_id) == (OrderStatus.FILLED, CloseReason.FILLED)
    assert ex.balances("bob") == {"INR": ("3969.79", "0.00"), "TATA": ("10", "0")}
    assert ex.balances("carol") == {"INR": ("4793.39", "0.00")}  # 4803.00 - 9.61
    assert ex.balances("fees") == {"INR": ("48.02", "0.00")}  # 33.60 + 4.81 + 9.61


def test_orders_at_one_price_fill_in_arrival_order(ex: Exchange) -> None:
    for user in ("alice", "carol", "dave"):
        ex.deposit(user, "20", "TATA")
    ex.deposit("bob", "5000", "INR")
    first = ex.sell("alice", "5", at="100")
    second = ex.sell("carol", "5", at="100")
    third = ex.sell("dave", "5", at="100")

    out = ex.buy("bob", "12", at="100")

    assert out.trades == [
        Fill("5", "100.00", maker="alice", taker="bob"),
        Fill("5", "100.00", maker="carol", taker="bob"),
        Fill("2", "100.00", maker="dave", taker="bob"),
    ]
    assert out.closed_ids == [first.order_id, second.order_id, out.order_id]
    assert ex.order(third.order_id).remaining == 3
    # the level shows only what is left after two makers there filled completely
    assert ex.asks() == [("100.00", "3")]

    # A better price goes first whatever its arrival; at one price, the older order first.
    ex.sell("carol", "4", at="100")
    ex.sell("alice", "2", at="99.50")
    out = ex.buy("bob", "6", at="100")
    assert out.trades == [
        Fill("2", "99.50", maker="alice", taker="bob"),
        Fill("3", "100.00", maker="dave", taker="bob"),
        Fill("1", "100.00", maker="carol", taker="bob"),
    ]
    assert ex.asks() == [("100.00", "3")]


def test_a_maker_fills_partially_across_takers(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.deposit("carol", "1100", "INR")
    ask = ex.sell("alice", "10", at="250")

    ex.buy("bob", "3", at="250")
    out = ex.buy("carol", "4", at="260")

    assert out.trades == [Fill("4", "250.00", maker="alice", taker="carol")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    order = ex.order(ask.order_id)
    assert (order.filled, order.remaining, order.locked) == (7, 3, 3)
    assert ex.asks() == [("250.00", "3")]
    # carol: 1000.00 notional + 2.00 taker fee; the rest of her lock at 260 came back
    assert ex.balances("carol") == {"INR": ("98.00", "0.00"), "TATA": ("4", "0")}
    # alice: 750.00 + 1000.00 less her maker fees 0.75 and 1.00
    assert ex.balances("alice") == {"INR": ("1748.25", "0.00"), "TATA": ("0", "3")}


def test_a_taker_walks_the_book_paying_each_makers_price(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.sell("alice", "2", at="100")
    ex.sell("alice", "3", at="101")
    ex.sell("alice", "5", at="103")

    out = ex.buy("bob", "6", at="102")

    assert [(f.qty, f.price) for f in out.trades] == [("2", "100.00"), ("3", "101.00")]
    assert ex.bids() == [("102.00", "1")]
    assert ex.asks() == [("103.00", "5")]


def test_ioc_remainder_expires(ex: Exchange) -> None:
    ex.deposit("alice", "4", "TATA")
    ex.deposit("bob", "2000", "INR")
    ex.sell("alice", "4", at="100")

    out = ex.buy("bob", "10", at="100", tif=IOC)

    assert out.trades == [Fill("4", "100.00", maker="alice", taker="bob")]
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.bids() == []
    assert ex.asks() == []
    assert ex.balances("bob") == {"INR": ("1599.20", "0.00"), "TATA": ("4", "0")}  # 400 + 0.80


def test_ioc_with_nothing_to_take_expires_unfilled(ex: Exchange) -> None:
    ex.deposit("alice", "4", "TATA")
    out = ex.sell("alice", "4", at="100", tif=IOC)
    assert out.trades == []
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.balances("alice") == {"TATA": ("4", "0")}


def test_fok_fills_completely_or_is_rejected_changing_nothing(ex: Exchange) -> None:
    ex.deposit("alice", "3", "TATA")
    ex.deposit("carol", "4", "TATA")
    ex.deposit("bob", "2000", "INR")
    ex.sell("alice", "3", at="100")
    ex.sell("carol", "4", at="101")

    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.buy("bob", "8", at="101", tif=FOK))
    # only 3 are offered at 100 or better
    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.buy("bob", "4", at="100", tif=FOK))
    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.market_buy("bob", "8", tif=FOK))

    out = ex.buy("bob", "7", at="101", tif=FOK)
    assert [(f.qty, f.price) for f in out.trades] == [("3", "100.00"), ("4", "101.00")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    assert ex.asks() == []


def test_fok_sell(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.buy("bob", "2", at="100")
    ex.buy("bob", "2", at="99")
    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.sell("alice", "4", at="99.01", tif=FOK))
    ex.rejects(Code.FOK_NOT_FILLABLE, lambda: ex.market_sell("alice", "5", tif=FOK))
    out = ex.market_sell("alice", "4", tif=FOK)
    assert [(f.qty, f.price) for f in out.trades] == [("2", "100.00"), ("2", "99.00")]


def test_fok_market_buy_fills_completely_when_its_lock_is_exactly_the_cost(ex: Exchange) -> None:
    # The cost is 5.01 + 4.99 = 10.00 plus taker fee ceil(0.02) = 0.02. Charged fill by fill the
    # taker fee is ceil(0.01002) = 0.02, then 0.00 more: the second fill's fee is absorbed by the
    # first fill's rounding, and the order must not stop short believing it cannot pay for it.
    # (Each maker order pays its own maker fee: ceil(0.00501) and ceil(0.00499).)
    ex.deposit("alice", "4", "TATA")
    ex.deposit("bob", "10.02", "INR")
    ex.sell("alice", "3", at="1.67")
    ex.sell("alice", "1", at="4.99")

    out = ex.market_buy("bob", "4", tif=FOK)

    assert out.trades == [
        Fill("3", "1.67", maker="alice", taker="bob"),
        Fill("1", "4.99", maker="alice", taker="bob"),
    ]
    assert out.fees == [("0.01", "0.02"), ("0.01", "0.00")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    assert ex.balances("bob") == {"TATA": ("4", "0")}


def test_ioc_market_buy_takes_all_it_can_exactly_afford(ex: Exchange) -> None:
    ex.deposit("alice", "4", "TATA")
    ex.deposit("bob", "10.02", "INR")
    ex.sell("alice", "3", at="1.67")
    ex.sell("alice", "1", at="4.99")
    out = ex.market_buy("bob", "4")
    assert [(f.qty, f.price) for f in out.trades] == [("3", "1.67"), ("1", "4.99")]
    assert ex.balances("bob") == {"TATA": ("4", "0")}


def test_post_only_rests_or_is_rejected_if_it_would_take(ex: Exchange) -> None:
    ex.deposit("alice", "10", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.sell("alice", "5", at="100", post_only=True)
    bid = ex.buy("bob", "5", at="99.99", post_only=True)
    assert bid.rests
    assert bid.trades == []

    ex.rejects(Code.POST_ONLY_WOULD_TAKE, lambda: ex.buy("bob", "1", at="100", post_only=True))
    ex.rejects(Code.POST_ONLY_WOULD_TAKE, lambda: ex.sell("alice", "1", at="99.99", post_only=True))
    assert ex.bids() == [("99.99", "5")]
    assert ex.asks() == [("100.00", "5")]


def test_market_buy_by_quantity_pays_each_level_and_locks_exactly_its_cost(ex: Exchange) -> None:
    ex.deposit("alice", "2", "TATA")
    ex.deposit("carol", "3", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.sell("alice", "2", at="100")
    ex.sell("carol", "3", at="101")

    out = ex.market_buy("bob", "4")

    assert out.trades == [
        Fill("2", "100.00", maker="alice", taker="bob"),
        Fill("2", "101.00", maker="carol", taker="bob"),
    ]
    # 402.00 notional; taker fee ceil(0.804) = 0.81 in total over the two fills
    assert out.fees == [("0.20", "0.40"), ("0.21", "0.41")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    assert ex.balances("bob") == {"INR": ("597.19", "0.00"), "TATA": ("4", "0")}
    assert ex.asks() == [("101.00", "1")]


def test_market_buy_by_quote_amount_stays_within_its_budget_and_fee(ex: Exchange) -> None:
    ex.deposit("alice", "2", "TATA")
    ex.deposit("carol", "3", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.sell("alice", "2", at="100")
    ex.sell("carol", "3", at="101")

    out = ex.market_buy("bob", spend="305")

    # 2 at 100, then 105.00 buys one more whole TATA at 101; 4.00 can buy nothing more
    assert [(f.qty, f.price) for f in out.trades] == [("2", "100.00"), ("1", "101.00")]
    assert out.closed() == (OrderStatus.FILLED, CloseReason.FILLED)
    # spent 301.00 + ceil(0.602) = 0.61 <= budget 305.00 + its fee 0.61
    assert ex.balances("bob") == {"INR": ("698.39", "0.00"), "TATA": ("3", "0")}


def test_market_buy_by_quote_amount_expires_when_the_book_runs_out(ex: Exchange) -> None:
    ex.deposit("alice", "2", "TATA")
    ex.deposit("bob", "1000", "INR")
    ex.sell("alice", "2", at="100")
    out = ex.market_buy("bob", spend="500")
    assert [(f.qty, f.price) for f in out.trades] == [("2", "100.00")]
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.balances("bob") == {"INR": ("799.60", "0.00"), "TATA": ("2", "0")}


def test_market_buy_by_quote_amount_needs_the_whole_budget_and_fee(ex: Exchange) -> None:
    ex.deposit("alice", "2", "TATA")
    ex.deposit("bob", "100.19", "INR")
    ex.sell("alice", "2", at="100")
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.market_buy("bob", spend="100"))  # needs 100.20


def test_market_sell_takes_the_bids_and_the_remainder_expires(ex: Exchange) -> None:
    ex.deposit("alice", "200.20", "INR")  # 200.00 + maker fee 0.20
    ex.deposit("carol", "297.30", "INR")  # 297.00 + maker fee ceil(0.297)
    ex.deposit("bob", "10", "TATA")
    ex.buy("alice", "2", at="100")
    ex.buy("carol", "3", at="99")

    out = ex.market_sell("bob", "4")
    assert out.trades == [
        Fill("2", "100.00", maker="alice", taker="bob"),
        Fill("2", "99.00", maker="carol", taker="bob"),
    ]
    # 398.00 less taker fee ceil(0.796) = 0.80
    assert ex.balances("bob") == {"INR": ("397.20", "0.00"), "TATA": ("6", "0")}

    out = ex.market_sell("bob", "5")
    assert [(f.qty, f.price) for f in out.trades] == [("1", "99.00")]
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.balances("bob")["TATA"] == ("5", "0")


def test_market_buy_short_of_funds_fills_what_it_can_afford(ex: Exchange) -> None:
    ex.deposit("alice", "3", "TATA")
    ex.deposit("carol", "5", "TATA")
    ex.deposit("bob", "500", "INR")
    ex.sell("alice", "3", at="100")
    ex.sell("carol", "5", at="150")

    out = ex.market_buy("bob", "8")  # would cost 1050.00 + fee; bob has 500.00

    # 3 at 100 cost 300.60; the remaining 199.40 pays for one at 150 (150.30) but not two
    assert [(f.qty, f.price) for f in out.trades] == [("3", "100.00"), ("1", "150.00")]
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.INSUFFICIENT_FUNDS)
    assert ex.balances("bob") == {"INR": ("49.10", "0.00"), "TATA": ("4", "0")}


def test_market_buy_with_nothing_to_pay_is_rejected(ex: Exchange) -> None:
    ex.deposit("alice", "3", "TATA")
    ex.sell("alice", "3", at="100")
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.market_buy("bob", "1"))


def test_market_order_on_an_empty_book_expires(ex: Exchange) -> None:
    ex.deposit("bob", "100", "INR")
    out = ex.market_buy("bob", "1")
    assert out.closed() == (OrderStatus.EXPIRED, CloseReason.NO_LIQUIDITY)
    assert ex.balances("bob") == {"INR": ("100.00", "0.00")}


def test_an_order_needs_its_funds_including_the_fee(ex: Exchange) -> None:
    ex.deposit("bob", "100.10", "INR")
    ex.deposit("alice", "1", "TATA")
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.sell("alice", "2", at="100"))
    ex.sell("alice", "1", at="100")
    # taking would need 100.00 + the 20 bps taker fee = 100.20
    ex.rejects(Code.INSUFFICIENT_FUNDS, lambda: ex.buy("bob", "1", at="100"))
    # resting needs 100.00 + the 10 bps maker fee = 100.10
    ex.buy("bob", "1", at="99.99")
    assert ex.balances("bob") == {"INR": ("0.01", "100.09")}  # 99.99 + ceil(0.09999)
