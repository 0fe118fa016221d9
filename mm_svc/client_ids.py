"""Client order ids that name a quote's slot, so the engine itself forbids duplicates.

A slot is (market, side, level). Its id is the same every time that slot is quoted:

    bits 63..48  the maker's tag (configured, non-zero), marking the order as a quote
    bits 47..24  a hash of the market symbol (client ids are unique per user, not per market)
    bit  23      side (1 = sell)
    bits 22..16  level (0 = the innermost)
    bits 15..0   zero

The engine refuses a client id already used by one of the user's open orders, so there is at
most one open order per slot whatever happened before: a restart, a reply lost with the
engine, or two makers sharing a user by mistake. Replacing a quote is a cancel followed by a
place with the same id, in that order on one stream.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple, TypeAlias

from exchange.common.v1 import common_pb2 as cpb

MAX_LEVELS = 128
MAX_TAG = 0xFFFF

Side: TypeAlias = cpb.Side.ValueType


class Slot(NamedTuple):
    side: Side
    level: int


def market_hash(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) & 0xFFFFFF


def slot_id(tag: int, market: str, slot: Slot) -> int:
    sell = 1 if slot.side == cpb.SIDE_SELL else 0
    return (tag << 48) | (market_hash(market) << 24) | (sell << 23) | (slot.level << 16)


def parse_slot(tag: int, market: str, client_id: int) -> Slot | None:
    """The slot `client_id` names in `market`, or None if it is not this maker's quote id."""
    if client_id >> 48 != tag or (client_id >> 24) & 0xFFFFFF != market_hash(market):
        return None
    if client_id & 0xFFFF:
        return None
    side = cpb.SIDE_SELL if (client_id >> 23) & 1 else cpb.SIDE_BUY
    return Slot(side, (client_id >> 16) & 0x7F)
