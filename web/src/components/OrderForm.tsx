import { useEffect, useState } from "preact/hooks";
import * as api from "../lib/api";
import { catalog } from "../lib/catalog";
import { decimalsOf } from "../lib/decimal";
import { balances, type BookView, touchAccount, type TradeRow } from "../lib/feeds";
import * as fmt from "../lib/format";
import { session } from "../lib/session";
import { quantityFor } from "../lib/sizing";
import { type Store, useStore } from "../lib/store";
import { movement } from "../lib/triggers";
import { type BracketInput, cleanNumber, orderTotal, type Problems, validateOrder } from "../lib/validate";
import { Link } from "./Link";

type Side = "Bid" | "Ask";
type Kind = "Limit" | "Market" | "StopLimit" | "StopMarket";
const KINDS: [Kind, string][] = [
  ["Limit", "Limit"],
  ["Market", "Market"],
  ["StopLimit", "Stop limit"],
  ["StopMarket", "Stop market"],
];
const NO_LEGS: BracketInput = { tpTrigger: "", tpLimit: "", slTrigger: "", slLimit: "" };

/** Buy or sell: limit, market, or a stop (limit or market) that waits for the last price to
 * reach its trigger; any of them with a take-profit / stop-loss pair attached. Checked
 * against the market's rules before it is sent. */
export function OrderForm(props: {
  market: api.Market;
  book: Store<BookView>;
  trades: Store<TradeRow[]>;
  picked: Store<{ price: string; n: number }>;
}) {
  const m = props.market;
  const user = useStore(session);
  const funds = useStore(balances);
  const { decimals } = useStore(catalog);
  const { bids, asks } = useStore(props.book);
  const last = useStore(props.trades)[0]?.price ?? null;
  const picked = useStore(props.picked);
  const [side, setSide] = useState<Side>("Bid");
  const [kind, setKind] = useState<Kind>("Limit");
  const [price, setPrice] = useState("");
  const [trigger, setTrigger] = useState("");
  const [quantity, setQuantity] = useState("");
  const [bracketOn, setBracketOn] = useState(false);
  const [legs, setLegs] = useState<BracketInput>(NO_LEGS);
  const [showAll, setShowAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  const [placed, setPlaced] = useState<string | null>(null);

  useEffect(() => {
    if (picked.n > 0) {
      setPrice(picked.price);
      setKind((k) => (k === "Market" ? "Limit" : k === "StopMarket" ? "StopLimit" : k));
    }
  }, [picked.n]);

  const stop = kind === "StopLimit" || kind === "StopMarket";
  const orderType = kind === "Limit" || kind === "StopLimit" ? "Limit" : "Market";
  const asset = side === "Bid" ? m.quoteSymbol : m.baseSymbol;
  const available = funds[asset]?.available ?? "0";
  const assetDecimals = decimals[asset] ?? 8;
  const input = {
    side,
    orderType,
    price,
    quantity,
    triggerPrice: stop ? trigger : undefined,
    bracket: bracketOn ? legs : undefined,
  } as const;
  const problems: Problems = validateOrder(input, m);
  // Before the first submit, only what was typed is judged.
  const typed = (value: string | undefined) => showAll || Boolean(value?.trim());
  const shown: Problems = {
    price: typed(price) ? problems.price : undefined,
    triggerPrice: typed(trigger) ? problems.triggerPrice : undefined,
    quantity: typed(quantity) ? problems.quantity : undefined,
    total: problems.total,
    tpTrigger: typed(legs.tpTrigger) || typed(legs.tpLimit) ? problems.tpTrigger : undefined,
    tpLimit: typed(legs.tpLimit) ? problems.tpLimit : undefined,
    slTrigger: typed(legs.slTrigger) || typed(legs.slLimit) ? problems.slTrigger : undefined,
    slLimit: typed(legs.slLimit) ? problems.slLimit : undefined,
    bracket: showAll || (legs.tpTrigger.trim() && legs.slTrigger.trim()) ? problems.bracket : undefined,
  };
  const total = orderType === "Limit" ? orderTotal(price, quantity) : "";
  const reference =
    orderType === "Limit"
      ? (cleanNumber(price) ?? "")
      : stop
        ? (cleanNumber(trigger) ?? "")
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

  function order(): api.NewOrder {
    const q = cleanNumber(quantity)!;
    const out: api.NewOrder = { symbol: m.symbol, side, orderType };
    if (orderType === "Limit") out.price = cleanNumber(price)!;
    if (stop) {
      out.triggerPrice = cleanNumber(trigger)!;
      out.triggerQuantity = q;
    } else out.quantity = q;
    if (bracketOn) {
      const leg = (text: string) => cleanNumber(text) ?? undefined;
      out.takeProfitTriggerPrice = leg(legs.tpTrigger);
      out.takeProfitLimitPrice = leg(legs.tpLimit);
      out.stopLossTriggerPrice = leg(legs.slTrigger);
      out.stopLossLimitPrice = leg(legs.slLimit);
    }
    return out;
  }

  function summary(o: api.Order): string {
    const verb = side === "Bid" ? "Buy" : "Sell";
    const size = `${fmt.quantity(o.quantity ?? quantity, m.stepSize)} ${m.baseSymbol}`;
    const at = o.price ? ` at ${fmt.price(o.price, m.tickSize)}` : stop ? " at market" : "";
    const when = o.triggerPrice
      ? ` when the last price reaches ${fmt.price(o.triggerPrice, m.tickSize)}`
      : "";
    const attached = [
      o.takeProfitTriggerPrice && `take-profit ${fmt.price(o.takeProfitTriggerPrice, m.tickSize)}`,
      o.stopLossTriggerPrice && `stop-loss ${fmt.price(o.stopLossTriggerPrice, m.tickSize)}`,
    ].filter(Boolean);
    const legsText = attached.length ? `, with ${attached.join(" and ")}` : "";
    return `${stop ? "Stop " + verb.toLowerCase() : verb} ${size}${at}${when}${legsText}: ${o.status}`;
  }

  async function submit(event: Event) {
    event.preventDefault();
    setShowAll(true);
    setServerError(null);
    setPlaced(null);
    if (Object.values(problems).some((p) => p !== undefined)) return;
    setBusy(true);
    try {
      setPlaced(summary(await api.placeOrder(order())));
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

  const leg = (key: keyof BracketInput) => ({
    value: legs[key],
    onInput: (value: string) => setLegs({ ...legs, [key]: value }),
    error: shown[key],
  });
  const way = side === "Bid" ? "sells" : "buys back";
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
        {KINDS.map(([k, label]) => (
          <button
            type="button"
            key={k}
            class={k === kind ? "chip active" : "chip"}
            aria-pressed={k === kind}
            onClick={() => setKind(k)}
          >
            {label}
          </button>
        ))}
      </div>
      <p class="available">
        Available <strong data-testid="available">{fmt.amount(available, assetDecimals)}</strong> {asset}
      </p>
      {stop && (
        <>
          <PriceField
            label={`Trigger price (${m.quoteSymbol})`}
            name="triggerPrice"
            placeholder={m.tickSize}
            value={trigger}
            onInput={setTrigger}
            error={shown.triggerPrice}
          />
          <p class="muted small hint" data-testid="trigger-hint">
            {triggerHint(trigger, last, m)}
          </p>
        </>
      )}
      {orderType === "Limit" ? (
        <PriceField
          label={`Price (${m.quoteSymbol})`}
          name="price"
          placeholder={m.tickSize}
          value={price}
          onInput={setPrice}
          error={shown.price}
        />
      ) : (
        <p class="muted small">
          {stop ? "When it fires, at" : "At"} the best price in the book
          {!stop && reference ? ` (now ${fmt.price(reference, m.tickSize)})` : ""}.
        </p>
      )}
      <PriceField
        label={`Quantity (${m.baseSymbol})`}
        name="quantity"
        placeholder={m.stepSize}
        value={quantity}
        onInput={setQuantity}
        error={shown.quantity}
      />
      <div class="shares" role="group" aria-label="Share of the available balance">
        {[25, 50, 75, 100].map((p) => (
          <button type="button" key={p} class="chip" onClick={() => share(p)} disabled={!user}>
            {p}%
          </button>
        ))}
      </div>
      {orderType === "Limit" && (
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
      <label class="check">
        <input
          type="checkbox"
          name="bracket"
          checked={bracketOn}
          onChange={(e) => setBracketOn(e.currentTarget.checked)}
        />
        Take profit / stop loss
      </label>
      {bracketOn && (
        <fieldset class="legs" data-testid="bracket">
          <div class="pair-fields">
            <PriceField label="Take-profit trigger" name="takeProfitTriggerPrice" {...leg("tpTrigger")} />
            <PriceField
              label="Take-profit limit"
              name="takeProfitLimitPrice"
              placeholder="market"
              {...leg("tpLimit")}
            />
          </div>
          <div class="pair-fields">
            <PriceField label="Stop-loss trigger" name="stopLossTriggerPrice" {...leg("slTrigger")} />
            <PriceField
              label="Stop-loss limit"
              name="stopLossLimitPrice"
              placeholder="market"
              {...leg("slLimit")}
            />
          </div>
          {shown.bracket && (
            <p class="field-error" role="alert">
              {shown.bracket}
            </p>
          )}
          <p class="muted small hint">
            Once the order has filled, one leg {way} the filled quantity at the take-profit, the other at the
            stop-loss, whichever the last price reaches first; the other is then cancelled. Without a limit
            price a leg trades at market.
          </p>
        </fieldset>
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

/** Which way the last price must go for the stop to fire; a stop locks nothing until then. */
function triggerHint(trigger: string, last: string | null, m: api.Market): string {
  if (!last) return `There is no trade in ${m.symbol} yet: a stop needs a last price to wait for.`;
  const now = fmt.price(last, m.tickSize);
  const at = cleanNumber(trigger);
  const way = at === null ? null : movement(at, last);
  if (way === "now") return `The last price is ${now}: a stop there would fire at once, so it is refused.`;
  const moves = way === null ? "reaches the trigger price" : `${way} to ${fmt.price(at, m.tickSize)}`;
  return `Fires when the last price (now ${now}) ${moves}. Nothing is locked until then.`;
}

function PriceField(props: {
  label: string;
  name: string;
  value: string;
  onInput: (value: string) => void;
  error?: string;
  placeholder?: string;
}) {
  return (
    <label>
      {props.label}
      <input
        name={props.name}
        inputMode="decimal"
        autoComplete="off"
        value={props.value}
        placeholder={props.placeholder}
        aria-invalid={props.error ? "true" : "false"}
        onInput={(e) => props.onInput(e.currentTarget.value)}
      />
      {props.error && (
        <span class="field-error" role="alert">
          {props.error}
        </span>
      )}
    </label>
  );
}
