/**
 * An Omaha server as a Layer: the update endpoint at `/v1/update` and
 * `/v1/update/`, payloads at `/packages/<name>`, optionally an `HttpApp`
 * for every other path (an admin API, say), a listen address, one log
 * line per request, and a graceful stop: on interruption (SIGINT/SIGTERM in
 * a command) it stops accepting connections, lets downloads in progress
 * finish for up to `shutdownGrace`, then closes what is left.
 */
import { type HttpApp, type HttpRouter, HttpServer, type HttpServerError, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Layer, Runtime } from "effect"
import * as Http from "node:http"
import type { TLSSocket } from "node:tls"
import * as OmahaHandler from "./OmahaHandler.js"
import * as PackageFiles from "./PackageFiles.js"
import type { Updater } from "./Updater.js"

/** Where and how the server runs. */
export interface Options extends OmahaHandler.Options {
  /** Address to listen on (`127.0.0.1`, `0.0.0.0`, `::1`, ...). */
  readonly host: string
  /** Port to listen on; 0 picks a free one (read it from `HttpServer.HttpServer`). */
  readonly port: number
  /** Payloads to serve under `/packages/`: registered files (`PackageFiles.make`) or resolved ones (`PackageFiles.fromResolver`). */
  readonly packages?: PackageFiles.PackageFiles
  /** How long a stop waits for downloads in progress; default 30 seconds. */
  readonly shutdownGrace?: Duration.DurationInput
  /** What serves the paths that are neither the update endpoint nor payloads; default a plain 404. */
  readonly app?: HttpApp.Default<unknown, HttpRouter.HttpRouter.DefaultServices>
}

/** The paths of the update endpoint. */
export const updatePaths: ReadonlySet<string> = new Set(["/v1/update", "/v1/update/"])

const notFound = HttpServerResponse.text("not found\n", { status: 404, contentType: "text/plain; charset=utf-8" })

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const writeReply = (response: Http.ServerResponse, reply: OmahaHandler.Reply): void => {
  if (response.destroyed) return
  const body = Buffer.from(reply.body, "utf8")
  const headers: Array<string> = []
  for (const name in reply.headers) headers.push(name, reply.headers[name]!)
  headers.push("content-length", String(body.length))
  response.writeHead(reply.status, headers)
  response.end(body)
}

// The update endpoint straight on Node's request and response: an update
// check is one small body in and one small document out, and going through
// @effect/platform's request and response objects cost more than the Omaha
// work itself. The endpoint's logic is the same `Endpoint` the HttpApp runs.
const updateListener = (endpoint: OmahaHandler.Endpoint, runtime: Runtime.Runtime<never>) => {
  const run = Runtime.runCallback(runtime)
  const reply = (response: Http.ServerResponse, effect: Effect.Effect<OmahaHandler.Reply>): void => {
    run(effect, { onExit: (exit) => exit._tag === "Success" ? writeReply(response, exit.value) : response.destroy() })
  }

  return (request: Http.IncomingMessage, response: Http.ServerResponse): void => {
    const exchange: OmahaHandler.Exchange = {
      method: request.method ?? "GET",
      headers: request.headers,
      remoteAddress: request.socket.remoteAddress,
      encrypted: (request.socket as Partial<TLSSocket>).encrypted === true
    }
    const screened = endpoint.screen(exchange)
    if (screened !== undefined) {
      request.resume()
      return reply(response, screened)
    }
    const chunks: Array<Buffer> = []
    let size = 0
    let over = false
    request.on("data", (chunk: Buffer) => {
      if (over) return
      size += chunk.length
      if (size > endpoint.maxBodyBytes) {
        over = true
        chunks.length = 0
        reply(response, endpoint.bodyTooLarge)
      } else {
        chunks.push(chunk)
      }
    })
    request.on("end", () => {
      if (!over) reply(response, endpoint.answer(exchange, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    })
    request.on("error", () => response.destroy())
  }
}

/**
 * The server (see the module header). It provides `HttpServer.HttpServer`,
 * whose `address` is the bound address, and needs an `Updater`.
 */
export const layer = (
  options: Options
): Layer.Layer<HttpServer.HttpServer, HttpServerError.ServeError | OmahaHandler.InvalidBaseUrl, Updater> => {
  let node: Http.Server | undefined
  const listening = NodeHttpServer.layer(() => (node = Http.createServer()), { host: options.host, port: options.port })
  const grace = Duration.toMillis(options.shutdownGrace ?? Duration.seconds(30))

  // Acquired after the server, so this runs before the server's own close,
  // which waits for every open connection.
  const drainOnStop = Layer.scopedDiscard(
    Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const downloads = options.packages === undefined ? 0 : yield* options.packages.inFlight
        if (downloads > 0) {
          yield* Effect.logInfo(`stopping: letting ${downloads} download(s) finish, for up to ${grace / 1000} s`)
        }
        const server = node
        if (server !== undefined) setTimeout(() => server.closeAllConnections(), grace).unref()
      })
    )
  )

  // Update checks and payloads go to their handlers on Node directly; 404s
  // through @effect/platform.
  const serve = Layer.scopedDiscard(
    Effect.gen(function*() {
      const endpoint = yield* OmahaHandler.makeEndpoint(options)
      const runtime = yield* Effect.runtime<never>()
      const payloads = options.packages === undefined ? undefined : yield* options.packages.listener
      const rest = yield* NodeHttpServer.makeHandler(options.app ?? Effect.succeed(notFound))
      const update = updateListener(endpoint, runtime)
      const listener = (request: Http.IncomingMessage, response: Http.ServerResponse) => {
        const path = pathOf(request.url ?? "/")
        if (updatePaths.has(path)) return update(request, response)
        if (payloads !== undefined && path.startsWith(PackageFiles.prefix)) return payloads(request, response)
        return rest(request, response)
      }
      const server = node!
      yield* Effect.acquireRelease(
        Effect.sync(() => server.on("request", listener)),
        () => Effect.sync(() => server.off("request", listener))
      )
    })
  )
  return Layer.mergeAll(serve, drainOnStop).pipe(Layer.provideMerge(listening))
}
