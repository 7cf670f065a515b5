/**
 * A whole fleet server in-process on 127.0.0.1, composed as `fleet-server
 * serve` composes it: the rollout engine (FleetUpdater), the metrics and the
 * webhooks it tells, the API and the payloads, on PGlite in memory with a
 * temporary payload directory; an admin and a viewer token.
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Clock, Context, Effect, Layer, Logger, LogLevel, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Auth from "../../src/fleet/Auth.js"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import { Metrics } from "../../src/fleet/Metrics.js"
import { Payloads } from "../../src/fleet/Payloads.js"
import * as Server from "../../src/fleet/Server.js"
import { Store } from "../../src/fleet/Store.js"
import { Webhooks } from "../../src/fleet/Webhooks.js"
import { request } from "./http.js"
import { layerPgliteMemoryTest } from "./memory.js"

/** A running fleet server. */
export interface Fleet {
  readonly base: string
  readonly admin: string
  readonly viewer: string
  readonly payloadDirectory: string
  readonly sql: SqlClient.SqlClient
  readonly context: Context.Context<Store | Payloads | Metrics | Webhooks | SqlClient.SqlClient>
  readonly logs: Array<{ readonly level: string; readonly message: unknown }>
}

/** Starts a fleet server for the scope (on the wall clock). */
export const startFleet = (
  options: Partial<Server.Options> & { readonly operations?: Server.OperationsOptions } = {}
): Effect.Effect<Fleet, never, Scope.Scope> =>
  Effect.gen(function*() {
    const payloadDirectory = yield* Effect.acquireRelease(
      Effect.sync(() => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-ops-")), "payloads")),
      (dir) => Effect.sync(() => Fs.rmSync(Path.dirname(dir), { recursive: true, force: true }))
    )
    const logs: Array<{ level: string; message: unknown }> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push({ level: logLevel.label, message: Array.isArray(message) && message.length === 1 ? message[0] : message })
    })
    const { operations, ...serverOptions } = options
    const context = yield* Layer.build(
      Server.layer({ host: "127.0.0.1", port: 0, payloadDirectory, ...serverOptions }).pipe(
        Layer.provide(FleetUpdater.layer({ tracking: { flushInterval: "20 millis" } })),
        Layer.provideMerge(Server.layerOperations({ metrics: { processMetrics: false }, ...operations })),
        Layer.provide(NodeHttpClient.layer),
        Layer.provideMerge(layerPgliteMemoryTest),
        Layer.provide(NodeContext.layer),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger)),
        Layer.provide(Logger.minimumLogLevel(LogLevel.Debug)),
        Layer.provide(Layer.setClock(Clock.make()))
      )
    ).pipe(Effect.orDie)
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
    const store = Context.get(context, Store)
    const token = (role: "admin" | "viewer") =>
      Auth.createToken({ role }).pipe(Effect.provideService(Store, store), Effect.orDie, Effect.map((t) => t.token))
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

/** A JSON call to a fleet's API. */
export const api = (fleet: Fleet, method: string, path: string, json?: unknown, token = fleet.admin) =>
  Effect.promise(() => request(fleet.base, method, path, { token, ...(json === undefined ? {} : { json }) }))

/** The API path of an application. */
export const appPath = (id: string) => `/api/apps/${encodeURIComponent(id)}`
