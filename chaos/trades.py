"""The trades a WebSocket subscriber was sent, per connection, held to the engine's history.

A connection's trade stream promises every trade of its market from the subscription on,
each once, in order, whatever restarts behind the gateway (stream_svc, the publisher, Redis:
the gateway bridges such an outage from the snapshot's recent trades). A client that
reconnects (the gateway died) misses what happened meanwhile: that is a new connection,
with a promise of its own. So each connection is judged between the first and the last
trade it was sent: every trade of the engine's history in that span came exactly once.

The suite judges after every trial, against the history so far; what was judged is then
forgotten but for the last trade of each connection and market, which bounds the next span.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.checks import Findings
    from chaos.journal import Truth


@dataclass
class TradeLog:
    """One connection's trade ids as they came, by market."""

    connection: int  # its number among the subscriber's connections
    ids: dict[str, list[int]] = field(default_factory=dict)
    received: int = 0

    def add(self, market: str, trade_id: int) -> None:
        self.ids.setdefault(market, []).append(trade_id)
        self.received += 1

    def judge(self, who: str, truth: Truth, f: Findings) -> None:
        """Each market's trades up to the history's last against the history; keeps the
        last one judged (and any later, not yet in the history)."""
        made: dict[str, list[int]] = {}
        for trade_id in sorted(truth.trades):
            made.setdefault(truth.trades[trade_id].market, []).append(trade_id)
        newest = max(truth.trades, default=0)
        for market, ids in self.ids.items():
            judged = [t for t in ids if t <= newest]
            if len(judged) < 2:
                continue
            where = f"{who}, connection {self.connection}, {market}"
            for trade_id, n in Counter(judged).items():
                if n > 1:
                    f.add("duplicate", f"{where}: trade {trade_id} sent {n} times")
            if any(b < a for a, b in itertools.pairwise(judged)):
                f.add("stream", f"{where}: trades out of order: {judged[:20]}")
            history = made.get(market, [])
            for trade_id in sorted(set(judged) - set(history)):
                f.add("wrong", f"{where}: trade {trade_id} is not one of the market's")
            low, high = (
                bisect.bisect_left(history, min(judged)),
                bisect.bisect_right(history, max(judged)),
            )
            for trade_id in sorted(set(history[low:high]) - set(judged)):
                f.add(
                    "stream_gap",
                    f"{where}: trade {trade_id} never sent ({min(judged)}..{max(judged)})",
                )
            self.ids[market] = [max(judged), *(t for t in ids if t > newest)]
