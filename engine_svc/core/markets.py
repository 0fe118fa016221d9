"""Assets and markets: the rules every amount is checked against.

A price is an integer number of the quote asset's smallest units per one whole
base unit; a quantity is an integer number of the base asset's smallest units.
So notional = price * quantity // 10**base_decimals, in quote units, and a market
is refused unless tick * step makes that division exact for every order.
"""

from dataclasses import dataclass

from engine_svc.core.types import Code, MarketStatus, Rejected
from tradekit.markets import Asset, MarketSpec
from tradekit.money import MAX_UNITS, AmountError, format_units, parse_units

MAX_FEE_BPS = 1000
MAX_DECIMALS = 18
DEFAULT_MAX_TRIGGERS = 100  # a market's pending triggers per user when its spec says 0
# A user's pending triggers in all markets until SetTriggerLimit says otherwise;
# take-profit / stop-loss legs count, but never refuse.
DEFAULT_MAX_TRIGGERS_TOTAL = 500
MAX_TRIGGER_LIMIT = 1_000_000  # what SetTriggerLimit accepts at most


@dataclass(slots=True)
class Market:
    """A market's rules in integer units. Of those only `status` ever changes; the trade
    counts (for metrics, since the process started, journal replay included) are not
    state: no snapshot holds them and `state_hash` ignores them. `last_price` (the price
    of the latest trade, 0 before any) is state: triggers are placed and fire against it.
    `base_symbol` and `quote_symbol` repeat the assets' symbols as the compiled core's own
    fields: the hot path reads them per order, and an Asset's attribute (tradekit, not
    compiled) is a slow generic lookup."""

    spec: MarketSpec
    base: Asset
    quote: Asset
    base_symbol: str
    quote_symbol: str
    tick: int
    step: int
    min_qty: int
    min_notional: int
    max_qty: int
    max_price: int
    maker_bps: int
    taker_bps: int
    base_scale: int
    max_triggers: int
    status: MarketStatus = MarketStatus.OPEN
    trades: int = 0
    traded_qty: int = 0  # base units
    traded_quote: int = 0  # quote units (notional)
    last_price: int = 0

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def notional(self, price: int, qty: int) -> int:
        return price * qty // self.base_scale

    def fmt_price(self, price: int) -> str:
        return format_units(price, self.quote.decimals)

    def fmt_qty(self, qty: int) -> str:
        return format_units(qty, self.base.decimals)

    def fmt_quote(self, amount: int) -> str:
        return format_units(amount, self.quote.decimals)


def _config_error(message: str) -> Rejected:
    return Rejected(Code.INVALID_MARKET_CONFIG, message)


def validate_asset(asset: Asset) -> None:
    if not asset.symbol.isalnum() or not asset.symbol.isupper() or len(asset.symbol) > 16:
        raise _config_error(f"asset symbol {asset.symbol!r} must be 1-16 uppercase letters/digits")
    if not 0 <= asset.decimals <= MAX_DECIMALS:
        raise _config_error(f"asset {asset.symbol}: decimals must be 0..{MAX_DECIMALS}")


def build_market(spec: MarketSpec, assets: dict[str, Asset]) -> Market:
    """Checks a market spec against its assets and converts it to integer units."""
    if spec.symbol != f"{spec.base}_{spec.quote}":
        raise _config_error(f"market symbol must be BASE_QUOTE, got {spec.symbol!r}")
    base, quote = assets.get(spec.base), assets.get(spec.quote)
    if base is None or quote is None:
        missing = spec.base if base is None else spec.quote
        raise Rejected(Code.UNKNOWN_ASSET, f"market {spec.symbol}: unknown asset {missing}")
    if base.symbol == quote.symbol:
        raise _config_error("base and quote must differ")

    def units(field: str, text: str, decimals: int) -> int:
        try:
            return parse_units(text, decimals)
        except AmountError as exc:
            raise _config_error(f"market {spec.symbol}: {field}: {exc}") from None

    tick = units("tick_size", spec.tick_size, quote.decimals)
    step = units("step_size", spec.step_size, base.decimals)
    min_qty = units("min_quantity", spec.min_quantity, base.decimals)
    min_notional = units("min_notional", spec.min_notional, quote.decimals)
    max_qty = units("max_quantity", spec.max_quantity, base.decimals)
    max_price = units("max_price", spec.max_price, quote.decimals)
    base_scale = 10**base.decimals
    if tick <= 0 or step <= 0:
        raise _config_error(f"market {spec.symbol}: tick and step must be positive")
    if tick * step % base_scale:
        raise _config_error(
            f"market {spec.symbol}: tick {spec.tick_size} x step {spec.step_size} is finer than "
            f"{quote.symbol}'s {quote.decimals} decimals, so trades could not settle exactly"
        )
    if min_qty % step or max_qty % step or max_price % tick:
        raise _config_error(f"market {spec.symbol}: limits must be on the tick/step")
    if not step <= max_qty or min_qty > max_qty or max_price <= 0:
        raise _config_error(f"market {spec.symbol}: inconsistent limits")
    if max_price * max_qty // base_scale > MAX_UNITS:
        raise _config_error(f"market {spec.symbol}: max_price x max_quantity is too large")
    for name, bps in (("maker_fee_bps", spec.maker_fee_bps), ("taker_fee_bps", spec.taker_fee_bps)):
        if not 0 <= bps <= MAX_FEE_BPS:
            raise _config_error(f"market {spec.symbol}: {name} must be 0..{MAX_FEE_BPS}")
    if spec.max_triggers < 0:
        raise _config_error(f"market {spec.symbol}: max_triggers must be >= 0")
    return Market(
        spec=spec,
        base=base,
        quote=quote,
        base_symbol=base.symbol,
        quote_symbol=quote.symbol,
        tick=tick,
        step=step,
        min_qty=max(min_qty, step),
        min_notional=min_notional,
        max_qty=max_qty,
        max_price=max_price,
        maker_bps=spec.maker_fee_bps,
        taker_bps=spec.taker_fee_bps,
        base_scale=base_scale,
        max_triggers=spec.max_triggers or DEFAULT_MAX_TRIGGERS,
    )
