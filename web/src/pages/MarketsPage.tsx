import { useEffect, useMemo } from "preact/hooks";
import type { Ticker } from "../lib/api";
import { catalog } from "../lib/catalog";
import { watchTickers } from "../lib/feeds";
import * as fmt from "../lib/format";
import { navigate } from "../lib/router";
import { Store, useStore } from "../lib/store";

/** Every market with its 24h figures, live from the ticker streams. */
export function MarketsPage() {
  const { markets, loaded } = useStore(catalog);
  const view = useMemo(() => new Store<Record<string, Ticker>>({}), []);
  const tickers = useStore(view);
  const symbols = markets.map((m) => m.symbol).join(",");
  useEffect(() => (symbols ? watchTickers(symbols.split(","), view) : undefined), [symbols]);

  if (loaded && markets.length === 0) return <p class="empty">No market is listed yet.</p>;
  return (
    <section class="panel markets">
      <h1>Markets</h1>
      <div class="table-scroll">
        <table class="grid" data-testid="markets">
          <thead>
            <tr>
              <th>Market</th>
              <th class="num">Last price</th>
              <th class="num">24h change</th>
              <th class="num hide-phone">24h high</th>
              <th class="num hide-phone">24h low</th>
              <th class="num">24h volume</th>
            </tr>
          </thead>
          <tbody>
            {markets.map((m) => {
              const t = tickers[m.symbol];
              const dir = fmt.direction(t?.priceChange);
              return (
                <tr
                  key={m.symbol}
                  class="clickable"
                  data-market={m.symbol}
                  onClick={() => navigate(`/trade/${m.symbol}`)}
                >
                  <td>
                    <a href={`/trade/${m.symbol}`} onClick={(e) => e.preventDefault()} class="symbol">
                      <strong>{m.baseSymbol}</strong>
                      <span class="muted">/{m.quoteSymbol}</span>
                    </a>
                  </td>
                  <td class="num" data-field="last">
                    {fmt.price(t?.lastPrice, m.tickSize)}
                  </td>
                  <td class={`num ${dir}`} data-field="change">
                    {t?.lastPrice ? fmt.percent(t.priceChangePercent) : "—"}
                  </td>
                  <td class="num hide-phone">{fmt.price(t?.high, m.tickSize)}</td>
                  <td class="num hide-phone">{fmt.price(t?.low, m.tickSize)}</td>
                  <td class="num" data-field="volume">
                    {fmt.quantity(t?.volume ?? "0", m.stepSize)} <span class="muted">{m.baseSymbol}</span>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}
