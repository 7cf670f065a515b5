/** How the dashboard writes numbers, sizes, times and durations. */

const numberFormat = new Intl.NumberFormat("en-US")

/** A count with thousands separators. */
export const count = (n: number): string => numberFormat.format(n)

/** A byte size: `1.2 MiB`. */
export const bytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

/** A duration in seconds as people say it: `15 min`, `1 h`, `2 d 3 h`. */
export const duration = (seconds: number): string => {
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return seconds % 60 === 0 ? `${seconds / 60} min` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`
  if (seconds < 86400) {
    const m = Math.round((seconds % 3600) / 60)
    return m === 0 ? `${Math.floor(seconds / 3600)} h` : `${Math.floor(seconds / 3600)} h ${m} min`
  }
  const h = Math.round((seconds % 86400) / 3600)
  return h === 0 ? `${Math.floor(seconds / 86400)} d` : `${Math.floor(seconds / 86400)} d ${h} h`
}

/** How long ago an ISO time was, relative to `now`: `just now`, `5 min ago`, `3 d ago`. */
export const ago = (iso: string, now: number = Date.now()): string => {
  const seconds = Math.round((now - Date.parse(iso)) / 1000)
  if (!Number.isFinite(seconds)) return "never"
  if (seconds < 5) return "just now"
  if (seconds < 60) return `${seconds} s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`
  return `${Math.floor(seconds / 86400)} d ago`
}

const dateTime = new Intl.DateTimeFormat("en-GB", {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit"
})

/** An ISO time in the browser's time zone: `3 Dec 2026, 14:05:09`. */
export const time = (iso: string): string => {
  const at = Date.parse(iso)
  return Number.isFinite(at) ? dateTime.format(at) : iso
}

/** A percentage of a total: `42 %`, `0.5 %`. */
export const percent = (part: number, total: number): string => {
  if (total === 0) return "0 %"
  const p = (part / total) * 100
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)} %`
}

/** A base64 digest shortened for a table, as hex: `3f2a9c…`. */
export const shortDigest = (base64: string): string => {
  try {
    const hex = Array.from(atob(base64), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("")
    return `${hex.slice(0, 12)}…`
  } catch {
    return base64.slice(0, 12)
  }
}

/** Orders versions for display: numeric parts as numbers (`3815.10.0` after `3815.2.0`), the rest as text. */
export const compareVersions = (a: string, b: string): number => {
  const pa = a.split(/[.+-]/)
  const pb = b.split(/[.+-]/)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i]
    const y = pb[i]
    if (x === undefined) return -1
    if (y === undefined) return 1
    const nx = /^\d+$/.test(x) ? Number(x) : NaN
    const ny = /^\d+$/.test(y) ? Number(y) : NaN
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx - ny
    } else if (x !== y) {
      return x < y ? -1 : 1
    }
  }
  return 0
}
