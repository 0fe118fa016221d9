"""Read queries over the ledger's tables, answered as protobuf messages.

Every query is an index range scan: trades by (market, trade_id) or (user, time), candles by
(market, interval, open time) over a window widened until it holds enough, orders and
ledger transfers by (user, id). The 24-hour ticker reads the window's whole minutes from the
1-minute candles and only the trades of its first, partial minute from `trades`, found by
the trade id range of that minute's candle, so its cost does not grow with the market's
volume and it is still exact to the microsecond.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from exchange.common.v1 import common_pb2 as cpb
from exchange.ledger.v1 import ledger_pb2 as lpb
from ledger_svc.db import Conn
from ledger_svc.projection import FEE_ACCOUNT, TRANSFERS_PER_EVENT
from tradekit.candles import MINUTE_US, bucket_start
from tradekit.money import format_units

DAY_US = 86_400_000_000
MAX_LIMIT = 1000
KLINE_WIDENING = 8  # how much wider each further read of GetKlines' window is


class UnknownMarket(LookupError):
    pass


@dataclass
class Directory:
    """Assets and markets as stored, with what formatting needs; reloaded when one is missing."""

    asset_decimals: dict[str, int] = field(default_factory=dict)
    markets: dict[str, cpb.Market] = field(default_factory=dict)

    @classmethod
    async def load(cls, conn: Conn) -> Directory:
        directory = cls()
        for symbol, decimals in await conn.fetch("SELECT symbol, decimals FROM assets"):
            directory.asset_decimals[symbol] = decimals
        rows = await conn.fetch(
            """SELECT symbol, base, quote, tick_size, step_size, min_quantity, min_notional,
                      max_quantity, max_price, maker_fee_bps, taker_fee_bps, status
               FROM markets ORDER BY symbol"""
        )
        for row in rows:
            directory.markets[row["symbol"]] = cpb.Market(**dict(row))
        return directory

    def scales(self, market: str) -> tuple[int, int]:
        """(base decimals, quote decimals) of `market`. Raises UnknownMarket."""
        m = self.markets.get(market)
        if m is None:
            raise UnknownMarket(market)
        return self.asset_decimals[m.base], self.asset_decimals[m.quote]

    def quote_asset(self, market: str) -> str:
        return self.markets[market].quote


def clamp_limit(limit: int, default: int) -> int:
    return default if limit == 0 else min(limit, MAX_LIMIT)


def _direction(oldest_first: bool) -> str:
    return "ASC" if oldest_first else "DESC"


async def get_trades(
    conn: Conn, directory: Directory, request: lpb.GetTradesRequest
) -> lpb.GetTradesReply:
    base_dec, quote_dec = directory.scales(request.market)
    rows = await conn.fetch(
        f"""SELECT trade_id, price, quantity, quote_quantity, taker_side, ts_us, seq,
                   maker_order_id, taker_order_id
            FROM trades
            WHERE market = $1 AND trade_id < $2 AND trade_id > $3
                  AND ts_us >= $5 AND ts_us < $6
            ORDER BY trade_id {_direction(request.oldest_first)} LIMIT $4""",
        request.market,
        request.before_id or 2**63 - 1,
        request.after_id,
        clamp_limit(request.limit, 100),
        request.from_us,
        request.to_us or 2**63 - 1,
    )
    return lpb.GetTradesReply(
        trades=[
            lpb.Trade(
                trade_id=r[0],
                market=request.market,
                price=format_units(r[1], quote_dec),
                quantity=format_units(r[2], base_dec),
                quote_quantity=format_units(r[3], quote_dec),
                taker_side=r[4],
                ts_us=r[5],
                seq=r[6],
                maker_order_id=r[7],
                taker_order_id=r[8],
            )
            for r in rows
        ]
    )


async def get_klines(
    conn: Conn, directory: Directory, request: lpb.GetKlinesRequest, now_us: int
) -> lpb.GetKlinesReply:
    base_dec, quote_dec = directory.scales(request.market)
    interval = int(request.interval)
    width = interval * 1_000_000
    # A bucket that began before `start` but ends after it is not in the range.
    start, end = request.start_time_us, request.end_time_us or now_us + 1
    limit = clamp_limit(request.limit, 500)
    # The newest `limit` candles of [start, end) are those of [lower, end) whenever that
    # holds `limit` of them. Starting from the last `limit` buckets and widening keeps the
    # read short: TimescaleDB's aggregates are not read in bucket order, so an open range
    # would be scanned and sorted whole (a month of minutes: ~80 ms against ~1 ms).
    span = limit * width
    while True:
        lower = max(start, end - span)
        rows = await conn.fetch(
            """SELECT open_time_us, open, high, low, close, volume, quote_volume, trades
               FROM candles
               WHERE market = $1 AND interval_s = $2 AND open_time_us >= $3
                     AND open_time_us < $4
               ORDER BY open_time_us DESC LIMIT $5""",
            request.market,
            interval,
            lower,
            end,
            limit,
        )
        if len(rows) == limit or lower == start:
            break
        span *= KLINE_WIDENING
    return lpb.GetKlinesReply(
        klines=[
            lpb.Kline(
                open_time_us=r[0],
                close_time_us=r[0] + width,
                open=format_units(r[1], quote_dec),
                high=format_units(r[2], quote_dec),
                low=format_units(r[3], quote_dec),
                close=format_units(r[4], quote_dec),
                volume=format_units(int(r[5]), base_dec),
                quote_volume=format_units(int(r[6]), quote_dec),
                trades=r[7],
            )
            for r in reversed(rows)
        ]
    )


async def get_tickers(
    conn: Conn, directory: Directory, markets: list[str], now_us: int
) -> list[lpb.Ticker]:
    """The rolling 24h ticker of each of `markets` (known ones), in the order given."""
    window_start = now_us - DAY_US
    whole_minutes = bucket_start(window_start + MINUTE_US - 1, 60)
    # Every trade of the partial minute [window_start, whole_minutes) is one of the minute's
    # candle: its id lies between the candle's first and last, whatever the clock did.
    rows = await conn.fetch(
        """WITH parts AS (
               SELECT t.market, t.trade_id AS first_id, t.trade_id AS last_id, t.price AS open,
                      t.price AS close, t.price AS high, t.price AS low,
                      t.quantity::numeric AS volume,
                      t.quote_quantity::numeric AS quote_volume, 1::bigint AS trades
               FROM candles m JOIN trades t ON t.market = m.market
                    AND t.trade_id BETWEEN m.first_trade_id AND m.last_trade_id
               WHERE m.market = ANY($1) AND m.interval_s = 60 AND m.open_time_us = $5
                     AND t.ts_us >= $2 AND t.ts_us < $3 AND t.ts_us <= $4
               UNION ALL
               SELECT market, first_trade_id, last_trade_id, open, close, high, low, volume,
                      quote_volume, trades
               FROM candles
               WHERE market = ANY($1) AND interval_s = 60 AND open_time_us >= $3
                     AND open_time_us <= $4)
           SELECT market, (array_agg(open ORDER BY first_id))[1],
                  (array_agg(close ORDER BY last_id DESC))[1], max(high), min(low),
                  sum(volume), sum(quote_volume), sum(trades), min(first_id), max(last_id)
           FROM parts GROUP BY market""",
        markets,
        window_start,
        whole_minutes,
        now_us,
        bucket_start(window_start, 60),
    )
    by_market = {r[0]: r for r in rows}
    tickers = []
    for market in markets:
        base_dec, quote_dec = directory.scales(market)
        r = by_market.get(market)
        if r is None:
            tickers.append(lpb.Ticker(market=market, volume="0", quote_volume="0", ts_us=now_us))
            continue
        open_, last = r[1], r[2]
        change = last - open_
        percent = (Decimal(100 * change) / Decimal(open_)).quantize(
            Decimal("0.01"), ROUND_HALF_EVEN
        )
        tickers.append(
            lpb.Ticker(
                market=market,
                open=format_units(open_, quote_dec),
                high=format_units(r[3], quote_dec),
                low=format_units(r[4], quote_dec),
                last=format_units(last, quote_dec),
                volume=format_units(int(r[5]), base_dec),
                quote_volume=format_units(int(r[6]), quote_dec),
                change=format_units(change, quote_dec),
                change_percent=str(percent),
                trades=int(r[7]),
                ts_us=now_us,
                first_trade_id=r[8],
                last_trade_id=r[9],
            )
        )
    return tickers


async def get_order_history(
    conn: Conn, directory: Directory, request: lpb.GetOrderHistoryRequest
) -> lpb.GetOrderHistoryReply:
    limit = clamp_limit(request.limit, 100)
    rows = await conn.fetch(
        f"""SELECT * FROM orders
            WHERE user_id = $1 AND ($2 = '' OR market = $2) AND ($3 = 0 OR status = $3)
                  AND order_id < $4 AND order_id >= $6
                  AND created_at_us >= $7 AND created_at_us < $8
            ORDER BY order_id {_direction(request.oldest_first)} LIMIT $5""",
        request.user_id,
        request.market,
        int(request.status),
        request.cursor or 2**63 - 1,
        limit,
        request.from_id,
        request.from_us,
        request.to_us or 2**63 - 1,
    )
    orders = []
    for r in rows:
        base_dec, quote_dec = directory.scales(r["market"])
        orders.append(
            cpb.Order(
                order_id=r["order_id"],
                client_order_id=r["client_order_id"],
                user_id=r["user_id"],
                market=r["market"],
                side=r["side"],
                type=r["type"],
                time_in_force=r["time_in_force"],
                self_trade_prevention=r["self_trade_prevention"],
                post_only=r["post_only"],
                price=_optional(r["price"], quote_dec),
                quantity=_optional(r["quantity"], base_dec),
                quote_quantity=_optional(r["quote_quantity"], quote_dec),
                executed_quantity=format_units(r["executed_quantity"], base_dec),
                executed_quote_quantity=format_units(r["executed_quote_quantity"], quote_dec),
                fees_paid=format_units(r["fees_paid"], quote_dec),
                status=r["status"],
                close_reason=r["close_reason"],
                created_at_us=r["created_at_us"],
                updated_at_us=r["updated_at_us"],
                locked=format_units(
                    r["locked"], quote_dec if r["side"] == cpb.SIDE_BUY else base_dec
                ),
                trigger_price=_optional(r["trigger_price"], quote_dec),
                trigger_above=bool(r["trigger_above"]),
                take_profit_trigger_price=_optional(r["take_profit_trigger_price"], quote_dec),
                take_profit_limit_price=_optional(r["take_profit_limit_price"], quote_dec),
                stop_loss_trigger_price=_optional(r["stop_loss_trigger_price"], quote_dec),
                stop_loss_limit_price=_optional(r["stop_loss_limit_price"], quote_dec),
                parent_order_id=r["parent_order_id"] or 0,
                related_order_id=r["related_order_id"] or 0,
                triggered_at_us=r["triggered_at_us"] or 0,
                trigger_failure=r["trigger_failure"] or "",
            )
        )
    more = len(rows) == limit and not request.oldest_first
    return lpb.GetOrderHistoryReply(orders=orders, next_cursor=rows[-1][0] if more else 0)


async def get_fills(
    conn: Conn, directory: Directory, request: lpb.GetFillsRequest
) -> lpb.GetFillsReply:
    # One index scan for the fills where the user made, one where it took.
    way = _direction(request.oldest_first)
    rows = await conn.fetch(
        f"""SELECT f.*, coalesce(o.client_order_id, 0) AS client_order_id FROM (
               (SELECT trade_id, market, price, quantity, quote_quantity, ts_us,
                       maker_order_id AS order_id, 3 - taker_side AS side,
                       maker_fee AS fee, true AS is_maker
                FROM trades WHERE maker_user_id = $1 AND ts_us >= $2 AND ts_us < $3
                     AND ($4 = '' OR market = $4) AND ($5::bigint = 0 OR maker_order_id = $5)
                     AND trade_id >= $7
                ORDER BY ts_us {way} LIMIT $6)
               UNION ALL
               (SELECT trade_id, market, price, quantity, quote_quantity, ts_us,
                       taker_order_id, taker_side, taker_fee, false
                FROM trades WHERE taker_user_id = $1 AND ts_us >= $2 AND ts_us < $3
                     AND ($4 = '' OR market = $4) AND ($5::bigint = 0 OR taker_order_id = $5)
                     AND trade_id >= $7
                ORDER BY ts_us {way} LIMIT $6)) AS f
           LEFT JOIN orders o ON o.order_id = f.order_id
           ORDER BY f.ts_us {way}, f.trade_id {way}, f.is_maker LIMIT $6""",
        request.user_id,
        request.from_us,
        request.to_us or 2**63 - 1,
        request.market,
        request.order_id,
        clamp_limit(request.limit, 100),
        request.from_trade_id,
    )
    fills = []
    for r in rows:
        base_dec, quote_dec = directory.scales(r["market"])
        fills.append(
            lpb.UserFill(
                trade_id=r["trade_id"],
                market=r["market"],
                order_id=r["order_id"],
                client_order_id=r["client_order_id"],
                side=r["side"],
                price=format_units(r["price"], quote_dec),
                quantity=format_units(r["quantity"], base_dec),
                quote_quantity=format_units(r["quote_quantity"], quote_dec),
                fee=format_units(r["fee"], quote_dec),
                fee_asset=directory.quote_asset(r["market"]),
                is_maker=r["is_maker"],
                ts_us=r["ts_us"],
            )
        )
    return lpb.GetFillsReply(fills=fills)


async def get_ledger(
    conn: Conn, directory: Directory, request: lpb.GetLedgerRequest
) -> lpb.GetLedgerReply:
    limit = clamp_limit(request.limit, 100)
    # The user's newest rows from each index (as debtor; as creditor of another user; for
    # the fee account, the rows that carry a fee and are not already found by the other
    # two), each unfolded into its entries, of which the user's are listed. The ids of a
    # row's entries run from transfer_id * 2 (its debit) to those of its fees, which come
    # right after it; those of the user are before the cursor $3 exactly when the first of
    # them is: transfer_id * 2 (debit), transfer_id * 2 + 1 (credit) or, for the fee
    # account, (transfer_id + 1) * 2 + 1. So every row taken gives at least one entry, and
    # a row left out of a branch by its limit only entries below those of the rows taken.
    rows = await conn.fetch(
        """WITH found AS (
               (SELECT t FROM ledger_transfers t
                WHERE debit_user = $1 AND ($2 = '' OR asset = $2)
                  AND transfer_id <= ($3::bigint - 1) / 2
                ORDER BY transfer_id DESC LIMIT $4)
               UNION ALL
               (SELECT t FROM ledger_transfers t
                WHERE credit_user = $1 AND credit_user <> debit_user
                  AND ($2 = '' OR asset = $2) AND transfer_id < $3::bigint / 2
                ORDER BY transfer_id DESC LIMIT $4)
               UNION ALL
               (SELECT t FROM ledger_transfers t
                WHERE $1 = $6 AND (debit_fee > 0 OR credit_fee > 0)
                  AND debit_user <> $1 AND credit_user <> $1
                  AND ($2 = '' OR asset = $2) AND transfer_id < $3::bigint / 2 - 1
                ORDER BY transfer_id DESC LIMIT $4))
           SELECT e.entry_id, (f.t).transfer_id / $5, e.user_id, (f.t).asset, e.bucket,
                  e.kind, e.amount, e.order_id, (f.t).trade_id, (f.t).ts_us
           FROM found f CROSS JOIN LATERAL ledger_transfer_entries(f.t) e
           WHERE e.user_id = $1 AND e.entry_id < $3
           ORDER BY e.entry_id DESC LIMIT $4""",
        request.user_id,
        request.asset,
        request.cursor or 2**63 - 1,
        limit,
        TRANSFERS_PER_EVENT,
        FEE_ACCOUNT,
    )
    entries = [
        lpb.LedgerEntry(
            entry_id=r[0],
            seq=r[1],
            user_id=r[2],
            asset=r[3],
            bucket=r[4],
            kind=r[5],
            amount=format_units(r[6], directory.asset_decimals[r[3]]),
            order_id=r[7],
            trade_id=r[8],
            ts_us=r[9],
        )
        for r in rows
    ]
    more = len(rows) == limit
    return lpb.GetLedgerReply(entries=entries, next_cursor=rows[-1][0] if more else 0)


async def get_balances(conn: Conn, directory: Directory, user_id: int) -> lpb.GetBalancesReply:
    # One statement, so the balances and the cursor come from one snapshot.
    rows = await conn.fetch(
        """SELECT c.last_seq, b.asset, b.available, b.locked
           FROM ingest_cursor c LEFT JOIN balances b ON b.user_id = $1
           ORDER BY b.asset""",
        user_id,
    )
    balances = [
        cpb.Balance(
            asset=r[1],
            available=format_units(r[2], directory.asset_decimals[r[1]]),
            locked=format_units(r[3], directory.asset_decimals[r[1]]),
        )
        for r in rows
        if r[1] is not None
    ]
    return lpb.GetBalancesReply(balances=balances, seq=rows[0][0])


def _optional(units: int | None, decimals: int) -> str:
    return "" if units is None else format_units(units, decimals)
