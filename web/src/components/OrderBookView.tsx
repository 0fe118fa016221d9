import type { Market } from "../lib/api";
import type { Row } from "../lib/book";
import { compare, div, mul, sub } from "../lib/decimal";
import type { BookView } from "../lib/feeds";
import * as fmt from "../lib/format";
import { type Store, useStore } from "../lib/store";

const ROWS = 12;

function barWidth(total: string, max: string): string {
  if (compare(max, "0") <= 0) return "0%";
  return `${div(mul(total, "100"), max, 1)}%`;
}

/** Asks above, bids below, the spread between; a click on a level fills the order form. */
export function OrderBookView(props: {
  market: Market;
  book: Store<BookView>;
  onPick: (price: string) => void;
}) {
  const m = props.market;
  const { bids, asks, synced } = useStore(props.book);
  const shownAsks = asks.slice(0, ROWS);
  const shownBids = bids.slice(0, ROWS);
  const deepest = [shownAsks.at(-1)?.total ?? "0", shownBids.at(-1)?.total ?? "0"];
  const max = compare(deepest[0], deepest[1]) >= 0 ? deepest[0] : deepest[1];
  const bestBid = bids[0]?.price;
  const bestAsk = asks[0]?.price;

  const level = (row: Row, side: "bid" | "ask") => (
    <tr
      key={row.price}
      class={`level ${side}`}
      data-price={row.price}
      title={`Use ${fmt.price(row.price, m.tickSize)} in the order form`}
      onClick={() => props.onPick(row.price)}
    >
      <td class={`num price ${side === "bid" ? "up" : "down"}`}>{fmt.price(row.price, m.tickSize)}</td>
      <td class="num">{fmt.quantity(row.quantity, m.stepSize)}</td>
      <td class="num total">
        {fmt.quantity(row.total, m.stepSize)}
        <span class={`bar ${side}`} style={{ width: barWidth(row.total, max) }} aria-hidden="true" />
      </td>
    </tr>
  );

  return (
    <div class="book" data-testid="order-book" data-synced={synced ? "true" : "false"}>
      <h2>Order book</h2>
      <table class="grid compact">
        <thead>
          <tr>
            <th class="num">Price ({m.quoteSymbol})</th>
            <th class="num">Size ({m.baseSymbol})</th>
            <th class="num">Total</th>
          </tr>
        </thead>
        <tbody class="asks" data-testid="asks">
          {[...shownAsks].reverse().map((row) => level(row, "ask"))}
        </tbody>
        <tbody>
          <tr class="spread">
            <td colSpan={3} data-testid="spread">
              {!synced ? (
                <span class="muted">Syncing the book…</span>
              ) : bestBid && bestAsk ? (
                <>
                  Spread <strong>{fmt.price(sub(bestAsk, bestBid), m.tickSize)}</strong>
                  <span class="muted"> ({fmt.percent(div(sub(bestAsk, bestBid), bestAsk, 6))})</span>
                </>
              ) : (
                <span class="muted">{bestBid || bestAsk ? "One side is empty" : "The book is empty"}</span>
              )}
            </td>
          </tr>
        </tbody>
        <tbody class="bids" data-testid="bids">
          {shownBids.map((row) => level(row, "bid"))}
        </tbody>
      </table>
    </div>
  );
}
