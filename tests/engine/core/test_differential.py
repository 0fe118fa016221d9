"""The fast book against the naive one, and snapshots against uninterrupted runs.

Seeded random command streams (every order type, time in force, self-trade mode, post-only,
client ids, cancels by id and client id, cancel-all, deposits, withdrawals, halts, trigger
orders, take-profit / stop-loss brackets and their cascades, changes of the limit on a user's
pending triggers, custody's deposit reports
(repeated and conflicting), withdrawal requests (retried by client id) and decisions, and
some invalid commands)
go to `Engine(OrderBook, TriggerIndex)` and `Engine(ReferenceBook, ReferenceTriggers)`:
every command must give identical events, or the identical rejection, and the state
hashes must agree.
A snapshot taken mid-stream and loaded (`load_state(dump_state(e))`, through JSON bytes like
the service writes it) must then continue exactly like the engine that was never stopped.
"""

import random
from collections.abc import Iterator
from typing import NamedTuple

import orjson
import pytest

from engine_svc.core.book import OrderBook
from engine_svc.core.capital_messages import (
    AddNetwork,
    AddressFormat,
    DecideWithdrawal,
    NetworkSpec,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalAction,
    WithdrawalStatus,
)
from engine_svc.core.commands import (
    Bracket,
    CancelAllOrders,
    CancelOrder,
    Command,
    Deposit,
    PlaceConditional,
    PlaceOrder,
    SetMarketStatus,
    SetTriggerLimit,
    Withdraw,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import Event, OrderAccepted, TriggerPlaced
from engine_svc.core.reference_book import ReferenceBook, ReferenceTriggers
from engine_svc.core.state import dump_state, load_state, state_hash
from engine_svc.core.types import (
    ClientOrderId,
    Code,
    MarketStatus,
    OrderId,
    OrderType,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tests.engine.core.driver import seeded_listing, small_listing
from tests.engine.core.invariants import EventLedger, check_invariants

SEEDS = [1, 2, 3, 4]
COMMANDS = 3000
START_TS = 1_700_000_000_000_000


class MarketParams(NamedTuple):
    base: str
    quote: str
    mid: int  # price units
    price_step: int  # how far apart generated prices are (a multiple of the tick)
    step: int  # quantity units
    scale: int  # units of one whole base unit
    max_steps: int
    base_deposit: int  # units
    quote_deposit: int


MARKETS = {
    # maker 10 / taker 20 bps, tick 0.01 INR, step 1 TATA; prices 97.00..103.00
    "TATA_INR": MarketParams("TATA", "INR", 10_000, 50, 1, 1, 20, 60, 600_000),
    # maker 8 / taker 10 bps, tick 0.01 USDT, step 0.0001 BTC; some orders are below 5 USDT
    "BTC_USDT": MarketParams(
        "BTC", "USDT", 30_000 * 10**6, 5 * 10**6, 10**4, 10**8, 300, 10**8, 10**10
    ),
    # maker 15 / taker 35 bps, tick 0.05 USD, step 0.2 GEM: fee rounding on every fill
    "GEM_USD": MarketParams("GEM", "USD", 100, 5, 2, 10, 15, 200, 3_000),
}
STPS = [SelfTradePrevention.REJECT_TAKER] * 3 + [
    SelfTradePrevention.CANCEL_MAKER,
    SelfTradePrevention.CANCEL_BOTH,
]


# USDT on Ethereum and BTC on Bitcoin: fees, minimums, maximums, approval and daily limits
NETWORKS = [
    NetworkSpec(
        "USDT", "Ethereum", AddressFormat.EVM, True, True, "1", "2", "50000", 3, "300", "30000"
    ),
    NetworkSpec(
        "BTC", "Bitcoin", AddressFormat.BASE58, True, True, "0.0001", "0.001", "5", 2, "0.03", "3"
    ),
]  # fmt: skip
CONFIRMED = WithdrawalStatus.CONFIRMED
ADDRESSES = {
    "Ethereum": ["0x" + "ab" * 20, "0x" + "12" * 20, "0xnot-an-address"],
    "Bitcoin": ["1" + "A" * 33, "3" + "z" * 33, "0OIl" * 9],
}


def listing() -> list[Command]:
    """The seeded assets and markets, the small ones, and these networks instead of the file's."""
    seeded = [c for c in seeded_listing() if not isinstance(c, AddNetwork)]
    return [*seeded, *small_listing(), *(AddNetwork(spec) for spec in NETWORKS)]


class Stream:
    """Random commands. Cancels name orders the engine has assigned, mostly open ones: the
    stream runs its own engine to know them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.engine = new_engine(OrderBook)
        self.order_ids: list[OrderId] = []
        self.client_ids = 0

    def commands(self, count: int) -> Iterator[tuple[int, Command]]:
        """(ts, command) pairs."""
        for i in range(count):
            ts = START_TS + (i + 1) * 1000
            command = self.next()
            result = apply(self.engine, command, ts)
            if isinstance(result, list):
                self.order_ids += [
                    e.order_id for e in result if isinstance(e, OrderAccepted | TriggerPlaced)
                ]
            yield ts, command
            if isinstance(command, RequestWithdrawal) and command.client_id % 3 == 0:
                # The client lost the answer and sends it again: that changes nothing.
                assert apply(self.engine, command, ts + 500) in ([], result)
                yield ts + 500, command

    def next(self) -> Command:
        rng = self.rng
        user = UserId(rng.randint(1, 4))
        if rng.random() < 0.08:
            return self.capital(user)
        symbol = rng.choice(sorted(MARKETS))
        m = MARKETS[symbol]
        roll = rng.random()
        if roll < 0.10:
            asset, most = rng.choice([(m.base, m.base_deposit), (m.quote, m.quote_deposit)])
            return Deposit(user, asset, rng.randint(1, most))
        if roll < 0.13:
            asset, most = rng.choice([(m.base, m.base_deposit), (m.quote, m.quote_deposit)])
            return Withdraw(user, asset, rng.randint(1, most))
        if roll < 0.52:
            return self.limit(user, symbol, m)
        if roll < 0.62:
            return self.conditional(user, symbol, m)
        if roll < 0.76:
            return self.market(user, symbol, m)
        if roll < 0.92:
            return self.cancel(user)
        if roll < 0.94:
            return CancelAllOrders(user, rng.choice(["", symbol]))
        if roll < 0.98:
            return self.odd(user, symbol, m)
        if roll < 0.985:  # small enough to refuse triggers now and then; 0 is refused
            return SetTriggerLimit(rng.choice((0, 1, 3, 8, 100, 500)))
        status = MarketStatus.HALTED if rng.random() < 0.2 else MarketStatus.OPEN
        return SetMarketStatus(symbol, status)

    def capital(self, user: UserId) -> Command:
        """A custody report (of a few transactions, so they repeat, sometimes with other
        facts), a withdrawal request, or an operator's or custody's decision on one."""
        rng = self.rng
        spec = rng.choice(NETWORKS)
        unit = 10**6 if spec.asset == "USDT" else 10**5  # 1 USDT, 0.001 BTC
        roll = rng.random()
        if roll < 0.35:
            tx = rng.randint(1, 40)
            owner = UserId(tx % 4 + 1) if rng.random() < 0.8 else user
            address = ADDRESSES[spec.network][tx % 2]
            return ReportDeposit(
                owner, spec.asset, spec.network, address, tx * 97 * unit, f"tx{tx}",
                rng.randint(0, 4),
            )  # fmt: skip
        if roll < 0.7:
            address = rng.choice(ADDRESSES[spec.network])
            amount = rng.randint(1, 1500) * unit // rng.choice([1, 10, 100])
            self.client_ids += 1  # each its own: `commands` retries some
            return RequestWithdrawal(
                user, spec.asset, spec.network, address, amount, self.client_ids
            )
        capital = self.engine.capital
        open_ids = [w.id for w in capital.withdrawals.values() if w.status < CONFIRMED]
        if open_ids and rng.random() < 0.7:
            withdrawal = rng.choice(open_ids)
        else:  # an ended one, or one that does not exist
            withdrawal = rng.randint(1, capital.next_withdrawal_id)
        action = rng.choice(list(WithdrawalAction))
        return DecideWithdrawal(withdrawal, action, rng.choice(["", f"out{withdrawal}", "out0"]))

    def client_id(self) -> ClientOrderId:
        return ClientOrderId(0 if self.rng.random() < 0.7 else self.rng.randint(1, 6))

    def limit(self, user: UserId, symbol: str, m: MarketParams) -> PlaceOrder:
        rng = self.rng
        side = rng.choice([Side.BUY, Side.SELL])
        # bids mostly below the mid, asks above, overlapping so that orders cross
        offset = rng.randint(-8, 2) if side == Side.BUY else rng.randint(-2, 8)
        price = m.mid + m.price_step * offset
        qty = m.step * rng.randint(1, m.max_steps)
        tif = rng.choice([TimeInForce.GTC] * 6 + [TimeInForce.IOC, TimeInForce.FOK])
        post_only = tif == TimeInForce.GTC and rng.random() < 0.15
        return PlaceOrder(
            user, symbol, side, OrderType.LIMIT, price, qty, 0, tif, post_only,
            self.client_id(), rng.choice(STPS),
        )  # fmt: skip

    def market(self, user: UserId, symbol: str, m: MarketParams) -> PlaceOrder:
        rng = self.rng
        side = rng.choice([Side.BUY, Side.SELL])
        tif = TimeInForce.FOK if rng.random() < 0.25 else TimeInForce.IOC
        qty = m.step * rng.randint(1, m.max_steps)
        quote = 0
        if side == Side.BUY and rng.random() < 0.5:  # by quote amount: up to what qty costs
            qty, quote = 0, rng.randint(1, m.mid * qty // m.scale)
        return PlaceOrder(
            user, symbol, side, OrderType.MARKET, 0, qty, quote, tif, False, self.client_id(),
            rng.choice(STPS),
        )  # fmt: skip

    def conditional(self, user: UserId, symbol: str, m: MarketParams) -> PlaceConditional:
        """A trigger order (some with a bracket) or an order with a bracket; trigger prices
        around the mid, so that some are refused as reached and many fire in cascades."""
        rng = self.rng
        order = self.limit(user, symbol, m) if rng.random() < 0.5 else self.market(user, symbol, m)
        if rng.random() < 0.6:
            trigger = m.mid + m.price_step * rng.randint(-6, 6)
            bracket = self.bracket(order.side, m) if rng.random() < 0.2 else Bracket()
            return PlaceConditional(order, trigger, bracket)
        return PlaceConditional(order, 0, self.bracket(order.side, m))

    def bracket(self, side: Side, m: MarketParams) -> Bracket:
        rng = self.rng
        up = m.mid + m.price_step * rng.randint(1, 6)
        down = m.mid - m.price_step * rng.randint(1, 6)
        tp, sl = (up, down) if side == Side.BUY else (down, up)
        legs = rng.choice([(True, True), (True, False), (False, True)])
        tp, sl = tp * legs[0], sl * legs[1]
        tp_limit = tp if tp and rng.random() < 0.5 else 0
        sl_limit = sl if sl and rng.random() < 0.5 else 0
        return Bracket(tp, tp_limit, sl, sl_limit)

    def cancel(self, user: UserId) -> CancelOrder:
        rng = self.rng
        if rng.random() < 0.2:
            return CancelOrder(user, "", OrderId(0), ClientOrderId(rng.randint(1, 6)))
        triggers = sorted(self.engine.triggers)
        if triggers and rng.random() < 0.25:
            t = self.engine.triggers[rng.choice(triggers)]
            return CancelOrder(
                t.order.user, rng.choice(["", t.order.market]), t.id, ClientOrderId(0)
            )
        open_orders = sorted(self.engine.orders)
        if open_orders and rng.random() < 0.8:
            order = self.engine.orders[rng.choice(open_orders)]
            owner = order.user if rng.random() < 0.8 else user  # sometimes someone else's
            return CancelOrder(owner, rng.choice(["", order.market]), order.id, ClientOrderId(0))
        if not self.order_ids:
            return CancelOrder(user, "", OrderId(1), ClientOrderId(0))
        return CancelOrder(user, "", rng.choice(self.order_ids), ClientOrderId(0))

    def odd(self, user: UserId, symbol: str, m: MarketParams) -> Command:
        """Something the engine must reject, or a corner it must get right."""
        rng = self.rng
        good = self.limit(user, symbol, m)
        options: list[Command] = [
            good._replace(price=good.price + 1 if m.price_step > 1 else -1),
            good._replace(qty=0),
            good._replace(qty=good.qty + 1 if m.step > 1 else -good.qty),
            good._replace(user=UserId(0)),
            good._replace(tif=TimeInForce.IOC, post_only=True),
            good._replace(type=OrderType.MARKET),
            good._replace(market="NOPE_INR"),
            Withdraw(user, m.quote, 10**18),
            CancelOrder(UserId(rng.randint(1, 4)), "NOPE", OrderId(1), ClientOrderId(0)),
            good._replace(price=m.mid * 1000),  # far through the book, or above max price
        ]
        return rng.choice(options)


Result = list[Event] | tuple[Code, str]


def apply(engine: Engine, command: Command, ts: int) -> Result:
    try:
        return engine.apply(command, ts)
    except Rejected as exc:
        return exc.code, exc.message


def stream(seed: int, count: int) -> Iterator[tuple[int, Command]]:
    return Stream(seed).commands(count)


def new_engine(book: type[OrderBook] | type[ReferenceBook]) -> Engine:
    engine = Engine(book) if book is OrderBook else Engine(book, ReferenceTriggers)
    for command in listing():
        engine.apply(command, START_TS)
    return engine


@pytest.mark.parametrize("seed", SEEDS)
def test_fast_and_reference_books_give_identical_events(seed: int) -> None:
    fast, naive = new_engine(OrderBook), new_engine(ReferenceBook)
    ledger = EventLedger()
    ledger.apply(list(_listing_events()))
    seen: dict[str, int] = {}
    for i, (ts, command) in enumerate(stream(seed, COMMANDS)):
        got, want = apply(fast, command, ts), apply(naive, command, ts)
        assert got == want, f"command {i}: {command}"
        if isinstance(got, list):
            ledger.apply(got, ts)
            for e in got:
                seen[type(e).__name__] = seen.get(type(e).__name__, 0) + 1
        else:
            seen[got[0].name] = seen.get(got[0].name, 0) + 1
        check_invariants(fast)
        if i % 100 == 0:
            check_invariants(naive)
            ledger.check(fast)
            assert state_hash(fast) == state_hash(naive)
    ledger.check(fast)
    assert state_hash(fast) == state_hash(naive)
    # the stream exercised what it is meant to
    for what in (
        "Deposited", "Withdrawn", "OrderAccepted", "TradeExecuted", "OrderRested",
        "OrderClosed", "MarketStatusChanged", "FOK_NOT_FILLABLE", "POST_ONLY_WOULD_TAKE",
        "DUPLICATE_CLIENT_ID", "INSUFFICIENT_FUNDS", "ORDER_NOT_FOUND", "MARKET_HALTED",
        "TriggerPlaced", "TriggerFired", "TriggerFailed", "TriggerCancelled",
        "TRIGGER_WOULD_FIRE", "TriggerLimitSet", "INVALID_MARKET_CONFIG",
        "DepositRecorded", "WithdrawalChanged", "DEPOSIT_CONFLICT", "WITHDRAWAL_FINAL",
        "INVALID_ADDRESS", "BELOW_MIN_WITHDRAWAL", "NOT_APPROVED",
    ):  # fmt: skip
        assert seen.get(what, 0) > 0, f"the stream never produced {what}: {seen}"
    assert seen["TradeExecuted"] > COMMANDS // 10


def _listing_events() -> list[Event]:
    engine = Engine()
    return [e for command in listing() for e in engine.apply(command, START_TS)]


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_a_snapshot_continues_exactly_like_the_uninterrupted_engine(seed: int) -> None:
    commands = list(stream(seed, COMMANDS))
    cuts = {COMMANDS // 4, COMMANDS // 2, 3 * COMMANDS // 4}
    engine = new_engine(OrderBook)
    forks: list[tuple[Engine, Engine, int]] = []  # (restored fast, restored naive, cut)
    for i, (ts, command) in enumerate(commands):
        if i in cuts:
            before = state_hash(engine)
            data = orjson.loads(orjson.dumps(dump_state(engine)))
            restored = load_state(data)
            restored_naive = load_state(data, ReferenceBook, ReferenceTriggers)
            assert state_hash(restored) == state_hash(restored_naive) == before
            check_invariants(restored)
            forks.append((restored, restored_naive, i))
        want = apply(engine, command, ts)
        for restored, restored_naive, cut in forks:
            assert apply(restored, command, ts) == want, f"restored at {cut}, command {i}"
            assert apply(restored_naive, command, ts) == want, f"naive restored at {cut}"
    final = state_hash(engine)
    for restored, restored_naive, _ in forks:
        assert state_hash(restored) == state_hash(restored_naive) == final
        check_invariants(restored)


def test_a_snapshot_of_an_idle_engine_round_trips() -> None:
    engine = new_engine(OrderBook)
    assert state_hash(load_state(dump_state(engine))) == state_hash(engine)
    assert dump_state(load_state(dump_state(engine))) == dump_state(engine)
