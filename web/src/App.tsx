import { useEffect } from "preact/hooks";
import { Link } from "./components/Link";
import { StatusPill } from "./components/StatusPill";
import { catalog } from "./lib/catalog";
import { watchBalances } from "./lib/feeds";
import { navigate, path, route } from "./lib/router";
import { logOut, session } from "./lib/session";
import { useStore } from "./lib/store";
import { AccountPage } from "./pages/AccountPage";
import { AuthPage } from "./pages/AuthPage";
import { FundsPage } from "./pages/FundsPage";
import { MarketsPage } from "./pages/MarketsPage";
import { TradePage } from "./pages/TradePage";

export function App() {
  const current = route(useStore(path));
  const user = useStore(session);
  const { error, loaded } = useStore(catalog);
  useEffect(() => watchBalances(), []);

  let page;
  if (current.page === "markets") page = <MarketsPage />;
  else if (current.page === "trade") page = <TradePage symbol={current.market} />;
  else if (current.page === "login" || current.page === "signup") page = <AuthPage mode={current.page} />;
  else if (current.page === "account") page = <AccountPage />;
  else if (current.page === "funds") page = <FundsPage />;
  else
    page = (
      <p class="empty">
        This page does not exist. <Link href="/markets">See the markets</Link>.
      </p>
    );

  return (
    <>
      <header class="topbar">
        <Link href="/markets" class="brand">
          <span class="logo" aria-hidden="true" />
          Exchange
        </Link>
        <nav class="nav">
          <Link href="/markets">Markets</Link>
          {user && <Link href="/funds">Funds</Link>}
          {user && <Link href="/account">Account</Link>}
        </nav>
        <div class="spacer" />
        <StatusPill />
        {user ? (
          <div class="user">
            <span class="email" title={user.email}>
              {user.email}
            </span>
            <button
              class="ghost"
              onClick={() => {
                logOut();
                navigate("/markets");
              }}
            >
              Log out
            </button>
          </div>
        ) : (
          <div class="user">
            <Link href="/login" class="button ghost">
              Log in
            </Link>
            <Link href="/signup" class="button primary">
              Sign up
            </Link>
          </div>
        )}
      </header>
      {error && loaded && (
        <div class="banner error" role="alert">
          Cannot load the markets: {error}. Retrying…
        </div>
      )}
      <main>{page}</main>
    </>
  );
}
