/**
 * The dashboard's places, kept in the URL's fragment (`#/apps/{app}/...`),
 * so the server serves one page and every view has a link that can be
 * shared or reloaded.
 */
import { useEffect, useState } from "preact/hooks"

/** Where the dashboard is. */
export type Route =
  | { readonly view: "apps" }
  | { readonly view: "app"; readonly app: string }
  | { readonly view: "group"; readonly app: string; readonly group: string }
  | { readonly view: "instances"; readonly app: string; readonly params: URLSearchParams }
  | { readonly view: "instance"; readonly app: string; readonly machineId: string }
  | { readonly view: "channels"; readonly app: string }
  | { readonly view: "activity" }
  | { readonly view: "notFound"; readonly path: string }

const dec = (segment: string): string => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}

/** The route a fragment names. */
export const parse = (hash: string): Route => {
  const raw = hash.replace(/^#/, "")
  const [path = "", search = ""] = raw.split("?", 2)
  const parts = path.split("/").filter((part) => part !== "").map(dec)
  const params = new URLSearchParams(search)
  if (parts.length === 0 || (parts.length === 1 && parts[0] === "apps")) return { view: "apps" }
  if (parts.length === 1 && parts[0] === "activity") return { view: "activity" }
  if (parts[0] === "apps" && parts[1] !== undefined) {
    const app = parts[1]
    if (parts.length === 2) return { view: "app", app }
    if (parts.length === 4 && parts[2] === "groups") return { view: "group", app, group: parts[3]! }
    if (parts.length === 3 && parts[2] === "instances") return { view: "instances", app, params }
    if (parts.length === 4 && parts[2] === "instances") return { view: "instance", app, machineId: parts[3]! }
    if (parts.length === 3 && parts[2] === "channels") return { view: "channels", app }
  }
  return { view: "notFound", path }
}

const enc = encodeURIComponent

/** Links to the dashboard's places. */
export const href = {
  apps: () => "#/",
  app: (app: string) => `#/apps/${enc(app)}`,
  group: (app: string, group: string) => `#/apps/${enc(app)}/groups/${enc(group)}`,
  instances: (app: string, params: Record<string, string | number | undefined> = {}) => {
    const search = new URLSearchParams(
      Object.entries(params).flatMap(([k, v]) => (v === undefined || v === "" ? [] : [[k, String(v)]]))
    ).toString()
    return `#/apps/${enc(app)}/instances${search === "" ? "" : `?${search}`}`
  },
  instance: (app: string, machineId: string) => `#/apps/${enc(app)}/instances/${enc(machineId)}`,
  channels: (app: string) => `#/apps/${enc(app)}/channels`,
  activity: () => "#/activity"
}

/** The current route, following the fragment. */
export const useRoute = (): Route => {
  const [route, setRoute] = useState(() => parse(location.hash))
  useEffect(() => {
    const follow = () => setRoute(parse(location.hash))
    addEventListener("hashchange", follow)
    return () => removeEventListener("hashchange", follow)
  }, [])
  return route
}

/** Goes to a place (a fragment from `href`). */
export const go = (fragment: string): void => {
  if (location.hash !== fragment) location.hash = fragment
}
