/** The instance statuses as the dashboard shows them: their order, words and colours. */
import type { Status } from "./types.js"

/** Every status, in the order an update goes through them. */
export const statuses: ReadonlyArray<Status> = [
  "undefined",
  "onHold",
  "granted",
  "downloading",
  "downloaded",
  "installed",
  "complete",
  "error"
]

/** What each status is called on the page (`undefined`: no update under way). */
export const statusShort: Readonly<Record<Status, string>> = {
  undefined: "Idle",
  granted: "Granted",
  downloading: "Downloading",
  downloaded: "Downloaded",
  installed: "Installed",
  complete: "Complete",
  error: "Failed",
  onHold: "On hold"
}

/** Series colours for versions, by rank. */
export const versionColours: ReadonlyArray<string> = [
  "#2563eb",
  "#16a34a",
  "#d97706",
  "#9333ea",
  "#0891b2",
  "#dc2626",
  "#65a30d",
  "#db2777",
  "#475569",
  "#ca8a04"
]

/** The colour of each status, for charts (SVG fills). */
export const statusColours: Readonly<Record<Status, string>> = {
  undefined: "#94a3b8",
  onHold: "#f59e0b",
  granted: "#7dd3fc",
  downloading: "#3b82f6",
  downloaded: "#6366f1",
  installed: "#14b8a6",
  complete: "#22c55e",
  error: "#ef4444"
}
