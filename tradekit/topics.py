"""Topic names, shared by stream_svc and the gateway.

A topic is `<kind>.<MARKET>` (`kline.<interval>.<MARKET>`) or, for a user's own events,
`orders.<USER_ID>` / `balances.<USER_ID>`.
"""

from __future__ import annotations

from dataclasses import dataclass

MARKET_KINDS = ("depth", "trade", "ticker", "bookTicker")
USER_KINDS = ("orders", "balances")
KLINE_INTERVALS = {
    "1m": 60, "5m": 300, "15m": 900, "30m": 1800,
    "1h": 3600, "4h": 14_400, "1d": 86_400, "1w": 604_800,
}  # fmt: skip
INTERVAL_NAMES = {seconds: name for name, seconds in KLINE_INTERVALS.items()}


class BadTopic(ValueError):
    """Not a topic this service knows."""


@dataclass(frozen=True)
class Topic:
    kind: str  # one of MARKET_KINDS, "kline" or one of USER_KINDS
    market: str = ""
    interval_s: int = 0
    user_id: int = 0

    @property
    def name(self) -> str:
        if self.kind in USER_KINDS:
            return f"{self.kind}.{self.user_id}"
        if self.kind == "kline":
            return f"kline.{INTERVAL_NAMES[self.interval_s]}.{self.market}"
        return f"{self.kind}.{self.market}"

    @classmethod
    def parse(cls, text: str) -> Topic:
        kind, _, rest = text.partition(".")
        if kind in MARKET_KINDS and rest:
            return cls(kind, market=rest)
        if kind == "kline":
            interval, _, market = rest.partition(".")
            if interval in KLINE_INTERVALS and market:
                return cls(kind, market=market, interval_s=KLINE_INTERVALS[interval])
        if kind in USER_KINDS and rest.isdigit() and int(rest) > 0:
            return cls(kind, user_id=int(rest))
        raise BadTopic(f"unknown topic {text[:80]!r}")
