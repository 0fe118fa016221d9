/** Client-side routes: the gateway answers index.html for each of them. */

import { Store } from "./store";

export const path = new Store<string>(location.pathname);

window.addEventListener("popstate", () => path.set(location.pathname));

export function navigate(to: string): void {
  if (to === location.pathname) return;
  history.pushState(null, "", to);
  path.set(location.pathname);
  window.scrollTo(0, 0);
}

export type Route =
  | { page: "markets" }
  | { page: "trade"; market: string }
  | { page: "login" }
  | { page: "signup" }
  | { page: "account" }
  | { page: "funds" }
  | { page: "missing" };

export function route(pathname: string): Route {
  if (pathname === "/" || pathname === "/markets") return { page: "markets" };
  const trade = /^\/trade\/([A-Za-z0-9_-]{1,32})\/?$/.exec(pathname);
  if (trade) return { page: "trade", market: trade[1].toUpperCase() };
  if (pathname === "/login") return { page: "login" };
  if (pathname === "/signup") return { page: "signup" };
  if (pathname === "/account") return { page: "account" };
  if (pathname === "/funds") return { page: "funds" };
  return { page: "missing" };
}
