"""The matching engine: applies one command at a time and returns its events.

Invariants after every command (the property tests check each one):
1. Conservation: per asset, the sum of available + locked over all accounts,
   the fee account included, equals deposits minus withdrawals.
2. No balance is negative, and each user's locked amount of an asset equals
   the sum of `locked` over their open orders, which is exactly what those
   orders can still spend (a resting buy: price * remaining + the maker fee
   still chargeable on it; a resting sell: its remaining quantity).
3. The book is never crossed; fills happen at the resting order's price, in
   arrival order at each price; filled <= quantity.
4. A rejected command raises `Rejected` before touching any state.

Stages: `_check_*` validate, `_place` (limit orders) and `_lock_for_market_order`
work out the funds, `_match` walks the opposite side, `_settle` moves the money,
`_enter`/`_rest_after_taking`/`_close` finish. Conditional orders (triggers and
take-profit / stop-loss brackets) are placed by `_place_conditional` and fired by
`_cascade` after every step that traded; see engine_svc/core/triggers.py for the order.
Fees are paid in the quote asset: added to what a buyer pays, taken from what
a seller receives, credited to FEE_ACCOUNT.
"""

from collections import deque
from collections.abc import Callable

from engine_svc.core.accounts import Accounts, Balance
from engine_svc.core.book import Book, OrderBook
from engine_svc.core.capital import Capital
from engine_svc.core.capital_messages import (
    AddNetwork,
    DecideWithdrawal,
    ReportDeposit,
    RequestWithdrawal,
)
from engine_svc.core.closed_orders import ClosedOrder as ClosedOrder  # re-exported
from engine_svc.core.closed_orders import ClosedOrders
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    Bracket,
    CancelAllOrders,
    CancelOrder,
    Command,
    Deposit,
    PlaceConditional,
    PlaceOrder,
    SetMarketStatus,
    Withdraw,
)
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
    TriggerPlaced,
    Withdrawn,
)
from engine_svc.core.markets import Market, build_market, validate_asset
from engine_svc.core.order import Order
from engine_svc.core.triggers import Trigger, TriggerBook, TriggerIndex, TriggerState
from engine_svc.core.types import (
    FEE_ACCOUNT,
    ClientOrderId,
    CloseReason,
    Code,
    MarketStatus,
    OrderId,
    OrderStatus,
    OrderType,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradeId,
    UserId,
)
from tradekit.markets import Asset
from tradekit.money import MAX_UNITS, ceil_div, format_units

BPS = 10_000
RECENT_CLOSED = 100_000  # closed orders remembered for GetOrder; history lives in the ledger
# Pending triggers a user may have (take-profit / stop-loss legs count, but never refuse).
MAX_TRIGGERS_PER_MARKET = 100
MAX_TRIGGERS = 500

# Module constants: looking an enum member up on its class is slow on a hot path.
# Enum values are compared by identity (`is`), which skips the generic comparison an
# IntEnum otherwise takes: commands and orders always hold members, since every builder
# of commands (parse, journal, snapshots) makes them and mypy checks the rest.
_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_GTC = TimeInForce.GTC
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_OPEN = MarketStatus.OPEN
_CANCEL_MAKER = SelfTradePrevention.CANCEL_MAKER
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_FILLED = OrderStatus.FILLED
_CANCELLED = OrderStatus.CANCELLED
_EXPIRED = OrderStatus.EXPIRED
_BY_FILL = CloseReason.FILLED
_BY_USER = CloseReason.USER_CANCELLED
_BY_SELF_TRADE = CloseReason.SELF_TRADE
_BY_NO_LIQUIDITY = CloseReason.NO_LIQUIDITY
_BY_FUNDS = CloseReason.INSUFFICIENT_FUNDS
_BY_OCO = CloseReason.ONE_CANCELS_OTHER
_PENDING = TriggerState.PENDING
_FIRING = TriggerState.FIRING
_DONE = TriggerState.DONE
_NO_ID = OrderId(0)
_NO_BRACKET = Bracket()
# Builds a hot event straight from a tuple, skipping the NamedTuple's Python-level __new__.
_new = tuple.__new__


class Engine:
    def __init__(
        self,
        book_factory: Callable[[], Book] = OrderBook,
        trigger_factory: Callable[[], TriggerBook] = TriggerIndex,
    ) -> None:
        self.book_factory = book_factory
        self.trigger_factory = trigger_factory
        self.assets: dict[str, Asset] = {}
        self.markets: dict[str, Market] = {}
        self.books: dict[str, Book] = {}
        self.accounts = Accounts()
        self.orders: dict[OrderId, Order] = {}  # resting orders
        self.user_orders: dict[UserId, dict[OrderId, Order]] = {}
        self.client_ids: dict[tuple[UserId, ClientOrderId], Order] = {}
        self.recent_closed = ClosedOrders(RECENT_CLOSED)
        self.seq = 0  # sequence number of the last event
        # The ids the next order and trade get. They count up with a plain `+ 1`, not a
        # NewType call per order, which costs more than the addition (about 2% of the bench).
        self.next_order_id = OrderId(1)
        self.next_trade_id = TradeId(1)
        self.ts = 0  # engine time of the last applied command, µs
        # Pending triggers: indexed by price per market, and by id, user and client id.
        self.trigger_books: dict[str, TriggerBook] = {}
        self.triggers: dict[OrderId, Trigger] = {}
        self.user_triggers: dict[UserId, dict[OrderId, Trigger]] = {}
        self.trigger_client_ids: dict[tuple[UserId, ClientOrderId], Trigger] = {}
        # Orders with a bracket that closed with fills during the current command.
        self.closed_parents: list[Order] = []
        self.capital = Capital()  # networks, deposits and withdrawals

    def take_over(self, other: "Engine") -> None:
        """Becomes `other` in place (a rollback to the engine recovered from disk), so that
        everything holding this engine sees the new state. Field by field: a compiled
        (mypyc) Engine has no `__dict__` to swap."""
        self.book_factory = other.book_factory
        self.assets = other.assets
        self.markets = other.markets
        self.books = other.books
        self.accounts = other.accounts
        self.orders = other.orders
        self.user_orders = other.user_orders
        self.client_ids = other.client_ids
        self.recent_closed = other.recent_closed
        self.seq = other.seq
        self.next_order_id = other.next_order_id
        self.next_trade_id = other.next_trade_id
        self.ts = other.ts
        self.trigger_factory = other.trigger_factory
        self.trigger_books = other.trigger_books
        self.triggers = other.triggers
        self.user_triggers = other.user_triggers
        self.trigger_client_ids = other.trigger_client_ids
        self.closed_parents = other.closed_parents
        self.capital = other.capital

    def apply(self, command: Command, ts: int) -> list[Event]:
        """Applies one command at engine time `ts` (µs). Raises Rejected, changing nothing."""
        # Orders and cancels first, by exact type (commands are plain NamedTuples): the
        # cheapest test for the commands that make up nearly all of the traffic.
        if type(command) is PlaceOrder:
            events = self._place(command, ts)
            if self.triggers or self.closed_parents:
                self._cascade(command.market, events, ts)
        elif type(command) is CancelOrder:
            events = self._cancel(command, ts)
            if self.closed_parents:
                self._cascade("", events, ts)
        elif isinstance(command, PlaceConditional):
            events = self._place_conditional(command, ts)
            self._cascade(command.order.market, events, ts)
        elif isinstance(command, CancelAllOrders):
            events = self._cancel_all(command, ts)
        elif isinstance(command, Deposit):
            events = self._deposit(command, ts)
        elif isinstance(command, Withdraw):
            events = self._withdraw(command, ts)
        elif isinstance(command, AddAsset):
            events = self._add_asset(command, ts)
        elif isinstance(command, AddMarket):
            events = self._add_market(command, ts)
        elif isinstance(command, SetMarketStatus):
            events = self._set_market_status(command, ts)
        elif isinstance(command, (RequestWithdrawal, DecideWithdrawal, ReportDeposit, AddNetwork)):
            events = self.capital.apply(command, self.seq, ts, self.accounts, self.assets)
            self.seq += len(events)
        else:
            raise TypeError(f"not an engine command: {command!r}")
        if events:
            self.ts = ts
        return events

    # ---- queries ----

    def find_order(self, user: UserId, order_id: OrderId, client_id: ClientOrderId) -> Order | None:
        order = self.orders.get(order_id) if order_id else self.client_ids.get((user, client_id))
        if order is None and order_id:
            closed = self.recent_closed.get(order_id)
            order = None if closed is None else closed.order
        return order if order is not None and order.user == user else None

    def find_trigger(
        self, user: UserId, order_id: OrderId, client_id: ClientOrderId
    ) -> Trigger | None:
        """A pending trigger of `user`, by id or client id."""
        t = (
            self.triggers.get(order_id)
            if order_id
            else self.trigger_client_ids.get((user, client_id))
        )
        return t if t is not None and t.order.user == user else None

    def open_triggers(self, user: UserId, market: str = "") -> list[Trigger]:
        triggers = self.user_triggers.get(user, {}).values()
        return [t for t in triggers if not market or t.order.market == market]

    def open_orders(self, user: UserId, market: str = "") -> list[Order]:
        orders = self.user_orders.get(user, {}).values()
        return [o for o in orders if not market or o.market == market]

    # ---- place ----

    def _market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise Rejected(Code.UNKNOWN_MARKET, f"unknown market {symbol[:40]!r}")
        return market

    def _place(
        self, c: PlaceOrder, ts: int, fired: OrderId = _NO_ID, bracket: Bracket | None = None
    ) -> list[Event]:
        """Places `c` now; a fired trigger passes its own id (`fired`) and bracket.
        The hot path: fields are unpacked once (a NamedTuple's attribute is a slow lookup),
        and a limit order's checks and lock are worked out inline."""
        user, symbol, side, type_, price, qty, quote_qty, tif, post_only, client_id, stp = c
        market = self.markets.get(symbol)
        if market is None:
            raise Rejected(Code.UNKNOWN_MARKET, f"unknown market {symbol[:40]!r}")
        if market.status is not _OPEN:
            raise Rejected(Code.MARKET_HALTED, f"market {symbol} is halted")
        if user <= 0:
            raise Rejected(Code.INVALID_USER, "orders need a user id > 0")
        limit = type_ is _LIMIT
        if not limit:
            self._check_market_order(c, market)
        elif (
            price % market.tick
            or not 0 < price <= market.max_price
            or qty % market.step
            or not market.min_qty <= qty <= market.max_qty  # min_qty >= step > 0
            or quote_qty
            or (post_only and tif is not _GTC)
            or price * qty // market.base_scale < market.min_notional
        ):
            self._check_limit(c, market)  # raises with the precise reason
        if client_id and (
            (user, client_id) in self.client_ids or (user, client_id) in self.trigger_client_ids
        ):
            raise Rejected(Code.DUPLICATE_CLIENT_ID, f"client id {client_id} is already open")
        buy = side is _BUY
        if buy:
            spend_asset, receive_asset = market.quote.symbol, market.base.symbol
        else:
            spend_asset, receive_asset = market.base.symbol, market.quote.symbol
        book = self.books[symbol]
        held = self.accounts.of_user(user)
        spend = held.get(spend_asset)
        available = 0 if spend is None else spend.available
        if limit:
            best = book.best_price(_SELL if buy else _BUY)
            takes = best is not None and (best <= price if buy else best >= price)
            if takes and post_only:
                raise Rejected(Code.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity")
            if tif is _FOK and self._fillable(c, book) < qty:
                raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
            if buy:
                # price x qty plus the largest fee it may be charged: the taker fee only if
                # it crosses now (once resting, it can only be a maker).
                notional = price * qty // market.base_scale
                bps = max(market.maker_bps, market.taker_bps) if takes else market.maker_bps
                lock = notional - (-notional * bps // BPS)  # + ceil(notional * bps / BPS)
            else:
                lock = qty
        else:
            lock, takes = self._lock_for_market_order(c, market, book, available)
        if lock > available:
            decimals = self.assets[spend_asset].decimals
            required, held_text = format_units(lock, decimals), format_units(available, decimals)
            raise Rejected(
                Code.INSUFFICIENT_FUNDS,
                f"{spend_asset}: needs {required}, {held_text} available",
                {"asset": spend_asset, "required": required, "available": held_text},
            )

        # Every check passed: from here on the command changes state.
        receive = held.get(receive_asset)
        if spend is None or receive is None:
            spend = self.accounts.balance(user, spend_asset)
            receive = self.accounts.balance(user, receive_asset)
        if fired:
            order_id = fired
        else:
            order_id = self.next_order_id
            self.next_order_id = order_id + 1  # type: ignore[assignment]  # see __init__
        order = Order(
            order_id, user, symbol, side, type_, tif, stp, post_only, client_id, price, qty,
            quote_qty, ts, spend, receive,
        )  # fmt: skip
        if bracket is not None:
            order.bracket = bracket
        if quote_qty:
            order.remaining = MAX_UNITS  # bounded by the quote budget instead
        order.locked = lock
        spend.available -= lock
        spend.locked += lock
        self.seq = seq = self.seq + 1
        events: list[Event] = [
            _new(OrderAccepted, (
                seq, ts, order_id, user, symbol, side, type_, tif, stp, post_only, client_id,
                price, qty, quote_qty, spend_asset, lock,
            ))
        ]  # fmt: skip
        if not takes:  # only a limit order rests without trying to take
            if tif is _GTC:
                self._enter(order, book)
            else:
                self._close(order, market, _EXPIRED, _BY_NO_LIQUIDITY, events, ts, resting=False)
            return events
        stop = self._match(order, market, book, events, ts)
        if order.remaining == 0:
            self._close(order, market, _FILLED, _BY_FILL, events, ts, resting=False)
        elif stop is not None:
            status = _CANCELLED if stop is _BY_SELF_TRADE else _EXPIRED
            if stop is _BY_FUNDS and quote_qty and order.filled:
                status, stop = _FILLED, _BY_FILL  # the budget is spent
            self._close(order, market, status, stop, events, ts, resting=False)
        elif limit and tif is _GTC:
            self._rest_after_taking(order, market, book, events, ts)
        else:
            self._close(order, market, _EXPIRED, _BY_NO_LIQUIDITY, events, ts, resting=False)
        return events

    def _check_limit(self, c: PlaceOrder, market: Market) -> None:
        if c.price <= 0 or c.price % market.tick or c.price > market.max_price:
            raise Rejected(
                Code.INVALID_PRICE,
                f"price must be a positive multiple of {market.spec.tick_size} "
                f"up to {market.spec.max_price}",
            )
        qty = c.qty
        if qty <= 0 or qty % market.step or qty > market.max_qty or qty < market.min_qty:
            self._check_qty(qty, market)  # raises with the precise reason
        if c.quote_qty:
            raise Rejected(Code.INVALID_ORDER, "quote quantity is for market orders")
        if c.post_only and c.tif is not _GTC:
            raise Rejected(Code.INVALID_ORDER, "post-only orders are GTC")
        if c.price * c.qty // market.base_scale < market.min_notional:
            raise Rejected(
                Code.BELOW_MIN_NOTIONAL, f"price x quantity is below {market.spec.min_notional}"
            )

    def _check_market_order(self, c: PlaceOrder, market: Market) -> None:
        if c.price:
            raise Rejected(Code.INVALID_ORDER, "market orders take no price")
        if c.post_only or c.tif is _GTC:
            raise Rejected(Code.INVALID_ORDER, "market orders are IOC or FOK")
        if bool(c.qty) == bool(c.quote_qty):
            raise Rejected(
                Code.INVALID_ORDER, "market orders need either quantity or quote quantity"
            )
        if c.qty:
            self._check_qty(c.qty, market)
            return
        if c.side is not _BUY or c.tif is _FOK:
            raise Rejected(Code.INVALID_ORDER, "quote quantity is for IOC market buys")
        if not 0 < c.quote_qty <= MAX_UNITS:
            raise Rejected(Code.INVALID_AMOUNT, "quote quantity must be positive")
        if c.quote_qty < market.min_notional:
            raise Rejected(
                Code.BELOW_MIN_NOTIONAL, f"quote quantity is below {market.spec.min_notional}"
            )

    @staticmethod
    def _check_qty(qty: int, market: Market) -> None:
        if qty <= 0 or qty % market.step or qty > market.max_qty:
            raise Rejected(
                Code.INVALID_QUANTITY,
                f"quantity must be a positive multiple of {market.spec.step_size} "
                f"up to {market.spec.max_quantity}",
            )
        if qty < market.min_qty:
            raise Rejected(Code.BELOW_MIN_QUANTITY, f"quantity is below {market.spec.min_quantity}")

    def _lock_for_market_order(
        self, c: PlaceOrder, market: Market, book: Book, available: int
    ) -> tuple[int, bool]:
        """What a market order must lock (it always tries to take), after the fill-or-kill
        check. A limit order's lock is worked out in `_place`."""
        if c.side is not _BUY:
            if c.tif is _FOK and self._fillable(c, book) < c.qty:
                raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
            return c.qty, True
        if c.quote_qty:
            return c.quote_qty + ceil_div(c.quote_qty * market.taker_bps, BPS), True
        # A market buy by quantity locks what taking that quantity costs now, or
        # all it has; `_match` then never spends more than the lock.
        cost = self._cost_to_buy(c, market, book)
        if c.tif is _FOK:
            if self._fillable(c, book) < c.qty:
                raise Rejected(Code.FOK_NOT_FILLABLE, "not enough liquidity to fill completely")
            return cost, True
        if cost and not available:
            raise Rejected(Code.INSUFFICIENT_FUNDS, f"no {market.quote.symbol} available")
        return min(cost, available), True

    def _takeable(self, c: PlaceOrder, book: Book) -> list[tuple[int, int]]:
        """(price, qty) the order could take now, in order, as `_match` would find it."""
        buy = c.side is _BUY
        taken: list[tuple[int, int]] = []
        need = c.qty
        for maker in book.iter_side(_SELL if buy else _BUY):
            if c.price and (maker.price > c.price if buy else maker.price < c.price):
                break
            if maker.user == c.user:
                if c.stp is _CANCEL_MAKER:
                    continue
                break
            qty = min(need, maker.remaining)
            taken.append((maker.price, qty))
            need -= qty
            if not need:
                break
        return taken

    def _fillable(self, c: PlaceOrder, book: Book) -> int:
        return sum(qty for _, qty in self._takeable(c, book))

    def _cost_to_buy(self, c: PlaceOrder, market: Market, book: Book) -> int:
        notional = sum(market.notional(price, qty) for price, qty in self._takeable(c, book))
        return notional + ceil_div(notional * market.taker_bps, BPS)

    # ---- match and settle ----

    def _match(
        self, o: Order, market: Market, book: Book, events: list[Event], ts: int
    ) -> CloseReason | None:
        """Takes liquidity for `o`. Returns why it stopped early, or None."""
        buy = o.side is _BUY
        opposite = _SELL if buy else _BUY
        limit = o.price
        budgeted = o.type is not _LIMIT and buy  # a market buy spends at most its lock
        user = o.user
        best = book.best
        fees = None
        while o.remaining:
            maker = best(opposite)
            if maker is None:
                return None
            price = maker.price
            if limit and (price > limit if buy else price < limit):
                return None
            if maker.user == user:
                if o.stp is _CANCEL_MAKER or o.stp is _CANCEL_BOTH:
                    book.remove(maker)
                    self._close(maker, market, _CANCELLED, _BY_SELF_TRADE, events, ts)
                    if o.stp is _CANCEL_MAKER:
                        continue
                return _BY_SELF_TRADE
            available = maker.remaining
            qty = available if available < o.remaining else o.remaining
            if budgeted:
                qty = self._affordable(o, market, price, qty)
                if not qty:
                    return _BY_FUNDS
            if fees is None:
                fees = self.accounts.balance(FEE_ACCOUNT, market.quote.symbol)
            if qty == available:
                # The maker leaves filled: off the book first, while its level still
                # counts what it had left.
                book.remove(maker)
                self._settle(o, maker, market, price, qty, fees, events, ts)
                self._close(maker, market, _FILLED, _BY_FILL, events, ts)
            else:
                self._settle(o, maker, market, price, qty, fees, events, ts)
                book.reduce(maker, qty)
        return None

    def _affordable(self, o: Order, market: Market, price: int, qty: int) -> int:
        """The largest quantity <= qty a budgeted market buy can still pay for at `price`."""
        scale, step, bps = market.base_scale, market.step, market.taker_bps
        if o.quote_qty:
            most = (o.quote_qty - o.filled_quote) * scale // price
        else:
            # notional + ceil((fee_numer + notional * bps) / BPS) - fees <= locked  <=>
            # notional * (BPS + bps) <= (locked + fees) * BPS - fee_numer: exact, so a lock
            # of exactly the cost (FOK) buys all of it even when rounding makes a fill's fee 0.
            most = ((o.locked + o.fees) * BPS - o.fee_numer) * scale // (price * (BPS + bps))
        q = min(qty, most)
        q -= q % step
        while q > 0:
            notional = price * q // scale
            fee = ceil_div(o.fee_numer + notional * bps, BPS) - o.fees
            if notional + fee <= o.locked:
                break
            q -= step
        return q

    def _settle(
        self,
        taker: Order,
        maker: Order,
        market: Market,
        price: int,
        qty: int,
        fees: Balance,
        events: list[Event],
        ts: int,
    ) -> None:
        notional = price * qty // market.base_scale
        taker.fee_numer += notional * market.taker_bps
        taker_fee = -(-taker.fee_numer // BPS) - taker.fees
        taker.fees += taker_fee
        maker.fee_numer += notional * market.maker_bps
        maker_fee = -(-maker.fee_numer // BPS) - maker.fees
        maker.fees += maker_fee
        if taker.side is _BUY:
            buyer, seller, buyer_fee, seller_fee = taker, maker, taker_fee, maker_fee
        else:
            buyer, seller, buyer_fee, seller_fee = maker, taker, maker_fee, taker_fee
        cost = notional + buyer_fee
        buyer.locked -= cost
        buyer.spend.locked -= cost
        buyer.receive.available += qty
        seller.locked -= qty
        seller.spend.locked -= qty
        seller.receive.available += notional - seller_fee
        fees.available += taker_fee + maker_fee
        taker.remaining -= qty
        taker.filled += qty
        taker.filled_quote += notional
        maker.remaining -= qty
        maker.filled += qty
        maker.filled_quote += notional
        market.trades += 1
        market.traded_qty += qty
        market.traded_quote += notional
        market.last_price = price
        self.seq = seq = self.seq + 1
        trade_id = self.next_trade_id
        self.next_trade_id = trade_id + 1  # type: ignore[assignment]  # see __init__
        events.append(
            _new(TradeExecuted, (
                seq, ts, trade_id, market.spec.symbol, price, qty, notional, maker.id,
                maker.user, taker.id, taker.user, taker.side, maker_fee, taker_fee,
                maker.client_id, taker.client_id,
            ))
        )  # fmt: skip

    # ---- finish ----

    def _rest_after_taking(
        self, o: Order, market: Market, book: Book, events: list[Event], ts: int
    ) -> None:
        if o.side is _BUY:
            # A buy that took liquidity locked for taker fees and its own price;
            # resting, it needs its price and the maker fee on what remains.
            notional = o.price * o.remaining // market.base_scale
            needed = notional + ceil_div(o.fee_numer + notional * market.maker_bps, BPS) - o.fees
            excess = o.locked - needed
            if excess:
                o.locked = needed
                o.spend.locked -= excess
                o.spend.available += excess
                self.seq += 1
                events.append(
                    OrderRested(self.seq, ts, o.id, o.user, o.market, market.quote.symbol, excess)
                )
        self._enter(o, book)

    def restore_order(self, o: Order) -> None:
        """Puts an order on its book and into the indexes (snapshot loading)."""
        self._enter(o, self.books[o.market])

    def restore_trigger(self, t: Trigger) -> None:
        """Puts a pending trigger into its market's index and the others (snapshot loading)."""
        self._index_trigger(t)

    def _enter(self, o: Order, book: Book) -> None:
        book.add(o)
        self.orders[o.id] = o
        per_user = self.user_orders.get(o.user)
        if per_user is None:  # kept when empty: a user's next order needs it again
            per_user = self.user_orders[o.user] = {}
        per_user[o.id] = o
        if o.client_id:
            self.client_ids[(o.user, o.client_id)] = o

    def _close(
        self,
        o: Order,
        market: Market,
        status: OrderStatus,
        reason: CloseReason,
        events: list[Event],
        ts: int,
        resting: bool = True,
    ) -> None:
        """Ends the order (already off the book) and unlocks what it still holds."""
        unlocked = o.locked
        if unlocked:
            o.locked = 0
            spend = o.spend
            spend.locked -= unlocked
            spend.available += unlocked
        order_id, user, side = o.id, o.user, o.side
        if resting:
            del self.orders[order_id]
            del self.user_orders[user][order_id]
            if o.client_id:
                del self.client_ids[(user, o.client_id)]
        self.recent_closed.add(o, status, reason, ts)
        if o.bracket is not None and o.filled:
            self.closed_parents.append(o)
        self.seq = seq = self.seq + 1
        events.append(
            _new(OrderClosed, (
                seq, ts, order_id, user, o.market, side, status, reason,
                market.quote.symbol if side is _BUY else market.base.symbol, unlocked,
                o.filled, o.filled_quote, o.client_id, o.price, 0 if o.quote_qty else o.remaining,
            ))
        )  # fmt: skip

    # ---- cancel ----

    def _cancel(self, c: CancelOrder, ts: int) -> list[Event]:
        user, symbol, order_id, client_id = c
        order = self.orders.get(order_id) if order_id else self.client_ids.get((user, client_id))
        if order is None or order.user != user or (symbol and order.market != symbol):
            return self._cancel_trigger(c, ts)
        events: list[Event] = []
        self.books[order.market].remove(order)
        self._close(order, self.markets[order.market], _CANCELLED, _BY_USER, events, ts)
        return events

    def _cancel_all(self, c: CancelAllOrders, ts: int) -> list[Event]:
        if c.market:
            self._market(c.market)
        events: list[Event] = []
        for order in sorted(self.open_orders(c.user, c.market), key=lambda o: o.id):
            self.books[order.market].remove(order)
            self._close(order, self.markets[order.market], _CANCELLED, _BY_USER, events, ts)
        # Nothing is left pending: the legs of brackets just cancelled are never created.
        self.closed_parents = []
        for t in sorted(self.open_triggers(c.user, c.market), key=lambda t: t.id):
            self._drop(t, _BY_USER, events, ts)
        return events

    # ---- funds ----

    def _check_funds_command(self, user: UserId, asset: str, amount: int) -> None:
        if user <= 0:
            raise Rejected(Code.INVALID_USER, "user id must be > 0")
        if asset not in self.assets:
            raise Rejected(Code.UNKNOWN_ASSET, f"unknown asset {asset[:40]!r}")
        if not 0 < amount <= MAX_UNITS:
            raise Rejected(Code.INVALID_AMOUNT, "amount must be positive")

    def _deposit(self, c: Deposit, ts: int) -> list[Event]:
        self._check_funds_command(c.user, c.asset, c.amount)
        self.accounts.deposit(c.user, c.asset, c.amount)
        self.seq += 1
        return [Deposited(self.seq, ts, c.user, c.asset, c.amount)]

    def _withdraw(self, c: Withdraw, ts: int) -> list[Event]:
        self._check_funds_command(c.user, c.asset, c.amount)
        self.accounts.withdraw(c.user, c.asset, c.amount)
        self.seq += 1
        return [Withdrawn(self.seq, ts, c.user, c.asset, c.amount)]

    # ---- administration ----

    def _add_asset(self, c: AddAsset, ts: int) -> list[Event]:
        validate_asset(c.asset)
        if c.asset.symbol in self.assets:
            raise Rejected(Code.ALREADY_EXISTS, f"asset {c.asset.symbol} exists")
        self.assets[c.asset.symbol] = c.asset
        self.seq += 1
        return [AssetListed(self.seq, ts, c.asset)]

    def _add_market(self, c: AddMarket, ts: int) -> list[Event]:
        if c.spec.symbol in self.markets:
            raise Rejected(Code.ALREADY_EXISTS, f"market {c.spec.symbol} exists")
        self.markets[c.spec.symbol] = build_market(c.spec, self.assets)
        self.books[c.spec.symbol] = self.book_factory()
        self.trigger_books[c.spec.symbol] = self.trigger_factory()
        self.seq += 1
        return [MarketListed(self.seq, ts, c.spec)]

    def _set_market_status(self, c: SetMarketStatus, ts: int) -> list[Event]:
        market = self._market(c.market)
        if market.status == c.status:
            return []
        market.status = c.status
        self.seq += 1
        return [MarketStatusChanged(self.seq, ts, c.market, c.status)]

    # ---- conditional orders ----

    def _place_conditional(self, c: PlaceConditional, ts: int) -> list[Event]:
        o, trigger_price, bracket = c
        market = self._market(o.market)
        if market.status is not _OPEN:
            raise Rejected(Code.MARKET_HALTED, f"market {o.market} is halted")
        if o.user <= 0:
            raise Rejected(Code.INVALID_USER, "orders need a user id > 0")
        if o.type is _LIMIT:
            self._check_limit(o, market)
        else:
            self._check_market_order(o, market)
        key = (o.user, o.client_id)
        if o.client_id and (key in self.client_ids or key in self.trigger_client_ids):
            raise Rejected(Code.DUPLICATE_CLIENT_ID, f"client id {o.client_id} is already open")
        has_bracket = bracket != _NO_BRACKET
        if has_bracket:
            self._check_bracket(o, market, bracket)
        if not trigger_price:
            if not has_bracket:
                raise Rejected(
                    Code.INVALID_ORDER, "a conditional order needs a trigger price or a bracket"
                )
            return self._place(o, ts, _NO_ID, bracket)
        self._check_price(trigger_price, market, "trigger price")
        last = market.last_price
        if not last or trigger_price == last:
            raise Rejected(
                Code.TRIGGER_WOULD_FIRE,
                "trigger price equals the last price" if last else f"{o.market} has no trade yet",
            )
        mine = self.open_triggers(o.user)
        if len(mine) >= MAX_TRIGGERS or (
            sum(t.order.market == o.market for t in mine) >= MAX_TRIGGERS_PER_MARKET
        ):
            raise Rejected(
                Code.TRIGGER_LIMIT,
                f"at most {MAX_TRIGGERS_PER_MARKET} pending triggers per market "
                f"and {MAX_TRIGGERS} in all",
            )
        t = Trigger(
            self._new_order_id(), o, trigger_price, trigger_price > last,
            bracket if has_bracket else None, _NO_ID, ts,
        )  # fmt: skip
        events: list[Event] = []
        self._pend(t, events, ts)
        return events

    def _check_price(self, price: int, market: Market, what: str) -> None:
        if price <= 0 or price % market.tick or price > market.max_price:
            raise Rejected(
                Code.INVALID_PRICE,
                f"{what} must be a positive multiple of {market.spec.tick_size} "
                f"up to {market.spec.max_price}",
            )

    def _check_bracket(self, o: PlaceOrder, market: Market, b: Bracket) -> None:
        for what, price in (
            ("take-profit trigger price", b.tp_trigger),
            ("take-profit limit price", b.tp_limit),
            ("stop-loss trigger price", b.sl_trigger),
            ("stop-loss limit price", b.sl_limit),
        ):
            if price:
                self._check_price(price, market, what)
        if (b.tp_limit and not b.tp_trigger) or (b.sl_limit and not b.sl_trigger):
            raise Rejected(Code.INVALID_ORDER, "a leg's limit price needs its trigger price")
        if b.tp_trigger and b.sl_trigger:
            buy = o.side is _BUY
            if b.tp_trigger <= b.sl_trigger if buy else b.tp_trigger >= b.sl_trigger:
                raise Rejected(
                    Code.INVALID_ORDER,
                    "take-profit must lie above stop-loss for a buy, below it for a sell",
                )

    def _new_order_id(self) -> OrderId:
        order_id = self.next_order_id
        self.next_order_id = order_id + 1  # type: ignore[assignment]  # see __init__
        return order_id

    def _index_trigger(self, t: Trigger) -> None:
        o = t.order
        self.trigger_books[o.market].add(t)
        self.triggers[t.id] = t
        per_user = self.user_triggers.get(o.user)
        if per_user is None:
            per_user = self.user_triggers[o.user] = {}
        per_user[t.id] = t
        if o.client_id:
            self.trigger_client_ids[(o.user, o.client_id)] = t

    def _pend(self, t: Trigger, events: list[Event], ts: int) -> None:
        self._index_trigger(t)
        o = t.order
        b = t.bracket or _NO_BRACKET
        sibling = _NO_ID if t.sibling is None else t.sibling.id
        self.seq += 1
        events.append(
            TriggerPlaced(
                self.seq, ts, t.id, o.user, o.market, o.side, o.type, o.tif, o.stp, o.post_only,
                o.client_id, o.price, o.qty, o.quote_qty, t.price, t.above, *b, t.parent, sibling,
            )
        )  # fmt: skip

    def _unpend(self, t: Trigger) -> None:
        """Takes a trigger out of the id, user and client id indexes (not its price index)."""
        o = t.order
        del self.triggers[t.id]
        del self.user_triggers[o.user][t.id]
        if o.client_id:
            del self.trigger_client_ids[(o.user, o.client_id)]

    def _drop(self, t: Trigger, reason: CloseReason, events: list[Event], ts: int) -> None:
        """Cancels a pending or reached trigger."""
        if t.state is _PENDING:
            self.trigger_books[t.order.market].remove(t)
            self._unpend(t)
        t.state = _DONE
        t.sibling = None
        self.seq += 1
        events.append(TriggerCancelled(self.seq, ts, t.id, t.order.user, t.order.market, reason))

    def _cancel_trigger(self, c: CancelOrder, ts: int) -> list[Event]:
        """Cancels a pending trigger, and the other leg of its pair with it."""
        t = self.find_trigger(c.user, c.order_id, c.client_id)
        if t is None or (c.market and t.order.market != c.market):
            raise Rejected(Code.ORDER_NOT_FOUND, "no such open order")
        events: list[Event] = []
        sibling = t.sibling
        self._drop(t, _BY_USER, events, ts)
        if sibling is not None:
            self._drop(sibling, _BY_USER, events, ts)
        return events

    def _cascade(self, symbol: str, events: list[Event], ts: int) -> None:
        """Fires every trigger the command's trades reached, then those the orders they
        became reach, until a step reaches none. Each trigger fires at most once: reaching
        it takes it out of the indexes."""
        queue: deque[Trigger] = deque()
        self._reach(symbol, events, events, queue, ts)
        while queue:
            t = queue.popleft()
            if t.state is _FIRING:  # else its other leg fired first
                self._fire(t, events, queue, ts)

    def _reach(
        self, symbol: str, step: list[Event], events: list[Event], queue: deque[Trigger], ts: int
    ) -> None:
        """Queues what the trades of `step` reached, then the legs of brackets it closed."""
        book = self.trigger_books.get(symbol)
        if book:
            path = [e.price for e in step if type(e) is TradeExecuted]
            if path:
                for t in book.crossed(path):
                    self._unpend(t)
                    t.state = _FIRING
                    queue.append(t)
        if self.closed_parents:
            parents, self.closed_parents = self.closed_parents, []
            for o in parents:
                self._spawn_legs(o, events, queue, ts)

    def _spawn_legs(self, o: Order, events: list[Event], queue: deque[Trigger], ts: int) -> None:
        """A closed bracket parent's take-profit and stop-loss, on the other side for what it
        filled. A buy's take-profit fires at or above its price, its stop-loss at or below
        (a sell's the other way); a leg the last price has already reached fires now."""
        b = o.bracket
        assert b is not None
        market = self.markets[o.market]
        buy = o.side is _BUY
        side = _SELL if buy else _BUY
        legs: list[Trigger] = []
        for trigger, limit, take_profit in (
            (b.tp_trigger, b.tp_limit, True),
            (b.sl_trigger, b.sl_limit, False),
        ):
            if trigger:
                child = PlaceOrder(
                    o.user, o.market, side, _LIMIT if limit else _MARKET, limit, o.filled, 0,
                    _GTC if limit else _IOC, False, ClientOrderId(0), o.stp,
                )  # fmt: skip
                legs.append(
                    Trigger(
                        self._new_order_id(), child, trigger, take_profit is buy, None, o.id, ts
                    )
                )
        if len(legs) == 2:
            legs[0].sibling, legs[1].sibling = legs[1], legs[0]
        for t in legs:
            self._pend(t, events, ts)
        last = market.last_price
        for t in legs:
            if t.state is _PENDING and (last >= t.price if t.above else last <= t.price):
                self.trigger_books[o.market].remove(t)
                self._unpend(t)
                t.state = _FIRING
                queue.append(t)

    def _fire(self, t: Trigger, events: list[Event], queue: deque[Trigger], ts: int) -> None:
        """Submits a reached trigger's order; its other leg is cancelled first."""
        t.state = _DONE
        o = t.order
        sibling = t.sibling
        if sibling is not None:
            t.sibling = None
            self._drop(sibling, _BY_OCO, events, ts)
        self.seq += 1
        events.append(
            TriggerFired(self.seq, ts, t.id, o.user, o.market, self.markets[o.market].last_price)
        )
        try:
            placed = self._place(o, ts, t.id, t.bracket)
        except Rejected as exc:
            self.seq += 1
            events.append(
                TriggerFailed(self.seq, ts, t.id, o.user, o.market, int(exc.code), exc.message)
            )
            return
        events += placed
        self._reach(o.market, placed, events, queue, ts)
