"""The benchmark's own pieces: the plain book and stops, the workload generator, the replay."""

from pathlib import Path

from bench.reference_book import Fill, PriceTimeBook
from bench.reference_stops import Stop, StopBook
from bench.workload import (
    Add,
    Cancel,
    format_op,
    generate,
    generate_with_stats,
    parse_op,
    read_workload,
)
from engine_svc import bench, bench_taking
from engine_svc.core.commands import PlaceOrder
from engine_svc.core.state import state_hash
from engine_svc.recovery import recover


def test_plain_book_fills_in_price_time_order_and_rests_the_rest() -> None:
    book = PriceTimeBook()
    book.add(1, False, 1601, 5)  # alice sells 5 at 160.1
    book.add(2, False, 1600, 7)  # bob sells 7 at 160.0
    book.add(3, False, 1600, 4)  # carol sells 4 at 160.0, behind bob
    fills = book.add(4, True, 1601, 20)  # dave buys 20 at 160.1
    assert fills == [Fill(2, 4, 1600, 7), Fill(3, 4, 1600, 4), Fill(1, 4, 1601, 5)]
    assert (book.best_bid(), book.best_ask(), book.count(True), book.count(False)) == (
        1601, None, 1, 0
    )  # fmt: skip
    book.cancel(4)
    assert book.best_bid() is None
    assert 4 not in book


def test_workload_lines_round_trip() -> None:
    for op in (Add(17, True, 9993, 12), Cancel(17), Stop(18, False, 9981, 4)):
        assert parse_op(format_op(op)) == op
    assert format_op(Add(17, True, 9993, 12)) == (
        b'{"op":"add","id":17,"side":"buy","price":"999.3","qty":"12"}\n'
    )


def test_stops_fire_once_in_order_and_cascade() -> None:
    book, stops = PriceTimeBook(), StopBook()
    book.add(1, False, 1000, 1)
    stops.last = 1000
    stops.place(Stop(2, True, 1002, 1))  # buys 1 at 100.2 once a trade reaches it
    stops.place(Stop(3, True, 1001, 2))  # nearer: fires first
    stops.place(Stop(4, False, 990, 1))  # below: waits
    book.add(5, False, 1001, 2)
    book.add(6, False, 1002, 1)
    book.add(7, False, 1003, 5)
    fills = book.add(8, True, 1001, 1)  # takes the 100.0 ask
    assert fills == [Fill(1, 8, 1000, 1)]
    assert stops.after(book, fills) == []  # 100.0 reaches neither stop above
    fills = book.add(9, True, 1001, 1)  # a trade at 100.1 reaches stop 3 ...
    assert stops.after(book, fills) == [
        Fill(5, 3, 1001, 1),  # ... which takes the rest of 100.1 and rests at it, and
    ]  # a trade at 100.1 does not reach 100.2
    assert (stops.fired, len(stops), stops.last) == ([3], 2, 1001)
    fills = book.add(10, True, 1002, 1)
    assert stops.after(book, fills) == []  # 100.2's only ask went to order 10; stop 2 rests
    assert stops.fired == [3, 2]
    assert 2 in book
    assert len(stops) == 1


def test_generator_keeps_its_stops_pending_and_fires_some() -> None:
    ops, stats = generate_with_stats(20_000, seed=2, depth=300, stops=500)
    kinds = [type(op) for op in ops]
    assert kinds.count(Stop) == stats.stops > 500
    assert 0 < stats.stops_fired < stats.stops
    assert max(stats.stop_samples) == 500


def test_generator_is_seeded() -> None:
    assert list(generate(3000, seed=5, depth=200)) == list(generate(3000, seed=5, depth=200))
    assert list(generate(3000, seed=5, depth=200)) != list(generate(3000, seed=6, depth=200))


def test_engine_trades_exactly_as_the_plain_book(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(b"".join(format_op(op) for op in generate(5000, seed=3, depth=300)))
    ops = read_workload(path)
    run = bench.replay(bench.new_engine(), bench.build_commands(ops), record_trades=True)
    assert run.rejections == 0
    assert run.outcome.trades > 100
    assert bench.verify(run, ops) == []


def test_engine_fires_stops_exactly_as_the_plain_book(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(
        b"".join(format_op(op) for op in generate(10_000, seed=4, depth=300, stops=300))
    )
    ops = read_workload(path)
    run = bench.replay(bench.new_engine(), bench.build_commands(ops), record_trades=True)
    assert run.rejections == 0
    assert 0 < run.outcome.pending_stops <= 300
    assert bench.verify(run, ops) == []


async def test_journaled_replay_goes_through_the_sequencer_and_the_journal_recovers_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(b"".join(format_op(op) for op in generate(5000, seed=3, depth=300)))
    ops = read_workload(path)
    engine, run = await bench.replay_journaled(
        tmp_path / "journal", bench.build_commands(ops), submit_batch=64, record_trades=True
    )
    assert run.rejections == 0
    assert len(run.latencies_ns) == len(ops)  # every command acknowledged
    assert bench.verify(run, ops) == []
    recovered = recover(tmp_path / "journal", tmp_path / "snapshots")
    assert (recovered.seq, state_hash(recovered)) == (engine.seq, state_hash(engine))


def test_taking_orders_placed_apart_end_in_the_same_state() -> None:
    script = bench.build_commands(list(generate(10_000, seed=4, depth=300, stops=300)))
    taking, fired, fired_traded, expected = bench_taking.classify(script)
    assert 0 < sum(taking) < len(script.commands)
    assert 0 < fired_traded <= fired
    assert bench_taking.replay_apart(script, taking) == expected
    resting = [
        type(c) is PlaceOrder and not t for c, t in zip(script.commands, taking, strict=True)
    ]
    assert bench_taking.replay_apart(script, resting) == expected
