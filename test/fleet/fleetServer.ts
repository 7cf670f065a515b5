/**
 * A fleet server in-process on 127.0.0.1 for API tests: a fresh database
 * (PGlite in memory; the store's own tests run on PostgreSQL too),
 * a temporary payload directory, an admin and a viewer token, logs
 * collected instead of printed, and a JSON client over plain HTTP/1.1.
 * Composed as `fleet-server serve` composes it, metrics and webhooks
 * included, around whatever `Updater` the test gives it.
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Logger, LogLevel, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Auth from "../../src/fleet/Auth.js"
import * as Server from "../../src/fleet/Server.js"
import { Store } from "../../src/fleet/Store.js"
import type { Metrics } from "../../src/fleet/Metrics.js"
import type { Payloads } from "../../src/fleet/Payloads.js"
import type { Webhooks } from "../../src/fleet/Webhooks.js"
import * as Updater from "../../src/server/Updater.js"
import { request } from "./http.js"
import { layerPgliteMemoryTest } from "./memory.js"

/** What a test needs of a running fleet server. */
export interface Fleet {
  readonly base: string
  readonly admin: string
  readonly viewer: string
  readonly payloadDirectory: string
  readonly sql: SqlClient.SqlClient
  readonly context: Context.Context<Store | Payloads | Metrics | Webhooks | SqlClient.SqlClient>
  readonly logs: Array<{ readonly level: string; readonly message: unknown }>
}

/** The running server of a test file. */
export class FleetServer extends Context.Tag("test/FleetServer")<FleetServer, Fleet>() {}

/** What {@link start} is told: the server's options, and those of its metrics and webhooks. */
export type StartOptions = Partial<Server.Options> & { readonly operations?: Server.OperationsOptions }

/**
 * Starts a fleet server for the scope, on the wall clock, answering update
 * checks with `updater` (never an update, by default).
 */
export const start = (
  options: StartOptions = {},
  updater: Layer.Layer<Updater.Updater, unknown, any> = Updater.layerNoUpdate
): Effect.Effect<Fleet, never, Scope.Scope> =>
  Effect.gen(function*() {
    const payloadDirectory = yield* Effect.acquireRelease(
      Effect.sync(() => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-test-")), "payloads")),
      (dir) => Effect.sync(() => Fs.rmSync(Path.dirname(dir), { recursive: true, force: true }))
    )
    const logs: Array<{ level: string; message: unknown }> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push({ level: logLevel.label, message: Array.isArray(message) && message.length === 1 ? message[0] : message })
    })
    const { operations, ...serverOptions } = options
    const context = yield* Layer.build(
      Server.layer({ host: "127.0.0.1", port: 0, payloadDirectory, ...serverOptions }).pipe(
        Layer.provide(updater),
        Layer.provideMerge(Server.layerOperations({ metrics: { processMetrics: false }, ...operations })),
        Layer.provide(NodeHttpClient.layer),
        Layer.provideMerge(layerPgliteMemoryTest),
        Layer.provide(NodeContext.layer),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger)),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Debug)),
        // Requests are served on the wall clock, whatever clock the test runs on.
        Layer.provide(Layer.setClock(Clock.make()))
      )
    ).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    const store = Context.get(context, Store)
    const token = (role: "admin" | "viewer") =>
      Auth.createToken({ role, name: `test ${role}` }).pipe(
        Effect.provideService(Store, store),
        Effect.orDie,
        Effect.map((created) => created.token)
      )
    return {
      base: `http://127.0.0.1:${address.port}`,
      admin: yield* token("admin"),
      viewer: yield* token("viewer"),
      payloadDirectory,
      sql: Context.get(context, SqlClient.SqlClient),
      context: context as Context.Context<Store | Payloads | Metrics | Webhooks | SqlClient.SqlClient>,
      logs
    }
  })

/** Starts a fleet server for the layer's lifetime (see {@link start}). */
export const layer = (options: StartOptions = {}, updater?: Layer.Layer<Updater.Updater, unknown, any>) =>
  Layer.scoped(FleetServer, start(options, updater))

/** A JSON client for one server and token. */
export const client = (fleet: Fleet, token: string | undefined) => {
  const call = (method: string, path: string, json?: unknown) =>
    Effect.promise(() => request(fleet.base, method, path, { token, ...(json === undefined ? {} : { json }) }))
  return {
    get: (path: string) => call("GET", path),
    post: (path: string, json?: unknown) => call("POST", path, json),
    put: (path: string, json?: unknown) => call("PUT", path, json),
    patch: (path: string, json?: unknown) => call("PATCH", path, json),
    del: (path: string) => call("DELETE", path)
  }
}

export { type Answer, request } from "./http.js"

/** The path segment for an app id (braces and all). */
export const app = (id: string) => `/api/apps/${encodeURIComponent(id)}`
