/**
 * Checks a withdrawal against its network's rules and what the account can withdraw now,
 * before it is sent. The server checks all of it again (and the address's format): this
 * says it in words without a round trip.
 */

import { add, compare, decimalsOf, isZero } from "./decimal";
import { cleanNumber } from "./validate";

export interface WithdrawalRules {
  asset: string;
  network: string;
  decimals: number; // of the asset
  fee: string;
  minimum: string;
  maximum: string | null; // per withdrawal; null: none
  most: string | null; // what can go now (balance less fee, limits); null: not known yet
}

/** What is wrong with withdrawing `quantity`, or undefined when it may be sent. */
export function checkWithdrawal(quantity: string, r: WithdrawalRules): string | undefined {
  const text = quantity.trim();
  if (text === "") return "Enter a quantity";
  const q = cleanNumber(text);
  if (q === null) return "The quantity must be a number";
  if (isZero(q)) return "The quantity must be above zero";
  if (decimalsOf(q) > r.decimals) return `${r.asset} has at most ${r.decimals} decimals`;
  if (compare(q, r.minimum) < 0) return `The smallest withdrawal on ${r.network} is ${r.minimum} ${r.asset}`;
  if (r.maximum !== null && compare(q, r.maximum) > 0) {
    return `The largest withdrawal on ${r.network} is ${r.maximum} ${r.asset}`;
  }
  if (r.most !== null && compare(q, r.most) > 0) {
    return (
      `Too much: you can withdraw at most ${r.most} ${r.asset} on ${r.network} now ` +
      `(your available balance less the ${r.fee} ${r.asset} fee, within the daily limit)`
    );
  }
  return undefined;
}

/** What leaves the balance: the quantity and the fee ("" while the quantity is not a number). */
export function withdrawalTotal(quantity: string, fee: string): string {
  const q = cleanNumber(quantity);
  return q === null ? "" : add(q, fee);
}
