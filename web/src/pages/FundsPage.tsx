import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Balances } from "../components/AccountPanel";
import { Link } from "../components/Link";
import * as api from "../lib/api";
import { catalog } from "../lib/catalog";
import { isZero, normalize, parse } from "../lib/decimal";
import { balances, touchAccount } from "../lib/feeds";
import * as fmt from "../lib/format";
import { session } from "../lib/session";
import { useStore } from "../lib/store";
import { cleanNumber } from "../lib/validate";
import { checkWithdrawal, withdrawalTotal } from "../lib/withdrawal";

const HISTORY_POLL_MS = 5000; // a deposit's confirmations grow with no balance change

/** Money in and out: deposit addresses, withdrawals, and the history of both. */
export function FundsPage() {
  const user = useStore(session);
  const funds = useStore(balances);
  const [deposits, setDeposits] = useState<api.Deposit[]>([]);
  const [withdrawals, setWithdrawals] = useState<api.Withdrawal[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0); // bumped by a withdrawal request

  useEffect(() => {
    if (!user) return undefined;
    let stopped = false;
    const load = () => {
      Promise.all([api.deposits(), api.withdrawals()]).then(
        ([d, w]) => {
          if (stopped) return;
          setDeposits(d);
          setWithdrawals(w);
          setError(null);
        },
        (e: Error) => !stopped && setError(e.message),
      );
    };
    load();
    const timer = window.setInterval(load, HISTORY_POLL_MS);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [user?.token, funds, version]);

  useEffect(() => {
    document.title = "Funds · Exchange";
  }, []);

  if (!user) {
    return (
      <p class="empty">
        <Link href="/login?next=/funds">Log in</Link> to deposit and withdraw.
      </p>
    );
  }
  return (
    <div class="account-page funds">
      <section class="panel">
        <h1>Funds</h1>
        <Balances />
      </section>
      <DepositAddress />
      <Withdraw onRequested={() => setVersion((v) => v + 1)} />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <Deposits deposits={deposits} />
      <Withdrawals withdrawals={withdrawals} />
    </div>
  );
}

/** The assets that have a network where `usable` holds, and those networks. */
function useNetworks(usable: (t: api.Token) => boolean): [string[], Record<string, api.Token[]>] {
  const { networks } = useStore(catalog);
  const on: Record<string, api.Token[]> = {};
  for (const [asset, tokens] of Object.entries(networks)) {
    const open = tokens.filter(usable);
    if (open.length > 0) on[asset] = open;
  }
  return [Object.keys(on).sort(), on];
}

function AssetNetwork(props: {
  assets: string[];
  networks: Record<string, api.Token[]>;
  asset: string;
  network: string;
  onAsset: (asset: string) => void;
  onNetwork: (network: string) => void;
}) {
  return (
    <>
      <label>
        Asset
        <select name="asset" value={props.asset} onChange={(e) => props.onAsset(e.currentTarget.value)}>
          {props.assets.map((a) => (
            <option key={a} value={a}>
              {a}
            </option>
          ))}
        </select>
      </label>
      <label>
        Network
        <select name="network" value={props.network} onChange={(e) => props.onNetwork(e.currentTarget.value)}>
          {(props.networks[props.asset] ?? []).map((t) => (
            <option key={t.blockchain} value={t.blockchain}>
              {t.blockchain}
            </option>
          ))}
        </select>
      </label>
    </>
  );
}

/** The chosen asset and network, falling back to the first ones there are. */
function useChoice(assets: string[], networks: Record<string, api.Token[]>) {
  const [asset, setAsset] = useState("");
  const [network, setNetwork] = useState("");
  const a = assets.includes(asset) ? asset : (assets[0] ?? "");
  const onIt = networks[a] ?? [];
  const token = onIt.find((t) => t.blockchain === network) ?? onIt[0];
  return {
    asset: a,
    network: token?.blockchain ?? "",
    token,
    onAsset: (value: string) => {
      setAsset(value);
      setNetwork("");
    },
    onNetwork: setNetwork,
  };
}

function DepositAddress() {
  const [assets, networks] = useNetworks((t) => t.depositEnabled);
  const choice = useChoice(assets, networks);
  const [address, setAddress] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!choice.asset || !choice.network) return undefined;
    let stopped = false;
    setAddress(null);
    setError(null);
    api.depositAddress(choice.asset, choice.network).then(
      (a) => !stopped && setAddress(a.address),
      (e: api.ApiError) => !stopped && setError(`${e.message} (${e.code})`),
    );
    return () => {
      stopped = true;
    };
  }, [choice.asset, choice.network]);

  if (assets.length === 0) return null;
  const confirmations = choice.token?.depositConfirmations;
  return (
    <section class="panel" data-testid="deposit-address">
      <h2>Deposit</h2>
      <div class="form inline">
        <AssetNetwork assets={assets} networks={networks} {...choice} />
      </div>
      {address && (
        <div class="address">
          <p class="muted small">
            Your {choice.asset} address on {choice.network}: send only {choice.asset} on {choice.network}{" "}
            here.
            {confirmations ? ` It is credited after ${confirmations} confirmations.` : ""}
          </p>
          <code data-field="address">{address}</code>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function Withdraw(props: { onRequested: () => void }) {
  const [assets, networks] = useNetworks((t) => t.withdrawEnabled);
  const choice = useChoice(assets, networks);
  const { decimals } = useStore(catalog);
  const funds = useStore(balances);
  const [limits, setLimits] = useState<api.WithdrawalLimits | null>(null);
  const [address, setAddress] = useState("");
  const [memo, setMemo] = useState("");
  const [quantity, setQuantity] = useState("");
  const [showAll, setShowAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);

  useEffect(() => {
    if (!choice.asset) return undefined;
    let stopped = false;
    api.withdrawalLimits(choice.asset).then(
      (l) => !stopped && setLimits(l),
      () => !stopped && setLimits(null),
    );
    return () => {
      stopped = true;
    };
  }, [choice.asset, funds]);

  if (assets.length === 0 || !choice.token) return null;
  const t = choice.token;
  const places = decimals[choice.asset] ?? 8;
  const mine = limits?.symbol === choice.asset ? limits : null;
  const here = mine?.networks?.find((n) => n.blockchain === choice.network);
  const shown = here?.maxWithdrawalQuantity ?? mine?.maxWithdrawalQuantity;
  const most = shown && parse(shown) ? normalize(shown) : null;
  const daily = here?.dailyLimit ?? t.dailyLimit ?? null;
  const rules = {
    asset: choice.asset,
    network: choice.network,
    decimals: places,
    fee: t.withdrawalFee,
    minimum: t.minimumWithdrawal,
    maximum: t.maximumWithdrawal,
    most,
  };
  const problem = checkWithdrawal(quantity, rules);
  const shownProblem = showAll || quantity.trim() ? problem : undefined;
  const total = withdrawalTotal(quantity, t.withdrawalFee);
  // Fees and limits as configured ("0.5 USDT"), balances to the asset's decimals.
  const amount = (text: string | null | undefined) =>
    text === null || text === undefined ? "—" : `${fmt.group(normalize(text))} ${choice.asset}`;

  async function submit(event: Event) {
    event.preventDefault();
    setShowAll(true);
    setMessage(null);
    if (problem !== undefined) return;
    if (!address.trim()) {
      setMessage({ ok: false, text: `Enter the ${choice.network} address to send to.` });
      return;
    }
    setBusy(true);
    try {
      const w = await api.requestWithdrawal({
        symbol: choice.asset,
        blockchain: choice.network,
        address: address.trim(),
        quantity: cleanNumber(quantity)!,
        ...(memo.trim() ? { memo: memo.trim() } : {}),
      });
      setMessage({
        ok: true,
        text: `Withdrawal of ${amount(w.quantity)} on ${w.blockchain} requested (fee ${amount(w.fee)}): ${w.status}.`,
      });
      setQuantity("");
      setMemo("");
      setShowAll(false);
      touchAccount();
      props.onRequested();
    } catch (e) {
      const error = e as api.ApiError;
      setMessage({
        ok: false,
        text: error.code && error.code !== "NETWORK" ? `${error.message} (${error.code})` : error.message,
      });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel">
      <h2>Withdraw</h2>
      <form class="form" onSubmit={submit} data-testid="withdraw-form" noValidate>
        <div class="form inline">
          <AssetNetwork assets={assets} networks={networks} {...choice} />
        </div>
        <label>
          Address
          <input
            name="address"
            autoComplete="off"
            spellcheck={false}
            value={address}
            onInput={(e) => setAddress(e.currentTarget.value)}
          />
        </label>
        <label>
          Memo (optional: the tag the receiver asks for)
          <input
            name="memo"
            autoComplete="off"
            spellcheck={false}
            maxLength={64}
            value={memo}
            onInput={(e) => setMemo(e.currentTarget.value)}
          />
        </label>
        <label>
          Quantity ({choice.asset})
          <input
            name="quantity"
            inputMode="decimal"
            autoComplete="off"
            value={quantity}
            aria-invalid={shownProblem ? "true" : "false"}
            onInput={(e) => setQuantity(e.currentTarget.value)}
          />
          {shownProblem && (
            <span class="field-error" role="alert">
              {shownProblem}
            </span>
          )}
        </label>
        <dl class="stats" data-testid="withdraw-terms">
          <div>
            <dt>Available</dt>
            <dd data-field="available">
              {fmt.amount(funds[choice.asset]?.available ?? "0", places)} {choice.asset}
            </dd>
          </div>
          <div>
            <dt>Fee</dt>
            <dd data-field="fee">{amount(t.withdrawalFee)}</dd>
          </div>
          <div>
            <dt>Minimum</dt>
            <dd data-field="minimum">{amount(t.minimumWithdrawal)}</dd>
          </div>
          <div>
            <dt>Maximum</dt>
            <dd data-field="maximum">{t.maximumWithdrawal ? amount(t.maximumWithdrawal) : "none"}</dd>
          </div>
          <div>
            <dt>Daily limit</dt>
            <dd data-field="daily">
              {daily ? amount(daily) : "none"}
              {daily && here?.withdrawnToday ? ` (${fmt.group(normalize(here.withdrawnToday))} used)` : ""}
            </dd>
          </div>
          <div>
            <dt>You can withdraw now</dt>
            <dd data-field="most">
              {most === null ? "—" : amount(most)}{" "}
              {most !== null && !isZero(most) && (
                <button type="button" class="chip" onClick={() => setQuantity(most)}>
                  Max
                </button>
              )}
            </dd>
          </div>
        </dl>
        <p class="total">
          Leaves your balance <strong data-testid="withdraw-total">{total ? amount(total) : "—"}</strong>{" "}
          (quantity and fee; locked until the withdrawal is sent or declined)
        </p>
        {message && (
          <p
            class={message.ok ? "success" : "error"}
            role={message.ok ? "status" : "alert"}
            data-testid="withdraw-result"
          >
            {message.text}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Withdraw {choice.asset}
        </button>
      </form>
    </section>
  );
}

function utc(iso: string): string {
  return fmt.dateTime(Date.parse(`${iso}Z`));
}

function Hash(props: { hash: string | null }) {
  if (!props.hash) return <span class="muted">—</span>;
  return (
    <code title={props.hash}>{props.hash.length > 16 ? `${props.hash.slice(0, 14)}…` : props.hash}</code>
  );
}

function Deposits(props: { deposits: api.Deposit[] }) {
  const { decimals, networks } = useStore(catalog);
  const needed = (d: api.Deposit) =>
    networks[d.symbol]?.find((t) => t.blockchain === d.blockchain)?.depositConfirmations;
  return (
    <History
      title="Deposits"
      testId="deposits"
      empty="No deposit yet."
      rows={props.deposits}
      columns={[
        ["Quantity", (d) => fmt.amount(d.quantity, decimals[d.symbol] ?? 8), "num"],
        [
          "Status",
          (d) => (
            <>
              {d.status}
              {d.status === "pending" && (
                <span class="muted">
                  {" "}
                  ({d.confirmations}
                  {needed(d) ? `/${needed(d)}` : ""} confirmations)
                </span>
              )}
            </>
          ),
          "status",
        ],
        ["Transaction", (d) => <Hash hash={d.transactionHash} />],
      ]}
    />
  );
}

const STAGES: Record<string, string> = {
  pendingApproval: "awaiting approval",
  approved: "being sent",
};

function Withdrawals(props: { withdrawals: api.Withdrawal[] }) {
  const { decimals } = useStore(catalog);
  return (
    <History
      title="Withdrawals"
      testId="withdrawals"
      empty="No withdrawal yet."
      rows={props.withdrawals}
      columns={[
        ["Quantity", (w) => fmt.amount(w.quantity, decimals[w.symbol] ?? 8), "num"],
        ["Fee", (w) => fmt.amount(w.fee, decimals[w.symbol] ?? 8), "num"],
        ["To", (w) => <Hash hash={w.toAddress} />],
        ["Memo", (w) => w.memo || <span class="muted">—</span>, "memo"],
        [
          "Status",
          (w) => (
            <>
              {w.status}
              {w.stage && STAGES[w.stage] && <span class="muted"> ({STAGES[w.stage]})</span>}
            </>
          ),
          "status",
        ],
        ["Transaction", (w) => <Hash hash={w.transactionHash} />],
      ]}
    />
  );
}

/** A column after the time, asset and network every transfer has: its heading, its
 * cell, and `num` (right-aligned) or `status` / `memo` (cells tests read). */
type Column<T> = [string, (row: T) => ComponentChildren, ("num" | "status" | "memo")?];

/** A user's transfers, newest first, as one table shape for deposits and withdrawals. */
function History<T extends api.Deposit | api.Withdrawal>(props: {
  title: string;
  testId: string;
  empty: string;
  rows: T[];
  columns: Column<T>[];
}) {
  return (
    <section class="panel">
      <h2>{props.title}</h2>
      <div class="table-scroll">
        {props.rows.length === 0 ? (
          <p class="muted empty-small">{props.empty}</p>
        ) : (
          <table class="grid compact" data-testid={props.testId}>
            <thead>
              <tr>
                <th>Time</th>
                <th>Asset</th>
                <th>Network</th>
                {props.columns.map(([head, , kind]) => (
                  <th key={head} class={kind === "num" ? "num" : undefined}>
                    {head}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {props.rows.map((row) => (
                <tr key={row.id} data-id={row.id}>
                  <td class="muted">{utc(row.createdAt)}</td>
                  <td>
                    <strong>{row.symbol}</strong>
                  </td>
                  <td>{row.blockchain}</td>
                  {props.columns.map(([head, cell, kind]) => (
                    <td
                      key={head}
                      class={kind === "num" ? "num" : undefined}
                      data-field={kind === "status" || kind === "memo" ? kind : undefined}
                    >
                      {cell(row)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
