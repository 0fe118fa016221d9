"""The command journal: what the sequencer applied, durable before it is acknowledged.

Layout: `<dir>/segment-<first_seq>.log` files, each a run of records

    [u32 payload length][u32 crc32 of payload][payload]

where a payload is the JSON `[first_seq, [[ts, tag, ...fields], ...]]`: a batch
of commands that changed state, and the sequence number their first event got.
Replaying a record must produce events starting exactly at first_seq.

Recovery rules: a record cut short or failing its checksum at the very end of
the newest segment is a write torn by a crash; it was never acknowledged, so it
is cut off. The same damage anywhere else is corruption, and the engine refuses
to start rather than guess.
"""

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from engine_svc.core.capital import network_spec
from engine_svc.core.capital_messages import (
    AddNetwork,
    DecideWithdrawal,
    ReportDeposit,
    RequestWithdrawal,
    WithdrawalAction,
)
from engine_svc.core.commands import (
    AddAsset,
    AddMarket,
    Bracket,
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
from engine_svc.core.types import (
    ClientOrderId,
    MarketStatus,
    OrderId,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    UserId,
)
from tradekit.markets import Asset, MarketSpec

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
SEGMENT_BYTES = 256 * 1024 * 1024
MAX_RECORD = 512 * 1024 * 1024

# Command tags in the journal: stable forever, never reuse a number.
_TAGS: dict[type, int] = {
    PlaceOrder: 1,
    CancelOrder: 2,
    CancelAllOrders: 3,
    Deposit: 4,
    Withdraw: 5,
    AddAsset: 6,
    AddMarket: 7,
    SetMarketStatus: 8,
    PlaceConditional: 9,
    SetTriggerLimit: 10,
    # capital
    AddNetwork: 20,
    ReportDeposit: 21,
    RequestWithdrawal: 22,
    DecideWithdrawal: 23,
}


class JournalCorrupt(RuntimeError):
    """A record other than the newest is damaged: recovery would lose data silently."""


# Commands whose fields are all plain JSON values (ints, strings, bools) are written
# as they are; the others go through encode_command.
_PLAIN_TAGS: dict[type, int] = {
    kind: tag
    for kind, tag in _TAGS.items()
    if kind not in (AddAsset, AddMarket, PlaceConditional, AddNetwork)
}


def encode_command(ts: int, command: Command) -> list[Any]:
    if isinstance(command, AddAsset):
        return [ts, 6, command.asset.symbol, command.asset.decimals]
    if isinstance(command, AddMarket):
        s = command.spec
        return [
            ts, 7, s.symbol, s.base, s.quote, s.tick_size, s.step_size, s.min_quantity,
            s.min_notional, s.max_quantity, s.max_price, s.maker_fee_bps, s.taker_fee_bps,
            s.max_triggers,
        ]  # fmt: skip
    if isinstance(command, PlaceConditional):
        return [ts, 9, *command.order, command.trigger_price, *command.bracket]
    if isinstance(command, AddNetwork):
        return [ts, 20, *command.spec]
    return [ts, _TAGS[type(command)], *command]


def decode_command(item: list[Any]) -> tuple[int, Command]:
    ts, tag, *f = item
    command: Command
    if tag == 1:
        command = _place_order(f)
    elif tag == 2:
        command = CancelOrder(UserId(f[0]), f[1], OrderId(f[2]), ClientOrderId(f[3]))
    elif tag == 3:
        command = CancelAllOrders(UserId(f[0]), f[1])
    elif tag == 4:
        command = Deposit(UserId(f[0]), f[1], f[2])
    elif tag == 5:
        command = Withdraw(UserId(f[0]), f[1], f[2])
    elif tag == 6:
        command = AddAsset(Asset(f[0], f[1]))
    elif tag == 7:
        command = AddMarket(MarketSpec(*f))
    elif tag == 8:
        command = SetMarketStatus(f[0], MarketStatus(f[1]))
    elif tag == 9:
        command = PlaceConditional(_place_order(f), f[11], Bracket(*f[12:16]))
    elif tag == 10:
        command = SetTriggerLimit(f[0])
    elif tag == 20:
        command = AddNetwork(network_spec(f))
    elif tag == 21:
        command = ReportDeposit(UserId(f[0]), *f[1:])
    elif tag == 22:
        command = RequestWithdrawal(UserId(f[0]), *f[1:])
    elif tag == 23:
        command = DecideWithdrawal(f[0], WithdrawalAction(f[1]), f[2])
    else:
        raise JournalCorrupt(f"unknown command tag {tag}")
    return ts, command


def _place_order(f: list[Any]) -> PlaceOrder:
    return PlaceOrder(
        UserId(f[0]), f[1], Side(f[2]), OrderType(f[3]), f[4], f[5], f[6], TimeInForce(f[7]),
        f[8], ClientOrderId(f[9]), SelfTradePrevention(f[10]),
    )  # fmt: skip


def encode_record(first_seq: int, entries: Iterable[tuple[int, Command]]) -> bytes:
    """One record of a batch: (engine time, command) for each command that changed state."""
    plain = _PLAIN_TAGS.get
    items = [
        [ts, tag, *command] if (tag := plain(type(command))) else encode_command(ts, command)
        for ts, command in entries
    ]
    payload = orjson.dumps([first_seq, items])
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


class Record:
    __slots__ = ("commands", "first_seq")

    def __init__(self, first_seq: int, commands: list[tuple[int, Command]]) -> None:
        self.first_seq = first_seq
        self.commands = commands


def _segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:020d}.log"


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.log"))


def _intact_length(data: bytes, name: str) -> int:
    """How many leading bytes of `data` are whole, intact records."""
    end = 0
    for end, _ in _scan(data, name):  # noqa: B007 - the last end is the answer
        pass
    return end


def _scan(data: bytes, name: str) -> Iterator[tuple[int, bytes]]:
    """Yields (end offset, payload) of each intact record, stopping at a torn tail.

    A torn write can only be the last record: one cut short by the end of the
    data, or whose checksum fails with nothing after it. A failing record with
    data after it is corruption, and raises JournalCorrupt.
    """
    offset = 0
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        start, end = offset + HEADER.size, offset + HEADER.size + length
        if length > MAX_RECORD or end > len(data):
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            if end < len(data):
                raise JournalCorrupt(f"{name}: damaged record at byte {offset} with data after it")
            return
        yield end, payload
        offset = end


def read_records(directory: Path, after_seq: int = 0) -> Iterator[Record]:
    """Every intact record whose events start after `after_seq`, oldest first."""
    files = segments(directory)
    for path in files:
        data = path.read_bytes()
        good = 0
        for end, payload in _scan(data, path.name):
            good = end
            first_seq, items = orjson.loads(payload)
            if first_seq > after_seq:
                yield Record(first_seq, [decode_command(item) for item in items])
        if good != len(data) and path != files[-1]:
            raise JournalCorrupt(f"{path}: damaged record at byte {good} of an older segment")


class Journal:
    """Appends records to the newest segment; `append` returns once they are durable."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool = True,
        segment_bytes: int = SEGMENT_BYTES,
        on_sync: Callable[[float], None] | None = None,
    ):
        self.directory = directory
        self.fsync = fsync
        self.on_sync = on_sync  # told how many seconds each fdatasync took (for metrics)
        self.segment_bytes = segment_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = -1
        self._size = 0
        self._open_tail()

    def _open_tail(self) -> None:
        files = segments(self.directory)
        if not files:
            return
        path = files[-1]
        data = path.read_bytes()
        good = _intact_length(data, path.name)
        if good != len(data):
            log.warning(
                "cutting a torn record off the journal",
                extra={"segment": path.name, "kept_bytes": good, "dropped_bytes": len(data) - good},
            )
            with path.open("r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._size = good

    def _start_segment(self, first_seq: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        path = self.directory / _segment_name(first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = 0
        self._sync_directory()

    def _sync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def append(self, first_seq: int, record: bytes) -> None:
        """Writes one encoded record and makes it durable. Raises OSError if it cannot,
        after cutting whatever it wrote of the record off again (best effort): a record
        whose commands were refused must not come back on replay."""
        if self._fd < 0 or self._size >= self.segment_bytes:
            self._start_segment(first_seq)
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(f"short journal write: {written} of {len(record)} bytes")
            if self.fsync:
                started = time.perf_counter()
                os.fdatasync(self._fd)
                if self.on_sync is not None:
                    self.on_sync(time.perf_counter() - started)
        except OSError:
            self._cut_back()
            raise
        self._size += written

    def _cut_back(self) -> None:
        """Truncates the segment to its last durable record."""
        try:
            os.ftruncate(self._fd, self._size)
            os.fdatasync(self._fd)
        except OSError as exc:  # recovery also cuts a torn record; a whole one would replay
            log.critical("could not cut a failed record off the journal: %s", exc)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
