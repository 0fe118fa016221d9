"""Prometheus metrics of the publisher and of stream_svc, read from their counters when
Prometheus scrapes (nothing is done per message beyond adding to an int).

The publisher's lag is the engine's `engine_last_seq` minus `stream_publisher_last_seq`,
in events, like the ledger's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sized
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tradekit.topics import MARKET_KINDS, USER_KINDS

TOPIC_KINDS = (*MARKET_KINDS, "kline", *USER_KINDS)


# What the collectors read, so that this module needs neither the publisher nor the hub.
class _Applied(Protocol):
    @property
    def seq(self) -> int: ...


class Publisher(Protocol):
    @property
    def mirror(self) -> _Applied | None: ...
    @property
    def events_applied(self) -> int: ...
    @property
    def batches(self) -> int: ...
    @property
    def published(self) -> int: ...
    @property
    def redis_failures(self) -> int: ...


class _Flag(Protocol):
    def is_set(self) -> bool: ...


class StreamHub(Protocol):
    @property
    def topics(self) -> Mapping[str, Sized]: ...
    @property
    def connected(self) -> _Flag: ...
    @property
    def resyncs(self) -> int: ...
    @property
    def fanned_out(self) -> int: ...
    @property
    def dropped(self) -> int: ...


class PublisherState(Collector):
    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def collect(self) -> Iterator[Metric]:
        p = self.publisher
        yield GaugeMetricFamily(
            "stream_publisher_last_seq",
            "Sequence number of the last engine event applied",
            value=p.mirror.seq if p.mirror is not None else 0,
        )
        yield CounterMetricFamily(
            "stream_publisher_events", "Engine events applied", value=p.events_applied
        )
        yield CounterMetricFamily(
            "stream_publisher_batches", "Engine event batches applied", value=p.batches
        )
        yield CounterMetricFamily(
            "stream_publisher_messages", "Envelopes published on Redis", value=p.published
        )
        yield CounterMetricFamily(
            "stream_publisher_redis_failures",
            "Redis round trips that failed (their messages were dropped)",
            value=p.redis_failures,
        )


class HubState(Collector):
    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        per_kind = Counter[str]()
        for name, subs in hub.topics.items():
            per_kind[name.partition(".")[0]] += len(subs)
        subscribers = GaugeMetricFamily(
            "stream_subscribers", "Subscriptions being served, by topic kind", labels=["kind"]
        )
        for kind in TOPIC_KINDS:
            subscribers.add_metric([kind], per_kind[kind])
        yield subscribers
        yield GaugeMetricFamily(
            "stream_redis_connected", "1 while subscribed to Redis", value=hub.connected.is_set()
        )
        yield CounterMetricFamily(
            "stream_resyncs", "Book resyncs from the engine's depth", value=hub.resyncs
        )
        yield CounterMetricFamily(
            "stream_messages_out", "Messages handed to subscribers", value=hub.fanned_out
        )
        yield CounterMetricFamily(
            "stream_slow_subscribers_dropped",
            "Subscribers dropped for falling a whole queue behind",
            value=hub.dropped,
        )


def publisher_registry(publisher: Publisher) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PublisherState(publisher))
    return registry


def hub_registry(hub: StreamHub) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(HubState(hub))
    return registry
