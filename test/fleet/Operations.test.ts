/**
 * The fleet server's operations end to end on loopback: webhooks told of a
 * rollout by the rollout engine (started, finished, failures, the brake),
 * /metrics after known traffic, update checks that a hanging or dead webhook
 * receiver does not hold up, and deleting a machine.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as AppClient from "../../src/client/AppClient.js"
import * as OmahaClient from "../../src/client/OmahaClient.js"
import * as Webhooks from "../../src/fleet/Webhooks.js"
import { EventRequest } from "../../src/protocol/Request.js"
import { parse, valueOf } from "./exposition.js"
import { api, appPath, type Fleet, startFleet } from "./operations.js"
import { deadUrl, eventually, receiver } from "./receiver.js"

const app = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const secret = "the receiver's shared secret"
const sha1 = Buffer.alloc(20, 7).toString("base64")
const sha256 = Buffer.alloc(32, 9).toString("base64")

// An application, an external package 2.0.0 on channel stable, and a group that lets everyone through.
const setUp = (fleet: Fleet, policy: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    expect((yield* api(fleet, "POST", "/api/apps", { id: app, name: "Flatcar" })).status).toBe(201)
    const pkg = { version: "2.0.0", arch: "amd64", name: "update.gz", url: "http://127.0.0.1:9/p/update.gz", size: 100, sha1, sha256 }
    expect((yield* api(fleet, "POST", `${appPath(app)}/packages`, pkg)).status).toBe(201)
    expect((yield* api(fleet, "POST", `${appPath(app)}/channels`, { name: "stable", arch: "amd64", package: "2.0.0" })).status).toBe(201)
    const group = { name: "production", track: "stable", channel: "stable", policy: { safeMode: false, maxUpdatesPerPeriod: 100, ...policy } }
    expect((yield* api(fleet, "POST", `${appPath(app)}/groups`, group)).status).toBe(201)
    // The engine reads the configuration within a second of a change.
    yield* Effect.sleep("1200 millis")
  })

// A machine speaking through the project's own Omaha client.
const machine = (fleet: Fleet, id: string) =>
  Effect.gen(function*() {
    const omaha = yield* OmahaClient.make({ serverUrl: `${fleet.base}/v1/update/`, userId: id, retry: { tries: 1 } })
    return yield* AppClient.make({ appId: app, version: "1.0.0", track: "stable", board: "amd64-usr" }).pipe(
      Effect.provideService(OmahaClient.OmahaClient, omaha)
    )
  })

const event = (type: number, result: number, errorCode?: number) =>
  new EventRequest({ eventType: type, eventResult: result, ...(errorCode === undefined ? {} : { errorCode }) })

// Downloads, installs, reboots into 2.0.0 and says so (3/2 with its next check).
const update = (client: AppClient.AppClientService) =>
  Effect.gen(function*() {
    for (const e of [event(13, 1), event(14, 1), event(3, 1)]) yield* Effect.flatten(client.event(e))
    yield* client.setVersion("2.0.0")
    return yield* client.updateCheck()
  })

const live = <A, E>(effect: Effect.Effect<A, E, import("effect/Scope").Scope | import("@effect/platform").HttpClient.HttpClient>) =>
  Effect.scoped(effect).pipe(Effect.provide(NodeHttpClient.layer))

describe("fleet-server operations", () => {
  it.live("a webhook receiver gets the rollout started and finished, signed", () =>
    live(Effect.gen(function*() {
      const fleet = yield* startFleet()
      const hook = yield* receiver()
      yield* setUp(fleet)
      const created = yield* api(fleet, "POST", "/api/webhooks", {
        url: hook.url,
        secret,
        kinds: ["rolloutStarted", "rolloutFinished", "instanceFailed"],
        appId: app
      })
      expect(created.status).toBe(201)
      expect(created.text).not.toContain(secret)
      // Webhooks are an admin's, reads included.
      expect((yield* api(fleet, "GET", "/api/webhooks", undefined, fleet.viewer)).status).toBe(403)
      const listed = yield* api(fleet, "GET", "/api/webhooks")
      expect(listed.json).toEqual([expect.objectContaining({ id: created.json.id, url: hook.url, appId: app })])
      expect(listed.text).not.toContain(secret)
      const id = created.json.id
      const patched = yield* api(fleet, "PATCH", `/api/webhooks/${id}`, { description: "ops channel" })
      expect(patched.json).toMatchObject({ id, description: "ops channel", kinds: ["rolloutStarted", "rolloutFinished", "instanceFailed"] })
      expect((yield* api(fleet, "GET", `/api/webhooks/${id}`)).json.description).toBe("ops channel")
      expect((yield* api(fleet, "GET", `/api/webhooks/${id + 100}`)).status).toBe(404)
      expect((yield* api(fleet, "PATCH", `/api/webhooks/${id}`, { appId: "nope" })).status).toBe(422)
      expect((yield* api(fleet, "PATCH", `/api/webhooks/${id}`, { unknown: 1 })).status).toBe(400)
      const other = yield* api(fleet, "POST", "/api/webhooks", { url: hook.url, secret, kinds: ["rolloutBraked"] })
      expect((yield* api(fleet, "DELETE", `/api/webhooks/${other.json.id}`, undefined, fleet.viewer)).status).toBe(403)
      expect((yield* api(fleet, "DELETE", `/api/webhooks/${other.json.id}`)).status).toBe(204)
      expect((yield* api(fleet, "GET", "/api/webhooks")).json).toHaveLength(1)
      expect((yield* api(fleet, "POST", "/api/webhooks", { url: hook.url, secret: "short", kinds: ["rolloutStarted"] })).status).toBe(400)
      expect((yield* api(fleet, "POST", "/api/webhooks", { url: "gopher://x", secret, kinds: ["rolloutStarted"] })).status).toBe(400)

      const m1 = yield* machine(fleet, "m1")
      const m2 = yield* machine(fleet, "m2")
      expect((yield* m1.updateCheck())._tag).toBe("UpdateAvailable")
      expect((yield* m2.updateCheck())._tag).toBe("UpdateAvailable")
      yield* eventually(() => hook.received.length === 1)
      expect((yield* update(m1))._tag).toBe("NoUpdate")
      // m2 is still on 1.0.0: not finished yet.
      yield* Effect.sleep("300 millis")
      expect(hook.received).toHaveLength(1)
      expect((yield* update(m2))._tag).toBe("NoUpdate")
      yield* eventually(() => hook.received.length === 2)

      const bodies = hook.received.map((r) => JSON.parse(r.body))
      expect(bodies.map((b) => [b.kind, b.group, b.version, b.appId])).toEqual([
        ["rolloutStarted", "production", "2.0.0", app],
        ["rolloutFinished", "production", "2.0.0", app]
      ])
      for (const r of hook.received) expect(Webhooks.verify(secret, r.body, r.headers[Webhooks.signatureHeader] as string)).toBe(true)
      // The activity feed says the same.
      const activity = yield* api(fleet, "GET", "/api/activity")
      expect(activity.json.map((a: { kind: string }) => a.kind)).toEqual(expect.arrayContaining(["rolloutStarted", "rolloutFinished"]))
      // Finished once, however many more machines complete.
      expect((yield* fleet.sql`SELECT count(*)::int AS n FROM activity WHERE kind = 'rolloutFinished'`)[0]).toEqual({ n: 1 })
    })), 30_000)

  it.live("/metrics shows the documented counts after known traffic, with a viewer token", () =>
    live(Effect.gen(function*() {
      const fleet = yield* startFleet()
      yield* setUp(fleet, { maxUpdatesPerPeriod: 2 })
      const clients = yield* Effect.forEach(["m1", "m2", "m3"], (id) => machine(fleet, id))
      for (const client of clients) yield* client.updateCheck()
      yield* update(clients[0]!)
      yield* Effect.flatten(clients[1]!.event(event(3, 0, 7)))

      expect((yield* api(fleet, "GET", "/metrics", undefined, "")).status).toBe(401)
      const scraped = yield* api(fleet, "GET", "/metrics", undefined, fleet.viewer)
      expect(scraped.status).toBe(200)
      expect(scraped.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
      const f = parse(scraped.text)
      const g = { app, group: "production" }
      expect(valueOf(f, "fleet_grants_total", g)).toBe(2)
      expect(valueOf(f, "fleet_updates_completed_total", g)).toBe(1)
      expect(valueOf(f, "fleet_updates_failed_total", { ...g, error_code: "7" })).toBe(1)
      expect(valueOf(f, "fleet_rollouts_started_total", g)).toBe(1)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "update" })).toBe(2)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "hold", reason: "period_limit" })).toBe(1)
      expect(valueOf(f, "fleet_update_checks_total", { app, answer: "noupdate", reason: "up_to_date" })).toBe(1)
      const on = { app, group: "production", channel: "stable" }
      expect(valueOf(f, "fleet_instances", { ...on, version: "2.0.0", status: "complete" })).toBe(1)
      expect(valueOf(f, "fleet_instances", { ...on, version: "1.0.0", status: "error" })).toBe(1)
      expect(valueOf(f, "fleet_instances", { ...on, version: "1.0.0", status: "onHold" })).toBe(1)
      // Four update checks and four events, each its own request.
      expect(valueOf(f, "fleet_omaha_request_duration_seconds_count", { status: "200" })).toBe(8)
      expect(valueOf(f, "fleet_api_request_duration_seconds_count", { method: "POST", route: "/api/apps/{app}/groups", status: "201" }))
        .toBe(1)
      expect(valueOf(f, "fleet_store_statement_duration_seconds_count", { operation: "select" })).toBeGreaterThan(0)

      const open = yield* startFleet({ metricsOpen: true })
      expect((yield* api(open, "GET", "/metrics", undefined, "")).status).toBe(200)
    })), 30_000)

  it.live("update checks and events take as long with a receiver that hangs or is down as with a healthy one", () =>
    live(Effect.gen(function*() {
      // Each attempt waits up to 6 s and a failed one is tried again 6 s later: a check that waited for a
      // delivery would take 6 s or more with either receiver, 18 s with the hanging one.
      const timeout = 6000
      const fleet = yield* startFleet({ operations: { webhooks: { timeout: `${timeout} millis`, maxAttempts: 2, baseDelay: `${timeout} millis` } } })
      yield* setUp(fleet)
      const healthy = yield* receiver()
      const hanging = yield* receiver({ hang: true })
      const down = yield* deadUrl
      const hook = yield* api(fleet, "POST", "/api/webhooks", { url: healthy.url, secret, kinds: ["rolloutStarted", "instanceFailed"] })
      expect(hook.status).toBe(201)
      // Machines granted, then failing: the first grant starts the rollout, each failure is a delivery.
      let machines = 0
      const phase = (url: string) =>
        Effect.gen(function*() {
          expect((yield* api(fleet, "PATCH", `/api/webhooks/${hook.json.id}`, { url })).status).toBe(200)
          const latencies: Array<number> = []
          const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
            Effect.flatMap(Effect.sync(() => performance.now()), (start) =>
              Effect.tap(effect, () => Effect.sync(() => latencies.push(performance.now() - start))))
          for (let i = 0; i < 4; i++) {
            const client = yield* machine(fleet, `m${machines++}`)
            expect((yield* timed(client.updateCheck()))._tag).toBe("UpdateAvailable")
            yield* timed(Effect.flatten(client.event(event(3, 0, 9))))
          }
          return latencies
        })
      // The first requests of a process are slower: a round before the one measured.
      yield* phase(healthy.url)
      const withHealthy = yield* phase(healthy.url)
      yield* eventually(() => healthy.received.length === 9)
      const withHanging = yield* phase(hanging.url)
      const withDown = yield* phase(down)
      const max = (xs: ReadonlyArray<number>) => Math.max(...xs)
      const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
      const figures = { healthy: withHealthy, hanging: withHanging, down: withDown }
      const report = JSON.stringify(Object.fromEntries(
        Object.entries(figures).map(([k, xs]) => [k, { median: Math.round(median(xs)), max: Math.round(max(xs)) }])
      ))
      // Relative to the healthy receiver's slowest request, with half a delivery attempt of slack.
      expect(max(withHanging), report).toBeLessThan(max(withHealthy) + timeout / 2)
      expect(max(withDown), report).toBeLessThan(max(withHealthy) + timeout / 2)
      // The hanging receiver got its deliveries and has answered none of them; the healthy one heard only its own.
      expect(hanging.open()).toBeGreaterThan(0)
      expect(healthy.received).toHaveLength(9)
    })), 120_000)

  it.live("a webhook hears a machine's failure with its error code, and the failure brake pausing the rollout", () =>
    live(Effect.gen(function*() {
      const fleet = yield* startFleet()
      yield* setUp(fleet, { failureBrake: { ratio: 0.5, minAttempts: 2 } })
      const hook = yield* receiver()
      const kinds = ["rolloutStarted", "rolloutBraked", "instanceFailed"]
      expect((yield* api(fleet, "POST", "/api/webhooks", { url: hook.url, secret, kinds, appId: app })).status).toBe(201)
      const m1 = yield* machine(fleet, "m1")
      const m2 = yield* machine(fleet, "m2")
      const m3 = yield* machine(fleet, "m3")
      for (const m of [m1, m2]) expect((yield* m.updateCheck())._tag).toBe("UpdateAvailable")
      yield* Effect.flatten(m1.event(event(3, 0, 44)))
      yield* Effect.flatten(m2.event(event(3, 0, 7)))
      // Two of two finished attempts failed: the group is paused, and m3 is held.
      expect((yield* m3.updateCheck())._tag).toBe("NoUpdate")
      yield* eventually(() => hook.received.length === 4)
      // Deliveries go out a few at a time, so they may arrive in any order.
      const bodies = hook.received.map((r) => JSON.parse(r.body))
      expect(bodies.map((b) => [b.kind, b.machineId, b.errorCode, b.rollback]).sort()).toEqual([
        ["instanceFailed", "m1", 44, true],
        ["instanceFailed", "m2", 7, false],
        ["rolloutBraked", undefined, undefined, undefined],
        ["rolloutStarted", undefined, undefined, undefined]
      ])
      const braked = bodies.find((b) => b.kind === "rolloutBraked")
      expect(braked).toMatchObject({ group: "production", version: "2.0.0", appId: app })
      expect(braked.reason).toMatch(/failure brake/)
      expect(braked.message).toBe(`production: ${braked.reason}; rollout paused`)
      for (const r of hook.received) {
        expect(Webhooks.verify(secret, r.body, r.headers[Webhooks.signatureHeader] as string)).toBe(true)
        expect(r.headers[Webhooks.eventHeader]).toBe(JSON.parse(r.body).kind)
      }
      // What the receiver was told is what the API says of the group.
      const group = yield* api(fleet, "GET", `${appPath(app)}/groups/production`)
      expect(group.json.paused).toBe(true)
    })), 30_000)

  it.live("DELETE /api/apps/{app}/instances/{machineId} removes the machine and its history at once", () =>
    live(Effect.gen(function*() {
      const fleet = yield* startFleet()
      yield* setUp(fleet)
      const client = yield* machine(fleet, "gone")
      yield* client.updateCheck()
      yield* Effect.flatten(client.event(event(13, 1)))
      const count = (table: string) =>
        Effect.map(fleet.sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE instance_id = 'gone'`), (r) => r[0]!.n)
      expect(yield* count("events")).toBeGreaterThan(0)
      expect((yield* api(fleet, "DELETE", `${appPath(app)}/instances/gone`, undefined, fleet.viewer)).status).toBe(403)
      expect((yield* api(fleet, "DELETE", `${appPath(app)}/instances/gone`)).status).toBe(204)
      for (const table of ["instance_apps", "instance_status_history", "events"]) expect(yield* count(table), table).toBe(0)
      expect((yield* fleet.sql`SELECT count(*)::int AS n FROM instances WHERE id = 'gone'`)[0]).toEqual({ n: 0 })
      expect((yield* api(fleet, "DELETE", `${appPath(app)}/instances/gone`)).status).toBe(404)
    })), 30_000)
})
