"""Journal and snapshot recovery: deterministic, torn tails dropped, damaged snapshots skipped."""

import random
import struct
from pathlib import Path

import orjson
import pytest

from engine_svc.config import DEFAULT_MARKETS_FILE, listing_commands
from engine_svc.core.commands import (
    Bracket,
    CancelOrder,
    Command,
    Deposit,
    PlaceConditional,
    PlaceOrder,
    SetTriggerLimit,
)
from engine_svc.core.engine import Engine
from engine_svc.core.state import dump_state, state_hash
from engine_svc.core.types import (
    ClientOrderId,
    OrderId,
    OrderType,
    Rejected,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from engine_svc.journal import Journal, JournalCorrupt, encode_record, segments
from engine_svc.recovery import recover
from engine_svc.snapshots import snapshot_files, write_snapshot


def random_commands(seed: int, count: int) -> list[Command]:
    rng = random.Random(seed)
    commands: list[Command] = [
        Deposit(UserId(u), a, 10**9) for u in range(1, 6) for a in ("INR", "TATA")
    ]
    for i in range(count):
        if rng.random() < 0.25:
            commands.append(
                CancelOrder(
                    UserId(rng.randint(1, 5)), "", OrderId(rng.randint(1, i + 1)), ClientOrderId(0)
                )
            )
            continue
        commands.append(
            PlaceOrder(
                UserId(rng.randint(1, 5)), "TATA_INR", rng.choice([Side.BUY, Side.SELL]),
                OrderType.LIMIT, rng.randint(990, 1010) * 100, rng.randint(1, 20), 0,
                rng.choice(list(TimeInForce)), False, ClientOrderId(0),
                rng.choice(list(SelfTradePrevention)),
            )
        )  # fmt: skip
    return commands


def with_conditionals(seed: int, commands: list[Command]) -> list[Command]:
    """`commands` with a stop (some with a bracket) or a bracket order after every fifth,
    trigger prices around the traded range so that many fire in cascades."""
    rng = random.Random(seed)
    out: list[Command] = []
    for i, command in enumerate(commands):
        out.append(command)
        if i % 5 or not isinstance(command, PlaceOrder):
            continue
        up, down = rng.randint(1001, 1012) * 100, rng.randint(988, 999) * 100
        tp, sl = (up, down) if command.side == Side.BUY else (down, up)
        bracket = Bracket(tp, 0, sl, sl) if rng.random() < 0.4 else Bracket()
        trigger = 0 if bracket != Bracket() and rng.random() < 0.5 else rng.randint(990, 1010) * 100
        out.append(
            PlaceConditional(command._replace(user=UserId(rng.randint(1, 5))), trigger, bracket)
        )
    return out


def run_journaled(
    directory: Path,
    commands: list[Command],
    batch: int = 7,
    snapshot_at: int = -1,
    markets: Path = DEFAULT_MARKETS_FILE,
) -> Engine:
    """Applies commands as the sequencer does: journal records of accepted commands per batch."""
    engine = Engine()
    journal = Journal(directory / "journal")
    setup = listing_commands(markets)
    all_commands = setup + commands
    for start in range(0, len(all_commands), batch):
        first_seq = engine.seq + 1
        items: list[tuple[int, Command]] = []
        for command in all_commands[start : start + batch]:
            ts = 1_000_000 + start
            try:
                if engine.apply(command, ts):
                    items.append((ts, command))
            except Rejected:
                pass
        if items:
            journal.append(first_seq, encode_record(first_seq, items))
        if start // batch == snapshot_at:
            write_snapshot(directory / "snapshots", engine.seq, orjson.dumps(dump_state(engine)))
    journal.close()
    return engine


def recovered(directory: Path) -> Engine:
    return recover(directory / "journal", directory / "snapshots")


def test_replaying_the_journal_rebuilds_the_same_state(tmp_path: Path) -> None:
    original = run_journaled(tmp_path, random_commands(1, 2000))
    assert state_hash(recovered(tmp_path)) == state_hash(original)


def test_snapshot_plus_journal_tail_rebuilds_the_same_state(tmp_path: Path) -> None:
    original = run_journaled(tmp_path, random_commands(2, 2000), snapshot_at=100)
    assert snapshot_files(tmp_path / "snapshots")
    assert state_hash(recovered(tmp_path)) == state_hash(original)


def test_pending_triggers_and_cascades_are_recovered_exactly(tmp_path: Path) -> None:
    commands = with_conditionals(6, random_commands(6, 1500))
    original = run_journaled(tmp_path / "replay", commands)
    snapshotted = run_journaled(tmp_path / "snap", commands, snapshot_at=150)
    assert original.triggers  # some are still pending at the end
    assert any(o.fired for o in original.orders.values())  # and some rest since they fired
    for directory in ("replay", "snap"):
        engine = recovered(tmp_path / directory)
        assert state_hash(engine) == state_hash(original)
        assert sorted(engine.triggers) == sorted(original.triggers)
    assert state_hash(snapshotted) == state_hash(original)


def test_trigger_limits_of_the_markets_file_and_of_commands_are_journaled_and_snapshotted(
    tmp_path: Path,
) -> None:
    text = DEFAULT_MARKETS_FILE.read_text()
    assert "max_triggers_total = 500" in text
    markets = tmp_path / "markets.toml"
    markets.write_text(
        text.replace('symbol = "TATA_INR"', 'symbol = "TATA_INR"\nmax_triggers = 2').replace(
            "max_triggers_total = 500", "max_triggers_total = 4"
        )
    )
    commands = with_conditionals(6, random_commands(6, 600))
    commands.insert(300, SetTriggerLimit(3))
    for directory, snapshot_at in (("replay", -1), ("snap", 20)):
        original = run_journaled(
            tmp_path / directory, commands, snapshot_at=snapshot_at, markets=markets
        )
        assert original.market("TATA_INR").max_triggers == 2
        assert original.max_triggers_total == 3
        assert all(len(original.open_triggers(UserId(u))) <= 2 for u in range(1, 6))
        engine = recovered(tmp_path / directory)
        assert engine.market("TATA_INR").max_triggers == 2
        assert engine.max_triggers_total == 3
        assert state_hash(engine) == state_hash(original)


def test_a_torn_final_record_is_dropped(tmp_path: Path) -> None:
    full = run_journaled(tmp_path / "full", random_commands(3, 500))
    segment = segments(tmp_path / "full" / "journal")[-1]
    data = segment.read_bytes()
    # Cut the final record in half, as a crash during write would.
    records = []
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from("<I", data, offset)
        records.append(offset)
        offset += 8 + length
    segment.write_bytes(data[: records[-1] + 5])
    engine = recovered(tmp_path / "full")
    assert engine.seq < full.seq
    # Opening the journal for writing cuts the torn bytes off for good.
    Journal(tmp_path / "full" / "journal").close()
    assert segment.stat().st_size == records[-1]
    assert state_hash(recovered(tmp_path / "full")) == state_hash(engine)


def test_damage_before_the_tail_refuses_to_start(tmp_path: Path) -> None:
    run_journaled(tmp_path, random_commands(4, 300))
    segment = segments(tmp_path / "journal")[-1]
    data = bytearray(segment.read_bytes())
    data[20] ^= 0xFF  # inside the first record
    segment.write_bytes(bytes(data))
    # Intact records follow the damaged one: dropping them would lose
    # acknowledged commands, so neither recovery nor the writer may go on.
    with pytest.raises(JournalCorrupt):
        recovered(tmp_path)
    with pytest.raises(JournalCorrupt):
        Journal(tmp_path / "journal")
    assert segment.read_bytes() == bytes(data)  # nothing was cut off


def test_a_damaged_newest_snapshot_falls_back_to_the_previous(tmp_path: Path) -> None:
    commands = random_commands(5, 1500)
    original = run_journaled(tmp_path, commands, snapshot_at=50)
    engine = recovered(tmp_path)
    write_snapshot(tmp_path / "snapshots", engine.seq, orjson.dumps(dump_state(engine)))
    newest = snapshot_files(tmp_path / "snapshots")[0]
    newest.write_bytes(newest.read_bytes()[:-10] + b"0123456789")
    assert state_hash(recovered(tmp_path)) == state_hash(original)


def test_a_record_out_of_sequence_is_corruption(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    ts = 1
    commands = listing_commands(DEFAULT_MARKETS_FILE)
    journal.append(5, encode_record(5, [(ts, commands[0])]))
    journal.close()
    with pytest.raises(JournalCorrupt):
        recovered(tmp_path)
