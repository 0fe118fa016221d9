"""What a stream client may subscribe to: its topic names, in either dialect, and the
errors a subscription is answered with.

Topics: `depth@TATA_INR` or `depth.TATA_INR` (also trade, ticker, bookTicker),
`kline.<1m..1w>.TATA_INR`, and the caller's own `account.orderUpdate[.M]`,
`account.balanceUpdate`. The spec's `trade@TATA_INR@batch` is the trades batched, one frame
per batch (batches.py); no other topic takes an option. An error becomes
`{"id": ..., "error": {"code", "name", "message"}}` on a WebSocket and a 400 on SSE.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_svc import batches
from tradekit.topics import KLINE_INTERVALS, MARKET_KINDS, Topic


class FrameError(Exception):
    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


def _bad_topic(text: str) -> FrameError:
    return FrameError(4006, "INVALID_STREAM", f"unknown stream {text[:80]!r}")


@dataclass(frozen=True)
class Wanted:
    """A subscription as the client named it, and what it reads upstream."""

    name: str  # echoed as `stream`
    topic: Topic
    market_filter: str = ""  # account.orderUpdate.<M>: only that market's orders
    batched: bool = False  # trade@<M>@batch: each batch's trades in one frame


def parse_topic(text: str, user_id: int | None, markets: set[str]) -> Wanted:
    """A client's topic name, in either dialect. Raises FrameError."""
    if not isinstance(text, str) or not 0 < len(text) <= 100 or not text.isascii():
        raise _bad_topic(str(text))
    if text.startswith("account."):
        if user_id is None:
            raise FrameError(4003, "UNAUTHORIZED", f"{text} needs a token or a signature")
        parts = text.split(".")
        if parts[1] == "orderUpdate" and len(parts) <= 3:
            market = parts[2] if len(parts) == 3 else ""
            if market and market not in markets:
                raise FrameError(4004, "INVALID_MARKET", f"unknown market {market[:40]!r}")
            return Wanted(text, Topic("orders", user_id=user_id), market)
        if text == "account.balanceUpdate":
            return Wanted(text, Topic("balances", user_id=user_id))
        raise _bad_topic(text)
    kind, sep, rest = text.partition("@") if "@" in text else text.partition(".")
    if not sep or not rest:
        raise _bad_topic(text)
    rest, at, option = rest.partition("@")
    if at and (kind != "trade" or option != batches.OPTION):
        only = "the only stream option is trade@<market>@batch"
        raise FrameError(4006, "INVALID_STREAM", f"{text[:80]!r}: {only}")
    if kind == "kline":
        interval, _, market = rest.partition(".")
        if interval not in KLINE_INTERVALS:
            raise _bad_topic(text)
        topic = Topic("kline", market=market, interval_s=KLINE_INTERVALS[interval])
    elif kind in MARKET_KINDS:
        market = rest
        topic = Topic(kind, market=market)
    else:
        raise _bad_topic(text)
    if market not in markets:
        raise FrameError(4004, "INVALID_MARKET", f"unknown market {market[:40]!r}")
    return Wanted(text, topic, batched=bool(at))
