"""Rate limits, connection caps and replay protection, shared by every gateway replica.

All state lives in Redis and every decision is one atomic step there: a Lua script (or one
command) that reads the clock with `TIME`, so replicas whose clocks disagree still agree.
Rate limits and replay checks travel in the pipeline of their event-loop turn
(`RedisBatch`): many requests, one round trip. Rate and signature keys name their subject
(`user:42`, `ip:10.0.0.1`) in braces, a Redis Cluster hash tag, so the script that touches a
subject's rate key and signature key together stays in one slot.

- `RateLimiter` uses GCRA (the generic cell rate algorithm). A key stores one number, its
  theoretical arrival time (TAT): when the bucket would be empty again. A hit of `cost` moves
  it on by `cost` emission intervals (period / limit) and is allowed while the TAT stays within
  one period of now. Chosen over a sliding window because it is exact and smooth (no double
  burst at a window edge), costs one small key per (rule, key) whatever the limit, gives the
  exact `retry_after` for free, and keeps its meaning when a rule's numbers change. A signed
  request's first use and its rate limit are one script: a replay is refused and counts
  nothing, exactly as if checked first, for the price of one command.
- `ConnectionLimiter` keeps a user's connections in a sorted set scored by expiry: a gateway
  that dies stops refreshing, and its connections stop counting after one TTL.
- `ReplayGuard` is `SET NX PX` on the sha256 of the signature: first writer wins.

When Redis is unreachable every method raises `LimitsUnavailable` (the gateway answers 503):
they fail closed, on purpose. Failing open would turn an outage of Redis into unlimited
orders and accepted replays, and one rule for all three is easier to reason about. Only
`ConnectionLimiter.release` may safely be ignored when it fails: the entry expires anyway.
A lost reply that the client retries counts a hit twice or reads a first use as a replay:
both err on the side of refusing. Give the client short timeouts; a slow Redis is a slow
gateway.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway_svc.redis_batch import RedisBatch


class LimitsUnavailable(Exception):
    """Redis could not be reached, so no limit can be checked: refuse the request (503)."""


class Replayed(Exception):
    """The signature was used before within its window: refuse the request (401)."""


@contextmanager
def _reaching_redis() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise LimitsUnavailable(f"limits store unreachable: {error}") from error


@dataclass(frozen=True)
class Rule:
    """At most `limit` actions per `period_seconds` for each key, in bursts of up to `limit`."""

    name: str
    limit: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.period_seconds > 0:
            raise ValueError(f"rule {self.name!r}: limit and period must be positive")


@dataclass(frozen=True)
class Decision:
    """The answer to one hit; times in seconds from now."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float  # until this hit would be allowed; 0 when it was
    reset_after: float  # until the key is back to its full burst

    def headers(self) -> dict[str, str]:
        """Headers for the response, a success or a 429."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


# Times are integer microseconds of Redis' clock: exact in a Lua double until the year 2255.
# '%.0f' writes the TAT in full; Lua's own number-to-string keeps only 14 digits.
_GCRA = """
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local period = interval * limit
local new_tat = tat + cost * interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, math.max(0, math.floor((now + period - tat) / interval)), allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
"""
# What a key has used of its burst now: the cells between now and its TAT, changing nothing.
_GCRA_USED = """
local interval = tonumber(ARGV[1])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
return math.ceil(math.max(0, tat - now) / interval)
"""
# KEYS[2] is the signature's key, ARGV[4] how long to remember it (ms).
_FIRST_USE_THEN_GCRA = (
    "if not redis.call('SET', KEYS[2], 1, 'NX', 'PX', ARGV[4]) then return {-1} end\n" + _GCRA
)


class _Script:
    """A Lua script run by its SHA1 in the batch's pipeline, loaded again if Redis lost it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def run(self, batch: RedisBatch, keys: list[str], args: list[int]) -> Any:
        try:
            return await batch.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a restarted or flushed Redis
            await batch.redis.script_load(self.text)
            return await batch.execute("EVALSHA", self.sha, len(keys), *keys, *args)


def _signature_key(prefix: str, subject: str, signature: str) -> str:
    """A fixed 64 hex digits however long the signature."""
    return f"{prefix}:{{{subject}}}:{hashlib.sha256(signature.encode()).hexdigest()}"


class RateLimiter:
    """GCRA rate limits kept in Redis under `{prefix}:{rule name}:{{subject}}`."""

    def __init__(
        self, batch: RedisBatch, prefix: str = "rl", signature_prefix: str = "sig"
    ) -> None:
        self._batch = batch
        self._prefix = prefix
        self._signature_prefix = signature_prefix
        self._gcra = _Script(_GCRA)
        self._signed_gcra = _Script(_FIRST_USE_THEN_GCRA)
        self._used = _Script(_GCRA_USED)

    async def hit(
        self,
        rule: Rule,
        subject: str,
        cost: int = 1,
        *,
        signature: str = "",
        signature_ttl_ms: int = 0,
    ) -> Decision:
        """Count `cost` actions of `subject` against `rule` if they fit; a refusal counts
        nothing. With a `signature`, first check that it was not used in the last
        `signature_ttl_ms` (as `ReplayGuard` does): Replayed if it was, and nothing counted.

        `cost` must be 1..rule.limit: a bigger batch could never pass, so it is refused with
        ValueError (the caller's 400) rather than answered with a Retry-After that never comes.
        """
        if not 1 <= cost <= rule.limit:
            raise ValueError(f"cost {cost} is outside 1..{rule.limit} of rule {rule.name!r}")
        keys = self._keys(rule, subject)
        args = [self._interval(rule), rule.limit, cost]
        script = self._gcra
        if signature:
            if signature_ttl_ms < 1:
                raise ValueError("signature_ttl_ms must be positive")
            keys.append(_signature_key(self._signature_prefix, subject, signature))
            args.append(signature_ttl_ms)
            script = self._signed_gcra
        with _reaching_redis():
            reply = await script.run(self._batch, keys, args)
        if reply[0] == -1:
            raise Replayed("this signature was already used")
        allowed, remaining, retry_us, reset_us = reply
        return Decision(
            allowed=bool(allowed),
            limit=rule.limit,
            remaining=int(remaining),
            retry_after=int(retry_us) / 1_000_000,
            reset_after=int(reset_us) / 1_000_000,
        )

    async def used(self, rule: Rule, subject: str) -> int:
        """How many of its `rule.limit` the subject has used now (a hit's limit - remaining,
        rounded up), counting nothing."""
        with _reaching_redis():
            reply = await self._used.run(
                self._batch, self._keys(rule, subject), [self._interval(rule)]
            )
        return min(rule.limit, int(reply))

    def _keys(self, rule: Rule, subject: str) -> list[str]:
        return [f"{self._prefix}:{rule.name}:{{{subject}}}"]

    @staticmethod
    def _interval(rule: Rule) -> int:
        return max(1, round(rule.period_seconds * 1_000_000 / rule.limit))


# Scores are expiry times in milliseconds of Redis' clock. The set itself lives as long as
# its longest-lived member, so a user who leaves leaves nothing behind.
_DROP_EXPIRED = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""
_HOLD = """
redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""
_ACQUIRE = (
    _DROP_EXPIRED
    + "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end\n"
    + _HOLD
)
_REFRESH = (
    _DROP_EXPIRED + "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n" + _HOLD
)


class ConnectionLimiter:
    """At most `limit` live connections per user across all replicas.

    A holder calls `refresh` about every `ttl_seconds / 3`; a connection not refreshed for
    `ttl_seconds` (its gateway died) no longer counts.
    """

    def __init__(self, redis: Redis, prefix: str = "ws", ttl_seconds: float = 60.0) -> None:
        if not ttl_seconds > 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self._prefix = prefix
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._refresh = redis.register_script(_REFRESH)

    @property
    def refresh_interval(self) -> float:
        """How often a holder should refresh, in seconds: three tries before it expires."""
        return self._ttl_ms / 3000

    async def acquire(self, user: str, limit: int) -> str | None:
        """A token for one more connection of `user`, or None when they have `limit` already."""
        token = secrets.token_urlsafe(16)
        with _reaching_redis():
            held = await self._acquire(keys=[self._key(user)], args=[token, self._ttl_ms, limit])
        return token if held else None

    async def refresh(self, user: str, token: str) -> bool:
        """Keep the connection counted; False if it had expired or been released (close it)."""
        with _reaching_redis():
            held = await self._refresh(keys=[self._key(user)], args=[token, self._ttl_ms])
        return bool(held)

    async def release(self, user: str, token: str) -> None:
        """Stop counting the connection. Releasing twice, or an expired token, is harmless."""
        with _reaching_redis():
            await self._redis.zrem(self._key(user), token)

    def _key(self, user: str) -> str:
        return f"{self._prefix}:{user}"


class ReplayGuard:
    """Remembers request signatures for their validity window, to refuse a replay."""

    def __init__(self, batch: RedisBatch, prefix: str = "sig") -> None:
        self._batch = batch
        self._prefix = prefix

    async def first_use(self, subject: str, signature: str, ttl_ms: int) -> bool:
        """True the first time `subject` uses `signature` within `ttl_ms`, False for a replay.

        The signature is stored as its sha256, so a long one costs a fixed 64 bytes.
        """
        if ttl_ms < 1:
            raise ValueError("ttl_ms must be positive")
        key = _signature_key(self._prefix, subject, signature)
        with _reaching_redis():
            created = await self._batch.execute("SET", key, 1, "NX", "PX", ttl_ms)
        return bool(created)
