/**
 * Who is logged in: the bearer token from sign-up or log-in, kept in localStorage so a
 * reload stays logged in. The token expires on the server (an hour by default); the first
 * 401 logs the browser out.
 */

import { Store } from "./store";

export interface Session {
  token: string;
  userId: string;
  email: string;
}

const KEY = "exchange.session";

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : null;
    if (parsed && typeof parsed === "object" && "token" in parsed && "userId" in parsed) {
      return parsed as Session;
    }
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

export const session = new Store<Session | null>(load());

session.subscribe((value) => {
  if (value === null) localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, JSON.stringify(value));
});

export function logOut(): void {
  session.set(null);
}
