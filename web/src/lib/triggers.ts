/**
 * Conditional orders as a person reads them. A pending trigger fires when the last trade
 * price reaches its trigger price from the side it lay on when it was placed, so while it
 * waits the last price is still on that side: comparing the two says which way it fires.
 */

import { compare, parse } from "./decimal";

/** The fields of an order view this reads (Backpack's names). */
export interface TriggerView {
  id: string;
  side: "Bid" | "Ask";
  orderType: "Limit" | "Market";
  status: string;
  triggerPrice: string | null;
  parentOrderId: string | null;
  relatedOrderId: string | null;
}

/** Which way the last price must move to reach `trigger`: "now" if it is there already,
 * null while the market has no trade (or the trigger is not a number). */
export function movement(trigger: string, last: string | null): "rises" | "falls" | "now" | null {
  if (!last || parse(last) === null || parse(trigger) === null) return null;
  const order = compare(trigger, last);
  return order > 0 ? "rises" : order < 0 ? "falls" : "now";
}

/** Whether a trigger fires at a trade at or above its price (null: cannot tell). A
 * take-profit / stop-loss pair is told by its two prices, a pending trigger by the last
 * price. */
export function firesAbove(o: TriggerView, orders: TriggerView[], last: string | null): boolean | null {
  if (!o.triggerPrice) return null;
  const other = o.relatedOrderId ? orders.find((x) => x.id === o.relatedOrderId) : undefined;
  if (other?.triggerPrice && compare(other.triggerPrice, o.triggerPrice) !== 0) {
    return compare(o.triggerPrice, other.triggerPrice) > 0;
  }
  if (o.status !== "TriggerPending") return null;
  const way = movement(o.triggerPrice, last);
  return way === "rises" ? true : way === "falls" ? false : null;
}

/** "Limit", "Stop market", "Take profit limit", ...: what kind of order this is. A leg sells
 * what a buy bought (taking profit above, stopping the loss below), or buys back what a sell
 * sold (the other way round). */
export function orderKind(o: TriggerView, orders: TriggerView[], last: string | null): string {
  if (!o.triggerPrice) return o.orderType;
  const how = o.orderType === "Limit" ? "limit" : "market";
  if (!o.parentOrderId) return `Stop ${how}`;
  const above = firesAbove(o, orders, last);
  if (above === null) return `TP/SL ${how}`;
  return above === (o.side === "Ask") ? `Take profit ${how}` : `Stop loss ${how}`;
}
