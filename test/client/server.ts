/**
 * A small Omaha server on 127.0.0.1 for client tests: it decodes each request
 * with `Xml.decodeRequest`, records it, and answers what the test says
 * (a canned reply, a computed document, silence, a hang-up or an endless
 * body), so that every failure a client must survive can be staged.
 */
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Either, Layer, type Scope } from "effect"
import { OmahaClient, Request, Response, Xml } from "effect-omaha"
import * as Http from "node:http"

/** One request as the server received it. */
export interface Received {
  readonly method: string
  readonly path: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  /** The decoded document; undefined when it did not decode. */
  readonly request: Request.Request | undefined
}

/** What the server does with one request. */
export type Answer =
  | { readonly _tag: "Reply"; readonly status?: number; readonly headers?: Record<string, string>; readonly body?: string | Uint8Array }
  /** Never answers (the client has to give up). */
  | { readonly _tag: "Stall" }
  /** Sends headers and then an endless body without a length, until the client goes away. */
  | { readonly _tag: "Endless" }
  /** Answers `then` once `ready` resolves. */
  | { readonly _tag: "After"; readonly ready: Promise<void>; readonly then: Answer }

/** Answers a request: by its decoded document and its position (0 for the first). */
export type Handler = (received: Received, index: number) => Answer

/** A running test server. */
export interface TestServer {
  /** `http://127.0.0.1:<port>` (no path: the client adds `/v1/update/`). */
  readonly url: string
  readonly received: ReadonlyArray<Received>
  /** Every event the server received, in order. */
  readonly events: () => ReadonlyArray<Request.EventRequest>
  /** Requests that carried an update check. */
  readonly checks: () => ReadonlyArray<Received>
  /** For `Endless` answers: bytes written before the client went away, once it has. */
  readonly endlessClosedAfter: Array<number>
  /** Resolves when the server has received `count` requests in all. */
  readonly receivedCount: (count: number) => Promise<void>
}

/** A reply. */
export const reply = (body: string | Uint8Array, status = 200, headers: Record<string, string> = {}): Answer => ({
  _tag: "Reply",
  status,
  body,
  headers: { "content-type": "text/xml; charset=utf-8", ...headers }
})

/** Silence. */
export const stall: Answer = { _tag: "Stall" }

/** An endless body. */
export const endless: Answer = { _tag: "Endless" }

/** A response document as text. */
export const xml = (response: Response.Response): string => Effect.runSync(Xml.encodeResponse(response))

/**
 * The answer a well-behaved server gives: every app ok, pings and events
 * acknowledged, and update checks answered by `updateCheck` (noupdate by default).
 */
export const answerApps = (
  request: Request.Request | undefined,
  updateCheck: (app: Request.AppRequest) => Response.UpdateResponse = () =>
    new Response.UpdateResponse({ status: "noupdate" })
): Answer =>
  reply(xml(Response.make({
    server: "test",
    apps: (request?.apps ?? []).map((app) =>
      new Response.AppResponse({
        appId: app.appId,
        status: "ok",
        ...(app.ping === undefined ? {} : { ping: Response.ok }),
        ...(app.updateCheck === undefined ? {} : { updateCheck: updateCheck(app) }),
        events: app.events.map(() => Response.ok)
      })
    )
  })))

/** True for requests carrying an update check. */
export const isCheck = (received: Received): boolean => received.request?.apps.some((app) => app.updateCheck !== undefined) ?? false

/** A handler that answers update checks with `check` and everything else as a good server would. */
export const onChecks = (check: (received: Received, index: number) => Answer): Handler => {
  let checks = 0
  return (received) => (isCheck(received) ? check(received, checks++) : answerApps(received.request))
}

/** Starts a server for the scope. */
export const startServer = (handler: Handler): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: Http.Server; state: TestServer }>((resume) => {
      const received: Array<Received> = []
      const endlessClosedAfter: Array<number> = []
      const waiters: Array<{ count: number; resolve: () => void }> = []
      const server = Http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (chunk: Buffer) => chunks.push(chunk))
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const decoded = Effect.runSync(Effect.either(Xml.decodeRequest(body)))
          const entry: Received = {
            method: req.method ?? "",
            path: req.url ?? "",
            headers: req.headers,
            body,
            request: Either.getOrUndefined(decoded)
          }
          received.push(entry)
          for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve()
          respond(res, handler(entry, received.length - 1))
        })
      })
      const respond = (res: Http.ServerResponse, answer: Answer): void => {
        switch (answer._tag) {
          case "Reply":
            res.writeHead(answer.status ?? 200, answer.headers ?? {})
            res.end(answer.body ?? "")
            return
          case "Stall":
            return
          case "Endless": {
            res.writeHead(200, { "content-type": "text/xml; charset=utf-8" })
            const chunk = Buffer.alloc(64 * 1024, "<")
            let written = 0
            let open = true
            res.on("close", () => {
              open = false
              endlessClosedAfter.push(written)
            })
            // Stops by itself at 256 MiB so that a client that never stops reading fails the test instead of hanging it.
            const pump = () => {
              while (open && written < 256 * 1024 * 1024) {
                written += chunk.length
                if (!res.write(chunk)) return void res.once("drain", pump)
              }
              if (open) res.end()
            }
            pump()
            return
          }
          case "After":
            void answer.ready.then(() => respond(res, answer.then))
            return
        }
      }
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        const state: TestServer = {
          url: `http://127.0.0.1:${port}`,
          received,
          events: () => received.flatMap((r) => r.request?.apps.flatMap((app) => app.events) ?? []),
          checks: () => received.filter(isCheck),
          endlessClosedAfter,
          receivedCount: (count) =>
            received.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))
        }
        resume(Effect.succeed({ server, state }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))

/** A URL on 127.0.0.1 where nothing listens: a port that was just bound and released. */
export const refusedUrl: Effect.Effect<string> = Effect.async<string>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}`)))
  })
})

/** The user id the test clients use. */
export const testUserId = "8b10fc6d30ca49b2b1a28185f03d522b"

/** An Omaha client for a test server: fast retries (5 ms base) and a short timeout, on Node's HTTP client by default. */
export const clientLayer = (
  url: string,
  options: Partial<OmahaClient.Options> = {},
  http: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layer
): Layer.Layer<OmahaClient.OmahaClient, OmahaClient.ConfigError> =>
  OmahaClient.layer({
    serverUrl: url,
    userId: testUserId,
    timeout: "5 seconds",
    ...options,
    retry: { baseDelay: "5 millis", ...options.retry }
  }).pipe(Layer.provide(http))
