import { useEffect, useMemo } from "preact/hooks";
import type { Market, Ticker } from "../lib/api";
import { watchTickers } from "../lib/feeds";
import * as fmt from "../lib/format";
import { Store, useStore } from "../lib/store";

/** Last price, 24h change, high, low and volume, live from the ticker stream. */
export function MarketBar(props: { market: Market }) {
  const m = props.market;
  const view = useMemo(() => new Store<Record<string, Ticker>>({}), [m.symbol]);
  const t = useStore(view)[m.symbol];
  useEffect(() => watchTickers([m.symbol], view), [m.symbol]);
  const dir = fmt.direction(t?.priceChange);
  return (
    <section class="panel market-bar" data-testid="market-bar">
      <div class="pair">
        <strong>{m.baseSymbol}</strong>
        <span class="muted">/{m.quoteSymbol}</span>
      </div>
      <div class={`last ${dir}`} data-field="last">
        {fmt.price(t?.lastPrice, m.tickSize)}
      </div>
      <dl class="stats">
        <div>
          <dt>24h change</dt>
          <dd class={dir} data-field="change">
            {t?.lastPrice
              ? `${fmt.price(t.priceChange, m.tickSize)} ${fmt.percent(t.priceChangePercent)}`
              : "—"}
          </dd>
        </div>
        <div>
          <dt>24h high</dt>
          <dd data-field="high">{fmt.price(t?.high, m.tickSize)}</dd>
        </div>
        <div>
          <dt>24h low</dt>
          <dd data-field="low">{fmt.price(t?.low, m.tickSize)}</dd>
        </div>
        <div>
          <dt>24h volume ({m.baseSymbol})</dt>
          <dd data-field="volume">{fmt.quantity(t?.volume ?? "0", m.stepSize)}</dd>
        </div>
        <div class="hide-phone">
          <dt>24h volume ({m.quoteSymbol})</dt>
          <dd>{fmt.price(t?.quoteVolume ?? "0", m.tickSize)}</dd>
        </div>
      </dl>
    </section>
  );
}
