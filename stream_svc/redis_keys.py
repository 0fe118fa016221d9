"""Where the publisher puts market data in Redis and where stream_svc reads it.

Per market: the channel `md.<MARKET>` carries every update, the hash `md.state.<MARKET>`
holds the latest state items (ticker, best bid/ask, open candles) and the list
`md.trades.<MARKET>` the recent trades; per user, the channel `user.<ID>`.
"""


def market_channel(market: str) -> str:
    return f"md.{market}"


def user_channel(user_id: int) -> str:
    return f"user.{user_id}"


def state_key(market: str) -> str:
    return f"md.state.{market}"


def trades_key(market: str) -> str:
    return f"md.trades.{market}"
