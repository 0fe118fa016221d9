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

`Engine` holds the state and sends each command to its stage, each a module of functions
of that state: `entry` (validate, lock), `matching` (match, settle), `resting` (an order
joins the book, an order ends), `cancels`, `conditional` (triggers and brackets placed)
and `cascade` (fired after every step that traded; triggers.py has the order), `funds`,
`admin` and `capital` (networks, deposits, withdrawals).
"""

from collections.abc import Callable

from engine_svc.core.accounts import Accounts
from engine_svc.core.admin import add_asset, add_market, set_market_status, set_trigger_limit
from engine_svc.core.book import Book, OrderBook
from engine_svc.core.cancels import cancel, cancel_all
from engine_svc.core.capital import Capital
from engine_svc.core.capital_messages import (
    AddNetwork,
    DecideWithdrawal,
    ReportDeposit,
    RequestWithdrawal,
)
from engine_svc.core.cascade import cascade
from engine_svc.core.closed_orders import ClosedOrder as ClosedOrder  # re-exported
from engine_svc.core.closed_orders import ClosedOrders, EndedTriggers
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
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
from engine_svc.core.conditional import index_trigger, place_conditional
from engine_svc.core.entry import place
from engine_svc.core.events import Event
from engine_svc.core.funds import deposit, withdraw
from engine_svc.core.markets import DEFAULT_MAX_TRIGGERS_TOTAL, Market
from engine_svc.core.order import Order
from engine_svc.core.resting import enter
from engine_svc.core.triggers import Trigger, TriggerBook, TriggerIndex
from engine_svc.core.types import ClientOrderId, Code, OrderId, Rejected, TradeId, UserId
from tradekit.markets import Asset

RECENT_CLOSED = 100_000  # closed orders remembered for GetOrder; history lives in the ledger
RECENT_ENDED_TRIGGERS = 10_000  # likewise triggers that ended without becoming an order


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
        # How many a user has pending in a market, for the limit (no entry for none), by
        # user then market (a tuple key cost a build and a hash per firing): kept by
        # `index_trigger` and `unpend`, so a restore rebuilds it from the triggers.
        self.trigger_counts: dict[UserId, dict[str, int]] = {}
        self.ended_triggers = EndedTriggers(RECENT_ENDED_TRIGGERS)
        self.max_triggers_total = DEFAULT_MAX_TRIGGERS_TOTAL  # a user's, in all markets
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
        self.trigger_counts = other.trigger_counts
        self.ended_triggers = other.ended_triggers
        self.max_triggers_total = other.max_triggers_total
        self.closed_parents = other.closed_parents
        self.capital = other.capital

    def apply(self, command: Command, ts: int) -> list[Event]:
        """Applies one command at engine time `ts` (µs). Raises Rejected, changing nothing."""
        # Orders and cancels first, by exact type (commands are plain NamedTuples): the
        # cheapest test for the commands that make up nearly all of the traffic.
        if type(command) is PlaceOrder:
            trade_id = self.next_trade_id
            events = place(self, command, ts)
            # Only a trade moves the last price: an order that traded nothing (most of
            # them) skips the cascade unless it closed a bracket's parent.
            if self.closed_parents or (self.next_trade_id != trade_id and self.triggers):
                cascade(self, command.market, events, ts)
        elif type(command) is CancelOrder:
            events = cancel(self, command, ts)
            if self.closed_parents:
                cascade(self, "", events, ts)
        elif isinstance(command, PlaceConditional):
            trade_id = self.next_trade_id
            events = place_conditional(self, command, ts)
            if self.closed_parents or self.next_trade_id != trade_id:
                cascade(self, command.order.market, events, ts)
        elif isinstance(command, CancelAllOrders):
            events = cancel_all(self, command, ts)
        elif isinstance(command, Deposit):
            events = deposit(self, command, ts)
        elif isinstance(command, Withdraw):
            events = withdraw(self, command, ts)
        elif isinstance(command, AddAsset):
            events = add_asset(self, command, ts)
        elif isinstance(command, AddMarket):
            events = add_market(self, command, ts)
        elif isinstance(command, SetMarketStatus):
            events = set_market_status(self, command, ts)
        elif isinstance(command, SetTriggerLimit):
            events = set_trigger_limit(self, command, ts)
        elif isinstance(command, (RequestWithdrawal, DecideWithdrawal, ReportDeposit, AddNetwork)):
            events = self.capital.apply(command, self.seq, ts, self.accounts, self.assets)
            self.seq += len(events)
        else:
            raise TypeError(f"not an engine command: {command!r}")
        if events:
            self.ts = ts
        return events

    # ---- queries ----

    def market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            raise Rejected(Code.UNKNOWN_MARKET, f"unknown market {symbol[:40]!r}")
        return market

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

    def find_ended_trigger(self, user: UserId, order_id: OrderId) -> Trigger | None:
        """A recent trigger of `user` that was cancelled, or fired and was refused."""
        t = self.ended_triggers.get(order_id)
        return t if t is not None and t.order.user == user else None

    def open_triggers(self, user: UserId, market: str = "") -> list[Trigger]:
        triggers = self.user_triggers.get(user, {}).values()
        return [t for t in triggers if not market or t.order.market == market]

    def open_orders(self, user: UserId, market: str = "") -> list[Order]:
        orders = self.user_orders.get(user, {}).values()
        return [o for o in orders if not market or o.market == market]

    # ---- snapshot loading ----

    def restore_order(self, o: Order) -> None:
        """Puts an order on its book and into the indexes."""
        enter(self, o, self.books[o.market])

    def restore_trigger(self, t: Trigger) -> None:
        """Puts a pending trigger into its market's index and the others."""
        index_trigger(self, t)
