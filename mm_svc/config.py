"""The market maker's configuration: one TOML file (MM_CONFIG) plus environment overrides.

Every value is checked when the file is read; a wrong one raises ConfigError naming it, e.g.
`markets[TATA_INR].spread_bps must be > 0, got -5`, and unknown keys are errors too (a typo
must not silently fall back to a default). Prices, sizes and amounts are decimal strings
(TOML integers are accepted); they become `Decimal`s, never floats.

Layout (see mm_svc/mm.toml): `[maker]` with `[maker.fund]`, `[flow]` with `[flow.fund]`,
`[defaults]` holding any market key, and one `[[markets]]` table per market, with a
`[markets.walk]` or `[markets.file]` table for those reference prices.
"""

from __future__ import annotations

import csv
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from mm_svc.client_ids import MAX_LEVELS, MAX_TAG, market_hash
from mm_svc.units import BPS
from servicekit.settings import SettingsError, env_bool, env_float, env_int

DEFAULT_CONFIG_FILE = Path(__file__).with_name("mm.toml")
MAX_USER_ID = 2**64 - 1

Reference = Literal["book", "walk", "file"]


class ConfigError(SettingsError):
    """The configuration file or an override is wrong; the message says where."""


@dataclass(frozen=True)
class WalkConfig:
    """A seeded random walk: each maker cycle moves the price by drift + volatility x N(0,1)
    basis points."""

    seed: int
    drift_bps: Decimal
    volatility_bps: Decimal


@dataclass(frozen=True)
class PriceFile:
    """A CSV of (timestamp, price) replayed `speed` times faster than it was recorded."""

    path: Path
    speed: float
    loop: bool
    points: tuple[tuple[float, Decimal], ...]  # (seconds, price), in time order


@dataclass(frozen=True)
class MarketConfig:
    symbol: str
    reference: Reference
    start_price: Decimal | None  # the first reference price (book, walk)
    levels: int  # quotes per side
    spread_bps: Decimal  # between the best bid and the best ask quoted
    level_spacing_bps: Decimal  # between consecutive levels of a side
    size: Decimal  # base quantity of the innermost level
    size_growth: Decimal  # each level is this many times the size of the one inside it
    requote_tolerance_bps: Decimal  # a quote further than this from its target is replaced
    refill_below: Decimal  # ...and one with less than this fraction of its size left
    skew_bps: Decimal  # quotes shift by this much against a position at its maximum
    inventory_target: Decimal  # base the maker aims to hold; position = holdings - target
    max_position: Decimal  # |position| never goes beyond this, in base
    max_open_orders: int
    max_order_size: Decimal  # base
    flow_size: Decimal  # largest base quantity of a simulated trader's order; 0 = none
    walk: WalkConfig | None
    price_file: PriceFile | None


@dataclass(frozen=True)
class MakerConfig:
    user_id: int
    client_tag: int
    cycle_seconds: float
    fund_on_start: bool
    cancel_on_stop: bool
    fund: Mapping[str, Decimal]  # topped up to these totals at start when fund_on_start


@dataclass(frozen=True)
class FlowConfig:
    users: tuple[int, ...]
    rate: float  # orders per second over all markets (Poisson arrivals)
    market_order_share: float
    limit_offset_bps: Decimal  # limit prices fall within this distance of the mid
    max_open_per_user: int  # older resting orders are cancelled beyond this
    seed: int
    cancel_on_stop: bool
    fund: Mapping[str, Decimal]  # each user is topped up to these at start and when short


@dataclass(frozen=True)
class Config:
    maker: MakerConfig
    flow: FlowConfig
    markets: tuple[MarketConfig, ...]


def load_config(path: Path) -> Config:
    """Read and check `path`, then apply the environment's overrides."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"MM_CONFIG {path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"MM_CONFIG {path}: not valid TOML: {exc}") from None
    try:
        return _overridden(_config(_Table(raw, ""), path.parent))
    except ConfigError as exc:
        raise ConfigError(f"MM_CONFIG {path}: {exc}") from None


def _overridden(config: Config) -> Config:
    """MM_USER_ID, MM_FUND, MM_CANCEL_ON_STOP, MM_CYCLE_SECONDS, MM_FLOW_RATE replace the
    file's values; MM_MARKETS (comma-separated) keeps only those markets."""
    maker = replace(
        config.maker,
        user_id=env_int("MM_USER_ID", config.maker.user_id, low=1, high=MAX_USER_ID),
        fund_on_start=env_bool("MM_FUND", config.maker.fund_on_start),
        cancel_on_stop=env_bool("MM_CANCEL_ON_STOP", config.maker.cancel_on_stop),
        cycle_seconds=env_float("MM_CYCLE_SECONDS", config.maker.cycle_seconds, low=0.01),
    )
    flow = replace(config.flow, rate=env_float("MM_FLOW_RATE", config.flow.rate))
    markets = config.markets
    names = [name.strip() for name in os.environ.get("MM_MARKETS", "").split(",")]
    if any(names):
        known = {m.symbol: m for m in markets}
        unknown = [name for name in names if name and name not in known]
        if unknown:
            raise ConfigError(f"MM_MARKETS names markets not in the file: {', '.join(unknown)}")
        markets = tuple(known[name] for name in dict.fromkeys(names) if name)
    if maker.user_id in flow.users:
        raise ConfigError(
            f"the maker's user id {maker.user_id} (maker.user_id, MM_USER_ID) is also a flow user"
        )
    return Config(maker, flow, markets)


class _Table:
    """One TOML table being read: typed getters that name the key on error, and a check
    that nothing unknown is left."""

    def __init__(self, data: Mapping[str, object], where: str) -> None:
        self._data = dict(data)
        self._where = where

    def _name(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def _error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self._name(key)} {problem}")

    def _take(self, key: str) -> object:
        if key not in self._data:
            raise self._error(key, "is required")
        return self._data.pop(key)

    def has(self, key: str) -> bool:
        return key in self._data

    def integer(
        self, key: str, default: int | None = None, *, low: int = 0, high: int = MAX_USER_ID
    ) -> int:
        value = self._take(key) if default is None or key in self._data else default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._error(key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise self._error(key, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float | None = None) -> float:
        value = self._data.pop(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._error(key, f"must be a number, got {value!r}")
        if not (value >= low and (high is None or value <= high)):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise self._error(key, f"must be {bound}, got {value}")
        return float(value)

    def decimal(
        self, key: str, default: str | None = None, *, low: Decimal = Decimal(0), strict: bool
    ) -> Decimal:
        """A decimal >= `low` (> `low` when `strict`), from a string or an integer."""
        value = self._take(key) if default is None or key in self._data else default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._error(key, f"must be a decimal string, got {value!r}")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self._error(key, f"must be a decimal number, got {value!r}") from None
        if not number.is_finite() or number < low or (strict and number == low):
            raise self._error(key, f"must be {'>' if strict else '>='} {low}, got {value}")
        return number

    def user_ids(self, key: str) -> list[int]:
        value = self._data.pop(key, [])
        if not isinstance(value, list) or not all(
            isinstance(u, int) and not isinstance(u, bool) and 0 < u <= MAX_USER_ID for u in value
        ):
            raise self._error(key, f"must be a list of user ids > 0, got {value!r}")
        if len(set(value)) != len(value):
            raise self._error(key, "lists a user twice")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._data.pop(key, default)
        if not isinstance(value, bool):
            raise self._error(key, f"must be true or false, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self._take(key) if default is None or key in self._data else default
        if not isinstance(value, str) or not value:
            raise self._error(key, f"must be a non-empty string, got {value!r}")
        return value

    def table(self, key: str) -> _Table:
        value = self._data.pop(key, {})
        if not isinstance(value, dict):
            raise self._error(key, "must be a table")
        return _Table(value, self._name(key))

    def tables(self, key: str) -> list[dict[str, object]]:
        value = self._take(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            raise self._error(key, "must be one or more [[tables]]")
        return value

    def amounts(self, key: str) -> dict[str, Decimal]:
        table = self.table(key)
        amounts = {asset: table.decimal(asset, strict=True) for asset in list(table._data)}
        table.done()
        return amounts

    def done(self) -> None:
        if self._data:
            names = ", ".join(self._name(key) for key in sorted(self._data))
            raise ConfigError(f"unknown setting(s): {names}")


def _config(root: _Table, base_dir: Path) -> Config:
    maker_table = root.table("maker")
    maker = MakerConfig(
        user_id=maker_table.integer("user_id", low=1),
        client_tag=maker_table.integer("client_tag", low=1, high=MAX_TAG),
        cycle_seconds=maker_table.number("cycle_seconds", 1.0, low=0.01),
        fund_on_start=maker_table.boolean("fund_on_start", False),
        cancel_on_stop=maker_table.boolean("cancel_on_stop", True),
        fund=maker_table.amounts("fund"),
    )
    maker_table.done()
    flow = _flow(root.table("flow"))
    # [defaults] holds market keys that every [[markets]] table may override.
    defaults = root.table("defaults")._data
    markets = tuple(
        _market(_Table({**defaults, **raw}, f"markets[{raw.get('symbol', i)}]"), base_dir)
        for i, raw in enumerate(root.tables("markets"))
    )
    root.done()
    symbols = [market.symbol for market in markets]
    by_hash: dict[int, str] = {}
    for symbol in symbols:
        if symbols.count(symbol) > 1:
            raise ConfigError(f"market {symbol} is listed twice")
        other = by_hash.setdefault(market_hash(symbol), symbol)
        if other != symbol:
            raise ConfigError(f"markets {other} and {symbol} share a client id hash; rename one")
    return Config(maker, flow, markets)


def _flow(table: _Table) -> FlowConfig:
    users = table.user_ids("users")
    flow = FlowConfig(
        users=tuple(users),
        rate=table.number("rate", 1.0, low=0.0),
        market_order_share=table.number("market_order_share", 0.5, low=0.0, high=1.0),
        limit_offset_bps=table.decimal("limit_offset_bps", "20", strict=False),
        max_open_per_user=table.integer("max_open_per_user", 10, low=1, high=10_000),
        seed=table.integer("seed", 1),
        cancel_on_stop=table.boolean("cancel_on_stop", True),
        fund=table.amounts("fund"),
    )
    table.done()
    return flow


def _market(table: _Table, base_dir: Path) -> MarketConfig:
    symbol = table.text("symbol")
    reference = table.text("reference", "book")
    if reference not in ("book", "walk", "file"):
        raise ConfigError(
            f"markets[{symbol}].reference must be book, walk or file, got {reference!r}"
        )
    needs_start = reference != "file" or table.has("start_price")
    market = MarketConfig(
        symbol=symbol,
        reference=reference,  # type: ignore[arg-type]  # checked just above
        start_price=table.decimal("start_price", strict=True) if needs_start else None,
        levels=table.integer("levels", 5, low=1, high=MAX_LEVELS - 1),
        spread_bps=table.decimal("spread_bps", strict=True),
        level_spacing_bps=table.decimal("level_spacing_bps", "10", strict=True),
        size=table.decimal("size", strict=True),
        size_growth=table.decimal("size_growth", "1", strict=True),
        requote_tolerance_bps=table.decimal("requote_tolerance_bps", "5", strict=False),
        refill_below=table.decimal("refill_below", "0.5", strict=False),
        skew_bps=table.decimal("skew_bps", "0", strict=False),
        inventory_target=table.decimal("inventory_target", "0", strict=False),
        max_position=table.decimal("max_position", strict=True),
        max_open_orders=table.integer("max_open_orders", 2 * MAX_LEVELS, low=1),
        max_order_size=table.decimal("max_order_size", strict=True),
        flow_size=table.decimal("flow_size", "0", strict=False),
        walk=_walk(table.table("walk")) if reference == "walk" else None,
        price_file=_price_file(table.table("file"), base_dir) if reference == "file" else None,
    )
    for unused in ("walk", "file"):
        if table.has(unused):
            raise ConfigError(f"markets[{symbol}].{unused} is set but reference is {reference}")
    table.done()
    if market.refill_below > 1:
        raise ConfigError(f"markets[{symbol}].refill_below must be at most 1")
    widest = market.spread_bps / 2 + (market.levels - 1) * market.level_spacing_bps
    if widest + market.skew_bps >= BPS:
        raise ConfigError(
            f"markets[{symbol}]: half the spread, the levels' spacing and the skew reach "
            f"{widest + market.skew_bps} bps; they must stay below 10000 so bids stay positive"
        )
    return market


def _walk(table: _Table) -> WalkConfig:
    walk = WalkConfig(
        seed=table.integer("seed", 1),
        drift_bps=table.decimal("drift_bps", "0", low=-BPS, strict=False),
        volatility_bps=table.decimal("volatility_bps", "5", strict=False),
    )
    table.done()
    return walk


def _price_file(table: _Table, base_dir: Path) -> PriceFile:
    path = base_dir / table.text("path")
    speed = table.number("speed", 1.0, low=0.0)
    if speed <= 0:
        raise ConfigError(f"{table._name('speed')} must be > 0")
    loop = table.boolean("loop", True)
    table.done()
    return PriceFile(path, speed, loop, read_price_file(path))


def read_price_file(path: Path) -> tuple[tuple[float, Decimal], ...]:
    """Rows of `timestamp,price`: Unix seconds or ISO 8601, then a decimal price. A first
    row that is not data is a header. Timestamps must not go backwards."""
    try:
        with path.open(newline="") as file:
            rows = [row for row in csv.reader(file) if row and any(cell.strip() for cell in row)]
    except OSError as exc:
        raise ConfigError(f"price file {path}: cannot read it ({exc.strerror})") from None
    points: list[tuple[float, Decimal]] = []
    for number, row in enumerate(rows, 1):
        try:
            if len(row) < 2:
                raise ValueError("expected timestamp,price")
            when, price = _timestamp(row[0].strip()), Decimal(row[1].strip())
        except (ValueError, InvalidOperation) as exc:
            if number == 1:
                continue  # a header
            raise ConfigError(f"price file {path} line {number}: {exc or 'bad price'}") from None
        if not price.is_finite() or price <= 0:
            raise ConfigError(f"price file {path} line {number}: price must be > 0")
        if points and when < points[-1][0]:
            raise ConfigError(f"price file {path} line {number}: time goes backwards")
        points.append((when, price))
    if not points:
        raise ConfigError(f"price file {path} has no rows of timestamp,price")
    return tuple(points)


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
