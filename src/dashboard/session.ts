/**
 * The signed-in token: kept in sessionStorage (gone when the tab closes,
 * never in a cookie or localStorage), with the role the server says it has.
 */
import { createContext } from "preact"
import { useContext } from "preact/hooks"
import { setToken } from "./api.js"
import type { Role } from "./types.js"

const key = "fleet-dashboard-token"

/** The token kept for this tab, if any. */
export const storedToken = (): string | undefined => {
  try {
    return sessionStorage.getItem(key) ?? undefined
  } catch {
    return undefined
  }
}

/** Keeps the token for this tab (or forgets it) and sends it from now on. */
export const keepToken = (token: string | undefined): void => {
  try {
    if (token === undefined) sessionStorage.removeItem(key)
    else sessionStorage.setItem(key, token)
  } catch {
    // Storage refused (private mode): the token lives in memory only.
  }
  setToken(token)
}

/** Who is signed in. */
export interface SessionInfo {
  readonly role: Role
  readonly name: string
  readonly signOut: () => void
}

/** The session of the signed-in views. */
export const SessionContext = createContext<SessionInfo>({ role: "viewer", name: "", signOut: () => undefined })

/** The session, and whether it may change things. */
export const useSession = (): SessionInfo & { readonly canEdit: boolean } => {
  const session = useContext(SessionContext)
  return { ...session, canEdit: session.role === "admin" }
}
