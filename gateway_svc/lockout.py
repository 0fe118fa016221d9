"""Brute-force fence on log-in: failed attempts counted per account and per address.

After MAX_PER_ACCOUNT failures for one email, or MAX_PER_ADDRESS from one address, within
WINDOW_SECONDS, log-ins there are refused (429, `details.reason` LOGIN_LOCKED) until the
window of the first failure ends, the right password included. Counts live in Redis, so
every replica sees them; a successful log-in clears its account's count.
"""

from __future__ import annotations

from redis.asyncio import Redis

from gateway_svc.errors import ApiError

MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20
WINDOW_SECONDS = 900


def _keys(email: str, address: str) -> tuple[str, str]:
    return f"login-fail:acct:{email.strip().lower()[:320]}", f"login-fail:ip:{address}"


async def check(redis: Redis, email: str, address: str) -> None:
    """429 while the account or the address is locked out."""
    account, ip = _keys(email, address)
    counts = await redis.mget(account, ip)
    for key, count, most in zip(
        (account, ip), counts, (MAX_PER_ACCOUNT, MAX_PER_ADDRESS), strict=True
    ):
        if count is not None and int(count) >= most:
            wait = max(1, int(await redis.ttl(key)))
            raise ApiError(
                429,
                "TOO_MANY_REQUESTS",
                f"too many failed log-ins; try again in {wait} s",
                {"reason": "LOGIN_LOCKED"},
                headers={"Retry-After": str(wait)},
            )


async def failed(redis: Redis, email: str, address: str) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        for key in _keys(email, address):
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)
        await pipe.execute()


async def succeeded(redis: Redis, email: str, address: str) -> None:
    await redis.delete(_keys(email, address)[0])
