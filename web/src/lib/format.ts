/**
 * Numbers as a person reads them: each market's prices to its tick's decimals, sizes to its
 * step's decimals, thousands grouped, changes signed. All from decimal strings, exactly.
 */

import { compare, decimalsOf, div, isZero, mul, parse, sub, toFixed } from "./decimal";

/** 1234567.8 -> "1,234,567.8" (the fraction is left as it is). */
export function group(text: string): string {
  const negative = text.startsWith("-");
  const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative ? "-" : "") + grouped + (fraction === undefined ? "" : `.${fraction}`);
}

/** A decimal string to `decimals` decimals, grouped; "" and invalid input give "—". */
export function fixed(
  text: string | null | undefined,
  decimals: number,
  mode: "down" | "round" = "round",
): string {
  if (text === null || text === undefined || parse(text) === null) return "—";
  return group(toFixed(text, decimals, mode));
}

/** A price of a market whose tick is `tickSize`. */
export function price(text: string | null | undefined, tickSize: string): string {
  return fixed(text, decimalsOf(tickSize));
}

/** A quantity of a market whose step is `stepSize`. */
export function quantity(text: string | null | undefined, stepSize: string): string {
  return fixed(text, decimalsOf(stepSize));
}

/** A balance, never shown as more than it is. */
export function amount(text: string | null | undefined, decimals: number): string {
  return fixed(text, decimals, "down");
}

/** A fraction ("0.0123") as a signed percentage with two decimals ("+1.23%"). */
export function percent(fraction: string | null | undefined): string {
  if (fraction === null || fraction === undefined || parse(fraction) === null) return "—";
  const value = toFixed(mul(fraction, "100"), 2);
  return `${compare(value, "0") > 0 ? "+" : ""}${value}%`;
}

/** "up", "down" or "flat": the colour of a change. */
export function direction(change: string | null | undefined): "up" | "down" | "flat" {
  if (change === null || change === undefined || parse(change) === null || isZero(change)) return "flat";
  return compare(change, "0") > 0 ? "up" : "down";
}

/** The change from `open` to `last` as a fraction of `open` ("" when unknown). */
export function changeFraction(open: string | null | undefined, last: string | null | undefined): string {
  if (!open || !last || parse(open) === null || parse(last) === null || isZero(open)) return "";
  return div(sub(last, open), open, 6);
}

/** Time of day, local, for trade lists. */
export function clock(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** Date and time, local, for order history. */
export function dateTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock(ms)}`;
}
