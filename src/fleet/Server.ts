/**
 * The whole fleet server as one Layer on one listener: the Omaha endpoint
 * at `/v1/update/` (answered by whatever `Updater` is provided, the fleet's
 * rollout engine in `fleet-server`), hosted payloads at
 * `/packages/<sha256-hex>/<name>`, and the admin API at `/api/` with
 * `/health`. It keeps no state of its own beyond the database and the
 * payload directory, so replicas sharing both serve alike; a stop lets
 * downloads in progress finish for up to `shutdownGrace`.
 */
import type { FileSystem, HttpServer, HttpServerError } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import type { Duration } from "effect"
import { Effect, Layer } from "effect"
import type { InvalidBaseUrl } from "../server/OmahaHandler.js"
import * as OmahaServer from "../server/OmahaServer.js"
import * as PackageFiles from "../server/PackageFiles.js"
import type { Updater } from "../server/Updater.js"
import * as Api from "./Api.js"
import * as Payloads from "./Payloads.js"
import { Store } from "./Store.js"

/** Where and how the fleet server runs. */
export interface Options {
  /** Address to listen on. */
  readonly host: string
  /** Port to listen on; 0 picks a free one (read it from `HttpServer.HttpServer`). */
  readonly port: number
  /** The URL clients reach the server at, when not the request's own address (behind a proxy). */
  readonly publicBaseUrl?: string | undefined
  /** Peer addresses whose `X-Forwarded-*` headers are believed. */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /** How long a stop waits for downloads in progress; default 30 seconds. */
  readonly shutdownGrace?: Duration.DurationInput | undefined
  /** The directory hosted payloads live in (`<data>/payloads`); shared by replicas that host payloads. */
  readonly payloadDirectory: string
  /** The largest upload in bytes; default `Payloads.defaultMaxUploadBytes`. */
  readonly maxUploadBytes?: number | undefined
  /** The largest JSON body of the API in bytes; default `Api.defaultMaxBodyBytes`. */
  readonly maxBodyBytes?: number | undefined
}

/**
 * The server (see the module header). It provides `HttpServer.HttpServer`
 * (whose `address` is the bound address) and the store; it needs an
 * `Updater`, a `SqlClient` and a `FileSystem`.
 */
export const layer = (
  options: Options
): Layer.Layer<
  HttpServer.HttpServer | Store | Payloads.Payloads,
  HttpServerError.ServeError | InvalidBaseUrl | Payloads.PayloadStorageFailed,
  Updater | SqlClient.SqlClient | FileSystem.FileSystem
> => {
  const server = Layer.unwrapScoped(
    Effect.gen(function*() {
      const app = yield* Api.makeApp({
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes })
      })
      const payloads = yield* Payloads.Payloads
      const packages = yield* PackageFiles.fromResolver(payloads.resolve)
      return OmahaServer.layer({
        host: options.host,
        port: options.port,
        app,
        packages,
        ...(options.publicBaseUrl === undefined ? {} : { publicBaseUrl: options.publicBaseUrl }),
        ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
        ...(options.shutdownGrace === undefined ? {} : { shutdownGrace: options.shutdownGrace })
      })
    })
  )
  const payloads = Payloads.layer({
    directory: options.payloadDirectory,
    ...(options.maxUploadBytes === undefined ? {} : { maxUploadBytes: options.maxUploadBytes })
  })
  return server.pipe(
    Layer.provideMerge(payloads),
    Layer.provideMerge(Store.Default)
  )
}
