/**
 * Checks an order against the market's rules before it is sent, so that a person sees
 * what is wrong at once. The server checks all of this again: this only spares a round
 * trip and says it in words.
 */

import { compare, decimalsOf, isMultiple, isZero, mul, parse } from "./decimal";

export interface MarketRules {
  symbol: string;
  baseSymbol: string;
  quoteSymbol: string;
  tickSize: string;
  minPrice: string;
  maxPrice: string;
  stepSize: string;
  minQuantity: string;
  maxQuantity: string;
  minNotional: string;
}

/** The take-profit / stop-loss legs of an order; a leg without a limit price is a market order. */
export interface BracketInput {
  tpTrigger: string;
  tpLimit: string;
  slTrigger: string;
  slLimit: string;
}

export interface OrderInput {
  side: "Bid" | "Ask";
  orderType: "Limit" | "Market";
  price: string;
  quantity: string;
  triggerPrice?: string; // a stop order: it waits until the last price reaches this
  bracket?: BracketInput; // the take-profit / stop-loss option is on
}

export interface Problems {
  price?: string;
  quantity?: string;
  total?: string;
  triggerPrice?: string;
  tpTrigger?: string;
  tpLimit?: string;
  slTrigger?: string;
  slLimit?: string;
  bracket?: string; // about the legs together
}

function plainNumber(text: string): boolean {
  return /^\d+(\.\d+)?$/.test(text) || /^\d+\.$/.test(text) || /^\.\d+$/.test(text);
}

/** "5." and ".5" as people type them, written as the API wants them; null when not a number. */
export function cleanNumber(text: string): string | null {
  const t = text.trim();
  if (!plainNumber(t)) return null;
  if (t.endsWith(".")) return t.slice(0, -1);
  if (t.startsWith(".")) return `0${t}`;
  return t;
}

function positive(text: string): boolean {
  return !isZero(text) && compare(text, "0") > 0;
}

function given(limit: string): boolean {
  return limit !== "" && parse(limit) !== null && !isZero(limit);
}

function checkPrice(price: string, m: MarketRules, what = "price"): string | undefined {
  if (price === "") return `Enter a ${what}`;
  const p = cleanNumber(price);
  if (p === null) return `The ${what} must be a number such as 1600.50`;
  if (!positive(p)) return `The ${what} must be above zero`;
  const decimals = decimalsOf(m.tickSize);
  if (decimalsOf(p) > decimals) {
    return decimals === 0
      ? `The ${what} must be a whole number`
      : `The ${what} can have at most ${decimals} decimal${decimals === 1 ? "" : "s"}`;
  }
  if (!isMultiple(p, m.tickSize)) return `The ${what} must be a multiple of the tick size ${m.tickSize}`;
  if (given(m.minPrice) && compare(p, m.minPrice) < 0) return `The lowest ${what} is ${m.minPrice}`;
  if (given(m.maxPrice) && compare(p, m.maxPrice) > 0) return `The highest ${what} is ${m.maxPrice}`;
  return undefined;
}

function checkQuantity(quantity: string, m: MarketRules): string | undefined {
  if (quantity === "") return "Enter a quantity";
  const q = cleanNumber(quantity);
  if (q === null) return "The quantity must be a number";
  if (!positive(q)) return "The quantity must be above zero";
  const decimals = decimalsOf(m.stepSize);
  if (decimalsOf(q) > decimals) {
    return decimals === 0
      ? `The quantity must be a whole number of ${m.baseSymbol}`
      : `The quantity can have at most ${decimals} decimal${decimals === 1 ? "" : "s"}`;
  }
  if (!isMultiple(q, m.stepSize)) return `The quantity must be a multiple of the step size ${m.stepSize}`;
  if (given(m.minQuantity) && compare(q, m.minQuantity) < 0) {
    return `The smallest quantity is ${m.minQuantity} ${m.baseSymbol}`;
  }
  if (given(m.maxQuantity) && compare(q, m.maxQuantity) > 0) {
    return `The largest quantity is ${m.maxQuantity} ${m.baseSymbol}`;
  }
  return undefined;
}

/** The problems of an order, by field; an empty object means it may be sent. */
export function validateOrder(input: OrderInput, m: MarketRules): Problems {
  const problems: Problems = {};
  if (input.orderType === "Limit") {
    const price = checkPrice(input.price.trim(), m);
    if (price !== undefined) problems.price = price;
  }
  if (input.triggerPrice !== undefined) {
    const trigger = checkPrice(input.triggerPrice.trim(), m, "trigger price");
    if (trigger !== undefined) problems.triggerPrice = trigger;
  }
  const quantity = checkQuantity(input.quantity.trim(), m);
  if (quantity !== undefined) problems.quantity = quantity;
  if (input.orderType === "Limit" && problems.price === undefined && problems.quantity === undefined) {
    const total = mul(cleanNumber(input.price)!, cleanNumber(input.quantity)!);
    if (given(m.minNotional) && compare(total, m.minNotional) < 0) {
      problems.total = `The order's value must be at least ${m.minNotional} ${m.quoteSymbol}`;
    }
  }
  if (input.bracket) checkBracket(input.bracket, input.side, m, problems);
  return problems;
}

/** Each leg's prices, a limit price only with its trigger, and the legs on the right sides
 * of each other: a buy takes profit above its stop-loss, a sell below. */
function checkBracket(b: BracketInput, side: "Bid" | "Ask", m: MarketRules, problems: Problems): void {
  const legs = [
    ["tpTrigger", "tpLimit", "take-profit"],
    ["slTrigger", "slLimit", "stop-loss"],
  ] as const;
  for (const [triggerKey, limitKey, name] of legs) {
    const trigger = b[triggerKey].trim();
    const limit = b[limitKey].trim();
    if (trigger) problems[triggerKey] = checkPrice(trigger, m, `${name} trigger price`);
    else if (limit) problems[triggerKey] = `Enter the ${name} trigger price for its limit price`;
    if (limit) problems[limitKey] = checkPrice(limit, m, `${name} limit price`);
    if (problems[triggerKey] === undefined) delete problems[triggerKey];
    if (problems[limitKey] === undefined) delete problems[limitKey];
  }
  const tp = b.tpTrigger.trim();
  const sl = b.slTrigger.trim();
  if (!tp && !sl) problems.bracket = "Enter a take-profit or a stop-loss trigger price";
  else if (tp && sl && problems.tpTrigger === undefined && problems.slTrigger === undefined) {
    const order = compare(cleanNumber(tp)!, cleanNumber(sl)!);
    if (side === "Bid" && order <= 0) problems.bracket = "A buy's take-profit must lie above its stop-loss";
    if (side === "Ask" && order >= 0) problems.bracket = "A sell's take-profit must lie below its stop-loss";
  }
}

/** The order's value in the quote asset (price × quantity), or "" while either is not a number. */
export function orderTotal(price: string, quantity: string): string {
  const p = cleanNumber(price);
  const q = cleanNumber(quantity);
  return p === null || q === null ? "" : mul(p, q);
}
