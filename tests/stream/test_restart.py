"""Lost depth updates: the diff that restarts the id chain (`Book.restart_to`).

A client syncs as Binance and Backpack clients do: REST depth (`lastUpdateId`), then drop
diffs with `u` <= it, apply a diff only if its `U` <= the book's id + 1, and on anything
else take REST depth again. Whatever point its REST depth was taken at, even one inside
the range of updates the market-data path lost, it must end with the engine's book."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from exchange.common.v1 import common_pb2 as cpb
from exchange.stream.v1 import stream_pb2 as spb
from gateway_svc.frames import data_json
from gateway_svc.upstream import Message, conflate
from tradekit.book import Book, restarts_chain

MARKET = "TATA_INR"
PRICES = ["99.00", "99.50", "100.00", "100.50"]

Levels = dict[Decimal, str]


def applied(book: Book, diff: spb.DepthUpdate) -> Book:
    """A copy of the (bids-only) `book` with `diff` applied."""
    after = Book(MARKET, book.last_update_id)
    after.bids.update(book.bids)
    after.apply(diff)
    return after


def engine_history(rng: random.Random, length: int) -> tuple[list[spb.DepthUpdate], list[Book]]:
    """Random engine diffs 1..length (each names the levels it changed) and the book after
    each of them (`books[seq]`; `books[0]` is empty)."""
    books = [Book(MARKET)]
    diffs = []
    for seq in range(1, length + 1):
        diff = spb.DepthUpdate(market=MARKET, first_update_id=seq, last_update_id=seq)
        for price in rng.sample(PRICES, 2):
            diff.bids.append(cpb.PriceLevel(price=price, quantity=rng.choice(["0", "1", "2"])))
        books.append(applied(books[-1], diff))
        diffs.append(diff)
    return diffs, books


def message(diff: spb.DepthUpdate) -> Message:
    item = spb.MarketData(depth=diff)
    return Message(f"depth.{MARKET}", diff.last_update_id, data_json(item), item)


def bids(book: Book) -> Levels:
    return {price: quantity for price, (_, quantity) in book.bids.items()}


def client_book(frames: list[spb.DepthUpdate], books: list[Book], rest_at: int) -> Levels:
    """What a careful client ends with: REST depth taken at `rest_at`, then `frames`; on a
    gap it takes REST depth again (the engine's book now: the last one)."""
    book, last = bids(books[rest_at]), rest_at
    for d in frames:
        if d.last_update_id <= last:
            continue
        if d.first_update_id > last + 1:
            book, last = bids(books[-1]), books[-1].last_update_id
            continue
        for lv in d.bids:
            if lv.quantity == "0":
                book.pop(Decimal(lv.price), None)
            else:
                book[Decimal(lv.price)] = lv.quantity
        last = d.last_update_id
    return book


def test_a_level_that_changed_and_changed_back_while_updates_were_lost() -> None:
    """The case a net diff gets wrong: 99.00 is 1 before the loss, 2 in the middle (when
    the client takes REST depth) and 1 again after it, so a diff from the old book to the
    new one would not name it and the client would keep 2."""
    level = "99.00"
    diffs = [
        spb.DepthUpdate(market=MARKET, first_update_id=seq, last_update_id=seq,
                        bids=[cpb.PriceLevel(price=level, quantity=quantity)])
        for seq, quantity in ((1, "1"), (2, "2"), (3, "1"))
    ]  # fmt: skip
    books = [Book(MARKET)]
    for d in diffs:
        books.append(applied(books[-1], d))
    restart = books[1].restart_to(books[3])  # updates 2 and 3 were lost
    assert restart.first_update_id == restart.last_update_id + 1 == 4
    assert client_book([restart], books, rest_at=2) == bids(books[3])
    assert client_book([restart], books, rest_at=1) == bids(books[3])


def test_a_client_that_does_not_check_the_chain_still_gets_the_new_book() -> None:
    _, books = engine_history(random.Random(5), 40)
    old, new = books[10], books[30]
    restart = old.restart_to(new)
    restart.first_update_id = old.last_update_id + 1  # applied regardless of the chain
    assert bids(applied(old, restart)) == bids(new)


@pytest.mark.parametrize("seed", range(30))
def test_wherever_the_rest_snapshot_falls_the_client_ends_with_the_engines_book(
    seed: int,
) -> None:
    """Updates (lost_from, lost_to] never reach the gateway, which restarts the chain at
    lost_to; frames go out in random batches, conflated as the gateway does. Every client,
    whatever its REST depth, ends with the engine's last book."""
    rng = random.Random(seed)
    length = 60
    diffs, books = engine_history(rng, length)
    lost_from = rng.randint(1, 40)
    lost_to = rng.randint(lost_from + 1, 50)
    sent = [message(d) for d in diffs[:lost_from]]
    sent.append(message(books[lost_from].restart_to(books[lost_to])))
    sent += [message(d) for d in diffs[lost_to:]]
    frames: list[spb.DepthUpdate] = []
    while sent:
        size = rng.randint(1, 6)
        frames += [m.item.depth for m in conflate(sent[:size])]
        sent = sent[size:]
    for rest_at in range(length + 1):
        assert client_book(frames, books, rest_at) == bids(books[-1]), rest_at


def test_a_restart_is_never_merged() -> None:
    diffs, books = engine_history(random.Random(1), 12)
    batch = [message(d) for d in diffs[:4]]
    batch.append(message(books[4].restart_to(books[9])))
    batch += [message(d) for d in diffs[9:]]
    out = [m.item.depth for m in conflate(batch)]
    assert [(d.first_update_id, d.last_update_id) for d in out] == [(1, 4), (10, 9), (10, 12)]
    assert [restarts_chain(d) for d in out] == [False, True, False]
