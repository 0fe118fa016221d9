"""Assets and markets as configured: plain values, in decimal strings.

The engine checks them and converts them to integer units (engine_svc/core/markets.py);
its config file, its admin RPC and the benches that list markets speak these.
"""

from dataclasses import dataclass

# The network the onramp (demo faucet) records its credits on as deposits: no network is
# configured by this name, it takes no address, and a deposit on it is confirmed at once.
ONRAMP_NETWORK = "Onramp"


@dataclass(frozen=True, slots=True)
class Asset:
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """A market as configured, in decimal strings (the config file and the admin RPC)."""

    symbol: str
    base: str
    quote: str
    tick_size: str
    step_size: str
    min_quantity: str
    min_notional: str
    max_quantity: str
    max_price: str
    maker_fee_bps: int
    taker_fee_bps: int
    max_triggers: int = 0  # pending triggers per user in this market; 0: the engine's default
