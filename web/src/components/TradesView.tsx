import type { Market } from "../lib/api";
import type { TradeRow } from "../lib/feeds";
import * as fmt from "../lib/format";
import { type Store, useStore } from "../lib/store";

/** The market's latest trades, newest first, coloured by the side that took liquidity. */
export function TradesView(props: { market: Market; trades: Store<TradeRow[]> }) {
  const m = props.market;
  const rows = useStore(props.trades);
  return (
    <div class="trades">
      <h2>Recent trades</h2>
      <div class="table-scroll short">
        <table class="grid compact" data-testid="recent-trades">
          <thead>
            <tr>
              <th class="num">Price ({m.quoteSymbol})</th>
              <th class="num">Size ({m.baseSymbol})</th>
              <th class="num">Time</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((t) => (
              <tr key={t.id} data-trade-id={t.id}>
                <td class={`num ${t.takerSide === "buy" ? "up" : "down"}`}>
                  {fmt.price(t.price, m.tickSize)}
                </td>
                <td class="num">{fmt.quantity(t.quantity, m.stepSize)}</td>
                <td class="num muted">{fmt.clock(t.time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {rows.length === 0 && <p class="muted empty-small">No trade yet.</p>}
      </div>
    </div>
  );
}
