"""What `make image-smoke` and `make kube-smoke` ask of a running stack, through its gateway
only, as a client would:

  python -m deploy.smoke trade URL    # two new users, funded, trade once with each other;
                                      # the trade read back from history and the WebSocket
  python -m deploy.smoke traded URL   # that trade still in the public trades (after a restart)

`trade` prints the trade's id; `traded` takes it as its third argument. Exits non-zero with
the reason on stderr when anything is not as it should be.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from decimal import Decimal
from typing import Any

import aiohttp

MARKET, BASE, QUOTE = "TATA_INR", "TATA", "INR"
TICK = Decimal("0.01")
DEADLINE_SECONDS = 120.0
START_SECONDS = 300.0  # a cold stack: the database's first cluster, the engine's recovery
TIMEOUT = aiohttp.ClientTimeout(total=15)


class SmokeError(Exception):
    pass


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, token: str = ""
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers, timeout=TIMEOUT) as reply:
        answer = await reply.json(content_type=None)
        if reply.status >= 300:
            raise SmokeError(f"{method} {url} -> {reply.status} {answer}")
        return answer


async def until(what: str, probe: Any, seconds: float = DEADLINE_SECONDS) -> Any:
    """Polls the coroutine function `probe` until it returns something truthy."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = await probe()
            if found:
                return found
        except (aiohttp.ClientError, SmokeError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise SmokeError(f"{what}: not within {seconds:.0f} s (last error: {last})")


async def healthy(http: aiohttp.ClientSession, url: str) -> None:
    async def probe() -> bool:
        async with http.get(f"{url}/health", timeout=TIMEOUT) as reply:
            return reply.status == 200

    await until("the gateway's /health", probe, START_SECONDS)


async def user(http: aiohttp.ClientSession, url: str, asset: str, amount: str) -> dict[str, str]:
    email = f"smoke-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(16)
    account: dict[str, str] = await call(
        http, "POST", f"{url}/api/v1/auth/signup", {"email": email, "password": password}
    )
    await call(http, "POST", f"{url}/api/v1/onramp", {"asset": asset, "amount": amount},
               account["token"])  # fmt: skip
    return account


async def inside_price(http: aiohttp.ClientSession, url: str) -> Decimal:
    """A price strictly between the best bid and ask (the market maker's quotes, which are
    about 20 bps apart), so that the two users' orders meet each other, not a quote."""
    depth = await call(http, "GET", f"{url}/api/v1/depth?symbol={MARKET}")
    bids = [Decimal(p) for p, _ in depth["bids"]]
    asks = [Decimal(p) for p, _ in depth["asks"]]
    bid, ask = max(bids, default=None), min(asks, default=None)
    if bid is None or ask is None:
        return (bid + 10 * TICK) if bid else (ask - 10 * TICK) if ask else Decimal("950.00")
    if ask - bid <= 2 * TICK:
        raise SmokeError(f"no room between bid {bid} and ask {ask}")
    return ((bid + ask) / 2).quantize(TICK)


async def trade_once(http: aiohttp.ClientSession, url: str, seller: dict[str, str],
                     buyer: dict[str, str]) -> tuple[str, Decimal]:  # fmt: skip
    """The seller rests one TATA at a price inside the spread; the buyer takes it."""
    price = await inside_price(http, url)
    order = {"symbol": MARKET, "orderType": "Limit", "price": str(price), "quantity": "1"}
    await call(http, "POST", f"{url}/api/v1/order",
               {**order, "side": "Ask", "postOnly": True}, seller["token"])  # fmt: skip
    await call(http, "POST", f"{url}/api/v1/order",
               {**order, "side": "Bid", "timeInForce": "IOC"}, buyer["token"])  # fmt: skip

    async def fills(who: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await call(
            http, "GET", f"{url}/wapi/v1/history/fills?symbol={MARKET}", token=who["token"]
        )
        return found

    bought = await until("the buyer's fill in history", lambda: fills(buyer))
    sold = await until("the seller's fill in history", lambda: fills(seller))
    trade_id = bought[0]["tradeId"]
    if [f["tradeId"] for f in sold] != [trade_id] or Decimal(bought[0]["price"]) != price:
        raise SmokeError(f"the users did not trade with each other: {bought} / {sold}")
    return trade_id, price


async def trade(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        await healthy(http, url)
        seller = await user(http, url, BASE, "10")
        buyer = await user(http, url, QUOTE, "5000")
        async with http.ws_connect(f"{url}/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": [f"trade.{MARKET}"], "id": 1})
            await until("the subscription's acknowledgement", lambda: acknowledged(ws))
            trade_id, price = await trade_once(http, url, seller, buyer)
            await until("the trade on the WebSocket", lambda: streamed(ws, trade_id, price))
        return trade_id


async def acknowledged(ws: aiohttp.ClientWebSocketResponse) -> bool:
    frame = await ws.receive_json(timeout=DEADLINE_SECONDS)
    return bool(frame.get("id") == 1 and "result" in frame)


async def streamed(ws: aiohttp.ClientWebSocketResponse, trade_id: str, price: Decimal) -> bool:
    frame = await ws.receive_json(timeout=DEADLINE_SECONDS)
    data = frame.get("data", {})
    return bool(str(data.get("t")) == trade_id and Decimal(data["p"]) == price)


async def traded(url: str, trade_id: str) -> None:
    async with aiohttp.ClientSession() as http:
        await healthy(http, url)

        async def listed() -> bool:
            trades = await call(http, "GET", f"{url}/api/v1/trades?symbol={MARKET}&limit=1000")
            return any(str(t["id"]) == trade_id for t in trades)

        await until(f"trade {trade_id} in the public trades", listed)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["trade"] and len(argv) == 2:
            print(asyncio.run(trade(argv[1].rstrip("/"))))
        elif argv[:1] == ["traded"] and len(argv) == 3:
            asyncio.run(traded(argv[1].rstrip("/"), argv[2]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except SmokeError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
