"""ccxt's `binance` class pointed at the gateway's `/api/v3`, as the README tells users to."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt


def binance(url: str, **credentials: str) -> Any:
    api = f"{url}/api/v3"
    return ccxt.binance(
        {
            **credentials,
            "urls": {"api": {"public": api, "private": api}},
            "options": {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
            "enableRateLimit": False,
        }
    )
