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

/**
 * Operations per second of each function, measured in `rounds` interleaved
 * rounds (a, b, c, a, b, c, ...) of `seconds` each and summarised by the
 * median, so that drift on the machine falls on every function alike.
 */
export const compareRates = <K extends string>(
  fns: Readonly<Record<K, () => unknown>>,
  options: { readonly rounds?: number; readonly seconds?: number } = {}
): Record<K, number> => {
  const rounds = options.rounds ?? 7
  const seconds = options.seconds ?? 0.3
  const keys = Object.keys(fns) as Array<K>
  const samples = Object.fromEntries(keys.map((k) => [k, [] as Array<number>])) as Record<K, Array<number>>
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) samples[key].push(opsPerSecond(fns[key], seconds))
  }
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  return Object.fromEntries(keys.map((k) => [k, median(samples[k])])) as Record<K, number>
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
