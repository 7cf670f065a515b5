/** Fleet updater tests: replicas over the test database, configuration rows, machines' requests, statement counts. */
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer, Tracer } from "effect"
import { Request, Updater } from "effect-omaha"
import * as Database from "../../src/fleet/Database.js"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import * as Tracking from "../../src/fleet/Tracking.js"

export const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
export const sha1 = "+LXvjiaPkeYDLHoNKlf9qbJwvnk="
export const sha256 = "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg="
export const sha256Hex = Buffer.from(sha256, "base64").toString("hex")

/** Statements and transactions sent by the code under test, counted from @effect/sql's spans. */
export const counter = { statements: 0, transactions: 0 }

/** Round trips so far: a statement each, and BEGIN and COMMIT for each transaction. */
export const roundTrips = () => counter.statements + 2 * counter.transactions

const countingTracer = (inner: Tracer.Tracer) =>
  Tracer.make({
    span: (name, ...rest) => {
      if (name === "sql.execute") counter.statements++
      else if (name === "sql.transaction") counter.transactions++
      return inner.span(name, ...rest)
    },
    context: inner.context
  })

/** The counting tracer: the replicas' own fibers use it, and {@link check} runs on it. */
export const tracer = countingTracer(Effect.runSync(Effect.tracer))

export interface Replica {
  readonly updater: Updater.UpdaterService
  readonly tracking: Tracking.TrackingService
}

// Under the TestClock a batch is written when a test says so (or when it is full),
// and the configuration is read again on notifications only.
const replicaLayer = (options: { readonly tracking?: Tracking.Options } = {}) =>
  Layer.scoped(Updater.Updater, FleetUpdater.make({ pollInterval: Duration.days(1) })).pipe(
    Layer.provideMerge(Tracking.layer({ flushInterval: Duration.days(1), ...options.tracking })),
    Layer.provide(Layer.setTracer(tracer))
  )

const replicaOf = (context: Context.Context<Updater.Updater | Tracking.Tracking>): Replica => ({
  updater: Context.get(context, Updater.Updater),
  tracking: Context.get(context, Tracking.Tracking)
})

/** One fleet-server replica (its own cache and batch) over the test's database, for the scope. */
export const replica = (options: { readonly tracking?: Tracking.Options } = {}) =>
  Effect.map(Layer.build(replicaLayer(options)), replicaOf)

/** One replica with its own pool on the PostgreSQL database at `url`, as a separate fleet-server would be. */
export const replicaOn = (url: string, options: { readonly tracking?: Tracking.Options } = {}) =>
  Effect.map(
    Layer.build(replicaLayer(options).pipe(Layer.provideMerge(Database.layerPostgres({ url, maxConnections: 10 })))),
    (context) => ({ ...replicaOf(context), sql: Context.get(context, SqlClient.SqlClient) })
  )

/** What {@link seed} writes. */
export interface Seed {
  readonly appId?: string
  readonly track?: string
  readonly version?: string
  readonly policy?: Partial<{
    max_updates_per_period: number
    period_seconds: number
    safe_mode: boolean
    update_timeout_seconds: number
    failure_brake: string
    windows: string
  }>
}

/** An application with one hosted amd64 package, channel `stable` pointing to it, and group `Stable`. */
export const seed = (sql: SqlClient.SqlClient, options: Seed = {}) =>
  Effect.gen(function*() {
    const appId = options.appId ?? flatcar
    const version = options.version ?? "3815.2.1"
    yield* sql`INSERT INTO applications (id, name) VALUES (${appId}, 'Flatcar Container Linux')`
    const [pkg] = yield* sql<{ id: number }>`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
      VALUES (${appId}, ${version}, 'amd64', 'update.gz', 465881871, ${sha1}, ${sha256}) RETURNING id`
    yield* sql`INSERT INTO channels (app_id, name, arch, package_id) VALUES (${appId}, 'stable', 'amd64', ${pkg!.id})`
    const policy = {
      max_updates_per_period: 5,
      period_seconds: 3600,
      safe_mode: false,
      update_timeout_seconds: 3600,
      ...options.policy
    }
    const [group] = yield* sql<{ id: string }>`INSERT INTO groups (app_id, name, track, channel, max_updates_per_period,
        period_seconds, safe_mode, update_timeout_seconds, failure_brake, windows)
      VALUES (${appId}, 'Stable', ${options.track ?? "stable"}, 'stable', ${policy.max_updates_per_period},
        ${policy.period_seconds}, ${policy.safe_mode}, ${policy.update_timeout_seconds}, ${policy.failure_brake ?? null}::jsonb,
        ${policy.windows ?? "[]"}::jsonb)
      RETURNING id::text AS id`
    return { appId, groupId: group!.id, packageId: pkg!.id }
  })

/** An update_engine-like app of a machine: ping and update check, board amd64-usr, track `stable`. */
export const machineApp = (
  machineId: string,
  version: string,
  fields: Partial<ConstructorParameters<typeof Request.AppRequest>[0]> = {}
) =>
  new Request.AppRequest({
    appId: flatcar,
    version,
    track: "stable",
    board: "amd64-usr",
    machineId,
    machineAlias: `alias-${machineId.slice(0, 4)}`,
    oem: "ami",
    ping: new Request.PingRequest({ active: 1 }),
    updateCheck: new Request.UpdateRequest({}),
    ...fields
  })

/** An app that only reports an event, as update_engine's progress requests do. */
export const eventApp = (machineId: string, version: string, eventType: number, eventResult: number, errorCode?: number) =>
  new Request.AppRequest({
    appId: flatcar,
    version,
    track: "stable",
    machineId,
    events: [new Request.EventRequest({ eventType, eventResult, ...(errorCode === undefined ? {} : { errorCode }) })]
  })

/** One app's turn through the port, in the order the endpoint calls it; the check's answer, if it asked. */
export const check = (updater: Updater.UpdaterService, app: Request.AppRequest, address = "10.0.0.1") =>
  Effect.gen(function*() {
    const request = Request.make({ apps: [app] })
    const client = { address }
    yield* updater.checkApp(request, app, client)
    for (const event of app.events) yield* updater.event(request, app, event, client)
    if (app.ping !== undefined) yield* updater.ping(request, app, client)
    return app.updateCheck === undefined ? undefined : yield* updater.checkUpdate(request, app, client)
  }).pipe(Effect.withTracer(tracer))

/** Runs `effect` until `done` holds of its result, waiting 20 ms of real time between runs, for at most 2 s. */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    const start = Date.now()
    let result = yield* effect
    while (!done(result) && Date.now() - start < 2000) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      result = yield* effect
    }
    return result
  })
