import { useEffect, useRef, useState } from "preact/hooks";
import * as api from "../lib/api";
import { catalog } from "../lib/catalog";
import { balances, touchAccount, type TradeRow, watchOrders } from "../lib/feeds";
import * as fmt from "../lib/format";
import { session } from "../lib/session";
import { type Store, useStore } from "../lib/store";
import { firesAbove, orderKind } from "../lib/triggers";
import { Link } from "./Link";

type Tab = "open" | "history" | "fills" | "balances";
const HISTORY_POLL_MS = 5000; // history comes from the ledger, a moment behind the engine

/** The user's open orders and pending stops (cancel, cancel all), order history, fills and
 * balances. */
export function AccountPanel(props: { market: api.Market; trades: Store<TradeRow[]> }) {
  const m = props.market;
  const user = useStore(session);
  const last = useStore(props.trades)[0]?.price ?? null;
  const [tab, setTab] = useState<Tab>("open");
  const [open, setOpen] = useState<api.Order[]>([]);
  const [history, setHistory] = useState<api.Order[]>([]);
  const [fills, setFills] = useState<api.Fill[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0); // bumped by every order event
  const latest = useRef(0); // answers of older requests are dropped

  useEffect(() => {
    if (!user) return undefined;
    return watchOrders(m.symbol, () => {
      setVersion((v) => v + 1);
      const mine = ++latest.current;
      api.openOrders(m.symbol).then(
        (orders) => mine === latest.current && setOpen(orders),
        (e: Error) => setError(e.message),
      );
    });
  }, [m.symbol, user?.token]);

  useEffect(() => {
    if (!user || (tab !== "history" && tab !== "fills")) return undefined;
    const load = () => {
      if (tab === "history") api.orderHistory(m.symbol).then(setHistory, (e: Error) => setError(e.message));
      else api.fills(m.symbol).then(setFills, (e: Error) => setError(e.message));
    };
    load();
    const timer = window.setInterval(load, HISTORY_POLL_MS);
    return () => window.clearInterval(timer);
  }, [tab, m.symbol, user?.token, version]);

  async function act(action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
      touchAccount();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  if (!user) {
    return (
      <p class="muted">
        <Link href={`/login?next=/trade/${m.symbol}`}>Log in</Link> to see your orders and balances.
      </p>
    );
  }
  const tabs: [Tab, string][] = [
    ["open", `Open orders (${open.length})`],
    ["history", "Order history"],
    ["fills", "Fills"],
    ["balances", "Balances"],
  ];
  return (
    <div class="account">
      <div class="tabs" role="tablist">
        {tabs.map(([id, label]) => (
          <button
            key={id}
            role="tab"
            aria-selected={tab === id}
            class={tab === id ? "tab active" : "tab"}
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
        <div class="spacer" />
        {tab === "open" && open.length > 0 && (
          <button class="ghost small" onClick={() => act(() => api.cancelAll(m.symbol))}>
            Cancel all
          </button>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="table-scroll">
        {tab === "open" && (
          <OpenOrders
            market={m}
            orders={open}
            last={last}
            onCancel={(id) => act(() => api.cancelOrder(m.symbol, id))}
          />
        )}
        {tab === "history" && <OrderHistory market={m} orders={history} last={last} />}
        {tab === "fills" && <Fills market={m} fills={fills} />}
        {tab === "balances" && <Balances />}
      </div>
    </div>
  );
}

function sideCell(side: "Bid" | "Ask") {
  return <td class={side === "Bid" ? "up" : "down"}>{side === "Bid" ? "Buy" : "Sell"}</td>;
}

/** A pending stop's trigger: "≥ 1,800.00" when it fires at a trade at or above it. */
function triggerCell(o: api.Order, orders: api.Order[], last: string | null, m: api.Market) {
  if (!o.triggerPrice) return <td class="num muted">—</td>;
  const above = firesAbove(o, orders, last);
  const sign = above === null ? "" : above ? "≥ " : "≤ ";
  return (
    <td class="num" data-field="trigger">
      {sign}
      {fmt.price(o.triggerPrice, m.tickSize)}
    </td>
  );
}

function OpenOrders(props: {
  market: api.Market;
  orders: api.Order[];
  last: string | null;
  onCancel: (id: string) => void;
}) {
  const m = props.market;
  if (props.orders.length === 0) return <p class="muted empty-small">No open order in {m.symbol}.</p>;
  return (
    <table class="grid compact" data-testid="open-orders">
      <thead>
        <tr>
          <th>Time</th>
          <th>Side</th>
          <th>Type</th>
          <th class="num">Price</th>
          <th class="num">Trigger</th>
          <th class="num">Quantity</th>
          <th class="num">Filled</th>
          <th>Status</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {props.orders.map((o) => (
          <tr key={o.id} data-order-id={o.id} data-status={o.status}>
            <td class="muted">{fmt.dateTime(o.createdAt)}</td>
            {sideCell(o.side)}
            <td data-field="type">{orderKind(o, props.orders, props.last)}</td>
            <td class="num">{o.orderType === "Market" ? "Market" : fmt.price(o.price, m.tickSize)}</td>
            {triggerCell(o, props.orders, props.last, m)}
            <td class="num">{fmt.quantity(o.quantity, m.stepSize)}</td>
            <td class="num">{fmt.quantity(o.executedQuantity, m.stepSize)}</td>
            <td data-field="status">{o.status}</td>
            <td class="num">
              <button class="ghost small" onClick={() => props.onCancel(o.id)}>
                Cancel
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function OrderHistory(props: { market: api.Market; orders: api.Order[]; last: string | null }) {
  const m = props.market;
  if (props.orders.length === 0) return <p class="muted empty-small">No order yet.</p>;
  return (
    <table class="grid compact" data-testid="order-history">
      <thead>
        <tr>
          <th>Time</th>
          <th>Side</th>
          <th>Type</th>
          <th class="num">Price</th>
          <th class="num">Trigger</th>
          <th class="num">Quantity</th>
          <th class="num">Filled</th>
          <th>Status</th>
        </tr>
      </thead>
      <tbody>
        {props.orders.map((o) => (
          <tr key={o.id} data-order-id={o.id} data-status={o.status}>
            <td class="muted">{fmt.dateTime(o.createdAt)}</td>
            {sideCell(o.side)}
            <td>{orderKind(o, props.orders, props.last)}</td>
            <td class="num">{fmt.price(o.price, m.tickSize)}</td>
            {triggerCell(o, props.orders, props.last, m)}
            <td class="num">{fmt.quantity(o.quantity, m.stepSize)}</td>
            <td class="num">{fmt.quantity(o.executedQuantity, m.stepSize)}</td>
            <td title={o.triggerFailure ?? undefined}>{o.status}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Fills(props: { market: api.Market; fills: api.Fill[] }) {
  const m = props.market;
  const { decimals } = useStore(catalog);
  if (props.fills.length === 0) return <p class="muted empty-small">No fill yet.</p>;
  return (
    <table class="grid compact" data-testid="fills">
      <thead>
        <tr>
          <th>Time</th>
          <th>Side</th>
          <th class="num">Price</th>
          <th class="num">Quantity</th>
          <th class="num">Fee</th>
          <th>Role</th>
        </tr>
      </thead>
      <tbody>
        {props.fills.map((f) => (
          <tr key={f.tradeId} data-trade-id={f.tradeId}>
            <td class="muted">{fmt.dateTime(Date.parse(`${f.timestamp}Z`))}</td>
            {sideCell(f.side)}
            <td class="num">{fmt.price(f.price, m.tickSize)}</td>
            <td class="num">{fmt.quantity(f.quantity, m.stepSize)}</td>
            <td class="num">
              {fmt.amount(f.fee, decimals[f.feeSymbol] ?? 8)} {f.feeSymbol}
            </td>
            <td>{f.isMaker ? "Maker" : "Taker"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every asset of the account (also on the account page). */
export function Balances() {
  const funds = useStore(balances);
  const { decimals } = useStore(catalog);
  const assets = Object.keys(funds).sort();
  if (assets.length === 0) {
    return (
      <p class="muted empty-small">
        No funds yet. <Link href="/account">Deposit</Link> to start trading.
      </p>
    );
  }
  return (
    <table class="grid compact" data-testid="balances">
      <thead>
        <tr>
          <th>Asset</th>
          <th class="num">Available</th>
          <th class="num">In orders</th>
        </tr>
      </thead>
      <tbody>
        {assets.map((a) => (
          <tr key={a} data-asset={a}>
            <td>
              <strong>{a}</strong>
            </td>
            <td class="num" data-field="available">
              {fmt.amount(funds[a].available, decimals[a] ?? 8)}
            </td>
            <td class="num" data-field="locked">
              {fmt.amount(funds[a].locked, decimals[a] ?? 8)}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
