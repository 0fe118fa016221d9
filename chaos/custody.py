"""Capital's outside world during the load: custody reporting chain transfers to the users'
deposit addresses, and operators deciding the users' withdrawal requests, both through the
engine's admin RPCs (the seam a real custody integration plugs into).

Custody reports each transfer first short of its confirmations now and then, then confirmed,
and again later or from two workers at once, as a real one does after a crash. Operators
approve, decline and complete open withdrawals, now and then twice or racing each other
(approve against decline, complete against decline), and now and then complete a finished
one with another transaction. Every call and its answer goes into the `Record`; after a
trial's faults both `drain`, so that every transfer is credited and no withdrawal stays
open (and locked) when the checks run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import grpc

from chaos.load import CHAINS, Chain, Trader, sleep_unless
from chaos.record import Decision, DepositReport, Outcome, Record
from exchange.common.v1 import common_pb2 as cpb
from exchange.engine.v1 import engine_pb2 as epb
from servicekit.admin_token import admin_metadata

if TYPE_CHECKING:
    from exchange.engine.v1.engine_pb2_grpc import EngineServiceAsyncStub

APPROVE = epb.WithdrawalAction.ACTION_APPROVE
DECLINE = epb.WithdrawalAction.ACTION_DECLINE
COMPLETE = epb.WithdrawalAction.ACTION_COMPLETE
PAUSE = 0.4  # mean seconds between custody's reports, and between operators' rounds
DRAIN_TIMEOUT = 180.0
RPC_TIMEOUT = 10.0


def tx_hash(*parts: object) -> str:
    return hashlib.sha256("-".join(map(str, parts)).encode()).hexdigest()


@dataclass
class Sent:
    """A chain transfer custody saw, and reports."""

    trader: Trader
    chain: Chain
    quantity: Decimal
    tx_hash: str
    confirmations: int = 0  # the most it reported
    credited: bool = False  # a report was answered with the deposit confirmed


class Custody:
    def __init__(
        self,
        engine: EngineServiceAsyncStub,
        admin_token: str,
        traders: list[Trader],
        record: Record,
        seed: int,
        required: dict[str, int],  # network -> confirmations a deposit needs
    ) -> None:
        self._engine, self._metadata = engine, admin_metadata(admin_token)
        self._traders, self._record, self._seed = traders, record, seed
        self._rng = random.Random(f"{seed}-custody")
        self._required = required
        self.sent: list[Sent] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step()
            await sleep_unless(stop, self._rng.expovariate(1 / PAUSE))

    async def step(self) -> None:
        rng, roll = self._rng, self._rng.random()
        waiting = [s for s in self.sent if not s.credited]
        if roll < 0.45 or not self.sent:
            chain = rng.choice(CHAINS)
            s = Sent(
                rng.choice(self._traders), chain, chain.draw(rng, *chain.deposit),
                tx_hash(self._seed, "deposit", len(self.sent)),
            )  # fmt: skip
            self.sent.append(s)
            required = self._required[chain.network]
            await self.report(s, rng.randrange(required) if rng.random() < 0.5 else required)
        elif roll < 0.75 and waiting:
            s = rng.choice(waiting)
            await self.reports(s, self._required[s.chain.network], rng.choice((1, 1, 2)))
        else:  # a repeat, as after custody's crash or from a second worker
            s = rng.choice(self.sent)
            await self.reports(s, s.confirmations, rng.choice((1, 2)))

    async def reports(self, s: Sent, confirmations: int, workers: int) -> None:
        await asyncio.gather(*(self.report(s, confirmations) for _ in range(workers)))

    async def report(self, s: Sent, confirmations: int) -> Outcome:
        request = epb.ReportDepositRequest(
            asset=s.chain.asset,
            network=s.chain.network,
            address=s.trader.addresses[s.chain.network],
            quantity=str(s.quantity),
            transaction_hash=s.tx_hash,
            confirmations=confirmations,
        )
        s.confirmations = max(s.confirmations, confirmations)
        confirmed = False
        try:
            reply = await self._engine.ReportDeposit(
                request, metadata=self._metadata, timeout=RPC_TIMEOUT
            )
        except grpc.aio.AioRpcError:
            outcome = Outcome.UNKNOWN
        else:
            outcome = Outcome.REFUSED if reply.code else Outcome.ACKED
            confirmed = not reply.code and reply.deposit.status == cpb.DEPOSIT_STATUS_CONFIRMED
            if reply.code:
                self._record.refusals[f"deposit report {reply.code}"] += 1
        s.credited |= confirmed
        self._record.count("deposit_report", outcome)
        report = DepositReport(
            s.chain.network, s.tx_hash, s.trader.client.user_id, s.chain.asset, s.quantity,
            confirmations, outcome, confirmed,
        )  # fmt: skip
        self._record.deposit_reports.append(report)
        return outcome

    async def drain(self) -> None:
        """Reports every transfer not yet seen credited with all its confirmations."""
        async with asyncio.timeout(DRAIN_TIMEOUT):
            for s in self.sent:
                while not s.credited:
                    if await self.report(s, self._required[s.chain.network]) is Outcome.REFUSED:
                        break  # refused for good: the checks will say why
                    if not s.credited:
                        await asyncio.sleep(0.5)


class Operators:
    def __init__(
        self,
        engine: EngineServiceAsyncStub,
        admin_token: str,
        users: set[int],
        record: Record,
        seed: int,
    ) -> None:
        self._engine, self._metadata = engine, admin_metadata(admin_token)
        self._users, self._record, self._seed = users, record, seed
        self._rng = random.Random(f"{seed}-operators")

    def completion(self, withdrawal_id: int) -> str:
        """The transaction that pays a withdrawal: one per withdrawal, whoever sends it."""
        return tx_hash(self._seed, "withdrawal", withdrawal_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(grpc.aio.AioRpcError):
                for w in await self.open_withdrawals():
                    if self._rng.random() < 0.5:  # some stay open a while, across faults
                        await self.act(w)
            await sleep_unless(stop, self._rng.expovariate(1 / PAUSE))

    async def open_withdrawals(self) -> list[cpb.Withdrawal]:
        request = epb.ListCapitalRequest(open_only=True, limit=1000)
        reply = await self._engine.ListWithdrawals(request, timeout=RPC_TIMEOUT)
        return [w for w in reply.withdrawals if w.user_id in self._users]

    async def act(self, w: cpb.Withdrawal) -> None:
        roll, wid = self._rng.random(), w.withdrawal_id
        if wid % 5 == 0:  # every fifth one declined, whatever its stage
            await self.decide(wid, DECLINE)
            return
        if w.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL:
            if roll < 0.15:
                await self.race((APPROVE, ""), (DECLINE, ""), wid)
            elif roll < 0.35:
                await self.decide(wid, DECLINE)
            elif roll < 0.5:
                await self.race((APPROVE, ""), (APPROVE, ""), wid)
            else:
                await self.decide(wid, APPROVE)
            return
        paid = self.completion(wid)
        if roll < 0.15:
            await self.race((COMPLETE, paid), (DECLINE, ""), wid)
        elif roll < 0.25:
            await self.decide(wid, DECLINE)
        elif roll < 0.4:
            await self.race((COMPLETE, paid), (COMPLETE, paid), wid)  # two custody workers
        elif await self.decide(wid, COMPLETE, paid) is Outcome.ACKED and (
            roll < 0.55 or wid % 5 == 1
        ):
            await self.decide(wid, COMPLETE, tx_hash(self._seed, "again", wid))  # refused

    async def race(self, first: tuple[int, str], second: tuple[int, str], wid: int) -> None:
        await asyncio.gather(self.decide(wid, *first), self.decide(wid, *second))

    async def decide(self, withdrawal_id: int, action: int, tx: str = "") -> Outcome:
        request = epb.DecideWithdrawalRequest(
            withdrawal_id=withdrawal_id,
            action=action,  # type: ignore[arg-type]
            transaction_hash=tx,
        )
        code = 0
        try:
            reply = await self._engine.DecideWithdrawal(
                request, metadata=self._metadata, timeout=RPC_TIMEOUT
            )
        except grpc.aio.AioRpcError:
            outcome = Outcome.UNKNOWN
        else:
            code = reply.code
            outcome = Outcome.REFUSED if code else Outcome.ACKED
            if code:
                self._record.refusals[f"withdrawal decision {code}"] += 1
        self._record.count("withdrawal_decision", outcome)
        self._record.decisions.append(Decision(withdrawal_id, action, tx, outcome, code))
        return outcome

    async def drain(self) -> None:
        """Ends every open withdrawal of the load's users: approved if need be, then paid
        (a third of them declined instead)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline:
            try:
                pending = await self.open_withdrawals()
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
                continue
            if not pending:
                return
            for w in pending:
                wid = w.withdrawal_id
                if wid % 3 == 0:
                    await self.decide(wid, DECLINE)
                    continue
                if w.status == cpb.WITHDRAWAL_STATUS_PENDING_APPROVAL:
                    await self.decide(wid, APPROVE)
                await self.decide(wid, COMPLETE, self.completion(wid))
            await asyncio.sleep(0.2)
