/**
 * A webhook receiver on loopback for tests: it records every request
 * (headers and body) and answers as told: a status per request in turn (the
 * last one repeated), or never (it holds every connection open until it is
 * closed).
 */
import { Effect, type Scope } from "effect"
import * as Http from "node:http"

/** One request the receiver got. */
export interface Received {
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly at: number
}

/** How the receiver answers. */
export type Behaviour = { readonly statuses: ReadonlyArray<number> } | { readonly hang: true }

/** A running receiver. */
export interface Receiver {
  readonly url: string
  readonly received: ReadonlyArray<Received>
  /** Requests whose connection is open and not answered (hanging). */
  readonly open: () => number
}

/** Starts a receiver for the scope. */
export const receiver = (behaviour: Behaviour = { statuses: [200] }): Effect.Effect<Receiver, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: Http.Server; readonly receiver: Receiver }>((resume) => {
      const received: Array<Received> = []
      let open = 0
      const server = Http.createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const index = received.length
          received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() })
          if ("hang" in behaviour) {
            open++
            response.on("close", () => open--)
            return
          }
          const statuses = behaviour.statuses
          response.writeHead(statuses[Math.min(index, statuses.length - 1)]!, { "content-type": "text/plain" })
          response.end("ok\n")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as { readonly port: number }).port
        resume(Effect.succeed({ server, receiver: { url: `http://127.0.0.1:${port}/hook`, received, open: () => open } }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ receiver }) => receiver))

/** A loopback URL nothing listens on. */
export const deadUrl: Effect.Effect<string> = Effect.async<string>((resume) => {
  const server = Http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as { readonly port: number }).port
    server.close(() => resume(Effect.succeed(`http://127.0.0.1:${port}/hook`)))
  })
})

/** Waits (polling on the live clock) until `condition` holds, for up to `millis`. */
export const eventually = (condition: () => boolean, millis = 5000): Effect.Effect<void, Error> =>
  Effect.gen(function*() {
    const deadline = Date.now() + millis
    while (!condition()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`not so within ${millis} ms`))
      yield* Effect.sleep(10)
    }
  })
