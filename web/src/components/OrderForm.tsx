import { useEffect, useState } from "preact/hooks";
import * as api from "../lib/api";
import { catalog } from "../lib/catalog";
import { decimalsOf } from "../lib/decimal";
import { balances, type BookView, touchAccount } from "../lib/feeds";
import * as fmt from "../lib/format";
import { session } from "../lib/session";
import { quantityFor } from "../lib/sizing";
import { type Store, useStore } from "../lib/store";
import { cleanNumber, orderTotal, type Problems, validateOrder } from "../lib/validate";
import { Link } from "./Link";

type Side = "Bid" | "Ask";
type Kind = "Limit" | "Market";

/** Buy or sell, limit or market; checked against the market's rules before it is sent. */
export function OrderForm(props: {
  market: api.Market;
  book: Store<BookView>;
  picked: Store<{ price: string; n: number }>;
}) {
  const m = props.market;
  const user = useStore(session);
  const funds = useStore(balances);
  const { decimals } = useStore(catalog);
  const { bids, asks } = useStore(props.book);
  const picked = useStore(props.picked);
  const [side, setSide] = useState<Side>("Bid");
  const [kind, setKind] = useState<Kind>("Limit");
  const [price, setPrice] = useState("");
  const [quantity, setQuantity] = useState("");
  const [showAll, setShowAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  const [placed, setPlaced] = useState<string | null>(null);

  useEffect(() => {
    if (picked.n > 0) {
      setPrice(picked.price);
      setKind("Limit");
    }
  }, [picked.n]);

  const asset = side === "Bid" ? m.quoteSymbol : m.baseSymbol;
  const available = funds[asset]?.available ?? "0";
  const assetDecimals = decimals[asset] ?? 8;
  const problems: Problems = validateOrder({ side, orderType: kind, price, quantity }, m);
  const shown: Problems = showAll
    ? problems
    : {
        price: price.trim() ? problems.price : undefined,
        quantity: quantity.trim() ? problems.quantity : undefined,
        total: problems.total,
      };
  const total = kind === "Limit" ? orderTotal(price, quantity) : "";
  const reference =
    kind === "Limit"
      ? (cleanNumber(price) ?? "")
      : side === "Bid"
        ? (asks[0]?.price ?? "")
        : (bids[0]?.price ?? "");

  function share(percent: number) {
    const q = quantityFor({
      side,
      percent,
      available,
      price: reference,
      stepSize: m.stepSize,
      feeBps: Math.max(m.takerFeeBps, m.makerFeeBps),
    });
    if (q) setQuantity(q);
  }

  async function submit(event: Event) {
    event.preventDefault();
    setShowAll(true);
    setServerError(null);
    setPlaced(null);
    if (Object.keys(problems).length > 0) return;
    setBusy(true);
    try {
      const order = await api.placeOrder({
        symbol: m.symbol,
        side,
        orderType: kind,
        quantity: cleanNumber(quantity)!,
        ...(kind === "Limit" ? { price: cleanNumber(price)! } : {}),
      });
      const verb = side === "Bid" ? "Buy" : "Sell";
      const at = order.price ? ` at ${fmt.price(order.price, m.tickSize)}` : "";
      setPlaced(
        `${verb} ${fmt.quantity(order.quantity ?? quantity, m.stepSize)} ${m.baseSymbol}${at}: ${order.status}`,
      );
      setQuantity("");
      setShowAll(false);
      touchAccount();
    } catch (e) {
      const error = e as api.ApiError;
      setServerError(
        error.code && error.code !== "NETWORK" ? `${error.message} (${error.code})` : error.message,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="order-form form" onSubmit={submit} noValidate data-testid="order-form">
      <div class="tabs two" role="tablist">
        <button
          type="button"
          role="tab"
          aria-selected={side === "Bid"}
          class={side === "Bid" ? "tab buy active" : "tab"}
          onClick={() => setSide("Bid")}
        >
          Buy
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={side === "Ask"}
          class={side === "Ask" ? "tab sell active" : "tab"}
          onClick={() => setSide("Ask")}
        >
          Sell
        </button>
      </div>
      <div class="kinds" role="group" aria-label="Order type">
        {(["Limit", "Market"] as Kind[]).map((k) => (
          <button
            type="button"
            key={k}
            class={k === kind ? "chip active" : "chip"}
            aria-pressed={k === kind}
            onClick={() => setKind(k)}
          >
            {k}
          </button>
        ))}
      </div>
      <p class="available">
        Available <strong data-testid="available">{fmt.amount(available, assetDecimals)}</strong> {asset}
      </p>
      {kind === "Limit" ? (
        <label>
          Price ({m.quoteSymbol})
          <input
            name="price"
            inputMode="decimal"
            autoComplete="off"
            value={price}
            placeholder={m.tickSize}
            aria-invalid={shown.price ? "true" : "false"}
            onInput={(e) => setPrice(e.currentTarget.value)}
          />
          {shown.price && (
            <span class="field-error" role="alert">
              {shown.price}
            </span>
          )}
        </label>
      ) : (
        <p class="muted small">
          At the best price in the book{reference ? ` (now ${fmt.price(reference, m.tickSize)})` : ""}.
        </p>
      )}
      <label>
        Quantity ({m.baseSymbol})
        <input
          name="quantity"
          inputMode="decimal"
          autoComplete="off"
          value={quantity}
          placeholder={m.stepSize}
          aria-invalid={shown.quantity ? "true" : "false"}
          onInput={(e) => setQuantity(e.currentTarget.value)}
        />
        {shown.quantity && (
          <span class="field-error" role="alert">
            {shown.quantity}
          </span>
        )}
      </label>
      <div class="shares" role="group" aria-label="Share of the available balance">
        {[25, 50, 75, 100].map((p) => (
          <button type="button" key={p} class="chip" onClick={() => share(p)} disabled={!user}>
            {p}%
          </button>
        ))}
      </div>
      {kind === "Limit" && (
        <p class="total">
          Total{" "}
          <strong data-testid="total">
            {total ? fmt.fixed(total, decimalsOf(m.tickSize) + decimalsOf(m.stepSize)) : "—"}
          </strong>{" "}
          {m.quoteSymbol}
        </p>
      )}
      {shown.total && (
        <p class="field-error" role="alert">
          {shown.total}
        </p>
      )}
      {serverError && (
        <p class="error" role="alert" data-testid="order-error">
          {serverError}
        </p>
      )}
      {placed && (
        <p class="success" role="status" data-testid="order-placed">
          {placed}
        </p>
      )}
      {user ? (
        <button type="submit" class={`wide ${side === "Bid" ? "buy" : "sell"}`} disabled={busy}>
          {side === "Bid" ? "Buy" : "Sell"} {m.baseSymbol}
        </button>
      ) : (
        <p class="muted">
          <Link href={`/login?next=/trade/${m.symbol}`}>Log in</Link> or <Link href="/signup">sign up</Link>{" "}
          to trade.
        </p>
      )}
      <p class="muted small">
        Tick {m.tickSize} · step {m.stepSize} · fees {m.makerFeeBps}/{m.takerFeeBps} bps (maker/taker)
      </p>
    </form>
  );
}
