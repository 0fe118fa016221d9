"""The demo account `make run` creates, so a newcomer can log in to the UI and trade at once.

Through the gateway's public API like any user: sign up (or log in when it exists), then
take funds from the faucet up to its cap. Safe to run on every start.
"""

from __future__ import annotations

import aiohttp

DEMO_EMAIL = "demo@exchange.local"
DEMO_PASSWORD = "demo-password"
DEMO_FUNDS = {"INR": "100000", "TATA": "1000", "USDT": "100000", "BTC": "1", "ETH": "10"}


async def seed_demo_account(gateway_url: str) -> str:
    """Ensures the demo user exists and has funds; returns a line saying how to log in.

    Raises aiohttp.ClientError or RuntimeError when the gateway refuses."""
    credentials = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(gateway_url, timeout=timeout) as http:
        async with http.post("/api/v1/auth/signup", json=credentials) as response:
            if response.status not in (201, 409):
                raise RuntimeError(f"signup answered {response.status}: {await response.text()}")
        async with http.post("/api/v1/auth/login", json=credentials) as response:
            if response.status != 200:
                raise RuntimeError(f"login answered {response.status}: {await response.text()}")
            token = (await response.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get("/api/v1/capital", headers=auth) as response:
            held = await response.json()
        for asset, amount in DEMO_FUNDS.items():
            if asset in held:
                continue  # funded on an earlier start
            async with http.post(
                "/api/v1/onramp", json={"asset": asset, "amount": amount}, headers=auth
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"faucet answered {response.status} for {asset}")
    return f"demo account: {DEMO_EMAIL} / {DEMO_PASSWORD}"
