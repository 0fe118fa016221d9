"""What must hold after every command, checked from outside the engine.

`check_invariants(engine)` reads the engine's state and asserts DESIGN.md
invariants 1-4: conservation per asset, no negative balances, locks that equal
exactly what open orders can still spend, consistent indexes, and an uncrossed
book in price-time order whose levels match `depth()`.

`EventLedger` consumes the event stream alone and rebuilds from it every
balance and every open order (its fills, fees and lock), using only the rules
in `engine_svc.core.events`. `EventLedger.check(engine)` then requires the
rebuilt ledger to equal the engine's: the events are enough to keep the books
of record. On the way it checks what events promise: gap-free sequence
numbers, fills at the maker's price within the taker's limit, no self-trades,
filled <= quantity, cumulative fee rounding, and no order spending more than
it locked. It also requires the engine's queries to show what the events said of a
trigger: the order a fired one became keeps its trigger price, links and firing time, and
one that ended without becoming an order (cancelled, or refused) can still be fetched.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from engine_svc.core.capital_messages import (
    DepositRecorded,
    NetworkListed,
    WithdrawalChanged,
    WithdrawalStatus,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import (
    AssetListed,
    Deposited,
    Event,
    MarketListed,
    MarketStatusChanged,
    OrderAccepted,
    OrderClosed,
    OrderRested,
    TradeExecuted,
    TriggerCancelled,
    TriggerFailed,
    TriggerFired,
    TriggerLimitSet,
    TriggerPlaced,
    Withdrawn,
)
from engine_svc.core.markets import Market
from engine_svc.core.order import Order
from engine_svc.core.triggers import FiredTrigger, TriggerState
from engine_svc.core.types import (
    FEE_ACCOUNT,
    ClientOrderId,
    OrderId,
    OrderType,
    Side,
    TimeInForce,
    UserId,
)
from tradekit.markets import MarketSpec

BPS = 10_000  # fees are in basis points of the notional


_ENDED = (WithdrawalStatus.CONFIRMED, WithdrawalStatus.DECLINED)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def resting_lock(order: Order, market: Market) -> int:
    """What a resting order can still spend: a sell its remaining quantity, a buy the
    notional of its remainder plus the maker fee still chargeable on it."""
    if order.side == Side.SELL:
        return order.remaining
    notional = order.price * order.remaining // market.base_scale
    return notional + ceil_div(order.fee_numer + notional * market.maker_bps, BPS) - order.fees


def check_invariants(engine: Engine) -> None:
    _check_accounts(engine)
    _check_orders(engine)
    _check_triggers(engine)
    for symbol in engine.books:
        _check_book(engine, symbol)


def _check_accounts(engine: Engine) -> None:
    totals: dict[str, int] = defaultdict(int)
    for user, asset, bal in engine.accounts.items():
        assert bal.available >= 0, f"user {user} {asset}: available {bal.available} < 0"
        assert bal.locked >= 0, f"user {user} {asset}: locked {bal.locked} < 0"
        assert asset in engine.assets, f"balance in unlisted asset {asset}"
        totals[asset] += bal.available + bal.locked
    supply = engine.accounts.supply
    for asset in totals.keys() | supply.keys():
        assert totals[asset] == supply.get(asset, 0), (
            f"{asset}: accounts hold {totals[asset]}, deposits - withdrawals = {supply.get(asset)}"
        )
    fee_locked = [a for a, bal in engine.accounts.of_user(FEE_ACCOUNT).items() if bal.locked]
    assert not fee_locked, f"the fee account has locked funds in {fee_locked}"


def _check_orders(engine: Engine) -> None:
    on_books: dict[OrderId, Order] = {}
    for symbol, book in engine.books.items():
        count = 0
        for side in Side:
            for o in book.iter_side(side):
                assert o.side == side, f"order {o.id} on the wrong side"
                assert o.market == symbol, f"order {o.id} on the wrong book"
                assert o.id not in on_books, f"order {o.id} is on a book twice"
                on_books[o.id] = o
                count += 1
        assert len(book) == count, f"{symbol}: len(book) {len(book)} != {count} orders"
    _same_orders(on_books, engine.orders, "books vs engine.orders")

    by_user: dict[OrderId, Order] = {}
    for user, per_user in engine.user_orders.items():  # an empty index may stay
        for oid, o in per_user.items():
            assert o.user == user
            assert oid == o.id
            by_user[oid] = o
    _same_orders(by_user, engine.orders, "user_orders vs engine.orders")

    with_client_id = [o for o in engine.orders.values() if o.client_id]
    expected_cids = {(o.user, o.client_id): o for o in with_client_id}
    assert len(expected_cids) == len(with_client_id), "two open orders share a client id"
    assert expected_cids.keys() == engine.client_ids.keys(), "client id index is stale"
    assert all(engine.client_ids[k] is o for k, o in expected_cids.items())

    locks: dict[tuple[UserId, str], int] = defaultdict(int)
    for o in engine.orders.values():
        market = engine.markets[o.market]
        assert o.type == OrderType.LIMIT, f"order {o.id} rests but is not a limit order"
        assert o.tif == TimeInForce.GTC, f"order {o.id} rests but is not GTC"
        assert o.remaining > 0, f"order {o.id} rests with nothing remaining"
        assert o.filled >= 0, f"order {o.id}: filled {o.filled}"
        assert o.filled + o.remaining == o.qty, f"order {o.id}: filled + remaining != quantity"
        assert 0 < o.price <= market.max_price
        assert o.price % market.tick == 0
        assert o.fees == ceil_div(o.fee_numer, BPS), f"order {o.id}: fees {o.fees} != ceil"
        assert o.locked == resting_lock(o, market), (
            f"order {o.id} locks {o.locked}, can still spend {resting_lock(o, market)}"
        )
        spend, receive = (
            (market.quote, market.base) if o.side == Side.BUY else (market.base, market.quote)
        )
        assert o.spend is engine.accounts.peek(o.user, spend.symbol), f"order {o.id}: stale spend"
        assert o.receive is engine.accounts.peek(o.user, receive.symbol), f"{o.id}: stale receive"
        locks[(o.user, spend.symbol)] += o.locked
    for w in engine.capital.withdrawals.values():  # a withdrawal locks until it ends
        if w.status in (WithdrawalStatus.PENDING_APPROVAL, WithdrawalStatus.APPROVED):
            locks[(w.user, w.asset)] += w.amount + w.fee
    for user, asset, bal in engine.accounts.items():
        expected = locks.pop((user, asset), 0)
        assert bal.locked == expected, (
            f"user {user} {asset}: locked {bal.locked}, orders {expected}"
        )
    assert not locks, f"orders lock funds with no balance: {dict(locks)}"


def _check_triggers(engine: Engine) -> None:
    """Every pending trigger is in its market's index (which knows the nearest prices of each
    side) and in the id, user and client id indexes, and none that its market's last price
    has reached is still pending."""
    indexed = {t.id: t for book in engine.trigger_books.values() for t in book}
    assert indexed.keys() == engine.triggers.keys(), "trigger indexes differ"
    for symbol, book in engine.trigger_books.items():
        assert all(t.order.market == symbol for t in book)
        nearest = (
            min((t.price for t in book if t.above), default=0),
            max((t.price for t in book if not t.above), default=0),
        )
        assert (book.lowest_above, book.highest_below) == nearest, f"{symbol}: nearest prices"
        last = engine.markets[symbol].last_price
        for t in book:
            assert t.state == TriggerState.PENDING
            assert engine.triggers[t.id] is t
            assert not (last >= t.price if t.above else last <= t.price) or not last, (
                f"trigger {t.id} at {t.price} is reached by the last price {last}"
            )
            if t.sibling is not None:
                assert t.sibling.sibling is t
                assert t.sibling.id in engine.triggers
    by_user = {i: t for per in engine.user_triggers.values() for i, t in per.items()}
    assert by_user.keys() == engine.triggers.keys()
    counts = Counter((t.order.user, t.order.market) for t in engine.triggers.values())
    flat = {(u, m): n for u, per in engine.trigger_counts.items() for m, n in per.items()}
    assert flat == counts, "pending-trigger counts differ from the triggers"
    cids = {
        (t.order.user, t.order.client_id) for t in engine.triggers.values() if t.order.client_id
    }
    assert cids == engine.trigger_client_ids.keys()
    assert not cids & engine.client_ids.keys(), "a client id is both open and pending"
    assert not engine.closed_parents


def _same_orders(got: dict[OrderId, Order], want: dict[OrderId, Order], what: str) -> None:
    assert got.keys() == want.keys(), f"{what}: {sorted(got)} != {sorted(want)}"
    assert all(got[k] is want[k] for k in got), f"{what}: different order objects"


def _check_book(engine: Engine, symbol: str) -> None:
    book = engine.books[symbol]
    for side in Side:
        better = int.__gt__ if side == Side.BUY else int.__lt__
        levels: list[tuple[int, int]] = []
        last: Order | None = None
        for o in book.iter_side(side):
            # Arrival order; not id order, as a fired trigger keeps the id it was placed with.
            if levels and levels[-1][0] == o.price:
                assert last is not None
                assert o.created >= last.created, f"{symbol} {o.price}: {o.id} ahead of {last.id}"
                levels[-1] = (o.price, levels[-1][1] + o.remaining)
            else:
                assert not levels or better(levels[-1][0], o.price), (
                    f"{symbol} {side.name} unsorted"
                )
                levels.append((o.price, o.remaining))
            last = o
        assert book.depth(side, 0) == levels, f"{symbol} {side.name}: depth() disagrees with orders"
        assert book.depth(side, 2) == levels[:2]
        first = next(iter(book.iter_side(side)), None)
        assert book.best(side) is first
        assert book.best_price(side) == (levels[0][0] if levels else None)
    bid, ask = book.best_price(Side.BUY), book.best_price(Side.SELL)
    assert bid is None or ask is None or bid < ask, f"{symbol} is crossed: bid {bid} >= ask {ask}"


@dataclass
class TrackedOrder:
    """An order as the event stream describes it."""

    accepted: OrderAccepted
    locked: int
    filled: int = 0
    filled_quote: int = 0
    fee_numer: int = 0
    fees: int = 0


@dataclass
class EventLedger:
    """Balances and open orders rebuilt from events alone."""

    seq: int = 0
    decimals: dict[str, int] = field(default_factory=dict)
    markets: dict[str, MarketSpec] = field(default_factory=dict)
    balances: dict[tuple[UserId, str], list[int]] = field(default_factory=dict)  # [avail, locked]
    orders: dict[OrderId, TrackedOrder] = field(default_factory=dict)
    triggers: dict[OrderId, TriggerPlaced] = field(default_factory=dict)  # pending
    fired: set[OrderId] = field(default_factory=set)
    placed: dict[OrderId, TriggerPlaced] = field(default_factory=dict)  # every trigger
    fired_at: dict[OrderId, int] = field(default_factory=dict)
    # Ended without becoming an order: (ended at, cancel reason, failure code).
    ended: dict[OrderId, tuple[int, int, int]] = field(default_factory=dict)
    supply: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    withdrawals: dict[int, WithdrawalStatus] = field(default_factory=dict)

    def apply(self, events: list[Event], ts: int | None = None) -> None:
        for ev in events:
            assert ev.seq == self.seq + 1, f"sequence gap: {self.seq} then {ev.seq}"
            assert ts is None or ev.ts == ts
            self.seq = ev.seq
            self._apply(ev)

    def _move(self, user: UserId, asset: str, available: int = 0, locked: int = 0) -> None:
        bal = self.balances.setdefault((user, asset), [0, 0])
        bal[0] += available
        bal[1] += locked
        assert bal[0] >= 0, f"user {user} {asset}: available goes negative: {bal}"
        assert bal[1] >= 0, f"user {user} {asset}: locked goes negative: {bal}"

    def _apply(self, ev: Event) -> None:
        if isinstance(ev, Deposited):
            self._move(ev.user, ev.asset, available=ev.amount)
            self.supply[ev.asset] += ev.amount
        elif isinstance(ev, Withdrawn):
            self._move(ev.user, ev.asset, available=-ev.amount)
            self.supply[ev.asset] -= ev.amount
        elif isinstance(ev, OrderAccepted):
            assert ev.order_id not in self.orders
            self._move(ev.user, ev.locked_asset, available=-ev.locked, locked=ev.locked)
            self.orders[ev.order_id] = TrackedOrder(ev, ev.locked)
        elif isinstance(ev, TradeExecuted):
            self._trade(ev)
        elif isinstance(ev, OrderRested | OrderClosed):
            order = self.orders[ev.order_id]
            assert ev.unlocked_asset == order.accepted.locked_asset
            self._move(ev.user, ev.unlocked_asset, available=ev.unlocked, locked=-ev.unlocked)
            order.locked -= ev.unlocked
            assert order.locked >= 0, f"order {ev.order_id} unlocked more than it locked"
            if isinstance(ev, OrderClosed):
                assert order.locked == 0, f"order {ev.order_id} closed still locking {order.locked}"
                assert (ev.filled, ev.filled_quote) == (order.filled, order.filled_quote)
                del self.orders[ev.order_id]
        elif isinstance(ev, TriggerPlaced):
            assert ev.order_id not in self.orders
            assert ev.order_id not in self.triggers
            self.triggers[ev.order_id] = self.placed[ev.order_id] = ev
        elif isinstance(ev, TriggerFired):
            assert ev.order_id not in self.fired, f"trigger {ev.order_id} fired twice"
            self.fired.add(ev.order_id)
            self.fired_at[ev.order_id] = ev.ts
            del self.triggers[ev.order_id]
        elif isinstance(ev, TriggerFailed):
            assert ev.order_id in self.fired
            assert ev.order_id not in self.orders
            self.ended[ev.order_id] = (ev.ts, 0, ev.code)
        elif isinstance(ev, TriggerCancelled):
            del self.triggers[ev.order_id]
            self.ended[ev.order_id] = (ev.ts, int(ev.reason), 0)
        elif isinstance(ev, AssetListed):
            self.decimals[ev.asset.symbol] = ev.asset.decimals
        elif isinstance(ev, MarketListed):
            self.markets[ev.spec.symbol] = ev.spec
        elif isinstance(ev, DepositRecorded):
            self._move(ev.user, ev.asset, available=ev.credited)
            self.supply[ev.asset] += ev.credited
        elif isinstance(ev, WithdrawalChanged):
            self._withdrawal(ev)
        else:
            assert isinstance(ev, MarketStatusChanged | NetworkListed | TriggerLimitSet)

    def _withdrawal(self, ev: WithdrawalChanged) -> None:
        total = ev.amount + ev.fee
        moved = [m for m in (ev.locked, ev.unlocked, ev.paid + ev.fee_paid) if m]
        assert moved in ([], [total]), f"withdrawal {ev.withdrawal_id} moves {moved} of {total}"
        first = ev.withdrawal_id not in self.withdrawals
        assert first == bool(ev.locked), "a withdrawal locks its funds once, when requested"
        if not first:
            assert self.withdrawals[ev.withdrawal_id] not in _ENDED, "a withdrawal ended twice"
        self.withdrawals[ev.withdrawal_id] = ev.status
        self._move(ev.user, ev.asset, available=ev.unlocked - ev.locked, locked=ev.locked)
        self._move(ev.user, ev.asset, locked=-ev.unlocked - ev.paid - ev.fee_paid)
        self._move(FEE_ACCOUNT, ev.asset, available=ev.fee_paid)
        self.supply[ev.asset] -= ev.paid

    def _trade(self, ev: TradeExecuted) -> None:
        spec = self.markets[ev.market]
        scale = 10 ** self.decimals[spec.base]
        maker, taker = self.orders[ev.maker_order], self.orders[ev.taker_order]
        assert maker.accepted.user == ev.maker_user
        assert taker.accepted.user == ev.taker_user
        assert ev.maker_user != ev.taker_user, "self-trade"
        assert maker.accepted.type == OrderType.LIMIT, "the maker is a resting limit order"
        assert maker.accepted.side != taker.accepted.side == ev.taker_side
        assert ev.price == maker.accepted.price, "fills happen at the maker's price"
        if taker.accepted.price:  # a limit taker never pays more / receives less than its limit
            limit = taker.accepted.price
            assert ev.price <= limit if ev.taker_side == Side.BUY else ev.price >= limit
        assert ev.qty > 0
        assert ev.price * ev.qty % scale == 0
        assert ev.quote_qty == ev.price * ev.qty // scale
        buyer, seller = (taker, maker) if ev.taker_side == Side.BUY else (maker, taker)
        fee_of = {id(taker): ev.taker_fee, id(maker): ev.maker_fee}
        for order, bps in ((maker, spec.maker_fee_bps), (taker, spec.taker_fee_bps)):
            order.filled += ev.qty
            order.filled_quote += ev.quote_qty
            order.fee_numer += ev.quote_qty * bps
            order.fees += fee_of[id(order)]
            assert order.fees == ceil_div(order.fee_numer, BPS), "fees are ceil of the total"
            acc = order.accepted
            if acc.qty:
                assert order.filled <= acc.qty, f"order {acc.order_id} overfilled"
            else:
                assert order.filled_quote <= acc.quote_qty, f"order {acc.order_id} over budget"
        buyer_fee, seller_fee = fee_of[id(buyer)], fee_of[id(seller)]
        cost = ev.quote_qty + buyer_fee
        buyer.locked -= cost
        seller.locked -= ev.qty
        assert buyer.locked >= 0, f"buy order {buyer.accepted.order_id} spent more than it locked"
        assert seller.locked >= 0, f"sell order {seller.accepted.order_id} sold more than it locked"
        self._move(buyer.accepted.user, spec.quote, locked=-cost)
        self._move(buyer.accepted.user, spec.base, available=ev.qty)
        self._move(seller.accepted.user, spec.base, locked=-ev.qty)
        self._move(seller.accepted.user, spec.quote, available=ev.quote_qty - seller_fee)
        self._move(FEE_ACCOUNT, spec.quote, available=ev.maker_fee + ev.taker_fee)

    def check(self, engine: Engine) -> None:
        """The ledger rebuilt from events equals the engine's state."""
        assert self.seq == engine.seq
        engine_balances = {
            (user, asset): [bal.available, bal.locked]
            for user, asset, bal in engine.accounts.items()
        }
        for key in self.balances.keys() | engine_balances.keys():
            got, want = self.balances.get(key, [0, 0]), engine_balances.get(key, [0, 0])
            assert got == want, f"balance {key}: events say {got}, engine has {want}"
        for asset in self.supply.keys() | engine.accounts.supply.keys():
            assert self.supply[asset] == engine.accounts.supply.get(asset, 0)
        assert self.orders.keys() == engine.orders.keys(), "open orders differ from the events"
        assert self.triggers.keys() == engine.triggers.keys(), "triggers differ from the events"
        for oid, tracked in self.orders.items():
            o = engine.orders[oid]
            assert (tracked.locked, tracked.filled, tracked.filled_quote, tracked.fees) == (
                o.locked,
                o.filled,
                o.filled_quote,
                o.fees,
            ), f"order {oid}: events and engine disagree"
        self._check_trigger_queries(engine)

    def _check_trigger_queries(self, engine: Engine) -> None:
        """Fetched by id, a trigger shows what its events said, whatever became of it."""
        for oid, at in self.fired_at.items():
            p = self.placed[oid]
            order = engine.find_order(p.user, oid, ClientOrderId(0))
            if order is not None:  # else refused, or closed longer ago than remembered
                want = FiredTrigger(p.trigger_price, p.above, p.parent, p.sibling, at)
                assert order.fired == want, f"order {oid} that trigger became"
        for oid, (at, reason, code) in self.ended.items():
            t = engine.find_ended_trigger(self.placed[oid].user, oid)
            assert t is not None, f"ended trigger {oid} cannot be fetched"
            assert (t.ended, t.reason or 0, t.failure_code) == (at, reason, code), oid
            assert (t.price, t.above, t.related) == (
                self.placed[oid].trigger_price,
                self.placed[oid].above,
                self.placed[oid].sibling,
            )
            assert t.fired_at == self.fired_at.get(oid, 0)
