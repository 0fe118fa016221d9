"""The markets file: assets, markets and networks listed at first start, and the limit on a
user's pending triggers in all markets, as engine commands."""

import tomllib
from pathlib import Path
from typing import Any

from engine_svc.core.capital_messages import AddNetwork, AddressFormat, NetworkSpec
from engine_svc.core.commands import AddAsset, AddMarket, Command, SetTriggerLimit
from tradekit.markets import Asset, MarketSpec

DEFAULT_MARKETS_FILE = Path(__file__).with_name("markets.toml")


class ConfigError(ValueError):
    pass


def listing_commands(path: Path) -> list[Command]:
    """AddAsset/AddMarket/AddNetwork commands for the file's contents, assets first."""
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
            max_triggers=_int(item, "max_triggers", path) if "max_triggers" in item else 0,
        )
        commands.append(AddMarket(spec))
    for item in data.get("networks", []):
        commands.append(AddNetwork(_network(item, path)))
    if "max_triggers_total" in data:  # else the engine's default
        commands.append(SetTriggerLimit(_int(data, "max_triggers_total", path)))
    return commands


def _network(item: dict[str, Any], path: Path) -> NetworkSpec:
    fmt = _str(item, "address_format", path)
    if fmt.upper() not in AddressFormat.__members__:
        raise ConfigError(f"markets file {path}: address_format must be evm or base58")
    return NetworkSpec(
        asset=_str(item, "asset", path),
        network=_str(item, "network", path),
        address_format=AddressFormat[fmt.upper()],
        deposit_enabled=_bool(item, "deposit_enabled", path),
        withdraw_enabled=_bool(item, "withdraw_enabled", path),
        withdrawal_fee=_str(item, "withdrawal_fee", path),
        min_withdrawal=_str(item, "min_withdrawal", path),
        max_withdrawal=_str(item, "max_withdrawal", path),
        confirmations=_int(item, "confirmations", path),
        approval_threshold=_str(item, "approval_threshold", path),
        daily_limit=_str(item, "daily_limit", path),
    )


def _bool(item: dict[str, Any], key: str, path: Path) -> bool:
    value = item.get(key)
    if not isinstance(value, bool):
        raise ConfigError(f"markets file {path}: {key} must be true or false, got {value!r}")
    return value


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
