/**
 * The log of a long-running command: logfmt or JSON lines on stderr, written
 * in batches (one write per turn of the event loop) rather than one console
 * write per line. A server logs a line per request, and a synchronous write
 * for each cost about a tenth of an update check. Lines still pending when
 * the logger's scope closes, or when the process exits, are written at once,
 * so none is lost. A stderr that cannot be written (a closed pipe) loses the
 * log, never the process: the server keeps serving.
 *
 * The logfmt lines are Effect's (`timestamp=... level=... fiber=...
 * message=...`, then the cause, spans and annotations), written directly,
 * with structured annotations flattened into fields rather than JSON: a list
 * gives one field per item under the list's name, a record its own fields,
 * in order. A request's log line reads `status=200 protocol=3.0 appid=...
 * version=... answer=... events=...`, the app fields once per app.
 */
import { Cause, Effect, FiberId, HashMap, Inspectable, Layer, Logger, LogSpan } from "effect"
import * as Fs from "node:fs"
import * as OmahaHandler from "../../server/OmahaHandler.js"

const textOnly = /^[^\s"=]*$/
const labelSpecials = /[\s="]/g

const field = (label: string, value: string): string =>
  " " + label.replace(labelSpecials, "_") + "=" + (textOnly.test(value) ? value : JSON.stringify(value))

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && Object.getPrototypeOf(u) === Object.prototype

// One annotation as fields: lists and plain records flattened, anything else as Effect prints it.
const fields = (label: string, value: unknown): string => {
  if (typeof value === "string") return field(label, value)
  if (typeof value === "number" || typeof value === "boolean") return field(label, String(value))
  if (Array.isArray(value)) {
    let out = ""
    for (const item of value) out += fields(label, item)
    return out
  }
  if (isRecord(value)) {
    let out = ""
    for (const key in value) {
      const v = value[key]
      if (v !== undefined) out += fields(key, v)
    }
    return out
  }
  return field(label, Inspectable.toStringUnknown(value, 0))
}

/** A logfmt line (see the module header). */
export const logfmt = (options: Logger.Logger.Options<unknown>): string => {
  const { annotations, cause, date, fiberId, logLevel, message, spans } = options
  let out = "timestamp=" + date.toISOString() + " level=" + logLevel.label + " fiber=" + FiberId.threadName(fiberId)
  const messages = Array.isArray(message) ? message : [message]
  for (const m of messages) out += field("message", typeof m === "string" ? m : Inspectable.toStringUnknown(m, 0))
  if (!Cause.isEmptyType(cause)) out += field("cause", Cause.pretty(cause, { renderErrorCause: true }))
  if (spans._tag === "Cons") {
    const render = LogSpan.render(date.getTime())
    for (const span of spans) out += " " + render(span)
  }
  if (HashMap.size(annotations) > 0) {
    for (const [label, value] of annotations) out += fields(label, value)
  }
  return out
}

const logfmtLogger = Logger.make(logfmt)

// The endpoint's line per request, written without Effect's logger: the same
// line `logfmt` or Effect's JSON logger would write for `Effect.logInfo("omaha")`
// annotated with the record.
const requestLine = (format: LogFormat) => (record: OmahaHandler.RequestRecord, fiberId: FiberId.FiberId, date: Date): string => {
  if (format === "json") {
    return JSON.stringify({
      message: "omaha",
      logLevel: "INFO",
      timestamp: date.toISOString(),
      annotations: record,
      spans: {},
      fiberId: FiberId.threadName(fiberId)
    })
  }
  let out = "timestamp=" + date.toISOString() + " level=INFO fiber=" + FiberId.threadName(fiberId) + " message=omaha"
  for (const key in record) out += fields(key, record[key as keyof OmahaHandler.RequestRecord])
  return out
}

const ignore = () => {}

/** The layout of a log line. */
export type LogFormat = "logfmt" | "json"

/**
 * Replaces the default logger with batched stderr lines in `format`, for the
 * scope of the layer, and writes an Omaha endpoint's request lines there too.
 */
export const layer = (format: LogFormat): Layer.Layer<OmahaHandler.RequestLog> =>
  Layer.unwrapScoped(
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
      ({ push }) => {
        const line = requestLine(format)
        return Layer.merge(
          Logger.replace(Logger.defaultLogger, Logger.map(format === "json" ? Logger.jsonLogger : logfmtLogger, push)),
          Layer.succeed(OmahaHandler.RequestLog, { write: (record, fiberId, date) => push(line(record, fiberId, date)) })
        )
      }
    )
  )
