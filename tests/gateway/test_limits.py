"""Rate limits, connection caps and replay protection against a real Redis.

Periods and TTLs are short to keep the suite fast; timing assertions allow for a slow machine
only in the direction the algorithms guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway_svc.limits import (
    ConnectionLimiter,
    Decision,
    LimitsUnavailable,
    RateLimiter,
    Replayed,
    ReplayGuard,
    Rule,
)
from gateway_svc.redis_batch import RedisBatch, pack
from launcher.ports import free_port

# One action per 0.1 s, in bursts of 5: a burst of round trips on a busy machine stays well
# inside one emission interval.
ORDERS = Rule("orders", 5, 0.5)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_a_burst_of_limit_is_allowed_then_refused_until_retry_after(redis: Redis) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    burst = [await limiter.hit(ORDERS, "alice") for _ in range(ORDERS.limit)]
    assert all(d.allowed for d in burst)
    assert [d.remaining for d in burst] == [4, 3, 2, 1, 0]

    refused = await limiter.hit(ORDERS, "alice")
    assert not refused.allowed
    assert refused.remaining == 0
    assert 0 < refused.retry_after <= 0.1
    assert refused.retry_after <= refused.reset_after <= ORDERS.period_seconds

    await asyncio.sleep(refused.retry_after + 0.005)
    again = await limiter.hit(ORDERS, "alice")
    assert again.allowed


async def test_keys_and_rules_are_independent(redis: Redis) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    for _ in range(ORDERS.limit):
        await limiter.hit(ORDERS, "alice")
    assert not (await limiter.hit(ORDERS, "alice")).allowed

    assert (await limiter.hit(ORDERS, "bob")).allowed
    assert (await limiter.hit(Rule("market", 100, 1.0), "alice")).allowed


async def test_cost_counts_a_batch_and_a_refused_batch_counts_nothing(redis: Redis) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    rule = Rule("batch", 10, 10.0)
    assert (await limiter.hit(rule, "alice", cost=7)).remaining == 3

    too_many = await limiter.hit(rule, "alice", cost=4)
    assert not too_many.allowed
    assert too_many.remaining == 3

    last = await limiter.hit(rule, "alice", cost=3)
    assert last.allowed
    assert last.remaining == 0


@pytest.mark.parametrize("cost", [0, 11])
async def test_a_cost_outside_one_to_limit_is_refused_outright(redis: Redis, cost: int) -> None:
    with pytest.raises(ValueError, match="cost"):
        await RateLimiter(RedisBatch(redis)).hit(Rule("batch", 10, 1.0), "alice", cost=cost)


async def test_replicas_on_separate_connections_share_the_count(redis_url: str) -> None:
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        replicas = [RateLimiter(RedisBatch(first)), RateLimiter(RedisBatch(second))]
        decisions = [await replicas[i % 2].hit(ORDERS, "alice") for i in range(ORDERS.limit + 1)]
    finally:
        await first.aclose()
        await second.aclose()
    assert [d.allowed for d in decisions] == [True] * ORDERS.limit + [False]


async def test_headers_of_a_success_and_of_a_refusal(redis: Redis) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    rule = Rule("slow", 2, 10.0)
    ok = (await limiter.hit(rule, "alice")).headers()
    assert ok == {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "5"}

    await limiter.hit(rule, "alice")
    refused = (await limiter.hit(rule, "alice")).headers()
    assert refused["X-RateLimit-Remaining"] == "0"
    assert refused["X-RateLimit-Reset"] == "10"
    assert refused["Retry-After"] == "5"


def test_headers_round_up_and_retry_after_is_at_least_one_second() -> None:
    decision = Decision(allowed=False, limit=10, remaining=0, retry_after=0.01, reset_after=1.2)
    assert decision.headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",
        "Retry-After": "1",
    }


async def test_connections_are_capped_per_user_until_one_is_released(redis: Redis) -> None:
    limiter = ConnectionLimiter(redis)
    first, second = await limiter.acquire("alice", 2), await limiter.acquire("alice", 2)
    assert first is not None
    assert second not in (None, first)
    assert await limiter.acquire("alice", 2) is None
    assert await limiter.acquire("bob", 2) is not None

    await limiter.release("alice", first)
    await limiter.release("alice", first)  # twice is harmless
    assert await limiter.acquire("alice", 2) is not None
    assert await limiter.acquire("alice", 2) is None


async def test_a_holder_that_stops_refreshing_stops_counting(redis: Redis) -> None:
    limiter = ConnectionLimiter(redis, ttl_seconds=0.3)
    crashed, alive = await limiter.acquire("alice", 2), await limiter.acquire("alice", 2)
    assert crashed is not None
    assert alive is not None
    assert 0 < await redis.pttl("ws:alice") <= 300  # the set itself does not outlive them

    await asyncio.sleep(0.15)
    assert await limiter.refresh("alice", alive)
    await asyncio.sleep(0.2)  # `crashed` expired 0.05 s ago, `alive` has 0.1 s left

    assert await limiter.acquire("alice", 2) is not None
    assert await limiter.acquire("alice", 2) is None
    assert not await limiter.refresh("alice", crashed)


async def test_a_signature_is_accepted_once_within_its_window(redis: Redis) -> None:
    guard = ReplayGuard(RedisBatch(redis))
    signature = "c2lnbmF0dXJl" * 1000
    assert await guard.first_use("user:1", signature, ttl_ms=150)
    assert not await guard.first_use("user:1", signature, ttl_ms=150)
    assert await guard.first_use("user:1", signature + "x", ttl_ms=150)
    assert all(len(key) == len("sig:{user:1}:") + 64 for key in await redis.keys("sig:*"))

    await asyncio.sleep(0.2)
    assert await guard.first_use("user:1", signature, ttl_ms=150)


async def test_a_signed_hit_refuses_a_replay_and_counts_it_nothing(redis: Redis) -> None:
    limiter, guard = RateLimiter(RedisBatch(redis)), ReplayGuard(RedisBatch(redis))
    first = await limiter.hit(ORDERS, "user:1", signature="one", signature_ttl_ms=10_000)
    assert (first.allowed, first.remaining) == (True, 4)
    with pytest.raises(Replayed):
        await limiter.hit(ORDERS, "user:1", signature="one", signature_ttl_ms=10_000)
    # The same store as the replay guard's: a signature seen by either is seen by both.
    assert not await guard.first_use("user:1", "one", 10_000)
    assert (await limiter.hit(ORDERS, "user:1")).remaining == 3


async def test_hits_of_one_turn_of_the_loop_share_a_round_trip_and_keep_their_order(
    redis: Redis,
) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    decisions = await asyncio.gather(*(limiter.hit(ORDERS, "alice") for _ in range(7)))
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]


async def test_a_script_redis_forgot_is_loaded_again(redis: Redis) -> None:
    limiter = RateLimiter(RedisBatch(redis))
    assert (await limiter.hit(ORDERS, "alice")).allowed
    await redis.script_flush()
    assert (await limiter.hit(ORDERS, "alice")).remaining == 3


async def test_every_limit_fails_closed_when_redis_is_unreachable() -> None:
    # No retries: the test is about the mapping of the error, not the client's patience.
    redis = Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(LimitsUnavailable):
            await RateLimiter(RedisBatch(redis)).hit(ORDERS, "alice")
        with pytest.raises(LimitsUnavailable):
            await ConnectionLimiter(redis).acquire("alice", 1)
        with pytest.raises(LimitsUnavailable):
            await ConnectionLimiter(redis).release("alice", "token")
        with pytest.raises(LimitsUnavailable):
            await ReplayGuard(RedisBatch(redis)).first_use("user:1", "signature", 1000)
        with pytest.raises(LimitsUnavailable):
            await RateLimiter(RedisBatch(redis)).hit(
                ORDERS, "alice", signature="signature", signature_ttl_ms=1000
            )
    finally:
        await redis.aclose()


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    commands: list[tuple[str | int | bytes, ...]] = [
        ("EVALSHA", "a" * 40, 2, "rl:orders:{user:1}", "sig:{user:1}:é", 100_000, 5, 1, 2),
        ("SET", b"raw\r\nkey", -1, "NX", "PX", 0),
    ]
    packer = Connection()
    assert pack(commands) == b"".join(packer.pack_commands(commands))
    for wrong in (True, None):
        with pytest.raises(TypeError):
            pack([("SET", "key", wrong)])  # type: ignore[list-item]


async def test_an_error_reply_fails_its_own_command_and_the_turn_goes_on(redis: Redis) -> None:
    batch = RedisBatch(redis)
    await redis.set("word", "abc")
    replies: list[object] = await asyncio.gather(
        batch.execute("SET", "n", 1),
        batch.execute("INCR", "word"),
        batch.execute("INCR", "n"),
        return_exceptions=True,
    )
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError)
    assert replies[2] == 2
    assert await batch.execute("GET", "n") == b"2"  # the connection was left in step


async def test_a_turn_on_a_connection_the_server_closed_is_sent_again(redis_url: str) -> None:
    client = Redis.from_url(redis_url, retry=Retry(NoBackoff(), 1))
    admin = Redis.from_url(redis_url)
    try:
        batch = RedisBatch(client)
        assert await batch.execute("SET", "n", 1) == b"OK"
        await admin.client_kill_filter(_type="normal", skipme=True)
        replies = await asyncio.gather(batch.execute("INCR", "n"), batch.execute("GET", "n"))
        assert list(replies) == [2, b"2"]
    finally:
        await client.aclose()
        await admin.aclose()


async def test_replies_late_past_the_socket_timeout_fail_the_turn_and_leave_no_trace(
    redis_url: str,
) -> None:
    client = Redis.from_url(redis_url, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    try:
        batch = RedisBatch(client)
        with pytest.raises(RedisTimeoutError):
            await batch.execute("BLPOP", "nothing", 2)  # answers only after 2 s
        # The late reply is not read as the next command's: that connection was dropped.
        assert await batch.execute("SET", "n", 1) == b"OK"
        assert await batch.execute("GET", "n") == b"1"
    finally:
        await client.aclose()


async def test_connections_of_overlapping_turns_go_back_to_the_pool_but_two(
    redis_url: str,
) -> None:
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=3, timeout=1)
    client = Redis(connection_pool=pool)
    try:
        batch = RedisBatch(client)
        turns = []
        for _ in range(3):  # each in its own turn, all in flight together: 3 connections
            turns.append(asyncio.create_task(batch.execute("BLPOP", "nothing", "0.1")))
            await asyncio.sleep(0)
        assert await asyncio.gather(*turns) == [None, None, None]
        # The batch keeps two for its next turns; the third is there for anyone else.
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        await pool.release(connection)
        assert await batch.execute("SET", "n", 1) == b"OK"
    finally:
        await client.aclose()
