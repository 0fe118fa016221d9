"""Hypothesis drives the engine with random commands; every invariant holds after each one.

Small markets with fees (GEM has 1 decimal, so fee rounding bites on every trade), three users
(so self-trade prevention happens), a few prices around the touch (so orders cross), small
balances (so funds run out) and a few client ids (so duplicates happen). After every command
the driver checks `check_invariants`, rebuilds the ledger from the events (which also checks
filled <= quantity, fills at the maker's price, no self-trades, no order spending more than it
locked) and, on a rejection, that the state hash did not change.
"""

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from engine_svc.core.commands import (
    CancelAllOrders,
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
    Withdraw,
)
from engine_svc.core.events import OrderAccepted
from engine_svc.core.types import (
    ClientOrderId,
    OrderId,
    OrderType,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tests.engine.core.driver import Exchange, small_listing

# market -> (lowest price, tick, step), in units; prices span 7 ticks
MARKETS = {"GEM_USD": (90, 5, 2), "GEM_EUR": (97, 1, 10)}
ASSETS = ["GEM", "USD", "EUR"]

users = st.integers(1, 3).map(UserId)
markets = st.sampled_from(sorted(MARKETS))
sides = st.sampled_from(Side)
stps = st.sampled_from(SelfTradePrevention)
ticks = st.integers(0, 6)
steps = st.integers(1, 12)
client_ids = st.sampled_from([0, 0, 0, 1, 2]).map(ClientOrderId)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ex = Exchange(small_listing())
        self.order_ids: list[OrderId] = []

    def run(self, command: Command) -> None:
        try:
            out = self.ex.apply(command)  # checks invariants, ledger and unchanged-on-reject
        except Rejected:
            return
        self.order_ids += [e.order_id for e in out.events if isinstance(e, OrderAccepted)]

    @initialize()
    def fund(self) -> None:
        for user in (1, 2, 3):
            for asset, amount in (("GEM", 300), ("USD", 3000), ("EUR", 3000)):
                self.run(Deposit(UserId(user), asset, amount))

    @rule(user=users, asset=st.sampled_from(ASSETS), amount=st.integers(1, 2000))
    def deposit(self, user: UserId, asset: str, amount: int) -> None:
        self.run(Deposit(user, asset, amount))

    @rule(user=users, asset=st.sampled_from(ASSETS), amount=st.integers(1, 2000))
    def withdraw(self, user: UserId, asset: str, amount: int) -> None:
        self.run(Withdraw(user, asset, amount))

    @rule(
        user=users,
        market=markets,
        side=sides,
        tick=ticks,
        qty=steps,
        tif=st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK]),
        post_only=st.booleans(),
        stp=stps,
        client_id=client_ids,
    )
    def limit(
        self,
        user: UserId,
        market: str,
        side: Side,
        tick: int,
        qty: int,
        tif: TimeInForce,
        post_only: bool,
        stp: SelfTradePrevention,
        client_id: ClientOrderId,
    ) -> None:
        low, tick_size, step = MARKETS[market]
        price = (low + tick) * tick_size
        post_only = post_only and tif == TimeInForce.GTC
        self.run(
            PlaceOrder(
                user, market, side, OrderType.LIMIT, price, qty * step, 0, tif, post_only,
                client_id, stp,
            )
        )  # fmt: skip

    @rule(user=users, market=markets, side=sides, tick=ticks, qty=steps, stp=stps)
    def rest(
        self, user: UserId, market: str, side: Side, tick: int, qty: int, stp: SelfTradePrevention
    ) -> None:
        """A plain GTC limit order: the liquidity the other rules trade against."""
        self.limit(user, market, side, tick, qty, TimeInForce.GTC, False, stp, ClientOrderId(0))

    def book_has_orders(self) -> bool:
        return bool(self.ex.engine.orders)

    @precondition(book_has_orders)
    @rule(
        user=users,
        market=markets,
        side=sides,
        qty=steps,
        fok=st.booleans(),
        stp=stps,
        client_id=client_ids,
    )
    def market_by_quantity(
        self,
        user: UserId,
        market: str,
        side: Side,
        qty: int,
        fok: bool,
        stp: SelfTradePrevention,
        client_id: ClientOrderId,
    ) -> None:
        tif = TimeInForce.FOK if fok else TimeInForce.IOC
        step = MARKETS[market][2]
        self.run(
            PlaceOrder(
                user, market, side, OrderType.MARKET, 0, qty * step, 0, tif, False, client_id, stp
            )
        )

    @precondition(book_has_orders)
    @rule(user=users, market=markets, quote=st.integers(1, 1500), stp=stps)
    def market_buy_by_quote(
        self, user: UserId, market: str, quote: int, stp: SelfTradePrevention
    ) -> None:
        self.run(
            PlaceOrder(
                user, market, Side.BUY, OrderType.MARKET, 0, 0, quote, TimeInForce.IOC, False,
                ClientOrderId(0), stp,
            )
        )  # fmt: skip

    @rule(user=users, pick=st.integers(0, 10**6), by_client_id=st.booleans(), cid=client_ids)
    def cancel(self, user: UserId, pick: int, by_client_id: bool, cid: ClientOrderId) -> None:
        if by_client_id:
            self.run(CancelOrder(user, "", OrderId(0), cid))
            return
        if not self.order_ids:
            return
        order_id = self.order_ids[pick % len(self.order_ids)]
        order = self.ex.engine.orders.get(order_id)
        owner = order.user if order is not None and pick % 4 else user  # mostly the owner
        self.run(CancelOrder(owner, "", order_id, ClientOrderId(0)))

    @rule(user=users, market=st.sampled_from(["", *sorted(MARKETS)]))
    def cancel_all(self, user: UserId, market: str) -> None:
        self.run(CancelAllOrders(user, market))

    @invariant()
    def holds(self) -> None:
        self.ex.check()
        for order in self.ex.engine.orders.values():
            assert order.filled <= order.qty


EngineMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineMachine = EngineMachine.TestCase
