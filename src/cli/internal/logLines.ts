/**
 * The log of a long-running command: Effect's logfmt or JSON lines on
 * stderr, written in batches (one write per turn of the event loop) rather
 * than one console write per line. A server logs a line per request, and a
 * synchronous write for each cost about a tenth of an update check. Lines
 * still pending when the logger's scope closes, or when the process exits,
 * are written at once, so none is lost. A stderr that cannot be written (a
 * closed pipe) loses the log, never the process: the server keeps serving.
 */
import { Effect, Layer, Logger } from "effect"
import * as Fs from "node:fs"

const ignore = () => {}

/** The layout of a log line. */
export type LogFormat = "logfmt" | "json"

/** Replaces the default logger with batched stderr lines in `format`, for the scope of the layer. */
export const layer = (format: LogFormat): Layer.Layer<never> =>
  Logger.replaceScoped(
    Logger.defaultLogger,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          let pending: Array<string> = []
          let scheduled = false
          const take = (): string | undefined => {
            if (pending.length === 0) return undefined
            const text = pending.join("\n") + "\n"
            pending = []
            return text
          }
          const flush = () => {
            scheduled = false
            const text = take()
            if (text !== undefined) process.stderr.write(text)
          }
          const flushNow = () => {
            const text = take()
            if (text === undefined) return
            try {
              Fs.writeSync(2, text)
            } catch {
              // stderr is gone; there is nowhere left to say so.
            }
          }
          process.on("exit", flushNow)
          process.stderr.on("error", ignore)
          const push = (line: string) => {
            pending.push(line)
            if (!scheduled) {
              scheduled = true
              setImmediate(flush)
            }
          }
          return { push, flushNow }
        }),
        ({ flushNow }) =>
          Effect.sync(() => {
            process.off("exit", flushNow)
            flushNow()
            process.stderr.off("error", ignore)
          })
      ),
      ({ push }) => Logger.map(format === "json" ? Logger.jsonLogger : Logger.logfmtLogger, push)
    )
  )
