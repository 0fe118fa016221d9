"""ccxt's `binance` class pointed at the gateway's `/api/v3`, as the README tells users to."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt


def ccxt_config(url: str) -> dict[str, Any]:
    """What a ccxt `binance` user changes: the URLs, and three options this exchange has
    no endpoint for (other market types, currencies, margin)."""
    api = f"{url}/api/v3"
    return {
        "urls": {"api": {"public": api, "private": api}},
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
        "enableRateLimit": False,
    }


def binance(url: str, **credentials: str) -> Any:
    return ccxt.binance({**credentials, **ccxt_config(url)})
