import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Scope, TestClock, Tracer } from "effect"
import { OmahaHandler, Request, Updater, Xml } from "effect-omaha"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import * as Tracking from "../../src/fleet/Tracking.js"
import { readFixture } from "../fixtures.js"
import { clientLayer, createDatabase } from "./localPg.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const sha1 = "+LXvjiaPkeYDLHoNKlf9qbJwvnk="
const sha256 = "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg="
const sha256Hex = Buffer.from(sha256, "base64").toString("hex")

/** Counts the statements and transactions the code under test sends. */
const counter = { statements: 0, transactions: 0 }
const countingTracer = (inner: Tracer.Tracer) =>
  Tracer.make({
    span: (name, ...rest) => {
      if (name === "sql.execute") counter.statements++
      else if (name === "sql.transaction") counter.transactions++
      return inner.span(name, ...rest)
    },
    context: inner.context
  })
const tracer = countingTracer(Effect.runSync(Effect.tracer))
const tracing = Layer.setTracer(tracer)

interface Replica {
  readonly updater: Updater.UpdaterService
  readonly tracking: Tracking.TrackingService
  readonly sql: SqlClient.SqlClient
}

/** One fleet-server replica: its own pool, cache and batch, on the database `name`. */
// Under the TestClock a batch is written when a test says so (or when it is full), and
// the configuration is read again on notifications only.
const replica = (name: string, options: { tracking?: Tracking.Options } = {}) =>
  Effect.gen(function*() {
    const layer = Layer.unwrapEffect(Effect.gen(function*() {
      const pg = yield* PgClient.PgClient
      return FleetUpdater.layerWith(Effect.succeed(pg.listen("fleet_config")), { pollInterval: Duration.days(1) })
    })).pipe(
      Layer.provideMerge(Tracking.layer({ flushInterval: Duration.days(1), ...options.tracking })),
      Layer.provideMerge(clientLayer(name, false)),
      Layer.provide(tracing)
    )
    const context = yield* Layer.build(layer)
    return {
      updater: Context.get(context, Updater.Updater),
      tracking: Context.get(context, Tracking.Tracking),
      sql: Context.get(context, SqlClient.SqlClient)
    } satisfies Replica
  })

/** A fresh, migrated database and a client on it, for seeding and for reading what the replicas wrote. */
const database = Effect.gen(function*() {
  const name = yield* createDatabase
  const context = yield* Layer.build(clientLayer(name, true))
  return { name, sql: Context.get(context, SqlClient.SqlClient) }
})

interface Seed {
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

/** An application with one hosted package, a channel pointing to it, and a group. */
const seed = (sql: SqlClient.SqlClient, options: Seed = {}) =>
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

const machineApp = (machineId: string, version: string, fields: Partial<ConstructorParameters<typeof Request.AppRequest>[0]> = {}) =>
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

/** One app's turn through the port, in the order the endpoint calls it. */
const check = (updater: Updater.UpdaterService, app: Request.AppRequest, address = "10.0.0.1") =>
  Effect.gen(function*() {
    const request = Request.make({ apps: [app] })
    const client = { address }
    yield* updater.checkApp(request, app, client)
    for (const event of app.events) yield* updater.event(request, app, event, client)
    if (app.ping !== undefined) yield* updater.ping(request, app, client)
    return app.updateCheck === undefined ? undefined : yield* updater.checkUpdate(request, app, client)
  }).pipe(Effect.withTracer(tracer))

/** Runs `effect` until `done` holds of its result, waiting 20 ms of real time between runs, for at most 2 s. */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    const start = Date.now()
    let result = yield* effect
    while (!done(result) && Date.now() - start < 2000) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      result = yield* effect
    }
    return result
  })

const exchange = { method: "POST", headers: { "content-type": "text/xml", host: "fleet.test" }, remoteAddress: "192.0.2.7", encrypted: false }

describe("FleetUpdater on PostgreSQL", () => {
  it.scoped("takes a Flatcar machine through grant, download, install and reboot, with its history", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql, { track: "dev-channel", appId: "{87efface-864d-49a5-9bb3-4b050a7c227a}" })
      const { tracking, updater } = yield* replica(name)
      const endpoint = yield* OmahaHandler.makeEndpoint({ publicBaseUrl: "http://fleet.test/" }).pipe(
        Effect.provideService(Updater.Updater, updater)
      )
      const post = (xml: string) =>
        Effect.map(endpoint.answer(exchange, new TextEncoder().encode(xml)), (reply) => {
          expect(reply.status).toBe(200)
          return Effect.runSync(Xml.decodeResponse(reply.body)).apps[0]!
        })
      // The captured update_engine request: ForcedUpdate, with a 3/2 of an earlier update that nothing is waiting for.
      const first = readFixture("omaha/update-engine/update/request.xml")
      const granted = yield* post(first)
      expect(granted.status).toBe("ok")
      expect(granted.updateCheck?.status).toBe("ok")
      expect(granted.updateCheck?.urls.map((u) => u.codebase)).toEqual([`http://fleet.test/packages/${sha256Hex}/`])
      expect(granted.updateCheck?.manifests[0]?.version).toBe("3815.2.1")
      expect(granted.updateCheck?.manifests[0]?.packages[0]).toMatchObject({ name: "update.gz", size: 465881871, hash: sha1 })
      expect(granted.updateCheck?.manifests[0]?.actions[0]).toMatchObject({ event: "postinstall", sha256, disablePayloadBackoff: true })

      const progress = (event: string) =>
        first.replace(/<ping[^>]*><\/ping>\s*<updatecheck[^>]*><\/updatecheck>\s*<event[^>]*><\/event>/, event)
      for (const event of ['eventtype="13" eventresult="1"', 'eventtype="14" eventresult="1"', 'eventtype="3" eventresult="1"']) {
        const answer = yield* post(progress(`<event ${event}></event>`))
        expect(answer.events.map((e) => e.status)).toEqual(["ok"])
        expect(answer.updateCheck).toBeUndefined()
      }
      // After the reboot: the new version, 3/2 and the next check in one request.
      const rebooted = first.replace('version="ForcedUpdate"', 'version="3815.2.1"').replace(
        /<event[^>]*><\/event>/,
        '<event eventtype="3" eventresult="2" previousversion="ForcedUpdate"></event>'
      )
      const after = yield* post(rebooted)
      expect(after.updateCheck?.status).toBe("noupdate")
      yield* tracking.flush

      const machine = "{8BDE4C4D-9083-4D61-B41C-3253212C0C37}"
      const [state] = yield* sql`SELECT status, version, granted_version, hold, alias, ip, track, arch
        FROM instance_apps JOIN instances ON id = instance_id WHERE instance_id = ${machine}`
      expect(state).toEqual({
        status: "complete",
        version: "3815.2.1",
        granted_version: "3815.2.1",
        hold: null,
        alias: "mymachine",
        ip: "192.0.2.7",
        track: "dev-channel",
        arch: "amd64"
      })
      const history = yield* sql<{ status: string; version: string }>`SELECT status, version FROM instance_status_history
        WHERE instance_id = ${machine} ORDER BY id`
      expect(history.map((h) => `${h.status} ${h.version}`)).toEqual([
        "granted 3815.2.1",
        "downloading 3815.2.1",
        "downloaded 3815.2.1",
        "installed 3815.2.1",
        "complete 3815.2.1"
      ])
      const events = yield* sql<{ e: string }>`SELECT event_type || '/' || event_result AS e FROM events ORDER BY id`
      expect(events.map((e) => e.e)).toEqual(["3/2", "13/1", "14/1", "3/1", "3/2"])
      const grants = yield* sql`SELECT version, outcome, finished_at IS NOT NULL AS finished FROM grants`
      expect(grants).toEqual([{ version: "3815.2.1", outcome: "complete", finished: true }])
    }))

  it.scoped("grants exactly 5 of 200 machines checking at once through two replicas, and records why the rest wait", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      const { groupId } = yield* seed(sql)
      const a = yield* replica(name)
      const b = yield* replica(name)
      const machines = Array.from({ length: 200 }, (_, i) => `${i.toString(16).padStart(4, "0")}aa${"0".repeat(26)}`)
      const answers = yield* Effect.forEach(
        machines,
        (id, i) => check(i % 2 === 0 ? a.updater : b.updater, machineApp(id, "3760.2.0")),
        { concurrency: "unbounded" }
      )
      const granted = answers.filter((answer) => answer?._tag === "Update")
      expect(granted).toHaveLength(5)
      const reasons = new Set(answers.flatMap((answer) => (answer?._tag === "NoUpdate" ? [answer.reason] : [])))
      expect([...reasons]).toEqual(["on hold: 5 of 5 updates in the last 1 h"])
      yield* a.tracking.flush
      yield* b.tracking.flush
      const rows = yield* sql<{ status: string; hold: string | null; n: number }>`SELECT status, hold, count(*)::int AS n
        FROM instance_apps GROUP BY status, hold ORDER BY status`
      expect(rows).toEqual([
        { status: "granted", hold: null, n: 5 },
        { status: "onHold", hold: "on hold: 5 of 5 updates in the last 1 h", n: 195 }
      ])
      const [grants] = yield* sql`SELECT count(*)::int AS n FROM grants WHERE group_id = ${groupId}::uuid`
      expect(grants).toEqual({ n: 5 })
    }), { timeout: 60_000 })

  it.live("serves a configuration change written through one client from another replica within a second", () =>
    Effect.scoped(Effect.gen(function*() {
      const { name, sql } = yield* database
      const { appId } = yield* seed(sql)
      const a = yield* replica(name)
      const b = yield* replica(name)
      const [newer] = yield* a.sql<{ id: number }>`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
        VALUES (${appId}, '3850.0.0', 'amd64', 'update.gz', 1, ${sha1}, ${sha256}) RETURNING id`
      yield* Effect.sleep(Duration.millis(300))
      yield* Effect.sleep(Duration.millis(300))
      // B answers from its cache: a machine on 3815.2.1 needs nothing.
      const before = yield* check(b.updater, machineApp("c0ffee", "3815.2.1"))
      expect(before).toMatchObject({ _tag: "NoUpdate", reason: "3815.2.1 is not older than 3815.2.1" })
      yield* a.sql`UPDATE channels SET package_id = ${newer!.id} WHERE app_id = ${appId}`
      const start = Date.now()
      let answer = before?._tag
      while (answer !== "Update" && Date.now() - start < 1000) {
        yield* Effect.sleep(Duration.millis(10))
        answer = (yield* check(b.updater, machineApp("c0ffee", "3815.2.1")))?._tag
      }
      expect(answer).toBe("Update")
      expect(Date.now() - start).toBeLessThan(1000)
    })))

  it.scoped("writes the queued check-ins when it stops", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql)
      const scope = yield* Scope.make()
      const a = yield* Scope.extend(replica(name, { tracking: { flushInterval: Duration.hours(1) } }), scope)
      for (let i = 0; i < 50; i++) {
        const answer = yield* check(a.updater, machineApp(`machine-${i}`, "3815.2.1"))
        expect(answer?._tag).toBe("NoUpdate")
      }
      expect(yield* a.tracking.pending).toBe(50)
      const [none] = yield* sql`SELECT count(*)::int AS n FROM instance_apps`
      expect(none).toEqual({ n: 0 })
      yield* Scope.close(scope, Exit.void)
      const [written] = yield* sql`SELECT count(*)::int AS n FROM instance_apps WHERE version = '3815.2.1'`
      expect(written).toEqual({ n: 50 })
    }))

  it.scoped("records 10,000 machines' check-ins with a handful of statements, none per request", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql)
      const a = yield* replica(name, { tracking: { flushInterval: Duration.hours(1) } })
      const before = { ...counter }
      for (let i = 0; i < 10_000; i++) {
        yield* check(a.updater, machineApp(`m${i.toString(16).padStart(31, "0")}`, "3815.2.1"))
      }
      const during = counter.statements - before.statements + 2 * (counter.transactions - before.transactions)
      yield* a.tracking.flush
      const total = counter.statements - before.statements + 2 * (counter.transactions - before.transactions)
      const [written] = yield* sql`SELECT count(*)::int AS n FROM instance_apps`
      expect(written).toEqual({ n: 10_000 })
      // A full batch of 2,000 is written at once, in the background, while checks go on; a
      // write takes what is queued by then, in statements of at most 2,000 rows.
      expect(total).toBeGreaterThanOrEqual(5)
      expect(total).toBeLessThanOrEqual(10)
      expect(during).toBeLessThanOrEqual(total)
    }), { timeout: 120_000 })

  it.scoped("refuses an unknown application", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql)
      const { updater } = yield* replica(name)
      const app = machineApp("m1", "1.0.0", { appId: "{00000000-0000-0000-0000-000000000000}" })
      const refused = yield* Effect.flip(updater.checkApp(Request.make({ apps: [app] }), app, { address: undefined }))
      expect(refused).toMatchObject({ _tag: "AppRefused", status: "error-unknownApplication" })
    }))

  it.scoped("offers a multi-manifest client every floor not blocklisted and the target, read from the tables", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      const { appId } = yield* seed(sql)
      const ids = new Map<string, number>()
      for (const version of ["3139.2.0", "3374.2.0", "3602.2.0"]) {
        const [row] = yield* sql<{ id: number }>`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256, url)
          VALUES (${appId}, ${version}, 'amd64', 'update.gz', 10, ${sha1}, ${sha256}, ${`https://cdn.test/flatcar/${version}/flatcar_production_update.gz`})
          RETURNING id`
        ids.set(version, row!.id)
      }
      const [channel] = yield* sql<{ id: number }>`SELECT id FROM channels`
      for (const [version, id] of ids) {
        yield* sql`INSERT INTO channel_floors (channel_id, package_id, reason) VALUES (${channel!.id}, ${id}, ${`to ${version}`})`
      }
      yield* sql`INSERT INTO channel_blocklist (channel_id, package_id) VALUES (${channel!.id}, ${ids.get("3374.2.0")!})`
      const { updater } = yield* replica(name)
      const multi = yield* check(updater, machineApp("m1", "3033.2.0", { multiManifestOk: true }))
      // The floors live on the CDN, the target is hosted: one answer has one codebase, so it stops before the target.
      expect(multi?._tag).toBe("Update")
      if (multi?._tag !== "Update") return
      expect(multi.codebases).toEqual(["https://cdn.test/flatcar/3139.2.0/"])
      expect(multi.manifests.map((m) => [m.version, m.isFloor, m.floorReason, m.isTarget, m.packages[0]!.name])).toEqual([
        ["3139.2.0", true, "to 3139.2.0", false, "flatcar_production_update.gz"]
      ])
      const stock = yield* check(updater, machineApp("m2", "3139.2.0"))
      expect(stock?._tag === "Update" && stock.manifests.map((m) => [m.version, m.isFloor])).toEqual([["3602.2.0", undefined]])
    }))

  it.scoped("sends a machine granted before the same package again without spending a grant", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql, { policy: { max_updates_per_period: 1 } })
      const { updater } = yield* replica(name)
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      expect(yield* check(updater, machineApp("m2", "3760.2.0"))).toMatchObject({
        _tag: "NoUpdate",
        reason: "on hold: 1 of 1 updates in the last 1 h"
      })
      const [grants] = yield* sql`SELECT count(*)::int AS n FROM grants`
      expect(grants).toEqual({ n: 1 })
    }))

  it.scoped("counts grants in the period of the policy, on the clock of the server", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql, { policy: { max_updates_per_period: 1, period_seconds: 3600, update_timeout_seconds: 600 } })
      const { updater } = yield* replica(name)
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      yield* TestClock.adjust(Duration.minutes(59))
      expect(yield* check(updater, machineApp("m2", "3760.2.0"))).toMatchObject({
        reason: "on hold: 1 of 1 updates in the last 1 h"
      })
      yield* TestClock.adjust(Duration.minutes(2))
      expect((yield* check(updater, machineApp("m2", "3760.2.0")))?._tag).toBe("Update")
      const times = yield* sql<{ t: Date }>`SELECT granted_at AS t FROM grants ORDER BY id`
      expect(times.map((row) => row.t.getTime())).toEqual([0, 61 * 60_000])
    }))

  it.scoped("records the hold of a check the configuration alone answers, without a round trip", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      const closed = JSON.stringify([{ days: ["sat"], start: "10:00", end: "11:00", timeZone: "Europe/Berlin" }])
      yield* seed(sql, { policy: { windows: closed } })
      const { tracking, updater } = yield* replica(name)
      const before = counter.statements + counter.transactions
      // 1970-01-01 was a Thursday.
      expect(yield* check(updater, machineApp("m1", "3760.2.0"))).toMatchObject({
        _tag: "NoUpdate",
        reason: "on hold: outside the maintenance windows"
      })
      expect(counter.statements + counter.transactions).toBe(before)
      yield* tracking.flush
      const [row] = yield* sql`SELECT status, hold FROM instance_apps`
      expect(row).toEqual({ status: "onHold", hold: "on hold: outside the maintenance windows" })
      // Two days later it is Saturday 10:30 in Berlin (09:30 UTC): the window is open.
      yield* TestClock.adjust(Duration.hours(2 * 24 + 9.5))
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      yield* tracking.flush
      const [after] = yield* sql`SELECT status, hold FROM instance_apps`
      expect(after).toEqual({ status: "granted", hold: null })
    }))

  it.scoped("pauses the group when too many updates fail, says why, and counts afresh once resumed", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      const { groupId } = yield* seed(sql, {
        policy: { max_updates_per_period: 10, failure_brake: JSON.stringify({ ratio: 0.2, minAttempts: 2 }) }
      })
      const { updater } = yield* replica(name)
      for (const id of ["m1", "m2", "m3"]) expect((yield* check(updater, machineApp(id, "3760.2.0")))?._tag).toBe("Update")
      const report = (id: string, eventResult: number, errorCode?: number) =>
        check(
          updater,
          new Request.AppRequest({
            appId: flatcar,
            version: "3760.2.0",
            track: "stable",
            machineId: id,
            events: [new Request.EventRequest({ eventType: 3, eventResult, ...(errorCode === undefined ? {} : { errorCode }) })]
          })
        )
      yield* report("m1", 0, 268435466) // 10 (payload hash mismatch) with the test-Omaha-URL flag
      const [m1] = yield* sql`SELECT status, error_code FROM instance_apps WHERE instance_id = 'm1'`
      expect(m1).toEqual({ status: "error", error_code: 10 })
      expect(yield* sql`SELECT paused FROM groups`).toEqual([{ paused: false }])
      yield* report("m2", 0, 44)
      const [group] = yield* sql`SELECT paused, paused_reason FROM groups`
      expect(group).toEqual({ paused: true, paused_reason: "failure brake: 2 of 2 finished updates failed, over 20 %" })
      const activity = yield* sql<{ kind: string; message: string }>`SELECT kind, message FROM activity ORDER BY id`
      expect(activity.map((a) => `${a.kind}: ${a.message}`)).toEqual([
        "rolloutStarted: Stable: rollout of 3815.2.1 started",
        "instanceFailed: m1 failed to update to 3815.2.1 (error 10)",
        "instanceFailed: m2 failed to update to 3815.2.1 (error 44, rolled back)",
        "rolloutBraked: Stable: failure brake: 2 of 2 finished updates failed, over 20 %; rollout paused"
      ])
      expect(yield* check(updater, machineApp("m4", "3760.2.0"))).toMatchObject({
        _tag: "NoUpdate",
        reason: "on hold: group paused (failure brake: 2 of 2 finished updates failed, over 20 %)"
      })
      // An operator resumes the rollout: the failures before the brake no longer count.
      yield* TestClock.adjust(Duration.seconds(1))
      yield* sql`UPDATE groups SET paused = false, paused_reason = NULL WHERE id = ${groupId}::uuid`
      const resumed = yield* eventually(check(updater, machineApp("m5", "3760.2.0")), (answer) => answer?._tag === "Update")
      expect(resumed?._tag).toBe("Update")
      yield* report("m5", 0, 9)
      expect(yield* sql`SELECT paused FROM groups`).toEqual([{ paused: false }])
    }))

  it.scoped("in safe mode waits for the first update, and turns updates off when updates time out", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql, {
        policy: { safe_mode: true, max_updates_per_period: 2, period_seconds: 600, update_timeout_seconds: 600 }
      })
      const { updater } = yield* replica(name)
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* check(updater, machineApp("m2", "3760.2.0"))).toMatchObject({
        reason: "on hold: safe mode, waiting for the first update of the rollout to finish"
      })
      yield* TestClock.adjust(Duration.seconds(600))
      expect((yield* check(updater, machineApp("m2", "3760.2.0")))?._tag).toBe("Update")
      yield* TestClock.adjust(Duration.seconds(601))
      expect(yield* check(updater, machineApp("m3", "3760.2.0"))).toMatchObject({
        reason: "on hold: safe mode turned updates off for the group after 2 updates timed out"
      })
      expect(yield* sql`SELECT updates_enabled FROM groups`).toEqual([{ updates_enabled: false }])
      const [braked] = yield* sql`SELECT message FROM activity WHERE kind = 'rolloutBraked'`
      expect(braked).toEqual({ message: "Stable: safe mode turned updates off after 2 updates timed out" })
      expect(yield* check(updater, machineApp("m4", "3760.2.0"))).toMatchObject({
        reason: "on hold: updates disabled for the group"
      })
    }))

  it.scoped("keeps the status of an update in progress when a later check of the machine is held", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      const { groupId } = yield* seed(sql)
      const { tracking, updater } = yield* replica(name)
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      expect((yield* check(updater, machineApp("m2", "3760.2.0")))?._tag).toBe("Update")
      yield* check(updater, new Request.AppRequest({
        appId: flatcar,
        version: "3760.2.0",
        track: "stable",
        machineId: "m2",
        events: [new Request.EventRequest({ eventType: 13, eventResult: 1 })]
      }))
      expect(yield* check(updater, machineApp("m2", "3760.2.0"))).toMatchObject({ reason: "on hold: update in progress" })
      yield* sql`UPDATE groups SET paused = true WHERE id = ${groupId}::uuid`
      const held = yield* eventually(check(updater, machineApp("m1", "3760.2.0")), (answer) => answer?._tag === "NoUpdate")
      expect(held).toMatchObject({ reason: "on hold: group paused" })
      expect((yield* check(updater, machineApp("m3", "3760.2.0")))).toMatchObject({ reason: "on hold: group paused" })
      yield* tracking.flush
      const rows = yield* sql`SELECT instance_id, status, hold FROM instance_apps ORDER BY instance_id`
      expect(rows).toEqual([
        { instance_id: "m1", status: "granted", hold: null },
        { instance_id: "m2", status: "downloading", hold: null },
        { instance_id: "m3", status: "onHold", hold: "on hold: group paused" }
      ])
    }))

  it.scoped("keeps the check-ins of a batch the database refused, and writes them on the next try", () =>
    Effect.gen(function*() {
      const { name, sql } = yield* database
      yield* seed(sql)
      const { tracking, updater } = yield* replica(name)
      for (let i = 0; i < 20; i++) yield* check(updater, machineApp(`m${i}`, "3815.2.1"))
      yield* sql`ALTER TABLE instance_apps RENAME TO instance_apps_away`
      const refused = yield* Effect.flip(tracking.flush)
      expect(refused._tag).toBe("SqlError")
      expect(yield* tracking.pending).toBe(20)
      // A later check-in of a machine replaces the one kept for it.
      yield* check(updater, machineApp("m0", "3815.2.2"))
      yield* sql`ALTER TABLE instance_apps_away RENAME TO instance_apps`
      yield* tracking.flush
      expect(yield* tracking.pending).toBe(0)
      const rows = yield* sql<{ version: string; n: number }>`SELECT version, count(*)::int AS n FROM instance_apps
        GROUP BY version ORDER BY version`
      expect(rows).toEqual([{ version: "3815.2.1", n: 19 }, { version: "3815.2.2", n: 1 }])
    }))
})
