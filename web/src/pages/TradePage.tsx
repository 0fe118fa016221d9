import { useEffect, useMemo } from "preact/hooks";
import { AccountPanel } from "../components/AccountPanel";
import { Chart } from "../components/Chart";
import { Link } from "../components/Link";
import { MarketBar } from "../components/MarketBar";
import { OrderBookView } from "../components/OrderBookView";
import { OrderForm } from "../components/OrderForm";
import { TradesView } from "../components/TradesView";
import { catalog } from "../lib/catalog";
import { type BookView, type TradeRow, watchBook, watchTrades } from "../lib/feeds";
import { Store, useStore } from "../lib/store";

/** One market: chart, book, trades, the market bar, order entry and the user's orders. */
export function TradePage(props: { symbol: string }) {
  const { markets, loaded } = useStore(catalog);
  const market = markets.find((m) => m.symbol === props.symbol);
  const book = useMemo(
    () => new Store<BookView>({ bids: [], asks: [], synced: false, lastUpdateId: null }),
    [props.symbol],
  );
  const trades = useMemo(() => new Store<TradeRow[]>([]), [props.symbol]);
  // A price clicked in the book goes to the order form; the counter makes a second click
  // on the same price still count.
  const picked = useMemo(() => new Store<{ price: string; n: number }>({ price: "", n: 0 }), [props.symbol]);
  useEffect(() => (market ? watchBook(market.symbol, book) : undefined), [market?.symbol]);
  useEffect(() => (market ? watchTrades(market.symbol, trades) : undefined), [market?.symbol]);
  useEffect(() => {
    document.title = market ? `${market.baseSymbol}/${market.quoteSymbol} · Exchange` : "Exchange";
  }, [market?.symbol]);

  if (!market) {
    return loaded ? (
      <p class="empty">
        There is no market {props.symbol}. <Link href="/markets">See the markets</Link>.
      </p>
    ) : (
      <p class="empty">Loading…</p>
    );
  }
  return (
    <div class="trade" data-market={market.symbol}>
      <MarketBar market={market} />
      <section class="panel chart-panel">
        <Chart market={market} />
      </section>
      <section class="panel book-panel">
        <OrderBookView
          market={market}
          book={book}
          onPick={(price) => picked.update((p) => ({ price, n: p.n + 1 }))}
        />
      </section>
      <section class="panel trades-panel">
        <TradesView market={market} trades={trades} />
      </section>
      <section class="panel form-panel">
        <OrderForm market={market} book={book} trades={trades} picked={picked} />
      </section>
      <section class="panel account-panel">
        <AccountPanel market={market} trades={trades} />
      </section>
    </div>
  );
}
