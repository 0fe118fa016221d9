import { useState } from "preact/hooks";
import { Link } from "../components/Link";
import * as api from "../lib/api";
import { navigate } from "../lib/router";
import { session } from "../lib/session";

/** Sign-up and log-in: both end with the bearer token in the session. */
export function AuthPage(props: { mode: "login" | "signup" }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signup = props.mode === "signup";

  async function submit(event: Event) {
    event.preventDefault();
    setError(null);
    if (signup && password.length < 8) {
      setError("Choose a password of at least 8 characters.");
      return;
    }
    setBusy(true);
    try {
      const login = signup
        ? await api.signUp(email.trim(), password)
        : await api.logIn(email.trim(), password);
      session.set({ token: login.token, userId: login.userId, email: email.trim() });
      const back = new URLSearchParams(location.search).get("next");
      navigate(back && back.startsWith("/") ? back : signup ? "/account" : "/markets");
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="panel auth">
      <h1>{signup ? "Create an account" : "Log in"}</h1>
      <form onSubmit={submit} class="form">
        <label>
          Email
          <input
            type="email"
            name="email"
            autoComplete="email"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            type="password"
            name="password"
            required
            value={password}
            autoComplete={signup ? "new-password" : "current-password"}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary wide" disabled={busy}>
          {signup ? "Sign up" : "Log in"}
        </button>
      </form>
      <p class="muted">
        {signup ? (
          <>
            Already have an account? <Link href="/login">Log in</Link>
          </>
        ) : (
          <>
            New here? <Link href="/signup">Create an account</Link>
          </>
        )}
      </p>
    </section>
  );
}
