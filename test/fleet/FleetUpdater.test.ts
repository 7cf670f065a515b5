import { SqlClient } from "@effect/sql"
import { expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, TestClock } from "effect"
import { OmahaHandler, Request, Updater, Xml } from "effect-omaha"
import * as Pg from "pg"
import * as Rollout from "../../src/fleet/Rollout.js"
import { readFixture } from "../fixtures.js"
import { describePostgres, describeStores, freshDatabase, truncateAll } from "./support.js"
import {
  check,
  counter,
  eventApp,
  eventually,
  machineApp,
  replica,
  replicaOn,
  roundTrips,
  seed,
  sha1,
  sha256,
  sha256Hex
} from "./updaterSupport.js"

const exchange = {
  method: "POST",
  headers: { "content-type": "text/xml", host: "fleet.test" },
  remoteAddress: "192.0.2.7",
  encrypted: false
}

describeStores("FleetUpdater", (it) => {
  it.scoped("takes a Flatcar machine through grant, download, install and reboot, with its history", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql, { track: "dev-channel", appId: "{87efface-864d-49a5-9bb3-4b050a7c227a}" })
      const { tracking, updater } = yield* replica()
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

  it.scoped("refuses an unknown application", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const { updater } = yield* replica()
      const app = machineApp("m1", "1.0.0", { appId: "{00000000-0000-0000-0000-000000000000}" })
      const refused = yield* Effect.flip(updater.checkApp(Request.make({ apps: [app] }), app, { address: undefined }))
      expect(refused).toMatchObject({ _tag: "AppRefused", status: "error-unknownApplication" })
    }))

  it.scoped("offers a multi-manifest client every floor not blocklisted and the target, read from the tables", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
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
      const { updater } = yield* replica()
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
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql, { policy: { max_updates_per_period: 1 } })
      const { updater } = yield* replica()
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
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql, { policy: { max_updates_per_period: 1, period_seconds: 3600, update_timeout_seconds: 600 } })
      const { updater } = yield* replica()
      const start = yield* Clock.currentTimeMillis
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      yield* TestClock.adjust(Duration.minutes(59))
      expect(yield* check(updater, machineApp("m2", "3760.2.0"))).toMatchObject({
        reason: "on hold: 1 of 1 updates in the last 1 h"
      })
      yield* TestClock.adjust(Duration.minutes(2))
      expect((yield* check(updater, machineApp("m2", "3760.2.0")))?._tag).toBe("Update")
      const times = yield* sql<{ t: Date }>`SELECT granted_at AS t FROM grants ORDER BY id`
      expect(times.map((row) => row.t.getTime() - start)).toEqual([0, 61 * 60_000])
    }))

  it.scoped("records the hold of a check the configuration alone answers, without a round trip", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      // A window in Berlin opening 10 minutes from now, for 10 minutes, every day. (The suite's
      // clock is shared by its tests: times here are relative to it.)
      const now = yield* Clock.currentTimeMillis
      const local = Rollout.localTime(now, "Europe/Berlin")!.minute
      const hhmm = (minute: number) => {
        const m = (minute + 1440) % 1440
        return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`
      }
      const days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
      const windows = JSON.stringify([{ days, start: hhmm(local + 10), end: hhmm(local + 20), timeZone: "Europe/Berlin" }])
      yield* seed(sql, { policy: { windows } })
      const { tracking, updater } = yield* replica()
      const before = roundTrips()
      expect(yield* check(updater, machineApp("m1", "3760.2.0"))).toMatchObject({
        _tag: "NoUpdate",
        reason: "on hold: outside the maintenance windows"
      })
      expect(roundTrips()).toBe(before)
      yield* tracking.flush
      const [row] = yield* sql`SELECT status, hold FROM instance_apps`
      expect(row).toEqual({ status: "onHold", hold: "on hold: outside the maintenance windows" })
      yield* TestClock.adjust(Duration.minutes(15))
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      yield* tracking.flush
      const [after] = yield* sql`SELECT status, hold FROM instance_apps`
      expect(after).toEqual({ status: "granted", hold: null })
    }))

  it.scoped("answers a machine that needs nothing without a round trip or a tracing span, and records its check-in", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const { tracking, updater } = yield* replica()
      const trips = roundTrips()
      const spans = counter.spans
      for (let i = 0; i < 20; i++) {
        expect(yield* check(updater, machineApp(`m${i}`, "3815.2.1"))).toMatchObject({
          _tag: "NoUpdate",
          reason: "3815.2.1 is not older than 3815.2.1"
        })
      }
      // A span costs more than the rest of the decision; nothing exports them.
      expect(counter.spans).toBe(spans)
      expect(roundTrips()).toBe(trips)
      yield* tracking.flush
      const [row] = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM instance_apps WHERE version = '3815.2.1' AND status = 'undefined'`
      expect(row!.n).toBe(20)
    }))

  it.scoped("offers a machine pinned by targetversionprefix only versions starting with it", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const { tracking, updater } = yield* replica()
      const pinned = (machineId: string, prefix: string) =>
        machineApp(machineId, "3760.2.0", { updateCheck: new Request.UpdateRequest({ targetVersionPrefix: prefix }) })
      expect(yield* check(updater, pinned("m1", "3760."))).toMatchObject({
        _tag: "NoUpdate",
        reason: "3815.2.1 does not start with the machine's targetversionprefix 3760."
      })
      expect((yield* check(updater, pinned("m2", "3815.")))?._tag).toBe("Update")
      yield* tracking.flush
      expect(yield* sql`SELECT instance_id, status FROM instance_apps ORDER BY instance_id`).toEqual([
        { instance_id: "m1", status: "undefined" },
        { instance_id: "m2", status: "granted" }
      ])
    }))

  it.scoped("pauses the group when too many updates fail, says why, and counts afresh once resumed", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const { groupId } = yield* seed(sql, {
        policy: { max_updates_per_period: 10, failure_brake: JSON.stringify({ ratio: 0.2, minAttempts: 2 }) }
      })
      const { updater } = yield* replica()
      for (const id of ["m1", "m2", "m3"]) expect((yield* check(updater, machineApp(id, "3760.2.0")))?._tag).toBe("Update")
      const report = (id: string, eventResult: number, errorCode?: number) =>
        check(updater, eventApp(id, "3760.2.0", 3, eventResult, errorCode))
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
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql, {
        policy: { safe_mode: true, max_updates_per_period: 2, period_seconds: 600, update_timeout_seconds: 600 }
      })
      const { updater } = yield* replica()
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
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const { groupId } = yield* seed(sql)
      const { tracking, updater } = yield* replica()
      expect((yield* check(updater, machineApp("m1", "3760.2.0")))?._tag).toBe("Update")
      expect((yield* check(updater, machineApp("m2", "3760.2.0")))?._tag).toBe("Update")
      yield* check(updater, eventApp("m2", "3760.2.0", 13, 1))
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

  it.scoped("grants exactly 5 of 200 machines checking at once, and records why the rest wait", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const { tracking, updater } = yield* replica()
      const machines = Array.from({ length: 200 }, (_, i) => `${i.toString(16).padStart(4, "0")}bb${"0".repeat(26)}`)
      const answers = yield* Effect.forEach(machines, (id) => check(updater, machineApp(id, "3760.2.0")), {
        concurrency: "unbounded"
      })
      expect(answers.filter((answer) => answer?._tag === "Update")).toHaveLength(5)
      // Until the oldest grant leaves the period, a held machine costs one read, no transaction;
      // a machine granted before still gets its package again.
      const before = { ...counter }
      const again = yield* Effect.forEach(machines, (id) => check(updater, machineApp(id, "3760.2.0")))
      expect(again.filter((answer) => answer?._tag === "Update")).toHaveLength(5)
      expect(counter.transactions - before.transactions).toBe(5)
      expect(counter.statements - before.statements).toBeLessThanOrEqual(200 + 5 * 3)
      yield* tracking.flush
      const rows = yield* sql`SELECT status, hold, count(*)::int AS n FROM instance_apps GROUP BY status, hold ORDER BY status`
      expect(rows).toEqual([
        { status: "granted", hold: null, n: 5 },
        { status: "onHold", hold: "on hold: 5 of 5 updates in the last 1 h", n: 195 }
      ])
      const [grants] = yield* sql`SELECT count(*)::int AS n FROM grants`
      expect(grants).toEqual({ n: 5 })
      // Raising the limit is a change of configuration: the next machine is let through.
      yield* sql`UPDATE groups SET max_updates_per_period = 6`
      const next = yield* eventually(check(updater, machineApp(machines[199]!, "3760.2.0")), (a) => a?._tag === "Update")
      expect(next?._tag).toBe("Update")
    }))
})

describePostgres("FleetUpdater replicas on one PostgreSQL", (server) => {
  it.scoped("grants exactly 5 of 200 machines checking at once through two replicas, and records why the rest wait", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase(server)
      const a = yield* replicaOn(url)
      const { groupId } = yield* seed(a.sql)
      const b = yield* replicaOn(url)
      const sql = a.sql
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

  it.live("a finishing event waits for the group's lock before it writes the machine's row, as a grant does: no deadlock", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshDatabase(server)
      const { groupId } = yield* seed((yield* replicaOn(url)).sql)
      const a = yield* replicaOn(url)
      const machine = "d0d0d0"
      expect((yield* check(a.updater, machineApp(machine, "3760.2.0")))?._tag).toBe("Update")
      yield* a.tracking.flush
      // Another replica's grant, by hand: the group's lock first, the machine's row after.
      const grant = new Pg.Client({ connectionString: url })
      yield* Effect.acquireRelease(Effect.promise(() => grant.connect()), () => Effect.promise(() => grant.end()))
      yield* Effect.promise(() => grant.query("BEGIN"))
      yield* Effect.promise(() => grant.query("SELECT id FROM groups WHERE id = $1::uuid FOR NO KEY UPDATE", [groupId]))
      // The machine's failure report now waits for that lock.
      const failed = yield* Effect.fork(check(a.updater, eventApp(machine, "3760.2.0", 3, 0, 10)))
      yield* eventually(
        a.sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        (rows) => rows[0]!.n === 1
      )
      // The grant goes on to the machine's row and commits; had the event written the row
      // first, the two would wait on each other until PostgreSQL aborted one.
      const updated = yield* Effect.promise(() =>
        grant.query("UPDATE instance_apps SET hold = NULL WHERE instance_id = $1", [machine]).then(
          (r) => r.rowCount,
          (e: Error) => e.message
        )
      )
      expect(updated).toBe(1)
      yield* Effect.promise(() => grant.query("COMMIT"))
      expect(Exit.isSuccess(yield* Fiber.await(failed))).toBe(true)
      const rows = yield* a.sql<{ status: string; errorCode: number }>`SELECT status, error_code AS "errorCode" FROM instance_apps
        WHERE instance_id = ${machine}`
      expect(rows).toEqual([{ status: "error", errorCode: 10 }])
    })), { timeout: 30_000 })

  it.live("serves a configuration change written through one client from another replica within a second", () =>
    Effect.scoped(Effect.gen(function*() {
      const url = yield* freshDatabase(server)
      const a = yield* replicaOn(url)
      const { appId } = yield* seed(a.sql)
      const b = yield* replicaOn(url)
      const [newer] = yield* a.sql<{ id: number }>`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
        VALUES (${appId}, '3850.0.0', 'amd64', 'update.gz', 1, ${sha1}, ${sha256}) RETURNING id`
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
})
