"""Market administration: listing assets and markets, halting and reopening a market."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine_svc.core.commands import AddAsset, AddMarket, SetMarketStatus
from engine_svc.core.events import AssetListed, Event, MarketListed, MarketStatusChanged
from engine_svc.core.markets import build_market, validate_asset
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
