/** A small benchmark harness: ops/s of a synchronous function, after warm-up. */

/** Operations per second of `f`, measured for about `seconds` after a warm-up. */
export const opsPerSecond = (f: () => unknown, seconds = 1): number => {
  const warmUntil = performance.now() + 200
  while (performance.now() < warmUntil) f()
  let ops = 0
  const started = performance.now()
  const until = started + seconds * 1000
  let now = started
  while (now < until) {
    for (let i = 0; i < 50; i++) f()
    ops += 50
    now = performance.now()
  }
  return (ops * 1000) / (now - started)
}

/** A number with thousands separators and no decimals. */
export const formatRate = (n: number): string => Math.round(n).toLocaleString("en-US")

/** Prints rows as an aligned table. */
export const printTable = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): void => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  console.log(line(header))
  for (const row of rows) console.log(line(row))
}
