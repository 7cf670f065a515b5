/**
 * The signed-in token: kept in sessionStorage (gone when the tab closes,
 * never in a cookie or localStorage), with the role the server said it has,
 * so a reload shows the views at once while the server is asked again.
 */
import { createContext } from "preact"
import { useContext } from "preact/hooks"
import { setToken } from "./api.js"
import type { Role } from "./types.js"

const key = "fleet-dashboard-token"
const roleKey = "fleet-dashboard-role"

/** The token kept for this tab, if any, with the role and name last seen for it. */
export const stored = (): { readonly token: string; readonly role?: Role; readonly name: string } | undefined => {
  try {
    const token = sessionStorage.getItem(key) ?? undefined
    if (token === undefined) return undefined
    const [role, ...name] = (sessionStorage.getItem(roleKey) ?? "").split(" ")
    return role === "admin" || role === "viewer" ? { token, role, name: name.join(" ") } : { token, name: "" }
  } catch {
    return undefined
  }
}

/** Keeps the token for this tab (or forgets it) and sends it from now on. */
export const keepToken = (token: string | undefined): void => {
  try {
    if (token === undefined) {
      sessionStorage.removeItem(key)
      sessionStorage.removeItem(roleKey)
    } else sessionStorage.setItem(key, token)
  } catch {
    // Storage refused (private mode): the token lives in memory only.
  }
  setToken(token)
}

/** Remembers what the server said the token is. */
export const keepRole = (role: Role, name: string): void => {
  try {
    sessionStorage.setItem(roleKey, `${role} ${name}`)
  } catch {
    // As above.
  }
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
