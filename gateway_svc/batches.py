"""Batched trades, an option of the spec dialect: `trade@<MARKET>@batch` is sent, per batch
of its cadence (each interval, or each real-time batch), one frame holding every trade of
that batch in order, `{"stream": "trade@<MARKET>@batch", "data": [<trade>, ...]}`, each
`<trade>` the payload `trade@<MARKET>` sends alone. Every trade is in exactly one frame.
The default stays one trade per frame: ccxt.pro, Backpack's and Binance's clients read one
object per frame.

A batch's frame is built once per topic and stream name, and every subscriber is written
the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway_svc.frames import frame, sse_event, ws_text

if TYPE_CHECKING:
    from gateway_svc.upstream import Message

OPTION = "batch"  # the topic suffix: trade@<MARKET>@batch


def batched_frame(stream: str, messages: Sequence[Message], sse: bool) -> bytes:
    """One frame of `messages` (trades of one topic, in order) on the wire; as an SSE event
    its id is the last trade's sequence number, so Last-Event-ID resumes after the batch."""
    payload = frame(stream, b"[" + b",".join(m.data for m in messages) + b"]")
    return sse_event(payload, messages[-1].seq) if sse else ws_text(payload)


def cached_batch(stream: str, batch: Sequence[tuple[int, Message]], sse: bool) -> bytes:
    """`batched_frame` of a cadence's batch of one topic (its `Pending` entries), built once
    for every subscriber under this stream name. Kept with the batch's last trade: the batch
    is every trade from its first to its last, so the two name it (another cadence's batch
    may end at the same one)."""
    key = ("batch", stream, sse, batch[0][1].seq)
    return batch[-1][1].cached(key, lambda: batched_frame(stream, [m for _, m in batch], sse))
