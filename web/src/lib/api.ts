/**
 * The gateway's REST API as the UI uses it. Private calls carry the session's bearer
 * token; an error answer becomes an ApiError with the server's code and message, which the
 * UI shows as it is.
 */

import { type Level } from "./book";
import { logOut, session } from "./session";
import { type MarketRules } from "./validate";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Options {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  auth?: boolean;
}

async function call<T>(method: string, path: string, options: Options = {}): Promise<T> {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(options.query ?? {})) {
    if (value !== undefined && value !== "") params.set(name, String(value));
  }
  const query = params.toString();
  const url = query ? `${path}?${query}` : path;
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const current = session.get();
  if (options.auth && current) headers.Authorization = `Bearer ${current.token}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(0, "NETWORK", "The exchange cannot be reached. Check the connection and try again.");
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const error = (body ?? {}) as { code?: string; message?: string };
    if (response.status === 401 && options.auth) logOut();
    throw new ApiError(
      response.status,
      error.code ?? `HTTP_${response.status}`,
      error.message ?? (response.statusText || "The request failed"),
    );
  }
  return body as T;
}

// ---- public market data ----------------------------------------------------------------

export interface Market extends MarketRules {
  orderBookState: string;
  makerFeeBps: number;
  takerFeeBps: number;
}

interface MarketJson {
  symbol: string;
  baseSymbol: string;
  quoteSymbol: string;
  orderBookState: string;
  filters: {
    price: { tickSize: string; minPrice: string; maxPrice: string };
    quantity: { stepSize: string; minQuantity: string; maxQuantity: string };
  };
  minNotional: string;
  makerFeeBps: number;
  takerFeeBps: number;
}

export async function markets(): Promise<Market[]> {
  const list = await call<MarketJson[]>("GET", "/api/v1/markets");
  return list.map((m) => ({
    symbol: m.symbol,
    baseSymbol: m.baseSymbol,
    quoteSymbol: m.quoteSymbol,
    orderBookState: m.orderBookState,
    tickSize: m.filters.price.tickSize,
    minPrice: m.filters.price.minPrice ?? "",
    maxPrice: m.filters.price.maxPrice ?? "",
    stepSize: m.filters.quantity.stepSize,
    minQuantity: m.filters.quantity.minQuantity ?? "",
    maxQuantity: m.filters.quantity.maxQuantity ?? "",
    minNotional: m.minNotional ?? "",
    makerFeeBps: m.makerFeeBps,
    takerFeeBps: m.takerFeeBps,
  }));
}

/** One network an asset moves on (Backpack's `tokens`). */
export interface Token {
  blockchain: string;
  depositEnabled: boolean;
  withdrawEnabled: boolean;
  withdrawalFee: string;
  minimumWithdrawal: string;
  maximumWithdrawal: string | null; // null: no maximum
  depositConfirmations?: number;
  dailyLimit?: string | null; // per user, null: none
}

export interface Asset {
  symbol: string;
  decimals: number;
  tokens?: Token[];
}

export function assets(): Promise<Asset[]> {
  return call("GET", "/api/v1/assets");
}

export interface Ticker {
  symbol: string;
  firstPrice: string | null;
  lastPrice: string | null;
  high: string | null;
  low: string | null;
  volume: string;
  quoteVolume: string;
  priceChange: string;
  priceChangePercent: string; // a fraction: "0.0123" is +1.23%
  trades: string;
}

export function tickers(): Promise<Ticker[]> {
  return call("GET", "/api/v1/tickers");
}

export interface Depth {
  bids: Level[];
  asks: Level[];
  lastUpdateId: string;
}

export function depth(symbol: string): Promise<Depth> {
  return call("GET", "/api/v1/depth", { query: { symbol, limit: 1000 } });
}

export interface Trade {
  id: number;
  price: string;
  quantity: string;
  timestamp: number; // ms
  isBuyerMaker: boolean;
}

export function trades(symbol: string, limit = 50): Promise<Trade[]> {
  return call("GET", "/api/v1/trades", { query: { symbol, limit } });
}

export interface Kline {
  start: string; // "2025-07-20 08:26:00", UTC
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

export function klines(symbol: string, interval: string, limit = 500): Promise<Kline[]> {
  return call("GET", "/api/v1/klines", { query: { symbol, interval, limit } });
}

/** What the gateway serving this UI offers (the demo faucet). */
export interface UiConfig {
  faucet: boolean;
  faucetCap: string;
}

export function uiConfig(): Promise<UiConfig> {
  return call("GET", "/web-config.json");
}

// ---- accounts --------------------------------------------------------------------------

export interface Login {
  userId: string;
  token: string;
}

export function signUp(email: string, password: string): Promise<Login> {
  return call("POST", "/api/v1/auth/signup", { body: { email, password } });
}

export function logIn(email: string, password: string): Promise<Login> {
  return call("POST", "/api/v1/auth/login", { body: { email, password } });
}

export interface ApiKey {
  keyId: string;
  publicKey: string;
  label: string;
  createdAt: number;
  revokedAt: number | null;
  secret?: string; // only in the answer that creates it
}

export function apiKeys(): Promise<ApiKey[]> {
  return call("GET", "/api/v1/auth/apikeys", { auth: true });
}

export function createApiKey(label: string): Promise<ApiKey> {
  return call("POST", "/api/v1/auth/apikeys", { auth: true, body: { label } });
}

export function revokeApiKey(keyId: string): Promise<ApiKey> {
  return call("DELETE", "/api/v1/auth/apikeys", { auth: true, body: { keyId } });
}

// ---- trading ---------------------------------------------------------------------------

export interface Balance {
  available: string;
  locked: string;
}

export function balances(): Promise<Record<string, Balance>> {
  return call("GET", "/api/v1/capital", { auth: true });
}

export function deposit(asset: string, amount: string): Promise<{ asset: string; available: string }> {
  return call("POST", "/api/v1/onramp", { auth: true, body: { asset, amount } });
}

export interface Order {
  id: string;
  symbol: string;
  side: "Bid" | "Ask";
  orderType: "Limit" | "Market";
  price: string | null;
  quantity: string | null;
  quoteQuantity: string | null;
  executedQuantity: string;
  executedQuoteQuantity: string;
  status: string; // TriggerPending while a stop waits, TriggerFailed when it could not be placed
  createdAt: number; // ms
  triggerPrice: string | null;
  triggeredAt: number | null; // ms
  takeProfitTriggerPrice: string | null;
  takeProfitLimitPrice: string | null;
  stopLossTriggerPrice: string | null;
  stopLossLimitPrice: string | null;
  parentOrderId: string | null; // a take-profit / stop-loss leg: the order that made it
  relatedOrderId: string | null; // the other leg of its pair (one cancels the other)
  triggerFailure: string | null;
}

/** An order; with `triggerPrice` it is a stop, whose quantity is `triggerQuantity`. */
export interface NewOrder {
  symbol: string;
  side: "Bid" | "Ask";
  orderType: "Limit" | "Market";
  price?: string;
  quantity?: string;
  triggerPrice?: string;
  triggerQuantity?: string;
  takeProfitTriggerPrice?: string;
  takeProfitLimitPrice?: string;
  stopLossTriggerPrice?: string;
  stopLossLimitPrice?: string;
}

export function placeOrder(order: NewOrder): Promise<Order> {
  return call("POST", "/api/v1/order", { auth: true, body: order });
}

export function cancelOrder(symbol: string, orderId: string): Promise<Order> {
  return call("DELETE", "/api/v1/order", { auth: true, body: { symbol, orderId } });
}

export function cancelAll(symbol: string): Promise<Order[]> {
  return call("DELETE", "/api/v1/orders", { auth: true, body: { symbol } });
}

export function openOrders(symbol: string): Promise<Order[]> {
  return call("GET", "/api/v1/orders", { auth: true, query: { symbol } });
}

export function orderHistory(symbol: string): Promise<Order[]> {
  return call("GET", "/wapi/v1/history/orders", { auth: true, query: { symbol, limit: 100 } });
}

export interface Fill {
  tradeId: string;
  orderId: string;
  symbol: string;
  side: "Bid" | "Ask";
  price: string;
  quantity: string;
  fee: string;
  feeSymbol: string;
  isMaker: boolean;
  timestamp: string; // ISO, UTC, no zone suffix
}

export function fills(symbol: string): Promise<Fill[]> {
  return call("GET", "/wapi/v1/history/fills", { auth: true, query: { symbol, limit: 100 } });
}

// ---- capital ---------------------------------------------------------------------------

export function depositAddress(symbol: string, blockchain: string): Promise<{ address: string }> {
  return call("GET", "/wapi/v1/capital/deposit/address", { auth: true, query: { symbol, blockchain } });
}

export interface Deposit {
  id: string;
  symbol: string;
  blockchain: string;
  quantity: string;
  status: string; // pending until the network's confirmations, then confirmed
  confirmations: number;
  toAddress: string;
  transactionHash: string;
  createdAt: string; // ISO, UTC, no zone suffix
}

export function deposits(): Promise<Deposit[]> {
  return call("GET", "/wapi/v1/capital/deposits", { auth: true, query: { limit: 100 } });
}

export interface Withdrawal {
  id: number;
  symbol: string;
  blockchain: string;
  quantity: string;
  fee: string;
  status: string; // pending, confirmed or declined
  stage?: string; // pendingApproval, approved, confirmed, declined
  toAddress: string;
  memo?: string | null; // sent with it by custody (a chain's memo or destination tag)
  transactionHash: string | null;
  createdAt: string; // ISO, UTC, no zone suffix
}

export function withdrawals(): Promise<Withdrawal[]> {
  return call("GET", "/wapi/v1/capital/withdrawals", { auth: true, query: { limit: 100 } });
}

export interface NewWithdrawal {
  symbol: string;
  blockchain: string;
  address: string;
  quantity: string;
  memo?: string; // at most 64 printable ASCII characters
}

export function requestWithdrawal(w: NewWithdrawal): Promise<Withdrawal> {
  return call("POST", "/wapi/v1/capital/withdrawals", { auth: true, body: w });
}

/** How much of an asset can be withdrawn now: in all, and per network (the available
 * balance less the fee, within the network's maximum and what is left of its daily limit). */
export interface WithdrawalLimits {
  symbol: string;
  maxWithdrawalQuantity: string;
  networks?: (Token & { maxWithdrawalQuantity: string; withdrawnToday?: string })[];
}

export function withdrawalLimits(symbol: string): Promise<WithdrawalLimits> {
  return call("GET", "/api/v1/account/limits/withdrawal", { auth: true, query: { symbol } });
}
