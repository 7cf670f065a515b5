import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as Fs from "node:fs"
import { FleetEvent } from "../../src/fleet/FleetEvents.js"
import * as Metrics from "../../src/fleet/Metrics.js"
import * as Rollout from "../../src/fleet/Rollout.js"
import { AppRequest, Request, UpdateRequest } from "../../src/protocol/Request.js"
import * as Response from "../../src/protocol/Response.js"
import { NoUpdate, Update, UpdateRefused, type UpdaterService } from "../../src/server/Updater.js"
import { parse, valueOf } from "./exposition.js"
import { describeStores, truncateAll } from "./support.js"

describe("the exposition parser used here", () => {
  it("reads samples of declared families and refuses what the format does not allow", () => {
    const families = parse([
      "# HELP a_total A counter.",
      "# TYPE a_total counter",
      "a_total{x=\"1\",y=\"q\\\"uote\\\\\"} 3",
      "a_total{x=\"2\"} 4 1700000000000",
      "# TYPE h histogram",
      "h_bucket{le=\"+Inf\"} 2",
      "h_sum 0.5",
      "h_count 2",
      ""
    ].join("\n"))
    expect(valueOf(families, "a_total")).toBe(7)
    expect(valueOf(families, "a_total", { y: "q\"uote\\" })).toBe(3)
    expect(valueOf(families, "h_count")).toBe(2)
    expect(families.get("a_total")!.help).toBe("A counter.")
    for (const bad of ["b 1", "# TYPE c counter\nc{x=1} 1", "# TYPE c counter\nc one", "# TYPE c counter\n# TYPE c counter", "# TYPE c counter\nc{x=\"\\q\"} 1"]) {
      expect(() => parse(bad)).toThrow()
    }
  })
})

describe("labels", () => {
  it("name API routes by their template, and anything else other", () => {
    expect(Metrics.routeOf("/api/apps")).toBe("/api/apps")
    expect(Metrics.routeOf("/api/apps/%7Babc%7D/groups/prod/pause?x=1")).toBe("/api/apps/{app}/groups/{name}/pause")
    expect(Metrics.routeOf("/api/apps/a/channels/stable/floors/1.2.3")).toBe("/api/apps/{app}/channels/{name}/floors/{version}")
    expect(Metrics.routeOf("/api/apps/a/packages/1.0.0")).toBe("/api/apps/{app}/packages/{version}")
    expect(Metrics.routeOf("/api/apps/groups/groups")).toBe("/api/apps/{app}/groups")
    expect(Metrics.routeOf("/api/apps/a/instances/m-1")).toBe("/api/apps/{app}/instances/{machineId}")
    expect(Metrics.routeOf("/api/webhooks/3")).toBe("/api/webhooks/{id}")
    expect(Metrics.routeOf("/api/openapi.json")).toBe("/api/openapi.json")
    expect(Metrics.routeOf("/health")).toBe("/health")
    for (const other of ["/api/whatever", "/api/apps/a/nonsense", "/", "/x/y", "/api/apps/a/groups/g/pause/more"]) {
      expect(Metrics.routeOf(other)).toBe("other")
    }
  })

  it("name every hold the rollout engine gives, by a reason of its own", () => {
    const h = Rollout.holdReason
    const reasons = [
      h.paused(undefined),
      h.paused("failure brake: 3 of 4 finished updates failed, over 50 %"),
      h.updatesDisabled,
      h.outsideWindows,
      h.outsideRollout(12.5),
      h.periodLimit(5, 5, 3600),
      h.concurrentLimit(2, 2),
      h.safeModeWaiting,
      h.safeModeTimedOut(3),
      h.inProgress,
      h.waitingForReboot
    ].map((reason) => Metrics.answerOf(new NoUpdate({ reason })))
    expect(reasons.map((r) => r.answer)).toEqual(Array(reasons.length).fill("hold"))
    expect(reasons.map((r) => r.reason)).toEqual([
      "paused",
      "paused",
      "updates_disabled",
      "outside_windows",
      "outside_rollout",
      "period_limit",
      "concurrent_limit",
      "safe_mode_waiting",
      "safe_mode_timed_out",
      "in_progress",
      "waiting_for_reboot"
    ])
  })

  it("bound error codes and classify answers", () => {
    expect([0, 44, 99, 2404, 100, 1999, 3000, -1, 1.5, undefined].map(Metrics.errorCodeLabel)).toEqual([
      "0", "44", "99", "2404", "other", "other", "other", "other", "other", "none"
    ])
    const answers = [
      "on hold: 5 of 5 updates in the last 1 h",
      "on hold: 2 of 2 updates in progress",
      "on hold: group paused (failure brake: 3 of 4 finished updates failed, over 50 %)",
      "on hold: not in the 10 % of machines this rollout reaches",
      "on hold: outside the maintenance windows",
      "on hold: something new",
      "3815.2.1 is not older than 3815.2.1",
      "no group with track \"beta\"",
      "the database is unavailable",
      undefined
    ].map((reason) => Metrics.answerOf(new NoUpdate(reason === undefined ? {} : { reason })))
    expect(answers).toEqual([
      { answer: "hold", reason: "period_limit" },
      { answer: "hold", reason: "concurrent_limit" },
      { answer: "hold", reason: "paused" },
      { answer: "hold", reason: "outside_rollout" },
      { answer: "hold", reason: "outside_windows" },
      { answer: "hold", reason: "other" },
      { answer: "noupdate", reason: "up_to_date" },
      { answer: "noupdate", reason: "no_group" },
      { answer: "noupdate", reason: "database_unavailable" },
      { answer: "noupdate", reason: "other" }
    ])
  })
})

const app = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const group = "00000000-0000-4000-8000-000000000001"

const seed = Effect.gen(function*() {
  yield* truncateAll
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO applications (id, name) VALUES (${app}, 'Flatcar')`
  yield* sql`INSERT INTO groups (id, app_id, name, track, channel) VALUES (${group}, ${app}, 'production', 'stable', 'stable')`
  const machines: Array<[string, string, string]> = [
    ["m1", "3815.2.0", "complete"],
    ["m2", "3815.2.0", "complete"],
    ["m3", "3815.2.0", "granted"],
    ["m4", "3760.1.0", "onHold"]
  ]
  for (const [id, version, status] of machines) {
    yield* sql`INSERT INTO instances (id) VALUES (${id})`
    yield* sql`INSERT INTO instance_apps (instance_id, app_id, group_id, version, status) VALUES (${id}, ${app}, ${group}, ${version}, ${status})`
  }
  // A machine whose track names no group.
  yield* sql`INSERT INTO instances (id) VALUES ('loose')`
  yield* sql`INSERT INTO instance_apps (instance_id, app_id, version) VALUES ('loose', ${app}, '3000.0.0')`
})

const request = new Request({ protocol: "3.0", apps: [] }, true)
const appRequest = new AppRequest({ appId: app, version: "1.0.0", updateCheck: new UpdateRequest({}) }, true)
const update = new Update({
  codebases: ["packages/"],
  manifests: [new Response.Manifest({ version: "2.0.0", packages: [], actions: [] })]
})

describeStores("Metrics", (it) => {
  it.effect("count machines from the database on scrape, read again only after the cache's few seconds", () =>
    Effect.gen(function*() {
      yield* seed
      const sql = yield* SqlClient.SqlClient
      const metrics = yield* Metrics.make({ processMetrics: false })
      const first = parse(yield* metrics.scrape)
      const labels = { app, group: "production", channel: "stable" }
      expect(valueOf(first, "fleet_instances", { ...labels, version: "3815.2.0", status: "complete" })).toBe(2)
      expect(valueOf(first, "fleet_instances", { ...labels, version: "3815.2.0", status: "granted" })).toBe(1)
      expect(valueOf(first, "fleet_instances", { ...labels, version: "3760.1.0", status: "onHold" })).toBe(1)
      expect(valueOf(first, "fleet_instances", { app, group: "", channel: "", version: "3000.0.0", status: "undefined" })).toBe(1)
      expect(valueOf(first, "fleet_instances")).toBe(5)

      yield* sql`UPDATE instance_apps SET status = 'complete' WHERE instance_id = 'm3'`
      // Within the cache's time, the same counts (no query).
      yield* TestClock.adjust("4 seconds")
      expect(valueOf(parse(yield* metrics.scrape), "fleet_instances", { ...labels, status: "complete" })).toBe(2)
      yield* TestClock.adjust("2 seconds")
      const later = parse(yield* metrics.scrape)
      expect(valueOf(later, "fleet_instances", { ...labels, status: "complete" })).toBe(3)
      // A label set that is gone is gone from the scrape, not left at its last value.
      expect(valueOf(later, "fleet_instances", { ...labels, status: "granted" })).toBeUndefined()
    }))

  it.effect("fold the label sets past the cap into version=\"other\"", () =>
    Effect.gen(function*() {
      yield* seed
      const metrics = yield* Metrics.make({ processMetrics: false, maxInstanceSeries: 1 })
      const families = parse(yield* metrics.scrape)
      expect(families.get("fleet_instances")!.samples).toHaveLength(
        1 + new Set(["granted", "onHold", "undefined"]).size
      )
      expect(valueOf(families, "fleet_instances", { version: "3815.2.0", status: "complete" })).toBe(2)
      expect(valueOf(families, "fleet_instances", { version: "other" })).toBe(3)
    }))

  it.effect("count update checks by answer, and grants, completions, failures and rollouts per group", () =>
    Effect.gen(function*() {
      yield* seed
      const metrics = yield* Metrics.make({ processMetrics: false })
      const answers: Array<Update | NoUpdate | UpdateRefused> = [
        update,
        new NoUpdate({ reason: "3815.2.1 is not older than 3815.2.1" }),
        new NoUpdate({ reason: "on hold: 5 of 5 updates in the last 1 h" }),
        new NoUpdate({ reason: "on hold: 5 of 5 updates in the last 1 h" }),
        new UpdateRefused({ status: "error-internal" })
      ]
      let next = 0
      const stub: UpdaterService = {
        checkApp: () => Effect.void,
        checkUpdate: () => {
          const answer = answers[next++]!
          return answer._tag === "UpdateRefused" ? Effect.fail(answer) : Effect.succeed(answer)
        },
        event: () => Effect.void,
        ping: () => Effect.void
      }
      const updater = metrics.instrumentUpdater(stub)
      for (let i = 0; i < answers.length; i++) yield* Effect.either(updater.checkUpdate(request, appRequest, { address: undefined }))
      const base = { appId: app, group: "production", version: "3815.2.1", at: 0 }
      for (
        const event of [
          FleetEvent.RolloutStarted(base),
          FleetEvent.Granted({ ...base, machineId: "m1" }),
          FleetEvent.Granted({ ...base, machineId: "m2" }),
          FleetEvent.Completed({ ...base, machineId: "m1" }),
          FleetEvent.Failed({ ...base, machineId: "m2", errorCode: 44, rollback: true }),
          FleetEvent.Failed({ ...base, machineId: "m3", errorCode: 123456, rollback: false }),
          FleetEvent.RolloutBraked({ ...base, reason: "failure brake" }),
          FleetEvent.RolloutFinished(base)
        ]
      ) yield* metrics.listener(event)
      metrics.observeWebhook("delivered")
      metrics.observeWebhook("dropped")
      metrics.observeOmaha(200, 0.003)
      metrics.observeApi("get", "/api/apps/x/groups/production", 200, 0.02)

      const f = parse(yield* metrics.scrape)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "update", reason: "" })).toBe(1)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "noupdate", reason: "up_to_date" })).toBe(1)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "hold", reason: "period_limit" })).toBe(2)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "error" })).toBe(1)
      const g = { app, group: "production" }
      expect(valueOf(f, "fleet_grants_total", g)).toBe(2)
      expect(valueOf(f, "fleet_updates_completed_total", g)).toBe(1)
      expect(valueOf(f, "fleet_updates_failed_total", { ...g, error_code: "44" })).toBe(1)
      expect(valueOf(f, "fleet_updates_failed_total", { ...g, error_code: "other" })).toBe(1)
      expect(valueOf(f, "fleet_rollouts_started_total", g)).toBe(1)
      expect(valueOf(f, "fleet_rollouts_finished_total", g)).toBe(1)
      expect(valueOf(f, "fleet_rollouts_braked_total", g)).toBe(1)
      expect(valueOf(f, "fleet_webhook_deliveries_total", { outcome: "delivered" })).toBe(1)
      expect(valueOf(f, "fleet_omaha_request_duration_seconds_count", { status: "200" })).toBe(1)
      expect(valueOf(f, "fleet_omaha_request_duration_seconds_bucket", { status: "200", le: "0.0025" })).toBe(0)
      expect(valueOf(f, "fleet_omaha_request_duration_seconds_bucket", { status: "200", le: "0.005" })).toBe(1)
      expect(valueOf(f, "fleet_api_request_duration_seconds_count", {
        method: "GET",
        route: "/api/apps/{app}/groups/{name}",
        status: "200"
      })).toBe(1)
      for (const name of Object.values(Metrics.names)) expect(f.get(name)?.type, name).toMatch(/^(counter|gauge|histogram)$/)

      // The README's table of metrics is what a scrape has: every fleet_ family, its type and its labels.
      const readme = Fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8")
      const section = readme.slice(readme.indexOf("### Metrics"), readme.indexOf("### Webhooks"))
      const documented = new Map<string, { type: string; labels: Array<string> }>()
      for (const row of section.split("\n").filter((line) => line.startsWith("| `fleet_"))) {
        const [, names = "", type = "", labels = ""] = row.split("|").map((cell) => cell.trim())
        const quoted = (cell: string) => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)
        for (const name of quoted(names)) documented.set(name, { type, labels: quoted(labels) })
      }
      const scraped = [...f.values()].filter((family) => family.name.startsWith("fleet_"))
      expect(scraped.map((family) => family.name).sort()).toEqual([...documented.keys()].sort())
      for (const family of scraped) {
        const doc = documented.get(family.name)!
        expect(family.type, family.name).toBe(doc.type)
        for (const sample of family.samples) {
          const labels = Object.keys(sample.labels).filter((label) => label !== "le")
          expect(labels.sort(), sample.name).toEqual([...doc.labels].sort())
        }
      }
    }))

  it.effect("time every SQL statement by its operation, through the tracer", () =>
    Effect.gen(function*() {
      yield* seed
      const metrics = yield* Metrics.make({ processMetrics: false })
      const sql = yield* SqlClient.SqlClient
      const work = Effect.gen(function*() {
        yield* sql`SELECT 1`
        yield* sql`SELECT 2`
        yield* sql`UPDATE instances SET alias = 'x' WHERE id = 'm1'`
      })
      yield* work.pipe(Effect.provide(Metrics.layerStatementTimer.pipe(Layer.provide(Layer.succeed(Metrics.Metrics, metrics)))))
      const f = parse(yield* metrics.scrape)
      // The scrape's own query is timed too when it runs under the tracer; here it does not.
      expect(valueOf(f, "fleet_store_statement_duration_seconds_count", { operation: "select" })).toBe(2)
      expect(valueOf(f, "fleet_store_statement_duration_seconds_count", { operation: "update" })).toBe(1)
    }))

  it.effect("serve node's process metrics beside the fleet's", () =>
    Effect.gen(function*() {
      yield* seed
      const metrics = yield* Metrics.make()
      const f = parse(yield* metrics.scrape)
      expect(valueOf(f, "process_resident_memory_bytes")).toBeGreaterThan(0)
    }))
})
