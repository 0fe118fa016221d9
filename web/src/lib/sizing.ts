/**
 * The percentage buttons of the order form: the quantity that spends a share of the
 * available balance, on the market's step, never more than the balance can pay.
 */

import { add, decimalsOf, div, floorTo, isZero, mul, parse } from "./decimal";

export interface Sizing {
  side: "Bid" | "Ask";
  percent: number; // 25, 50, 75 or 100
  available: string; // of the quote asset when buying, of the base asset when selling
  price: string; // the limit price, or the best opposite price for a market order
  stepSize: string;
  feeBps: number; // the most a buyer can be charged on top of the notional
}

export function quantityFor(s: Sizing): string {
  if (parse(s.available) === null) return "";
  const share = div(mul(s.available, String(s.percent)), "100", 18);
  if (s.side === "Ask") return floorTo(share, s.stepSize);
  if (parse(s.price) === null || isZero(s.price)) return "";
  // A buy locks price × quantity plus its fee: quantity = share / (price × (1 + fee)).
  const perUnit = mul(s.price, add("1", div(String(s.feeBps), "10000", 4)));
  const decimals = decimalsOf(s.stepSize) + 1;
  return floorTo(div(share, perUnit, decimals), s.stepSize);
}
