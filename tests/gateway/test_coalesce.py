"""Identical reads share one backend call, never one that started before they arrived."""

from __future__ import annotations

import asyncio

import pytest

from gateway_svc.coalesce import Coalescer
from tests.gateway.conftest import Stack
from tests.gateway.test_rest import fund, signup


class Book:
    """A backend whose answer is its state when a call starts; a call ends when released."""

    def __init__(self) -> None:
        self.state = 0
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()
        self.fail: Exception | None = None

    async def fetch(self, key: str) -> tuple[str, int]:
        seen = self.state
        self.calls.append(key)
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return key, seen


async def test_readers_of_one_turn_share_one_call_per_key() -> None:
    book = Book()
    reads = Coalescer(book.fetch)
    answers = await asyncio.gather(*(reads.get("TATA_INR") for _ in range(10)), reads.get("BTC"))
    assert answers == [("TATA_INR", 0)] * 10 + [("BTC", 0)]
    assert sorted(book.calls) == ["BTC", "TATA_INR"]


async def test_a_reader_arriving_during_a_call_gets_the_next_one() -> None:
    book = Book()
    reads = Coalescer(book.fetch)
    book.release.clear()
    early = asyncio.ensure_future(reads.get("TATA_INR"))
    await book.started.wait()  # the first call has started and is held
    book.state = 1  # something changes, then a second reader arrives
    late = [asyncio.ensure_future(reads.get("TATA_INR")) for _ in range(3)]
    await asyncio.sleep(0)
    assert book.calls == ["TATA_INR"]  # one call in flight per key
    book.release.set()
    assert await early == ("TATA_INR", 0)
    assert await asyncio.gather(*late) == [("TATA_INR", 1)] * 3
    assert book.calls == ["TATA_INR", "TATA_INR"]


async def test_an_error_reaches_every_reader_and_the_next_read_calls_again() -> None:
    book = Book()
    reads = Coalescer(book.fetch)
    book.fail = RuntimeError("engine down")
    results = await asyncio.gather(*(reads.get("X") for _ in range(3)), return_exceptions=True)
    assert [str(r) for r in results] == ["engine down"] * 3
    book.fail = None
    assert await reads.get("X") == ("X", 0)
    assert book.calls == ["X", "X"]


async def test_a_reader_giving_up_does_not_cancel_the_others() -> None:
    book = Book()
    reads = Coalescer(book.fetch)
    book.release.clear()
    leaving, staying = (asyncio.ensure_future(reads.get("X")) for _ in range(2))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    book.release.set()
    assert await staying == ("X", 0)


async def test_concurrent_depth_requests_all_see_an_order_placed_before_them(
    stack: Stack,
) -> None:
    _, auth = await signup(stack, "reader@example.com")
    await fund(stack, auth, "TATA", "10")
    order = {"symbol": "TATA_INR", "side": "Ask", "price": "1500", "quantity": "3"}
    placed = await stack.client.post("/api/v1/order", json=order, headers=auth)
    assert placed.status == 200, await placed.text()

    async def depth() -> dict[str, object]:
        response = await stack.client.get("/api/v1/depth?symbol=TATA_INR")
        assert response.status == 200
        assert response.headers["X-RateLimit-Limit"] == "1000"  # each request counted
        body: dict[str, object] = await response.json()
        return body

    books = await asyncio.gather(*(depth() for _ in range(20)))
    assert all(book["asks"] == [["1500.00", "3"]] for book in books)
    assert len({book["lastUpdateId"] for book in books}) == 1  # nothing happened in between
    unknown = await stack.client.get("/api/v1/depth?symbol=NOPE_INR")
    assert unknown.status == 400
