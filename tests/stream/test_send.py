"""One send is one SEND script call, whatever its size: a send of more fields than one
`struct.unpack` format holds, and more trades than one LPUSH takes, reaches Redis whole."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from exchange.stream.v1 import stream_pb2 as spb
from stream_svc.mirror import Output
from stream_svc.publisher import FIELDS_PER_FORMAT, VALUES_PER_COMMAND, Publisher
from stream_svc.redis_keys import market_channel, trades_key, user_channel
from tests.stream.conftest import publisher_settings

TRADES = 5_000  # a field each


async def test_a_send_larger_than_one_format_is_published_whole(redis_url: str) -> None:
    assert TRADES > FIELDS_PER_FORMAT
    assert TRADES > VALUES_PER_COMMAND
    out = Output()
    for trade_id in range(1, TRADES + 1):
        out.add(
            market_channel("TATA_INR"),
            spb.MarketData(trade=spb.Trade(market="TATA_INR", trade_id=trade_id, price="1.5")),
        )
    out.add(user_channel(7), spb.MarketData(balance_update=spb.BalanceUpdate(user_id=7)))
    redis = Redis.from_url(redis_url)
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(market_channel("TATA_INR"), user_channel(7))
        publisher = Publisher(publisher_settings("", "", redis_url), redis)
        await publisher.send(out)
        received: dict[bytes, spb.Envelope] = {}
        async with asyncio.timeout(10):
            while len(received) < 2:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received[message["channel"]] = spb.Envelope.FromString(message["data"])
    trades = received[market_channel("TATA_INR").encode()].items
    assert [t.trade.trade_id for t in trades] == list(range(1, TRADES + 1))
    assert received[user_channel(7).encode()].items[0].balance_update.user_id == 7
    raws: list[bytes] = await redis.lrange(trades_key("TATA_INR"), 0, -1)  # type: ignore[assignment]
    kept = [spb.MarketData.FromString(raw) for raw in raws]
    recent = publisher.settings.recent_trades
    assert [t.trade.trade_id for t in kept] == list(range(TRADES, TRADES - recent, -1))
    await redis.aclose()
