"""The markets file: assets and markets listed at first start, as engine commands."""

import tomllib
from pathlib import Path
from typing import Any

from engine_svc.core.commands import AddAsset, AddMarket, Command
from tradekit.markets import Asset, MarketSpec

DEFAULT_MARKETS_FILE = Path(__file__).with_name("markets.toml")


class ConfigError(ValueError):
    pass


def listing_commands(path: Path) -> list[Command]:
    """AddAsset/AddMarket commands for the file's contents, assets first."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"markets file {path}: {exc}") from None
    commands: list[Command] = []
    for item in data.get("assets", []):
        commands.append(AddAsset(Asset(_str(item, "symbol", path), _int(item, "decimals", path))))
    for item in data.get("markets", []):
        spec = MarketSpec(
            symbol=_str(item, "symbol", path),
            base=_str(item, "base", path),
            quote=_str(item, "quote", path),
            tick_size=_str(item, "tick_size", path),
            step_size=_str(item, "step_size", path),
            min_quantity=_str(item, "min_quantity", path),
            min_notional=_str(item, "min_notional", path),
            max_quantity=_str(item, "max_quantity", path),
            max_price=_str(item, "max_price", path),
            maker_fee_bps=_int(item, "maker_fee_bps", path),
            taker_fee_bps=_int(item, "taker_fee_bps", path),
        )
        commands.append(AddMarket(spec))
    return commands


def _str(item: dict[str, Any], key: str, path: Path) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise ConfigError(f"markets file {path}: {key} must be a string, got {value!r}")
    return value


def _int(item: dict[str, Any], key: str, path: Path) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"markets file {path}: {key} must be an integer, got {value!r}")
    return value
