"""Binance's `newClientOrderId` strings on the engine's numeric client order ids.

Digits up to 2^32-1 are the id itself, as a Backpack `clientId` is. Any other id Binance
allows (ccxt and python-binance send `x-<broker><uuid>` by default) is hashed into
2^32..2^63-1: the engine, which knows numbers only, then keeps it unique among the user's
open orders and finds and cancels orders by it. The string is written to the ledger before
the order is placed and read back for every answer; since the number is a function of the
string, a name once read is cached for good. A user-data event of a named order this
replica has not read (another replica placed it) waits for one lookup of its name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING

import grpc

from exchange.ledger.v1 import ledger_pb2 as lpb
from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.dialect import MAX_CLIENT_ID
from tradekit.binance import client_order_id

if TYPE_CHECKING:
    from exchange.ledger.v1.ledger_pb2_grpc import LedgerServiceAsyncStub
    from gateway_svc.upstream import Prepare

NAMED = MAX_CLIENT_ID + 1  # the first number a string is hashed to
CACHED = 100_000  # names held in memory; the ledger has them all

LOOKUP_SECONDS = 2.0  # how long an event waits for its order's name at most

_names: dict[int, str] = {}
_asked: set[int] = set()  # looked up for an event already: never again, found or not


def _cache(number: int, text: str) -> None:
    if len(_names) >= CACHED:
        _names.clear()  # a rare refill from the ledger beats tracking recency
    _names[number] = text


async def remember(ledger: LedgerServiceAsyncStub, user_id: int, text: str) -> int:
    """The engine's id for `text`, its name kept durably first when it is one."""
    number = client_order_id(text)
    if number >= NAMED:
        await ledger.NameClientOrder(
            lpb.NameClientOrderRequest(user_id=user_id, client_order_id=number, name=text)
        )
        _cache(number, text)
    return number


def known(number: int) -> str:
    """The client id as Binance shows it, from memory: the name, else the number ("" none)."""
    return _names.get(number) or (str(number) if number else "")


async def learn(ledger: LedgerServiceAsyncStub, user_id: int, numbers: Iterable[int]) -> None:
    """Reads the names of `numbers` that memory lacks from the ledger."""
    wanted = sorted({n for n in numbers if n >= NAMED and n not in _names})
    for start in range(0, len(wanted), 1000):
        reply = await ledger.GetClientOrderNames(
            lpb.GetClientOrderNamesRequest(
                user_id=user_id, client_order_ids=wanted[start : start + 1000]
            )
        )
        for number, text in reply.names.items():
            _cache(number, text)


def event_names(ledger: LedgerServiceAsyncStub) -> Prepare:
    """An upstream's `Prepare`: an order update of a named order whose name memory lacks
    reads it from the ledger first, once per order; every other message passes at once."""

    def prepare(item: spb.MarketData) -> Awaitable[None] | None:
        if item.WhichOneof("body") != "order_update":
            return None
        order = item.order_update.order
        number = order.client_order_id
        if number < NAMED or number in _names or number in _asked:
            return None
        if len(_asked) >= CACHED:
            _asked.clear()
        _asked.add(number)
        return _look_up(ledger, order.user_id, number)

    return prepare


async def _look_up(ledger: LedgerServiceAsyncStub, user_id: int, number: int) -> None:
    """Without the ledger (or past LOOKUP_SECONDS) the event shows the number."""
    with contextlib.suppress(grpc.aio.AioRpcError, TimeoutError):
        async with asyncio.timeout(LOOKUP_SECONDS):
            await learn(ledger, user_id, [number])
