"""EngineService over gRPC: parse at the edge, sequence, reply with result codes.

A business rejection is a reply with a ResultCode; a gRPC error status means
only that the call itself failed (bad transport, cancelled, shutting down).
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from engine_svc import convert
from engine_svc.capital_rpc import CapitalRpcs
from engine_svc.command_log import log_command, logs_command
from engine_svc.core.capital_messages import ReportDeposit
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    CancelAllOrders,
    CancelOrder,
    Command,
    Deposit,
    PlaceOrder,
    SetMarketStatus,
    SetTriggerLimit,
    Withdraw,
)
from engine_svc.core.engine import Engine
from engine_svc.core.events import OrderClosed, TriggerCancelled
from engine_svc.core.parse import parse_conditional, parse_funds, parse_place
from engine_svc.core.state import state_hash
from engine_svc.core.types import (
    ClientOrderId,
    Code,
    MarketStatus,
    OrderId,
    Rejected,
    Side,
    UserId,
)
from engine_svc.deposit_addresses import DepositAddresses
from engine_svc.hub import MAX_LINGER_MS, EventHub
from engine_svc.metrics import COMMAND_NAMES
from engine_svc.sequencer import JournalFailed, Outcome, Sequencer
from engine_svc.settings import DEV_DEPOSIT_SECRET
from exchange.common.v1 import common_pb2 as pb
from exchange.engine.v1 import engine_pb2 as epb
from exchange.engine.v1 import engine_pb2_grpc as epb_grpc
from tradekit.markets import ONRAMP_NETWORK, Asset

MAX_DEPTH = 5000

# Execute's command bodies are named as the metrics name the commands: the kind of a body
# that did not parse, for the counts of refusals.
_KINDS: dict[str, type[Command]] = {name: kind for kind, name in COMMAND_NAMES.items()}

Ctx = grpc.aio.ServicerContext[Any, Any]


class EngineServicer(CapitalRpcs, epb_grpc.EngineServiceServicer):
    def __init__(
        self,
        engine: Engine,
        sequencer: Sequencer,
        hub: EventHub,
        *,
        snapshot: Callable[[], Awaitable[epb.SnapshotReply]] | None = None,
        addresses: DepositAddresses | None = None,
    ) -> None:
        self.engine = engine
        self.addresses = addresses or DepositAddresses(DEV_DEPOSIT_SECRET)
        self.sequencer = sequencer
        self.hub = hub
        self.snapshot = snapshot  # writes a snapshot now (the runtime's), when there is one

    # ---- commands ----

    async def _run(self, kind: type[Command], build: Callable[[], Command]) -> Outcome:
        """Builds the command and has it applied; a rejection while building is its outcome."""
        try:
            command = build()
        except Rejected as exc:
            self.sequencer.count_refused(kind, exc.code)
            return Outcome([], exc.code, exc.message, exc.details)
        return await self.sequencer.submit(command)

    def _place_command(self, r: epb.PlaceOrderRequest) -> Command:
        order = parse_place(
            self.engine.markets,
            user=r.user_id,
            market=r.market,
            side=r.side,
            order_type=r.type,
            price=r.price,
            quantity=r.quantity,
            quote_quantity=r.quote_quantity,
            time_in_force=r.time_in_force,
            post_only=r.post_only,
            client_id=r.client_order_id,
            stp=r.self_trade_prevention,
        )
        if not (
            r.trigger_price
            or r.take_profit_trigger_price
            or r.take_profit_limit_price
            or r.stop_loss_trigger_price
            or r.stop_loss_limit_price
        ):
            return order
        return parse_conditional(
            self.engine.markets,
            order,
            trigger_price=r.trigger_price,
            take_profit_trigger=r.take_profit_trigger_price,
            take_profit_limit=r.take_profit_limit_price,
            stop_loss_trigger=r.stop_loss_trigger_price,
            stop_loss_limit=r.stop_loss_limit_price,
        )

    def _place_reply(
        self, outcome: Outcome, reply: epb.PlaceOrderReply | None = None
    ) -> epb.PlaceOrderReply:
        """Writes the outcome into `reply` (a fresh one if not given) and returns it."""
        reply = epb.PlaceOrderReply() if reply is None else reply
        if outcome.code != Code.OK:
            reply.code = int(outcome.code)  # type: ignore[assignment]
            reply.message = outcome.message
            if outcome.details:
                reply.details.update(outcome.details)
        else:
            convert.write_placed_order(reply, outcome.events, self.engine)
        return reply

    async def PlaceOrder(self, request: epb.PlaceOrderRequest, context: Ctx) -> epb.PlaceOrderReply:
        outcome = await self._run(PlaceOrder, lambda: self._place_command(request))
        log_command("place_order", request, outcome)
        return self._place_reply(outcome)

    def _cancel_command(self, r: epb.CancelOrderRequest) -> Command:
        if not r.order_id and not r.client_order_id:
            raise Rejected(Code.INVALID_ORDER, "give an order id or a client order id")
        return CancelOrder(
            UserId(r.user_id), r.market, OrderId(r.order_id), ClientOrderId(r.client_order_id)
        )

    def _cancel_reply(self, outcome: Outcome) -> epb.CancelOrderReply:
        if outcome.code != Code.OK:
            return epb.CancelOrderReply(code=int(outcome.code), message=outcome.message)  # type: ignore[arg-type]
        # The cancelled order's event comes first (legs of a bracket it created follow).
        closed = outcome.events[0]
        seq = outcome.events[-1].seq
        if isinstance(closed, TriggerCancelled):
            return epb.CancelOrderReply(
                order=convert.cancelled_trigger(closed, self.engine), seq=seq
            )
        assert isinstance(closed, OrderClosed)
        return epb.CancelOrderReply(order=convert.closed_order(closed, self.engine), seq=seq)

    async def CancelOrder(
        self, request: epb.CancelOrderRequest, context: Ctx
    ) -> epb.CancelOrderReply:
        outcome = await self._run(CancelOrder, lambda: self._cancel_command(request))
        log_command("cancel_order", request, outcome)
        return self._cancel_reply(outcome)

    def _cancel_all_reply(self, outcome: Outcome) -> epb.CancelAllOrdersReply:
        if outcome.code != Code.OK:
            return epb.CancelAllOrdersReply(code=int(outcome.code), message=outcome.message)  # type: ignore[arg-type]
        orders = [
            convert.closed_order(e, self.engine)
            if isinstance(e, OrderClosed)
            else convert.cancelled_trigger(e, self.engine)
            for e in outcome.events
            if isinstance(e, OrderClosed | TriggerCancelled)
        ]
        seq = outcome.events[-1].seq if outcome.events else self.engine.seq
        return epb.CancelAllOrdersReply(orders=orders, seq=seq)

    async def CancelAllOrders(
        self, request: epb.CancelAllOrdersRequest, context: Ctx
    ) -> epb.CancelAllOrdersReply:
        outcome = await self._run(
            CancelAllOrders, lambda: CancelAllOrders(UserId(request.user_id), request.market)
        )
        log_command("cancel_all_orders", request, outcome)
        return self._cancel_all_reply(outcome)

    def _funds_command(
        self, r: epb.DepositRequest | epb.WithdrawRequest, withdraw: bool
    ) -> Command:
        decimals = {a.symbol: a.decimals for a in self.engine.assets.values()}
        funds = parse_funds(
            decimals, withdraw=withdraw, user=r.user_id, asset=r.asset, amount=r.amount
        )
        if isinstance(r, epb.DepositRequest) and r.onramp_reference:
            # The onramp's credit goes the way of every deposit: recorded, credited once.
            return ReportDeposit(
                funds.user, funds.asset, ONRAMP_NETWORK, "", funds.amount, r.onramp_reference, 0
            )
        return funds

    def _balance_reply(self, outcome: Outcome, user: int, asset: str) -> epb.BalanceReply:
        if outcome.code != Code.OK:
            return epb.BalanceReply(code=int(outcome.code), message=outcome.message)  # type: ignore[arg-type]
        bal = self.engine.accounts.peek(UserId(user), asset)
        available, locked = (0, 0) if bal is None else (bal.available, bal.locked)
        return epb.BalanceReply(
            balance=convert.balance_to_proto(self.engine, asset, available, locked),
            seq=outcome.events[-1].seq if outcome.events else 0,  # 0: an onramp repeated
        )

    async def Deposit(self, request: epb.DepositRequest, context: Ctx) -> epb.BalanceReply:
        outcome = await self._run(Deposit, lambda: self._funds_command(request, withdraw=False))
        log_command("deposit", request, outcome)
        return self._balance_reply(outcome, request.user_id, request.asset)

    async def Withdraw(self, request: epb.WithdrawRequest, context: Ctx) -> epb.BalanceReply:
        outcome = await self._run(Withdraw, lambda: self._funds_command(request, withdraw=True))
        log_command("withdraw", request, outcome)
        return self._balance_reply(outcome, request.user_id, request.asset)

    async def _admin(self, kind: type[Command], build: Callable[[], Command]) -> epb.AdminReply:
        outcome = await self._run(kind, build)
        seq = outcome.events[-1].seq if outcome.events else 0
        return epb.AdminReply(code=int(outcome.code), message=outcome.message, seq=seq)  # type: ignore[arg-type]

    async def AddAsset(self, request: epb.AddAssetRequest, context: Ctx) -> epb.AdminReply:
        return await self._admin(
            AddAsset, lambda: AddAsset(Asset(request.asset.symbol, request.asset.decimals))
        )

    async def AddMarket(self, request: epb.AddMarketRequest, context: Ctx) -> epb.AdminReply:
        return await self._admin(
            AddMarket, lambda: AddMarket(convert.spec_from_proto(request.market))
        )

    async def SetMarketStatus(
        self, request: epb.SetMarketStatusRequest, context: Ctx
    ) -> epb.AdminReply:
        def build() -> Command:
            try:
                status = MarketStatus(request.status)
            except ValueError:
                raise Rejected(Code.INVALID_ORDER, "status must be OPEN or HALTED") from None
            return SetMarketStatus(request.market, status)

        return await self._admin(SetMarketStatus, build)

    async def SetTriggerLimit(
        self, request: epb.SetTriggerLimitRequest, context: Ctx
    ) -> epb.AdminReply:
        return await self._admin(SetTriggerLimit, lambda: SetTriggerLimit(request.total))

    async def Snapshot(self, request: epb.SnapshotRequest, context: Ctx) -> epb.SnapshotReply:
        if self.snapshot is None:
            return epb.SnapshotReply(
                code=pb.RESULT_CODE_UNAVAILABLE, message="this engine writes no snapshots"
            )
        return await self.snapshot()

    # ---- batched order entry ----

    async def Execute(
        self, request_iterator: AsyncIterator[epb.CommandBatch], context: Ctx
    ) -> AsyncIterator[epb.ReplyBatch]:
        """Submits each incoming batch at once, whole; answers batches in the order they came."""
        submitted: asyncio.Queue[
            tuple[epb.CommandBatch, Callable[[], Awaitable[list[Outcome]]]] | None
        ]
        submitted = asyncio.Queue()

        async def read() -> None:
            try:
                async for batch in request_iterator:
                    await submitted.put((batch, self._submit_batch(batch.commands)))
            finally:
                await submitted.put(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await submitted.get()) is not None:
                batch, outcomes = item
                replies = epb.ReplyBatch()
                add = replies.replies.add
                for command, outcome in zip(batch.commands, await outcomes(), strict=True):
                    self._write_reply(add(), command, outcome)
                yield replies
        finally:
            reader.cancel()

    def _submit_batch(
        self, commands: Sequence[epb.Command]
    ) -> Callable[[], Awaitable[list[Outcome]]]:
        """Parses the commands and submits those that parse as one submission (one future
        for the lot); returns how to await every command's outcome, in order."""
        parsed: list[Command] = []
        refused: list[tuple[int, Outcome]] = []  # (position, outcome) of those that did not
        for i, c in enumerate(commands):
            try:
                parsed.append(self._command_of(c))
            except Rejected as exc:
                refused.append((i, Outcome([], exc.code, exc.message, exc.details)))
                kind = _KINDS.get(c.WhichOneof("body") or "")
                if kind is not None:
                    self.sequencer.count_refused(kind, exc.code)
        applied = self.sequencer.submit_many(parsed) if parsed else None

        async def outcomes() -> list[Outcome]:
            done = [] if applied is None else await applied
            if not refused:
                return done
            merged = list(done)
            for i, outcome in refused:  # ascending positions: each lands where it was
                merged.insert(i, outcome)
            return merged

        return outcomes

    def _command_of(self, c: epb.Command) -> Command:
        kind = c.WhichOneof("body")
        if kind == "place_order":
            return self._place_command(c.place_order)
        if kind == "cancel_order":
            return self._cancel_command(c.cancel_order)
        if kind == "cancel_all_orders":
            return CancelAllOrders(UserId(c.cancel_all_orders.user_id), c.cancel_all_orders.market)
        if kind == "deposit":
            return self._funds_command(c.deposit, withdraw=False)
        if kind == "withdraw":
            return self._funds_command(c.withdraw, withdraw=True)
        raise Rejected(Code.INVALID_ORDER, "empty command")

    def _write_reply(self, reply: epb.Reply, c: epb.Command, outcome: Outcome) -> None:
        reply.request_id = c.request_id
        kind = c.WhichOneof("body")
        if kind is not None and logs_command(outcome):
            log_command(kind, getattr(c, kind), outcome, c.trace_id)
        if kind == "cancel_order":
            reply.cancel_order.CopyFrom(self._cancel_reply(outcome))
        elif kind == "cancel_all_orders":
            reply.cancel_all_orders.CopyFrom(self._cancel_all_reply(outcome))
        elif kind in ("deposit", "withdraw"):
            funds = c.deposit if kind == "deposit" else c.withdraw
            reply.balance.CopyFrom(self._balance_reply(outcome, funds.user_id, funds.asset))
        else:
            self._place_reply(outcome, reply.place_order)

    # ---- queries ----
    # Each reply is built from memory at once and held until what it read is on disk
    # (`_durable`): a crash before then ends the call with an error, never with a state
    # that a restart would not have.

    async def _durable(self, seq: int, context: Ctx) -> None:
        try:
            await self.sequencer.durable(seq)
        except JournalFailed as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"journal failed: {exc}")

    async def GetOrder(self, request: epb.GetOrderRequest, context: Ctx) -> epb.GetOrderReply:
        engine = self.engine
        user = UserId(request.user_id)
        order = engine.find_order(
            user, OrderId(request.order_id), ClientOrderId(request.client_order_id)
        )
        seq = engine.seq
        # Else a pending trigger, or one that ended without becoming an order (cancelled,
        # or refused when it fired).
        trigger = (
            None
            if order
            else engine.find_trigger(
                user, OrderId(request.order_id), ClientOrderId(request.client_order_id)
            )
            or engine.find_ended_trigger(user, OrderId(request.order_id))
        )
        if trigger is not None and (not request.market or trigger.order.market == request.market):
            market = engine.markets[trigger.order.market]
            reply = epb.GetOrderReply(order=convert.trigger_to_proto(trigger, market))
        elif order is None or (request.market and order.market != request.market):
            reply = epb.GetOrderReply(code=pb.RESULT_CODE_ORDER_NOT_FOUND, message="no such order")
        else:
            market = engine.markets[order.market]
            closed = engine.recent_closed.get(order.id)
            if order.id in engine.orders or closed is None:
                reply = epb.GetOrderReply(order=convert.open_order_to_proto(order, market))
            else:
                reply = epb.GetOrderReply(order=convert.closed_order_to_proto(closed, market))
        await self._durable(seq, context)
        return reply

    async def GetOpenOrders(
        self, request: epb.GetOpenOrdersRequest, context: Ctx
    ) -> epb.GetOpenOrdersReply:
        engine = self.engine
        if request.all_users:
            # An operator's view of one market (exchangectl): a scan of every open order.
            if not request.market:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "all_users needs a market")
            found = [o for o in engine.orders.values() if o.market == request.market]
            triggers = [t for t in engine.triggers.values() if t.order.market == request.market]
        else:
            found = engine.open_orders(UserId(request.user_id), request.market)
            triggers = engine.open_triggers(UserId(request.user_id), request.market)
        # Resting orders and pending triggers (status TRIGGER_PENDING), by id.
        views = [(o.id, convert.open_order_to_proto(o, engine.markets[o.market])) for o in found]
        views += [
            (t.id, convert.trigger_to_proto(t, engine.markets[t.order.market])) for t in triggers
        ]
        reply = epb.GetOpenOrdersReply(
            orders=[view for _, view in sorted(views, key=lambda v: v[0])]
        )
        await self._durable(engine.seq, context)
        return reply

    async def GetDepth(self, request: epb.GetDepthRequest, context: Ctx) -> epb.GetDepthReply:
        engine = self.engine
        market = engine.markets.get(request.market)
        if market is None:
            return epb.GetDepthReply(code=pb.RESULT_CODE_UNKNOWN_MARKET, message="unknown market")
        book = engine.books[request.market]
        limit = min(request.limit or MAX_DEPTH, MAX_DEPTH)

        def levels(side: Side) -> list[pb.PriceLevel]:
            return [
                pb.PriceLevel(price=market.fmt_price(p), quantity=market.fmt_qty(q))
                for p, q in book.depth(side, limit)
            ]

        reply = epb.GetDepthReply(
            bids=levels(Side.BUY), asks=levels(Side.SELL), seq=engine.seq, ts_us=engine.ts
        )
        await self._durable(reply.seq, context)
        return reply

    async def GetBalances(
        self, request: epb.GetBalancesRequest, context: Ctx
    ) -> epb.GetBalancesReply:
        engine = self.engine
        balances = engine.accounts.of_user(UserId(request.user_id))
        reply = epb.GetBalancesReply(
            balances=[
                convert.balance_to_proto(engine, asset, b.available, b.locked)
                for asset, b in sorted(balances.items())
            ]
        )
        await self._durable(engine.seq, context)
        return reply

    async def ListMarkets(
        self, request: epb.ListMarketsRequest, context: Ctx
    ) -> epb.ListMarketsReply:
        engine = self.engine
        return epb.ListMarketsReply(
            assets=[pb.Asset(symbol=a.symbol, decimals=a.decimals) for a in engine.assets.values()],
            markets=[convert.market_to_proto(m) for m in engine.markets.values()],
        )

    async def GetStateHash(
        self, request: epb.GetStateHashRequest, context: Ctx
    ) -> epb.GetStateHashReply:
        reply = epb.GetStateHashReply(state_hash=state_hash(self.engine), seq=self.engine.seq)
        await self._durable(reply.seq, context)
        return reply

    async def GetStatus(self, request: epb.GetStatusRequest, context: Ctx) -> epb.GetStatusReply:
        engine, sequencer = self.engine, self.sequencer
        return epb.GetStatusReply(
            seq=engine.seq,
            ts_us=engine.ts,
            last_snapshot_seq=sequencer.last_snapshot_seq,
            queued_commands=sequencer.queue_depth,
            journal_failure=sequencer.failed,
            markets=len(engine.markets),
            open_orders=len(engine.orders),
            max_triggers_total=engine.max_triggers_total,
        )

    async def ExportBalances(
        self, request: epb.ExportBalancesRequest, context: Ctx
    ) -> epb.ExportBalancesReply:
        # One synchronous pass over memory: the balances and `seq` belong together.
        engine = self.engine
        reply = epb.ExportBalancesReply(
            seq=engine.seq,
            balances=[
                epb.AccountBalance(
                    user_id=user,
                    asset=asset,
                    available=convert.format_asset(engine, asset, bal.available),
                    locked=convert.format_asset(engine, asset, bal.locked),
                )
                for user, asset, bal in engine.accounts.items()
                if bal.available or bal.locked
            ],
        )
        await self._durable(reply.seq, context)
        return reply

    async def Subscribe(  # type: ignore[override]  # EventBatch, already serialized
        self, request: epb.SubscribeRequest, context: Ctx
    ) -> AsyncIterator[bytes]:
        if request.linger_ms > MAX_LINGER_MS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"linger_ms must be at most {MAX_LINGER_MS}"
            )
        async for batch in self.hub.subscribe(request.from_seq, request.linger_ms / 1000):
            yield batch  # sent as it is (serialized_events.py)
