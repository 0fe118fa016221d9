"""Seeded load through the gateway: users placing every kind of order (trigger orders and
take-profit / stop-loss brackets included), cancelling, depositing through the faucet,
withdrawing through the engine's admin Withdraw (as an operator's `exchangectl debit` does)
and requesting withdrawals to a chain (Backpack's POST /wapi/v1/capital/withdrawals, sent
again with its clientId while its fate is unknown; custody and operators, `chaos.custody`,
take them on from there).

Each user draws its actions from its own seeded generator; half of them sign requests with an
API key, the others use the log-in token. Every answer goes into the `Record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc

from chaos.client import Answer, UserClient, request
from chaos.record import (
    AckedFill,
    AckedOrder,
    Outcome,
    Placement,
    Record,
    Transfer,
    WithdrawalAsk,
)
from exchange.engine.v1 import engine_pb2 as epb
from servicekit.admin_token import admin_metadata
from tradekit.binance import client_order_id

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

log = logging.getLogger(__name__)

OPEN_STATUSES = ("New", "PartiallyFilled")
TRIGGER_PENDING = "TriggerPending"
# The Binance face's status names of a plain order, as the record keeps them (Backpack's).
BINANCE_STATUSES = {
    "NEW": "New", "PARTIALLY_FILLED": "PartiallyFilled", "FILLED": "Filled",
    "CANCELED": "Cancelled", "EXPIRED": "Expired", "REJECTED": "Rejected",
}  # fmt: skip


def _client_name(client_id: int) -> str:
    """Every other Binance order is named as ccxt names them, so the ledger's names and the
    hashed client ids are under the same faults as the rest."""
    return f"x-chaos{client_id}" if client_id % 2 else str(client_id)


@dataclass(frozen=True)
class MarketPlan:
    """How the load trades one market: price band, sizes, and the amounts it moves."""

    symbol: str
    base: str
    quote: str
    start_price: Decimal
    tick: Decimal
    step: Decimal
    max_steps: int  # order sizes are 1..max_steps steps
    quote_spend: Decimal  # market buys by quote amount spend up to this
    fund: tuple[Decimal, Decimal]  # base, quote deposited at sign-up
    top_up: tuple[Decimal, Decimal]
    withdraw: tuple[Decimal, Decimal]


MARKETS = (
    MarketPlan(
        "TATA_INR", "TATA", "INR", Decimal("950"), Decimal("0.01"), Decimal("1"), 10,
        Decimal("2000"), (Decimal("500"), Decimal("500000")),
        (Decimal("20"), Decimal("20000.5")), (Decimal("1"), Decimal("10.25")),
    ),
    MarketPlan(
        "BTC_USDT", "BTC", "USDT", Decimal("65000"), Decimal("0.01"), Decimal("0.0001"), 40,
        Decimal("150"), (Decimal("1"), Decimal("100000")),
        (Decimal("0.05"), Decimal("2500.25")), (Decimal("0.0003"), Decimal("3.5")),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Chain:
    """An asset network of markets.toml the load moves funds on."""

    asset: str
    network: str
    evm: bool  # its addresses: 0x + 40 hex digits, else base58
    places: int  # decimals of the quantities drawn
    deposit: tuple[float, float]  # custody's transfers in
    withdraw: tuple[float, float]  # users' requests out
    large: float = 0.0  # now and then a request this much or more: above the approval threshold

    def draw(self, rng: random.Random, low: float, high: float) -> Decimal:
        exponent = Decimal(1).scaleb(-self.places)
        return Decimal(rng.uniform(low, high)).quantize(exponent, rounding=ROUND_DOWN)

    def address(self, rng: random.Random) -> str:
        """An outside address of the network's format (where a withdrawal goes)."""
        if self.evm:
            return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))
        return "".join(rng.choice(BASE58) for _ in range(40))


BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CHAINS = (
    Chain("BTC", "Bitcoin", False, 4, (0.01, 0.05), (0.001, 0.004)),
    Chain("USDT", "Solana", False, 2, (100, 2000), (2, 60)),
    Chain("USDT", "Ethereum", True, 2, (100, 2000), (5, 60), large=10_001),
)
HELD = CHAINS[2]  # its large requests wait for an operator
WITHDRAWAL_PATH = "/wapi/v1/capital/withdrawals"
ASK_ATTEMPTS = 8  # a withdrawal request of unknown fate is sent again, at most this often

# Relative weights of the actions a user takes.
ACTIONS = {
    "limit": 24,
    "limit_spec": 6,  # the spec's dialect: {market, side: buy|sell, price, quantity}
    "ioc": 8,
    "fok": 6,
    "post_only": 9,
    "market_qty": 7,
    "market_quote": 6,
    "batch": 3,
    "binance": 6,  # a limit or IOC order on the Binance face, HMAC-signed (API-key users)
    "stop": 8,  # a trigger order: stop-limit or stop-market, above or below the mid
    "bracket": 5,  # a limit order with take-profit and stop-loss legs
    "cancel": 20,
    "cancel_all": 3,
    "deposit": 4,
    "withdraw": 4,
    "capital_withdraw": 4,  # a withdrawal request to a chain address
}


class Prices:
    """Mid prices of the books, read through public REST depth about once a second, so that
    orders land near the market maker's quotes and trade."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.mid = {m.symbol: m.start_price for m in MARKETS}
        self._http = http
        self._base_url = base_url

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for market in MARKETS:
                await self._refresh(market.symbol)
            await sleep_unless(stop, 1.0)

    async def _refresh(self, symbol: str) -> None:
        url = f"{self._base_url}/api/v1/depth"
        answer = await request(self._http, "GET", url, {"symbol": symbol, "limit": "1"})
        if answer.outcome is not Outcome.ACKED:
            return
        bids, asks = answer.body.get("bids"), answer.body.get("asks")
        if bids and asks:
            self.mid[symbol] = (Decimal(bids[0][0]) + Decimal(asks[0][0])) / 2


@dataclass
class Trader:
    client: UserClient
    rng: random.Random
    prices: Prices
    record: Record
    engine: EngineServiceAsyncStub
    admin_token: str
    pause: float = 0.3  # mean seconds between actions
    next_client_id: int = 1
    open_orders: dict[int, str] = field(default_factory=dict)  # acked, maybe resting or pending
    addresses: dict[str, str] = field(default_factory=dict)  # network -> its deposit address
    withdrawals_asked: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except Exception:  # a bug in the generator must not pass for a fault finding
                log.exception("load step failed")
                raise
            await sleep_unless(stop, self.rng.expovariate(1 / self.pause))

    async def fund(self) -> None:
        """The starting balances, through the faucet, retried until acknowledged; the user's
        deposit address on each network of `CHAINS` (where custody's transfers go)."""
        for chain in CHAINS:
            while chain.network not in self.addresses:
                answer = await self.client.call(
                    "GET", "/wapi/v1/capital/deposit/address", {"blockchain": chain.network}
                )
                if answer.outcome is Outcome.ACKED:
                    self.addresses[chain.network] = answer.body["address"]
                elif answer.outcome is Outcome.REFUSED and answer.status:
                    raise RuntimeError(f"deposit address on {chain.network}: {answer.body}")
                else:
                    await asyncio.sleep(0.5)
        for market in MARKETS:
            for asset, amount in zip((market.base, market.quote), market.fund, strict=True):
                while (outcome := await self.deposit(asset, amount)) is not Outcome.ACKED:
                    if outcome is Outcome.REFUSED:
                        raise RuntimeError(f"the faucet refused {amount} {asset}")
                    await asyncio.sleep(0.5)

    async def step(self) -> None:
        action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        market = self.rng.choice(MARKETS)
        if action == "cancel" and self.open_orders:
            await self.cancel()
        elif action == "cancel_all":
            await self.cancel_all(market)
        elif action == "deposit":
            which = self.rng.randrange(2)
            await self.deposit((market.base, market.quote)[which], market.top_up[which])
        elif action == "withdraw":
            which = self.rng.randrange(2)
            await self.withdraw((market.base, market.quote)[which], market.withdraw[which])
        elif action == "capital_withdraw":
            await self.request_withdrawal()
        elif action == "batch":
            await self.place_batch([self.order_body("limit", market) for _ in range(3)])
        elif action == "binance" and self.client.hmac is not None:
            await self.place_binance(self.order_body(self.rng.choice(("limit", "ioc")), market))
        else:
            kind = action if action not in ("cancel", "binance") else "limit"
            await self.place(self.order_body(kind, market))

    # ---- orders ----------------------------------------------------------------------

    def order_body(self, kind: str, market: MarketPlan) -> dict[str, Any]:
        rng = self.rng
        buy = rng.random() < 0.5
        quantity = market.step * rng.randint(1, market.max_steps)
        mid = self.prices.mid[market.symbol]
        client_id = self.next_client_id
        self.next_client_id += 1
        body: dict[str, Any] = {
            "symbol": market.symbol,
            "side": "Bid" if buy else "Ask",
            "clientId": client_id,
        }
        if kind == "stop":
            return self.trigger_body(body, market, quantity, mid)
        if kind in ("market_qty", "market_quote"):
            body["orderType"] = "Market"
            if kind == "market_qty":
                body["quantity"] = str(quantity)
            else:
                body["quoteQuantity"] = str(market.quote_spend * Decimal(rng.randint(1, 10)) / 10)
            return body
        toward = 1 if buy else -1  # positive offsets cross the spread
        if kind in ("ioc", "fok"):
            offset = rng.uniform(-0.001, 0.003)
        elif kind == "post_only":
            offset = rng.uniform(-0.004, 0.0005)  # now and then it would take: refused
        else:
            offset = rng.uniform(-0.004, 0.002)
        price = mid * (1 + Decimal(toward * offset))
        price = price.quantize(market.tick, rounding=ROUND_DOWN)
        if kind == "limit_spec":
            return {
                "market": market.symbol,
                "side": "buy" if buy else "sell",
                "price": str(price),
                "quantity": str(quantity),
                "clientId": client_id,
            }
        body.update(orderType="Limit", price=str(price), quantity=str(quantity))
        if kind in ("ioc", "fok"):
            body["timeInForce"] = kind.upper()
        else:
            body["timeInForce"] = "GTC"
            if kind == "post_only":
                body["postOnly"] = True
            elif kind == "bracket":
                self.add_legs(body, market, buy, mid)
        return body

    def _near(self, market: MarketPlan, mid: Decimal, low: float, high: float) -> Decimal:
        """A price a random fraction in [low, high] above the mid (below it when negative)."""
        price = mid * (1 + Decimal(self.rng.uniform(low, high)))
        return price.quantize(market.tick, rounding=ROUND_DOWN)

    def trigger_body(
        self, body: dict[str, Any], market: MarketPlan, quantity: Decimal, mid: Decimal
    ) -> dict[str, Any]:
        """A trigger order close enough to the mid that trading moves the price through it
        now and then; now and then at the last price itself (refused)."""
        sign = self.rng.choice((1, -1))
        trigger = self._near(market, mid, sign * 0.0002, sign * 0.003)
        body.update(triggerPrice=str(trigger), triggerQuantity=str(quantity))
        if self.rng.random() < 0.5:
            body["orderType"] = "Market"
        else:
            toward = 1 if body["side"] == "Bid" else -1
            price = trigger * (1 + Decimal(toward * self.rng.uniform(-0.001, 0.002)))
            body.update(orderType="Limit", timeInForce="GTC",
                        price=str(price.quantize(market.tick, rounding=ROUND_DOWN)))  # fmt: skip
        return body

    def add_legs(self, body: dict[str, Any], market: MarketPlan, buy: bool, mid: Decimal) -> None:
        """Take-profit beyond the mid in the position's favour, stop-loss against it; each a
        limit or a market order."""
        favour = 1 if buy else -1
        tp = self._near(market, mid, favour * 0.0005, favour * 0.004)
        sl = self._near(market, mid, -favour * 0.0005, -favour * 0.004)
        body.update(takeProfitTriggerPrice=str(tp), stopLossTriggerPrice=str(sl))
        if self.rng.random() < 0.5:
            body["stopLossLimitPrice"] = str(self._near(market, sl, -favour * 0.002, 0))
        if self.rng.random() < 0.5:
            body["takeProfitLimitPrice"] = str(tp)

    async def place(self, body: dict[str, Any]) -> None:
        answer = await self.client.call("POST", "/api/v1/order", body)
        self._note_errors(answer)
        self._record_placement(body, answer.outcome, answer.body)

    async def place_binance(self, body: dict[str, Any]) -> None:
        """`body` (a Backpack limit order) sent in Binance's terms; its FULL answer recorded
        in the Backpack form, so the checks hold it to the same history."""
        params = {
            "symbol": body["symbol"].replace("_", ""),
            "side": "BUY" if body["side"] == "Bid" else "SELL",
            "type": "LIMIT",
            "timeInForce": body["timeInForce"],
            "quantity": body["quantity"],
            "price": body["price"],
            "newClientOrderId": _client_name(body["clientId"]),
            "newOrderRespType": "FULL",
        }
        body = {**body, "clientId": client_order_id(params["newClientOrderId"])}
        answer = await self.client.binance("POST", "/api/v3/order", params)
        self._note_errors(answer)
        self.record.count("binance", answer.outcome)
        reply = answer.body
        if answer.outcome is Outcome.ACKED:
            reply = {
                "orderId": reply["orderId"],
                "status": BINANCE_STATUSES[reply["status"]],
                "executedQuantity": reply["executedQty"],
                "fills": [
                    {"tradeId": f["tradeId"], "price": f["price"], "quantity": f["qty"]}
                    for f in reply["fills"]
                ],
            }
        self._record_placement(body, answer.outcome, reply)

    async def place_batch(self, bodies: list[dict[str, Any]]) -> None:
        answer = await self.client.call("POST", "/api/v1/orders", bodies)
        self._note_errors(answer)
        if answer.outcome is Outcome.ACKED:
            for body, item in zip(bodies, answer.body, strict=True):
                outcome = Outcome.ACKED if "orderId" in item else Outcome.REFUSED
                if outcome is Outcome.REFUSED:
                    self.record.refusals[f"batch item {item.get('code')}"] += 1
                self._record_placement(body, outcome, item)
        else:
            for body in bodies:
                self._record_placement(body, answer.outcome, None)

    def _record_placement(self, body: dict[str, Any], outcome: Outcome, reply: Any) -> None:
        market = body.get("symbol") or body["market"]
        if outcome is not Outcome.ACKED:
            placement = Placement(self.client.user_id, body["clientId"], market, outcome)
        else:
            order = self.acked_order(reply)
            fills = tuple(
                AckedFill(int(f["tradeId"]), Decimal(f["price"]), Decimal(f["quantity"]))
                for f in reply.get("fills", [])
            )
            placement = Placement(
                self.client.user_id, body["clientId"], market, outcome, order, fills
            )
            if order.status in OPEN_STATUSES or order.status == TRIGGER_PENDING:
                self.open_orders[order.order_id] = market
        self.record.place(placement)

    def acked_order(self, reply: dict[str, Any]) -> AckedOrder:
        return AckedOrder(
            order_id=int(reply["orderId"]),
            user_id=self.client.user_id,
            status=reply["status"],
            executed_quantity=Decimal(reply["executedQuantity"]),
        )

    async def cancel(self) -> None:
        order_id = self.rng.choice(sorted(self.open_orders))
        market = self.open_orders[order_id]
        answer = await self.client.call(
            "DELETE", "/api/v1/order", {"symbol": market, "orderId": str(order_id)}
        )
        self._note_errors(answer)
        self.record.count("cancel", answer.outcome)
        if answer.outcome is Outcome.ACKED or answer.status == 404:
            del self.open_orders[order_id]  # cancelled, or no longer open
        if answer.outcome is Outcome.ACKED:
            self.record.cancelled.append(self.acked_order(answer.body))

    async def cancel_all(self, market: MarketPlan) -> None:
        answer = await self.client.call("DELETE", "/api/v1/orders", {"symbol": market.symbol})
        self._note_errors(answer)
        self.record.count("cancel_all", answer.outcome)
        if answer.outcome is Outcome.ACKED:
            for item in answer.body:
                self.record.cancelled.append(self.acked_order(item))
            for order_id, symbol in list(self.open_orders.items()):
                if symbol == market.symbol:
                    del self.open_orders[order_id]

    # ---- funds -----------------------------------------------------------------------

    async def deposit(self, asset: str, amount: Decimal) -> Outcome:
        answer = await self.client.call(
            "POST", "/api/v1/onramp", {"asset": asset, "amount": str(amount)}
        )
        self._note_errors(answer)
        self.record.count("deposit", answer.outcome)
        self.record.deposits.append(Transfer(self.client.user_id, asset, amount, answer.outcome))
        return answer.outcome

    async def withdraw(self, asset: str, amount: Decimal) -> None:
        request = epb.WithdrawRequest(user_id=self.client.user_id, asset=asset, amount=str(amount))
        try:
            reply = await self.engine.Withdraw(
                request, metadata=admin_metadata(self.admin_token), timeout=10
            )
        except grpc.aio.AioRpcError:
            outcome = Outcome.UNKNOWN  # it may have been applied before the engine died
        else:
            outcome = Outcome.ACKED if reply.code == 0 else Outcome.REFUSED
            if reply.code:
                self.record.refusals[f"withdraw {reply.code}"] += 1
        self.record.count("withdraw", outcome)
        self.record.withdrawals.append(Transfer(self.client.user_id, asset, amount, outcome))

    async def request_withdrawal(self) -> None:
        """The user's first request is above the approval threshold (one for the operators
        to approve or decline), later ones now and then."""
        first = not self.withdrawals_asked
        self.withdrawals_asked += 1
        chain = HELD if first else self.rng.choice(CHAINS)
        low, high = chain.withdraw
        if chain.large and (first or self.rng.random() < 0.15):
            low, high = chain.large, chain.large * 1.04
        quantity = chain.draw(self.rng, low, high)
        client_id = self.next_client_id
        self.next_client_id += 1
        body = {
            "symbol": chain.asset,
            "blockchain": chain.network,
            "address": chain.address(self.rng),
            "quantity": str(quantity),
            "clientId": client_id,
        }
        memo = f"memo {client_id}" if self.rng.random() < 0.3 else ""  # a chain's tag
        if memo:
            body["memo"] = memo
        unknown = False
        for _ in range(ASK_ATTEMPTS):
            answer = await self.client.call("POST", WITHDRAWAL_PATH, body)
            self._note_errors(answer)
            if answer.outcome is not Outcome.UNKNOWN:
                break
            unknown = True
            await asyncio.sleep(1.0)
        outcome = answer.outcome
        if outcome is Outcome.REFUSED and unknown:
            outcome = Outcome.UNKNOWN  # an earlier attempt may have been applied
        withdrawal_id = int(answer.body["id"]) if outcome is Outcome.ACKED else 0
        self.record.count("withdrawal_request", outcome)
        self.record.withdrawal_asks[(self.client.user_id, client_id)] = WithdrawalAsk(
            self.client.user_id, client_id, chain.asset, chain.network, quantity, outcome,
            withdrawal_id, memo,
        )  # fmt: skip

    def _note_errors(self, answer: Answer) -> None:
        if answer.outcome is Outcome.REFUSED:
            code = answer.body.get("code") if isinstance(answer.body, dict) else None
            self.record.refusals[f"{answer.status} {code or ''}".strip()] += 1
        if answer.status >= 500 and answer.status != 503:
            self.record.server_errors[answer.status] += 1
            log.warning("server error %s: %s", answer.status, answer.body)


KEY = {"label": "chaos", "permissions": ["read", "trade", "withdraw"]}


async def sign_up(
    http: aiohttp.ClientSession, base_url: str, email: str, *, api_key: bool
) -> UserClient:
    """A new user (and an API key when asked), retried until the gateway answers."""
    credentials = {"email": email, "password": "chaos-password-1"}
    while True:
        answer = await request(http, "POST", f"{base_url}/api/v1/auth/signup", credentials)
        if answer.status == 409:  # an earlier attempt was stored before its answer was lost
            answer = await request(http, "POST", f"{base_url}/api/v1/auth/login", credentials)
        if answer.outcome is Outcome.ACKED:
            break
        log.warning("sign-up of %s: %s %s; again", email, answer.status, answer.body)
        await asyncio.sleep(0.5)
    client = UserClient(http, base_url, int(answer.body["userId"]), answer.body["token"])
    while api_key:
        answer = await client.call("POST", "/api/v1/auth/apikeys", KEY)
        if answer.outcome is Outcome.ACKED:
            secret = answer.body["secret"]
            break
        log.warning("API key of %s: %s %s; again", email, answer.status, answer.body)
        await asyncio.sleep(0.5)
    while api_key:  # and an HMAC key for the Binance face (asked with the token, too)
        answer = await client.call(
            "POST", "/api/v1/auth/apikeys", {"label": "chaos-binance", "type": "hmac"}
        )
        if answer.outcome is Outcome.ACKED:
            client.hmac = (answer.body["apiKey"], answer.body["secret"])
            client.secret = secret
            break
        log.warning("HMAC key of %s: %s %s; again", email, answer.status, answer.body)
        await asyncio.sleep(0.5)
    return client


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
