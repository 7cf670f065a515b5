/** Formatting for what commands print. */

const units = ["B", "KiB", "MiB", "GiB", "TiB"]

/** A byte count for people: `512 B`, `1.5 MiB`, `2.0 GiB`. */
export const formatBytes = (bytes: number): string => {
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`
}
