/**
 * Live state of a market and of the logged-in account: REST for the starting point, the
 * WebSocket for what changes after it, and a fresh start from REST after a reconnect.
 */

import * as api from "./api";
import { type DepthDiff, OrderBook, type Row } from "./book";
import { sub } from "./decimal";
import { changeFraction } from "./format";
import { session } from "./session";
import { Store } from "./store";
import { stream } from "./stream";

const BOOK_ROWS = 50;
const TRADE_ROWS = 60;

/** Calls `fn` at most once per animation frame. */
function batched(fn: () => void): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

export interface BookView {
  bids: Row[];
  asks: Row[];
  synced: boolean;
  lastUpdateId: number | null;
}

/** The order book: depth diffs joined to REST snapshots by their update ids. */
export function watchBook(symbol: string, view: Store<BookView>): () => void {
  const book = new OrderBook();
  let generation = 0;
  let stopped = false;
  const publish = batched(() =>
    view.set({
      bids: book.topBids(BOOK_ROWS),
      asks: book.topAsks(BOOK_ROWS),
      synced: book.synced,
      lastUpdateId: book.lastUpdateId,
    }),
  );

  async function resync(): Promise<void> {
    const mine = ++generation;
    book.reset();
    publish();
    for (let attempt = 0; !stopped && mine === generation; attempt++) {
      try {
        const snapshot = await api.depth(symbol);
        if (stopped || mine !== generation) return;
        if (book.onSnapshot(snapshot) === "synced") break;
      } catch {
        // The gateway is away: try again below.
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 4000)));
    }
    publish();
  }

  const unsubscribe = stream.subscribe(`depth.${symbol}`, (diff: DepthDiff) => {
    if (book.onDiff(diff) === "gap") void resync();
    else if (book.synced) publish();
  });
  const unhook = stream.onReconnect(() => void resync());
  void resync();
  return () => {
    stopped = true;
    unsubscribe();
    unhook();
  };
}

export interface TradeRow {
  id: number;
  price: string;
  quantity: string;
  time: number; // ms
  takerSide: "buy" | "sell";
}

interface TradeFrame {
  t: number;
  p: string;
  q: string;
  m: boolean; // the buyer was the maker: a sell took liquidity
  T: number; // µs
}

export function watchTrades(symbol: string, view: Store<TradeRow[]>): () => void {
  let stopped = false;
  async function load(): Promise<void> {
    try {
      const list = await api.trades(symbol, TRADE_ROWS);
      if (stopped) return;
      const rows: TradeRow[] = list.map((t) => ({
        id: t.id,
        price: t.price,
        quantity: t.quantity,
        time: t.timestamp,
        takerSide: t.isBuyerMaker ? "sell" : "buy",
      }));
      // REST is newest first or oldest first depending on the server: newest first here.
      rows.sort((x, y) => y.id - x.id);
      const live = view.get().filter((r) => r.id > (rows[0]?.id ?? 0));
      view.set([...live, ...rows].slice(0, TRADE_ROWS));
    } catch {
      // Shown as it is; the next reconnect loads again.
    }
  }
  const unsubscribe = stream.subscribe(`trade.${symbol}`, (t: TradeFrame) => {
    const rows = view.get();
    if (rows.some((r) => r.id === t.t)) return;
    const row: TradeRow = {
      id: t.t,
      price: t.p,
      quantity: t.q,
      time: Math.floor(t.T / 1000),
      takerSide: t.m ? "sell" : "buy",
    };
    view.set([row, ...rows].slice(0, TRADE_ROWS));
  });
  const unhook = stream.onReconnect(() => void load());
  void load();
  return () => {
    stopped = true;
    unsubscribe();
    unhook();
  };
}

interface TickerFrame {
  s: string;
  o: string;
  c: string;
  h: string;
  l: string;
  v: string;
  V: string;
  n: number;
}

function tickerFromFrame(k: TickerFrame): api.Ticker {
  return {
    symbol: k.s,
    firstPrice: k.o || null,
    lastPrice: k.c || null,
    high: k.h || null,
    low: k.l || null,
    volume: k.v,
    quoteVolume: k.V,
    priceChange: k.o && k.c ? sub(k.c, k.o) : "0",
    priceChangePercent: changeFraction(k.o, k.c) || "0",
    trades: String(k.n),
  };
}

/** 24h tickers of the given markets, by symbol. */
export function watchTickers(symbols: string[], view: Store<Record<string, api.Ticker>>): () => void {
  let stopped = false;
  async function load(): Promise<void> {
    try {
      const list = await api.tickers();
      if (stopped) return;
      const next = { ...view.get() };
      for (const t of list) next[t.symbol] = t;
      view.set(next);
    } catch {
      // Kept as it was until the next reconnect.
    }
  }
  const unsubscribes = symbols.map((symbol) =>
    stream.subscribe(`ticker.${symbol}`, (k: TickerFrame) => {
      view.set({ ...view.get(), [symbol]: tickerFromFrame(k) });
    }),
  );
  const unhook = stream.onReconnect(() => void load());
  void load();
  return () => {
    stopped = true;
    for (const u of unsubscribes) u();
    unhook();
  };
}

// ---- the account -----------------------------------------------------------------------

export const balances = new Store<Record<string, api.Balance>>({});

/** Bumped after this page placed or cancelled orders: the account is read again at once,
 * not only when the stream tells. */
const accountChanged = new Store(0);

export function touchAccount(): void {
  accountChanged.update((n) => n + 1);
}

interface BalanceFrame {
  a: string;
  A: string;
  L: string;
}

/** The logged-in user's balances: REST, then every balanceUpdate frame. */
export function watchBalances(): () => void {
  let stopped = false;
  let latest = 0; // answers of older requests are dropped
  let frames = 0;
  const framed = new Map<string, number>(); // asset -> number of the last frame about it
  async function load(): Promise<void> {
    const mine = ++latest;
    const since = frames;
    if (!session.get()) {
      balances.set({});
      return;
    }
    try {
      const all = await api.balances();
      if (stopped || mine !== latest) return;
      // A frame that came while the request was out is newer than its answer.
      const current = balances.get();
      for (const [asset, n] of framed) if (n > since && current[asset]) all[asset] = current[asset];
      balances.set(all);
    } catch {
      // An expired session logs out (api.ts); other failures keep the last balances.
    }
  }
  const unsubscribe = stream.subscribe("account.balanceUpdate", (u: BalanceFrame) => {
    framed.set(u.a, ++frames);
    balances.set({ ...balances.get(), [u.a]: { available: u.A, locked: u.L } });
  });
  const unhook = stream.onReconnect(() => void load());
  const unwatch = session.subscribe(() => void load());
  const untouch = accountChanged.subscribe(() => void load());
  void load();
  return () => {
    stopped = true;
    unsubscribe();
    unhook();
    unwatch();
    untouch();
  };
}

/** Calls `refresh` (at most every 250 ms) when the user's orders on `symbol` change. */
export function watchOrders(symbol: string, refresh: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const soon = () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      refresh();
    }, 250);
  };
  const unsubscribe = stream.subscribe(`account.orderUpdate.${symbol}`, soon);
  const unhook = stream.onReconnect(soon);
  const unwatch = session.subscribe(soon);
  const untouch = accountChanged.subscribe(soon);
  refresh();
  return () => {
    clearTimeout(timer);
    unsubscribe();
    unhook();
    unwatch();
    untouch();
  };
}
