/** Signing in with an API token; the token is kept for this tab only. */
import type { ComponentChildren } from "preact"
import { useState } from "preact/hooks"
import type { ApiFailure } from "../api.js"

/** The sign-in form. */
export const SignIn = (
  { onSignIn, children }: { onSignIn: (token: string) => Promise<ApiFailure | undefined>; children?: ComponentChildren }
) => {
  const [token, setToken] = useState("")
  const [busy, setBusy] = useState(false)
  const submit = async (event: Event) => {
    event.preventDefault()
    if (token.trim() === "") return
    setBusy(true)
    await onSignIn(token.trim())
    setBusy(false)
  }
  return (
    <main class="signin">
      <form class="panel signin-form" onSubmit={submit}>
        <h1>fleet-server</h1>
        <p class="muted">Sign in with an API token. It is kept for this browser tab only.</p>
        <label>
          Token
          <input
            type="password"
            name="token"
            autoComplete="off"
            spellcheck={false}
            placeholder="fleet_…"
            value={token}
            onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
            required
          />
        </label>
        {children}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p class="muted small">
          Create one on the server with <code>fleet-server token create --role admin</code> (or{" "}
          <code>--role viewer</code> for a token that may only look).
        </p>
      </form>
    </main>
  )
}
