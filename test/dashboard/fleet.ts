/**
 * A whole fleet server in-process on 127.0.0.1 for the dashboard's browser
 * tests and scripts: a fresh database, the rollout engine answering Omaha
 * checks, the admin API and the built dashboard on one listener, an admin
 * and a viewer token; and simulated machines, each the project's own Omaha
 * client going through an update as update_engine does (13/1, 14/1, 3/1,
 * then the new version with 3/2 and its previous version).
 */
import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Ref, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AppClient from "../../src/client/AppClient.js"
import * as ExitCode from "../../src/client/ExitCode.js"
import * as OmahaClient from "../../src/client/OmahaClient.js"
import * as Auth from "../../src/fleet/Auth.js"
import * as Database from "../../src/fleet/Database.js"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import * as Server from "../../src/fleet/Server.js"
import { Store } from "../../src/fleet/Store.js"
import * as Tracking from "../../src/fleet/Tracking.js"
import * as Updater from "../../src/server/Updater.js"
import { layerPgliteMemoryTest } from "../fleet/memory.js"
import { freshDatabase } from "../fleet/postgres.js"

/** A running fleet server. */
export interface Fleet {
  /** `http://127.0.0.1:<port>`: the dashboard at `/`, the API at `/api/`, Omaha at `/v1/update/`. */
  readonly base: string
  readonly admin: string
  readonly viewer: string
  readonly sql: SqlClient.SqlClient
  /** Writes the queued check-ins now. */
  readonly flush: Effect.Effect<void>
}

/** Where a fleet keeps its data. */
export interface StartOptions {
  /** A PostgreSQL server to create a fresh database on (dropped afterwards); default PGlite in memory. */
  readonly postgresUrl?: string | undefined
}

/** Starts a fleet server for the scope; its logs go nowhere (they are not what the tests look at). */
export const start = (options: StartOptions = {}): Effect.Effect<Fleet, never, Scope.Scope> => Effect.gen(function*() {
  const payloadDirectory = yield* Effect.acquireRelease(
    Effect.sync(() => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-dashboard-")), "payloads")),
    (dir) => Effect.sync(() => Fs.rmSync(Path.dirname(dir), { recursive: true, force: true }))
  )
  // The rollout engine with its own Tracking in view, so a test can write the queued check-ins.
  const updater = Layer.scoped(Updater.Updater, FleetUpdater.make({ pollInterval: Duration.seconds(5) }))
  const database = options.postgresUrl === undefined
    ? layerPgliteMemoryTest
    : Layer.unwrapScoped(Effect.map(freshDatabase(options.postgresUrl), (url) => Database.layerPostgres({ url })))
  const context = yield* Layer.build(
    Server.layer({ host: "127.0.0.1", port: 0, payloadDirectory, shutdownGrace: Duration.millis(100) }).pipe(
      Layer.provideMerge(updater),
      Layer.provideMerge(Tracking.layer({ flushInterval: Duration.millis(100) })),
      // The metrics and webhooks the server serves, told by the rollout engine.
      Layer.provideMerge(Server.layerOperations({ metrics: { processMetrics: false } })),
      Layer.provide(NodeHttpClient.layer),
      Layer.provideMerge(database),
      Layer.provide(NodeContext.layer),
      Layer.provide(Logger.minimumLogLevel(LogLevel.None))
    )
  ).pipe(Effect.orDie)
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
  const store = Context.get(context, Store)
  const token = (role: "admin" | "viewer") =>
    Auth.createToken({ role, name: `dashboard ${role}` }).pipe(Effect.provideService(Store, store), Effect.orDie)
  const tracking = Context.get(context, Tracking.Tracking)
  return {
    base: `http://127.0.0.1:${address.port}`,
    admin: (yield* token("admin")).token,
    viewer: (yield* token("viewer")).token,
    sql: Context.get(context, SqlClient.SqlClient),
    flush: Effect.orDie(tracking.flush)
  }
})

/** A JSON call to the fleet's API; fails with the answer's text on a non-2xx status. */
export const call = (fleet: Fleet, method: string, path: string, body?: unknown, token = fleet.admin) =>
  Effect.promise(async () => {
    const response = await fetch(`${fleet.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" })
      },
      ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : JSON.stringify(body) })
    })
    const text = await response.text()
    return { status: response.status, json: text === "" ? undefined : JSON.parse(text) as unknown }
  })

/** The path segment of an app. */
export const appPath = (appId: string) => `/api/apps/${encodeURIComponent(appId)}`

/** An application with two hosted packages (the old and the new version) and a channel on the new one. */
export const seedApplication = (fleet: Fleet, options: {
  readonly appId: string
  readonly name: string
  readonly from: string
  readonly to: string
  readonly channel: string
}) =>
  Effect.gen(function*() {
    const expect = (what: string, answer: { status: number; json: unknown }) =>
      answer.status < 300 ? Effect.void : Effect.die(`${what}: ${answer.status} ${JSON.stringify(answer.json)}`)
    yield* expect("app", yield* call(fleet, "POST", "/api/apps", { id: options.appId, name: options.name }))
    for (const version of [options.from, options.to]) {
      const payload = new TextEncoder().encode(`payload of ${options.name} ${version}\n`.repeat(64))
      yield* expect(
        "package",
        yield* call(fleet, "PUT", `${appPath(options.appId)}/packages/${version}?arch=amd64&name=update.gz`, payload)
      )
    }
    yield* expect(
      "channel",
      yield* call(fleet, "POST", `${appPath(options.appId)}/channels`, { name: options.channel, arch: "amd64", package: options.to })
    )
  })

/** How a simulated machine is set up. */
export interface MachineOptions {
  readonly appId: string
  readonly machineId: string
  readonly alias: string
  readonly version: string
  readonly track: string
  /** Fails the install with this update_engine code instead of finishing it. */
  readonly failWith?: number
}

/** Where a simulated machine is in its update. */
export type Stage = "idle" | "granted" | "downloading" | "downloaded" | "installed"

/** One simulated machine: an Omaha client of its own, moved on one step at a time. */
export interface Machine {
  readonly machineId: string
  /**
   * One step, as update_engine takes them: idle, an update check (granted
   * when it is offered one); then 13/1, 14/1, 3/1 (or the failure), each a
   * step; installed, a restart on the new version and a check carrying 3/2.
   */
  readonly step: Effect.Effect<Stage>
  /** Steps until the machine is idle again (up to date, held or failed). */
  readonly run: Effect.Effect<void>
  readonly stage: Effect.Effect<Stage>
  readonly version: Effect.Effect<string>
}

/** A machine talking to `fleet` for the scope. */
export const machine = (fleet: Fleet, options: MachineOptions): Effect.Effect<Machine, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* Layer.build(
      OmahaClient.layer({
        serverUrl: fleet.base,
        userId: options.machineId,
        timeout: "10 seconds",
        retry: { tries: 2, baseDelay: "50 millis" }
      }).pipe(Layer.provide(NodeHttpClient.layer))
    ).pipe(Effect.orDie)
    const app = yield* AppClient.make({
      appId: options.appId,
      version: options.version,
      track: options.track,
      board: "amd64-usr",
      machineAlias: options.alias,
      oem: "qemu"
    }).pipe(Effect.provide(client), Effect.orDie)
    const state = yield* Ref.make<{ stage: Stage; target?: string; previous?: string }>({ stage: "idle" })
    const send = (event: Parameters<typeof app.event>[0]) => Effect.flatMap(app.event(event), (done) => Effect.orDie(done))
    const check = (previous: string | undefined) =>
      Effect.gen(function*() {
        const result = yield* app.updateCheck(previous === undefined ? {} : { previousVersion: previous }).pipe(Effect.orDie)
        const stage: Stage = result._tag === "UpdateAvailable" ? "granted" : "idle"
        yield* Ref.set(state, {
          stage,
          ...(result._tag === "UpdateAvailable" ? { target: result.manifest.version } : {}),
          ...(previous === undefined ? {} : { previous })
        })
        return stage
      })
    const step = Effect.gen(function*() {
      const now = yield* Ref.get(state)
      const to = (stage: Stage) => Effect.as(Ref.set(state, { ...now, stage }), stage)
      switch (now.stage) {
        case "idle":
          return yield* check(now.previous)
        case "granted":
          yield* send(AppClient.Events.downloadStarted)
          return yield* to("downloading")
        case "downloading":
          yield* send(AppClient.Events.downloadFinished)
          return yield* to("downloaded")
        case "downloaded":
          if (options.failWith !== undefined) {
            yield* send(ExitCode.errorEvent(options.failWith))
            return yield* to("idle")
          }
          yield* send(AppClient.Events.installed)
          return yield* to("installed")
        case "installed": {
          const before = (yield* app.settings).version
          yield* Effect.orDie(app.setVersion(now.target!))
          return yield* check(before)
        }
      }
    })
    const run = step.pipe(Effect.repeat({ until: (stage) => stage === "idle" }), Effect.asVoid)
    return {
      machineId: options.machineId,
      step,
      run,
      stage: Effect.map(Ref.get(state), (s) => s.stage),
      version: Effect.map(app.settings, (s) => s.version)
    }
  })
