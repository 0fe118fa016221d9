"""Market administration: listing assets and markets, halting and reopening a market,
the limit on a user's pending triggers in all markets."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.commands import AddAsset, AddMarket, SetMarketStatus, SetTriggerLimit
from engine_svc.core.events import (
    AssetListed,
    Event,
    MarketListed,
    MarketStatusChanged,
    TriggerLimitSet,
)
from engine_svc.core.markets import MAX_TRIGGER_LIMIT, build_market, validate_asset
from engine_svc.core.types import Code, Rejected

if TYPE_CHECKING:
    from engine_svc.core.engine import Engine


def add_asset(e: Engine, c: AddAsset, ts: int) -> list[Event]:
    validate_asset(c.asset)
    if c.asset.symbol in e.assets:
        raise Rejected(Code.ALREADY_EXISTS, f"asset {c.asset.symbol} exists")
    e.assets[c.asset.symbol] = c.asset
    e.seq += 1
    return [AssetListed(e.seq, ts, c.asset)]


def add_market(e: Engine, c: AddMarket, ts: int) -> list[Event]:
    if c.spec.symbol in e.markets:
        raise Rejected(Code.ALREADY_EXISTS, f"market {c.spec.symbol} exists")
    e.markets[c.spec.symbol] = build_market(c.spec, e.assets)
    e.books[c.spec.symbol] = e.book_factory()
    e.trigger_books[c.spec.symbol] = e.trigger_factory()
    e.seq += 1
    return [MarketListed(e.seq, ts, c.spec)]


def set_market_status(e: Engine, c: SetMarketStatus, ts: int) -> list[Event]:
    market = e.market(c.market)
    if market.status == c.status:
        return []
    market.status = c.status
    e.seq += 1
    return [MarketStatusChanged(e.seq, ts, c.market, c.status)]


def set_trigger_limit(e: Engine, c: SetTriggerLimit, ts: int) -> list[Event]:
    """A lower limit refuses new triggers only: those already pending stay."""
    if not 1 <= c.total <= MAX_TRIGGER_LIMIT:
        raise Rejected(
            Code.INVALID_MARKET_CONFIG,
            f"the pending-trigger limit must be from 1 to {MAX_TRIGGER_LIMIT}, got {c.total}",
        )
    if c.total == e.max_triggers_total:
        return []
    e.max_triggers_total = c.total
    e.seq += 1
    return [TriggerLimitSet(e.seq, ts, c.total)]
