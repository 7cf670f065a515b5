/**
 * The whole fleet server as one Layer on one listener: the Omaha endpoint
 * at `/v1/update/` (answered by whatever `Updater` is provided, the fleet's
 * rollout engine in `fleet-server`), hosted payloads at
 * `/packages/<sha256-hex>/<name>`, the admin API at `/api/` with
 * `/health`, the dashboard at `/` (its bundles under `/assets/`), and the
 * Prometheus metrics at `/metrics` (a viewer or admin token, unless
 * `metricsOpen`). It keeps no state of its own beyond the database and the
 * payload directory, so replicas sharing both serve alike; a stop lets
 * downloads in progress finish for up to `shutdownGrace`.
 */
import { type FileSystem, type HttpApp, type HttpServer, type HttpServerError, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { HttpClient } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import type { Duration } from "effect"
import { Clock, Effect, Layer, Option } from "effect"
import type { InvalidBaseUrl } from "../server/OmahaHandler.js"
import * as OmahaServer from "../server/OmahaServer.js"
import * as PackageFiles from "../server/PackageFiles.js"
import { Updater } from "../server/Updater.js"
import * as Api from "./Api.js"
import * as ApiError from "./ApiError.js"
import * as Auth from "./Auth.js"
import * as Dashboard from "./Dashboard.js"
import type { Notifications } from "./Database.js"
import * as FleetEvents from "./FleetEvents.js"
import * as Metrics from "./Metrics.js"
import * as Payloads from "./Payloads.js"
import { RolloutStatus } from "./RolloutStatus.js"
import { Store } from "./Store.js"
import * as Webhooks from "./Webhooks.js"

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
  /** Serve `/metrics` without a token (for a scraper on a trusted network). */
  readonly metricsOpen?: boolean | undefined
  /** The built dashboard to serve at `/`; default the package's own (`dist/dashboard`). */
  readonly dashboardDirectory?: string | undefined
}

// `/metrics`: GET or HEAD, with a token of either role unless open.
const metricsApp = (metrics: Metrics.MetricsService, store: Store, open: boolean): HttpApp.Default =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("use GET\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    if (!open) {
      const denied = yield* Effect.flip(Auth.authenticate(store, request.headers["authorization"])).pipe(Effect.option)
      if (denied._tag === "Some") return ApiError.toResponse(denied.value)
    }
    return yield* Metrics.respond(metrics)
  })

// Each API request timed into the metrics, by its route's template.
const timed = <E, R>(metrics: Metrics.MetricsService, app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const start = yield* Clock.currentTimeNanos
    return yield* Effect.tap(app, (response) =>
      Effect.map(Clock.currentTimeNanos, (end) =>
        metrics.observeApi(request.method, request.url, response.status, Number(end - start) / 1e9)))
  })

/**
 * The server (see the module header). It provides `HttpServer.HttpServer`
 * (whose `address` is the bound address) and the store; it needs an
 * `Updater`, a `SqlClient` and a `FileSystem`.
 */
export const layer = (
  options: Options
): Layer.Layer<
  HttpServer.HttpServer | Store | RolloutStatus | Payloads.Payloads,
  HttpServerError.ServeError | InvalidBaseUrl | Payloads.PayloadStorageFailed,
  Updater | SqlClient.SqlClient | FileSystem.FileSystem | Webhooks.Webhooks | Metrics.Metrics
> => {
  const server = Layer.unwrapScoped(
    Effect.gen(function*() {
      const api = yield* Api.makeApp({
        ...(options.maxBodyBytes === undefined ? {} : { maxBodyBytes: options.maxBodyBytes })
      })
      const directory = options.dashboardDirectory ?? (yield* Dashboard.defaultDirectory)
      const assets = yield* Dashboard.load(directory).pipe(
        Effect.tapError((e) => Effect.logWarning(`${e.message}; the API serves without it`)),
        Effect.option
      )
      const app = Dashboard.serve(Option.getOrUndefined(assets))(api)
      const payloads = yield* Payloads.Payloads
      const packages = yield* PackageFiles.fromResolver(payloads.resolve)
      const metrics = yield* Metrics.Metrics
      const store = yield* Store
      const scrape = metricsApp(metrics, store, options.metricsOpen === true)
      const served = timed(metrics, app)
      const updater = metrics.instrumentUpdater(yield* Updater)
      return OmahaServer.layer({
        host: options.host,
        port: options.port,
        app: Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          request.url.split("?", 1)[0] === Metrics.path ? scrape : served),
        packages,
        observe: metrics.observeOmaha,
        ...(options.publicBaseUrl === undefined ? {} : { publicBaseUrl: options.publicBaseUrl }),
        ...(options.trustedProxies === undefined ? {} : { trustedProxies: options.trustedProxies }),
        ...(options.shutdownGrace === undefined ? {} : { shutdownGrace: options.shutdownGrace })
      }).pipe(Layer.provide(Layer.succeed(Updater, updater)))
    })
  )
  const payloads = Payloads.layer({
    directory: options.payloadDirectory,
    ...(options.maxUploadBytes === undefined ? {} : { maxUploadBytes: options.maxUploadBytes })
  })
  return server.pipe(
    Layer.provideMerge(payloads),
    Layer.provideMerge(Layer.merge(Store.Default, RolloutStatus.Default))
  )
}

/** How the metrics and the webhooks are kept. */
export interface OperationsOptions {
  readonly metrics?: Metrics.Options | undefined
  readonly webhooks?: Webhooks.Options | undefined
}

/**
 * The metrics and the webhooks {@link layer} serves, and the `FleetEvents`
 * the rollout engine tells them through (provide it to `FleetUpdater` too),
 * with every SQL statement of what it is provided to timed into the
 * metrics.
 */
export const layerOperations = (
  options: OperationsOptions = {}
): Layer.Layer<
  Metrics.Metrics | Webhooks.Webhooks | FleetEvents.FleetEvents,
  SqlError,
  SqlClient.SqlClient | Notifications | HttpClient.HttpClient
> => {
  const webhooks = Layer.unwrapEffect(
    Effect.map(Metrics.Metrics, (metrics) => Webhooks.layer({ ...options.webhooks, observe: metrics.observeWebhook }))
  )
  const events = Layer.effect(
    FleetEvents.FleetEvents,
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const hooks = yield* Webhooks.Webhooks
      return FleetEvents.make([metrics.listener, hooks.listener])
    })
  )
  return Layer.mergeAll(events, Metrics.layerStatementTimer).pipe(
    Layer.provideMerge(webhooks),
    Layer.provideMerge(Metrics.layer(options.metrics))
  )
}
