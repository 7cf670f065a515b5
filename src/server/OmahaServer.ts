/**
 * An Omaha server as a Layer: the update endpoint at `/v1/update` and
 * `/v1/update/`, payloads at `/packages/<name>`, a listen address, one log
 * line per request, and a graceful stop: on interruption (SIGINT/SIGTERM in
 * a command) it stops accepting connections, lets downloads in progress
 * finish for up to `shutdownGrace`, then closes what is left.
 */
import { HttpServer, type HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Duration, Effect, Layer } from "effect"
import * as Http from "node:http"
import * as OmahaHandler from "./OmahaHandler.js"
import * as PackageFiles from "./PackageFiles.js"
import type { Updater } from "./Updater.js"

/** Where and how the server runs. */
export interface Options extends OmahaHandler.Options {
  /** Address to listen on (`127.0.0.1`, `0.0.0.0`, `::1`, ...). */
  readonly host: string
  /** Port to listen on; 0 picks a free one (read it from `HttpServer.HttpServer`). */
  readonly port: number
  /** Payloads to serve under `/packages/`. */
  readonly packages?: PackageFiles.PackageFiles
  /** How long a stop waits for downloads in progress; default 30 seconds. */
  readonly shutdownGrace?: Duration.DurationInput
}

/** The paths of the update endpoint. */
export const updatePaths: ReadonlySet<string> = new Set(["/v1/update", "/v1/update/"])

const notFound = HttpServerResponse.text("not found\n", { status: 404, contentType: "text/plain; charset=utf-8" })

/** The server's routes as one HttpApp: the update endpoint, payloads, 404 for the rest. */
export const makeApp = (options: Omit<Options, "host" | "port">) =>
  Effect.map(OmahaHandler.make(options), (omaha) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const path = request.url.split("?", 1)[0]!
      if (updatePaths.has(path)) return omaha
      if (options.packages !== undefined && path.startsWith(PackageFiles.prefix)) return options.packages.app
      return Effect.succeed(notFound)
    }))

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

  const serve = Layer.unwrapEffect(
    Effect.map(makeApp(options), (app) => HttpServer.serve(app))
  )
  return Layer.mergeAll(serve, drainOnStop).pipe(Layer.provideMerge(listening))
}
