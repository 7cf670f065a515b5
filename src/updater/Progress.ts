/**
 * Download progress for people: a bar redrawn in place on a terminal, plain
 * lines (at most one per 10 % or per 5 seconds) when the output is a file or
 * a pipe, where a redrawn bar would be noise.
 */
import { Clock, Effect } from "effect"
import type { Progress } from "./Download.js"

/** Where progress goes and how it is drawn. */
export interface Output {
  readonly write: (text: string) => void
  readonly isTTY: boolean
  /** The terminal's width, for the bar. */
  readonly columns?: number | undefined
}

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1)

/** The text of one progress report: `12.3/27.0 MiB 45%` (or `12.3 MiB` when the total is unknown). */
export const describe = (progress: Progress): string =>
  progress.total === undefined || progress.total === 0
    ? `${mib(progress.received)} MiB`
    : `${mib(progress.received)}/${mib(progress.total)} MiB ${Math.floor((progress.received / progress.total) * 100)}%`

/**
 * A progress callback for `Apply.Options.onProgress`, `notice` for a line of
 * its own (a wait, a retry) that does not tear the bar, and `done` to end the
 * bar's line.
 */
export const make = (label: string, output: Output) => {
  let lastTime = -Infinity
  let lastTenth = -1
  let drawn = false
  const onProgress = (progress: Progress) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const tenth = progress.total ? Math.floor((progress.received / progress.total) * 10) : -1
      const finished = progress.total !== undefined && progress.received >= progress.total
      if (output.isTTY) {
        if (now - lastTime < 100 && !finished) return
        lastTime = now
        const text = `${label} ${describe(progress)}`
        const width = Math.max(10, Math.min(40, (output.columns ?? 80) - text.length - 4))
        const filled = progress.total ? Math.round((progress.received / progress.total) * width) : 0
        output.write(`\r[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${text}`)
        drawn = true
      } else if (tenth !== lastTenth || now - lastTime >= 5000) {
        lastTime = now
        lastTenth = tenth
        output.write(`${label} ${describe(progress)}\n`)
      }
    })
  const done = Effect.sync(() => {
    if (drawn) output.write("\n")
    drawn = false
  })
  const notice = (text: string) =>
    Effect.sync(() => {
      output.write(`${drawn ? "\n" : ""}${text}\n`)
      drawn = false
      // The bar is drawn again with the next bytes, and the next plain line comes with the next step.
      lastTime = -Infinity
    })
  return { onProgress, notice, done }
}
