/** Running a server in-process on 127.0.0.1 and talking plain HTTP/1.1 to it, for tests. */
import { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel, Scope } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as OmahaServer from "../../src/server/OmahaServer.js"
import type { Updater } from "../../src/server/Updater.js"

/** An HTTP response as the test sees it: status, headers, body bytes. */
export interface Reply {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Buffer
  readonly text: string
}

/** Sends one request over a fresh connection. */
export const send = (
  base: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = Http.request(new URL(options.path, base), {
      method: options.method ?? "GET",
      headers: options.headers ?? {},
      agent: false
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") })
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

/** POSTs an XML body to the update endpoint. */
export const post = (base: string, body: string | Buffer, headers: Record<string, string> = {}) =>
  send(base, {
    method: "POST",
    path: "/v1/update/",
    headers: { "content-type": "text/xml", ...headers },
    body
  })

/**
 * Writes raw bytes on a new connection and returns everything the server
 * sends until it closes or goes quiet (empty when it reset the connection
 * before sending anything).
 */
export const raw = (base: string, bytes: string | Buffer, quietMs = 300): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const url = new URL(base)
    const socket = Net.connect(Number(url.port), url.hostname, () => socket.write(bytes))
    const chunks: Array<Buffer> = []
    let timer = setTimeout(() => socket.destroy(), quietMs)
    socket.on("data", (c) => {
      chunks.push(c)
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), quietMs)
    })
    socket.on("close", () => {
      clearTimeout(timer)
      resolve(Buffer.concat(chunks))
    })
    socket.on("error", (e: NodeJS.ErrnoException) =>
      e.code === "ECONNRESET" || e.code === "EPIPE" ? resolve(Buffer.concat(chunks)) : reject(e))
  })

/** Log lines the server wrote, collected for assertions. */
export interface Logs {
  readonly lines: Array<{ readonly level: string; readonly message: unknown; readonly annotations: Record<string, unknown> }>
}

/**
 * Starts an Omaha server on 127.0.0.1 with a free port for the scope, with
 * logs collected instead of printed, and returns its base URL.
 */
export const startServer = (
  options: Omit<OmahaServer.Options, "host" | "port">,
  updater: Layer.Layer<Updater>
): Effect.Effect<{ readonly base: string; readonly logs: Logs }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const logs: Logs = { lines: [] }
    const logger = Logger.make(({ annotations, logLevel, message }) => {
      logs.lines.push({
        level: logLevel.label,
        message: Array.isArray(message) && message.length === 1 ? message[0] : message,
        annotations: Object.fromEntries(annotations)
      })
    })
    const context = yield* Layer.build(
      OmahaServer.layer({ ...options, host: "127.0.0.1", port: 0 }).pipe(
        Layer.provide(updater),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger)),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Debug))
      )
    ).pipe(Effect.orDie)
    const server = yield* Effect.provide(HttpServer.HttpServer, context)
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    return { base: `http://127.0.0.1:${address.port}`, logs }
  }).pipe(Effect.provide(NodeContext.layer))

/**
 * Opens `connections` connections (10 at a time), pipelines `requests` GETs
 * of `path` on each, and closes each once `readBytes` have arrived: a client
 * that gives up on a download with more requests queued behind it.
 */
export const pipelinedThenClosed = async (
  base: string,
  options: { path: string; connections: number; requests: number; readBytes: number }
): Promise<void> => {
  const url = new URL(base)
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const request = `GET ${options.path} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`
      const socket = Net.connect(Number(url.port), url.hostname, () => socket.write(request.repeat(options.requests)))
      let got = 0
      socket.on("data", (c: Buffer) => {
        got += c.length
        if (got >= options.readBytes) socket.destroy()
      })
      socket.on("close", () => (got >= options.readBytes ? resolve() : reject(new Error(`closed after ${got} bytes`))))
      socket.on("error", () => {})
    })
  for (let done = 0; done < options.connections; done += 10) {
    await Promise.all(Array.from({ length: Math.min(10, options.connections - done) }, one))
  }
}

/** How many descriptors of process `pid` are open on `path` (Linux). */
export const openDescriptors = (pid: number | "self", path: string): number =>
  Fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return Fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === path
    } catch {
      return false
    }
  }).length

/** Polls `predicate` every 25 ms until it holds or `timeoutMs` passes; true if it held. */
export const eventually = async (predicate: () => boolean, timeoutMs = 5_000): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 25))
  }
  return true
}
