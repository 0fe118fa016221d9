/**
 * A market's order book kept from a REST snapshot plus the WebSocket's depth diffs.
 *
 * Each diff carries the ids of the updates it covers, `U` (first) to `u` (last), and the
 * diffs of a market form a chain: the next one starts at `u + 1`. The REST snapshot says
 * which update it includes (`lastUpdateId`). So: buffer diffs until the snapshot arrives;
 * drop those with `u <= lastUpdateId`; the first one kept must have `U <= lastUpdateId + 1`
 * and every later one must start right after the one before. Anything else is a gap, and
 * the book must be fetched again. A quantity of "0" removes a price level.
 */

import { add, compare, isZero, normalize } from "./decimal";

export type Level = [price: string, quantity: string];

export interface DepthDiff {
  U: number;
  u: number;
  b: Level[];
  a: Level[];
}

export interface DepthSnapshot {
  bids: Level[];
  asks: Level[];
  lastUpdateId: string | number;
}

/** What happened to a diff: applied to the book, kept until the snapshot, dropped as
 * already included, or a gap (resync: fetch a new snapshot). */
export type DiffResult = "applied" | "buffered" | "stale" | "gap";

export interface Row {
  price: string;
  quantity: string;
  total: string; // cumulative quantity from the best price to this one
}

const MAX_BUFFERED = 5000;

export class OrderBook {
  private bids = new Map<string, Level>();
  private asks = new Map<string, Level>();
  private buffer: DepthDiff[] = [];
  /** The id of the last update the book includes; null until a snapshot is loaded. */
  lastUpdateId: number | null = null;

  get synced(): boolean {
    return this.lastUpdateId !== null;
  }

  /** Forget the book and buffer diffs again until the next snapshot. */
  reset(): void {
    this.bids.clear();
    this.asks.clear();
    this.buffer = [];
    this.lastUpdateId = null;
  }

  onDiff(diff: DepthDiff): DiffResult {
    if (this.lastUpdateId === null) {
      if (this.buffer.length >= MAX_BUFFERED) this.buffer.shift();
      this.buffer.push(diff);
      return "buffered";
    }
    if (diff.u <= this.lastUpdateId) return "stale";
    if (diff.U > this.lastUpdateId + 1) return "gap";
    this.apply(this.bids, diff.b);
    this.apply(this.asks, diff.a);
    this.lastUpdateId = diff.u;
    return "applied";
  }

  /** Load a snapshot and the diffs buffered since; "gap" when they do not join up. */
  onSnapshot(snapshot: DepthSnapshot): "synced" | "gap" {
    const pending = this.buffer;
    this.reset();
    this.apply(this.bids, snapshot.bids);
    this.apply(this.asks, snapshot.asks);
    this.lastUpdateId = Number(snapshot.lastUpdateId);
    for (const diff of pending) {
      if (this.onDiff(diff) === "gap") {
        // Keep the later diffs: the next snapshot may join them.
        const rest = pending.slice(pending.indexOf(diff));
        this.reset();
        this.buffer = rest;
        return "gap";
      }
    }
    return "synced";
  }

  private apply(side: Map<string, Level>, levels: Level[]): void {
    for (const [price, quantity] of levels) {
      const key = normalize(price);
      if (isZero(quantity)) side.delete(key);
      else side.set(key, [price, quantity]);
    }
  }

  /** Best bids, highest price first, with cumulative sizes. */
  topBids(count: number): Row[] {
    return rows(
      [...this.bids.values()].sort((x, y) => compare(y[0], x[0])),
      count,
    );
  }

  /** Best asks, lowest price first, with cumulative sizes. */
  topAsks(count: number): Row[] {
    return rows(
      [...this.asks.values()].sort((x, y) => compare(x[0], y[0])),
      count,
    );
  }

  bestBid(): string | null {
    return this.topBids(1)[0]?.price ?? null;
  }

  bestAsk(): string | null {
    return this.topAsks(1)[0]?.price ?? null;
  }
}

function rows(levels: Level[], count: number): Row[] {
  let total = "0";
  return levels.slice(0, count).map(([price, quantity]) => {
    total = add(total, quantity);
    return { price, quantity, total };
  });
}
