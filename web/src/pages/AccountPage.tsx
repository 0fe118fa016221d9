import { useEffect, useState } from "preact/hooks";
import { Balances } from "../components/AccountPanel";
import { Link } from "../components/Link";
import * as api from "../lib/api";
import { catalog } from "../lib/catalog";
import { decimalsOf, isZero } from "../lib/decimal";
import { balances } from "../lib/feeds";
import * as fmt from "../lib/format";
import { session } from "../lib/session";
import { useStore } from "../lib/store";
import { cleanNumber } from "../lib/validate";

/** Balances, the demo faucet and API keys of the logged-in user. */
export function AccountPage() {
  const user = useStore(session);
  if (!user) {
    return (
      <p class="empty">
        <Link href="/login?next=/account">Log in</Link> to see your account.
      </p>
    );
  }
  return (
    <div class="account-page">
      <section class="panel">
        <h1>Balances</h1>
        <Balances />
      </section>
      <Deposit />
      <ApiKeys />
    </div>
  );
}

function Deposit() {
  const { config, decimals } = useStore(catalog);
  const assets = Object.keys(decimals).sort();
  const [asset, setAsset] = useState("");
  const [amount, setAmount] = useState("");
  const [message, setMessage] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const chosen = asset || assets[0] || "";
  if (!config.faucet) return null;

  async function submit(event: Event) {
    event.preventDefault();
    setMessage(null);
    const value = cleanNumber(amount);
    const places = decimals[chosen] ?? 0;
    if (value === null || isZero(value)) {
      setMessage({ ok: false, text: "Enter an amount above zero." });
      return;
    }
    if (decimalsOf(value) > places) {
      setMessage({ ok: false, text: `${chosen} has at most ${places} decimals.` });
      return;
    }
    setBusy(true);
    try {
      const result = await api.deposit(chosen, value);
      balances.set({
        ...balances.get(),
        [chosen]: { available: result.available, locked: balances.get()[chosen]?.locked ?? "0" },
      });
      setMessage({ ok: true, text: `Deposited ${fmt.amount(value, places)} ${chosen}.` });
      setAmount("");
    } catch (e) {
      setMessage({ ok: false, text: (e as Error).message });
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel">
      <h2>Deposit (demo faucet)</h2>
      <p class="muted small">Test funds for this demo exchange, up to {config.faucetCap} of each asset.</p>
      <form class="form inline" onSubmit={submit} data-testid="deposit-form" noValidate>
        <label>
          Asset
          <select name="asset" value={chosen} onChange={(e) => setAsset(e.currentTarget.value)}>
            {assets.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <label>
          Amount
          <input
            name="amount"
            inputMode="decimal"
            autoComplete="off"
            value={amount}
            onInput={(e) => setAmount(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          Deposit
        </button>
      </form>
      {message && (
        <p class={message.ok ? "success" : "error"} role={message.ok ? "status" : "alert"}>
          {message.text}
        </p>
      )}
    </section>
  );
}

function ApiKeys() {
  const [keys, setKeys] = useState<api.ApiKey[]>([]);
  const [label, setLabel] = useState("");
  const [created, setCreated] = useState<api.ApiKey | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () => api.apiKeys().then(setKeys, (e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  async function create(event: Event) {
    event.preventDefault();
    setError(null);
    try {
      setCreated(await api.createApiKey(label.trim()));
      setLabel("");
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function revoke(keyId: string) {
    setError(null);
    try {
      await api.revokeApiKey(keyId);
      if (created?.keyId === keyId) setCreated(null);
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <section class="panel">
      <h2>API keys</h2>
      <p class="muted small">
        Programs sign requests with an ED25519 key (Backpack's scheme, so ccxt's <code>backpack</code> class
        works).
      </p>
      <form class="form inline" onSubmit={create} data-testid="api-key-form">
        <label>
          Label
          <input
            name="label"
            maxLength={64}
            value={label}
            placeholder="trading bot"
            onInput={(e) => setLabel(e.currentTarget.value)}
          />
        </label>
        <button type="submit" class="primary">
          Create key
        </button>
      </form>
      {created?.secret && (
        <div class="secret" role="status" data-testid="new-key">
          <p>
            <strong>Copy the secret now: it is shown only once.</strong>
          </p>
          <dl>
            <dt>API key (public)</dt>
            <dd>
              <code data-field="public">{created.publicKey}</code>
            </dd>
            <dt>Secret</dt>
            <dd>
              <code data-field="secret">{created.secret}</code>
            </dd>
          </dl>
          <button class="ghost small" onClick={() => setCreated(null)}>
            I have saved it
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="table-scroll">
        {keys.length === 0 ? (
          <p class="muted empty-small">No API key yet.</p>
        ) : (
          <table class="grid compact" data-testid="api-keys">
            <thead>
              <tr>
                <th>Label</th>
                <th>Key</th>
                <th>Created</th>
                <th>Status</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.keyId} data-key-id={k.keyId}>
                  <td>{k.label || <span class="muted">—</span>}</td>
                  <td>
                    <code title={k.publicKey}>{k.publicKey.slice(0, 12)}…</code>
                  </td>
                  <td class="muted">{fmt.dateTime(k.createdAt)}</td>
                  <td>{k.revokedAt ? "Revoked" : "Active"}</td>
                  <td class="num">
                    {!k.revokedAt && (
                      <button class="ghost small" onClick={() => revoke(k.keyId)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
