"""A test driver for the engine core that speaks the domain's language.

    ex.sell("alice", "7", at="1600")
    out = ex.buy("bob", "10", at="1601")
    assert out.trades == [Fill("7", "1600.00", maker="alice", taker="bob")]

Amounts go in and come out as decimal strings, users by name. Every command
goes through `parse_place`/`parse_funds` like the service edge, then
`Engine.apply`; after each one the driver checks every invariant, rebuilds the
ledger from the events and compares, and on a rejection requires the state
hash to be unchanged.
"""

from collections.abc import Callable, Iterable
from typing import NamedTuple

import pytest

from engine_svc.config import DEFAULT_MARKETS_FILE, listing_commands
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    CancelAllOrders,
    CancelOrder,
    Command,
    SetMarketStatus,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import (
    Event,
    OrderAccepted,
    OrderClosed,
    OrderRested,
    TradeExecuted,
)
from engine_svc.core.order import Order
from engine_svc.core.parse import parse_funds, parse_place
from engine_svc.core.state import state_hash
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
    UserId,
)
from tests.engine.core.invariants import EventLedger, check_invariants
from tradekit.markets import Asset, MarketSpec
from tradekit.money import format_units

USERS = {"fees": FEE_ACCOUNT, "alice": 1, "bob": 2, "carol": 3, "dave": 4}
NAMES = {uid: name for name, uid in USERS.items()}
TATA = "TATA_INR"
START_TS = 1_700_000_000_000_000

GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK
REJECT_TAKER = SelfTradePrevention.REJECT_TAKER
CANCEL_MAKER = SelfTradePrevention.CANCEL_MAKER
CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH


def seeded_listing() -> list[Command]:
    """The assets and markets of engine_svc/markets.toml."""
    return listing_commands(DEFAULT_MARKETS_FILE)


def small_listing() -> list[Command]:
    """Two small markets with fees, where the base asset has decimals (so rounding bites):
    GEM_USD tick 0.05, step 0.2 (notional = price * qty / 10), maker 15 / taker 35 bps;
    GEM_EUR tick 0.01, step 1, no maker fee, taker 100 bps."""
    gem_usd = MarketSpec("GEM_USD", "GEM", "USD", "0.05", "0.2", "0.2", "0.01", "50", "100", 15, 35)
    gem_eur = MarketSpec("GEM_EUR", "GEM", "EUR", "0.01", "1", "1", "0.01", "50", "100", 0, 100)
    return [
        AddAsset(Asset("GEM", 1)),
        AddAsset(Asset("USD", 2)),
        AddAsset(Asset("EUR", 2)),
        AddMarket(gem_usd),
        AddMarket(gem_eur),
    ]


def uid(user: str | int) -> UserId:
    return UserId(USERS[user] if isinstance(user, str) else user)


class Fill(NamedTuple):
    qty: str
    price: str
    maker: str
    taker: str


class Outcome:
    """The events of one accepted command, with readable views of them."""

    def __init__(self, ex: "Exchange", events: list[Event]) -> None:
        self.ex = ex
        self.events = events

    @property
    def order_id(self) -> OrderId:
        accepted = [e for e in self.events if isinstance(e, OrderAccepted)]
        assert len(accepted) == 1, "not a place command"
        return accepted[0].order_id

    @property
    def trades(self) -> list[Fill]:
        return [self.ex.fill(e) for e in self.events if isinstance(e, TradeExecuted)]

    @property
    def fees(self) -> list[tuple[str, str]]:
        """(maker fee, taker fee) of each trade, in the quote asset."""
        return [
            (self.ex.fmt_quote(e.market, e.maker_fee), self.ex.fmt_quote(e.market, e.taker_fee))
            for e in self.events
            if isinstance(e, TradeExecuted)
        ]

    def closed(self, order_id: OrderId | None = None) -> tuple[OrderStatus, CloseReason] | None:
        """How the order (default: the one this command placed) closed, if it did here."""
        oid = self.order_id if order_id is None else order_id
        for e in self.events:
            if isinstance(e, OrderClosed) and e.order_id == oid:
                return e.status, e.reason
        return None

    @property
    def closed_ids(self) -> list[OrderId]:
        return [e.order_id for e in self.events if isinstance(e, OrderClosed)]

    @property
    def released(self) -> str:
        """What the placed buy order released when it came to rest."""
        rested = [e for e in self.events if isinstance(e, OrderRested)]
        assert len(rested) == 1
        decimals = self.ex.engine.assets[rested[0].unlocked_asset].decimals
        return format_units(rested[0].unlocked, decimals)

    @property
    def rests(self) -> bool:
        return self.order_id in self.ex.engine.orders


class Exchange:
    def __init__(self, listing: Iterable[Command] | None = None) -> None:
        self.engine = Engine()
        self.ledger = EventLedger()
        self.ts = START_TS
        for command in seeded_listing() if listing is None else listing:
            self.apply(command)

    # ---- applying commands ----

    def apply(self, command: Command) -> Outcome:
        self.ts += 1000
        before = state_hash(self.engine)
        seq = self.engine.seq
        try:
            events = self.engine.apply(command, self.ts)
        except Rejected:
            assert self.engine.seq == seq
            assert state_hash(self.engine) == before, "a rejected command changed the state"
            self.check()
            raise
        self.ledger.apply(events, self.ts)
        self.check()
        return Outcome(self, events)

    def check(self) -> None:
        check_invariants(self.engine)
        self.ledger.check(self.engine)

    def rejects(self, code: Code, action: Callable[[], object]) -> Rejected:
        """Runs `action`, which must be rejected with `code` and change nothing."""
        before = state_hash(self.engine)
        with pytest.raises(Rejected) as info:
            action()
        assert info.value.code == code, f"{info.value.code.name}: {info.value.message}"
        assert state_hash(self.engine) == before
        return info.value

    # ---- funds ----

    def deposit(self, user: str | int, amount: str, asset: str) -> Outcome:
        return self._funds(user, amount, asset, withdraw=False)

    def withdraw(self, user: str | int, amount: str, asset: str) -> Outcome:
        return self._funds(user, amount, asset, withdraw=True)

    def _funds(self, user: str | int, amount: str, asset: str, withdraw: bool) -> Outcome:
        decimals = {symbol: a.decimals for symbol, a in self.engine.assets.items()}
        command = parse_funds(
            decimals, withdraw=withdraw, user=uid(user), asset=asset, amount=amount
        )
        return self.apply(command)

    # ---- orders ----

    def place(
        self,
        user: str | int,
        side: Side | int,
        order_type: OrderType | int,
        market: str = TATA,
        *,
        price: str = "",
        qty: str = "",
        quote: str = "",
        tif: TimeInForce | int = 0,
        post_only: bool = False,
        client_id: int = 0,
        stp: SelfTradePrevention | int = 0,
    ) -> Outcome:
        """Any order, from the wire's fields (enums as ints, 0 = unspecified)."""
        command = parse_place(
            self.engine.markets,
            user=uid(user),
            market=market,
            side=int(side),
            order_type=int(order_type),
            price=price,
            quantity=qty,
            quote_quantity=quote,
            time_in_force=int(tif),
            post_only=post_only,
            client_id=client_id,
            stp=int(stp),
        )
        return self.apply(command)

    def buy(
        self,
        user: str,
        qty: str,
        at: str,
        market: str = TATA,
        *,
        tif: TimeInForce = GTC,
        post_only: bool = False,
        client_id: int = 0,
        stp: SelfTradePrevention = REJECT_TAKER,
    ) -> Outcome:
        return self.place(
            user, Side.BUY, OrderType.LIMIT, market, price=at, qty=qty, tif=tif,
            post_only=post_only, client_id=client_id, stp=stp,
        )  # fmt: skip

    def sell(
        self,
        user: str,
        qty: str,
        at: str,
        market: str = TATA,
        *,
        tif: TimeInForce = GTC,
        post_only: bool = False,
        client_id: int = 0,
        stp: SelfTradePrevention = REJECT_TAKER,
    ) -> Outcome:
        return self.place(
            user, Side.SELL, OrderType.LIMIT, market, price=at, qty=qty, tif=tif,
            post_only=post_only, client_id=client_id, stp=stp,
        )  # fmt: skip

    def market_buy(
        self,
        user: str,
        qty: str = "",
        *,
        spend: str = "",
        market: str = TATA,
        tif: TimeInForce = IOC,
        stp: SelfTradePrevention = REJECT_TAKER,
    ) -> Outcome:
        """A market buy of `qty`, or of as much as `spend` (quote, before fees) buys."""
        return self.place(
            user, Side.BUY, OrderType.MARKET, market, qty=qty, quote=spend, tif=tif, stp=stp
        )

    def market_sell(
        self,
        user: str,
        qty: str,
        *,
        market: str = TATA,
        tif: TimeInForce = IOC,
        stp: SelfTradePrevention = REJECT_TAKER,
    ) -> Outcome:
        return self.place(user, Side.SELL, OrderType.MARKET, market, qty=qty, tif=tif, stp=stp)

    def cancel(
        self, user: str | int, order_id: int = 0, *, client_id: int = 0, market: str = ""
    ) -> Outcome:
        return self.apply(
            CancelOrder(uid(user), market, OrderId(order_id), ClientOrderId(client_id))
        )

    def cancel_all(self, user: str | int, market: str = "") -> Outcome:
        return self.apply(CancelAllOrders(uid(user), market))

    def halt(self, market: str) -> Outcome:
        return self.apply(SetMarketStatus(market, MarketStatus.HALTED))

    def reopen(self, market: str) -> Outcome:
        return self.apply(SetMarketStatus(market, MarketStatus.OPEN))

    # ---- reading state back as decimal strings ----

    def balances(self, user: str) -> dict[str, tuple[str, str]]:
        """asset -> (available, locked), for the assets the user holds any of."""
        return {
            asset: (self.fmt(asset, bal.available), self.fmt(asset, bal.locked))
            for asset, bal in sorted(self.engine.accounts.of_user(uid(user)).items())
            if bal.available or bal.locked
        }

    def bids(self, market: str = TATA) -> list[tuple[str, str]]:
        return self._levels(market, Side.BUY)

    def asks(self, market: str = TATA) -> list[tuple[str, str]]:
        return self._levels(market, Side.SELL)

    def _levels(self, market: str, side: Side) -> list[tuple[str, str]]:
        m = self.engine.markets[market]
        return [(m.fmt_price(p), m.fmt_qty(q)) for p, q in self.engine.books[market].depth(side, 0)]

    def order(self, order_id: OrderId) -> Order:
        return self.engine.orders[order_id]

    def open_ids(self, user: str, market: str = "") -> list[OrderId]:
        return sorted(o.id for o in self.engine.open_orders(uid(user), market))

    def fill(self, e: TradeExecuted) -> Fill:
        m = self.engine.markets[e.market]
        return Fill(
            m.fmt_qty(e.qty), m.fmt_price(e.price), NAMES[e.maker_user], NAMES[e.taker_user]
        )

    def fmt(self, asset: str, units: int) -> str:
        return format_units(units, self.engine.assets[asset].decimals)

    def fmt_quote(self, market: str, units: int) -> str:
        return self.engine.markets[market].fmt_quote(units)
