/**
 * The reads the dashboard (and `fleet-server rollout status`) stand on,
 * over real HTTP: a group's rollout status, its timeline rebuilt from the
 * status history, the caller's session, and the instance list's search and
 * sort; each checked against rows written straight into the database.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { app, client, type Fleet, FleetServer, layer as fleetLayer } from "./fleetServer.js"

const minute = 60_000

interface Seeded {
  readonly id: string
  readonly alias?: string
  readonly ip?: string
  readonly group: string | null
  readonly version: string
  readonly status: string
  readonly hold?: string
  readonly errorCode?: number
  readonly createdAt: Date
}

const seedInstance = (fleet: Fleet, appId: string, m: Seeded) =>
  Effect.gen(function*() {
    yield* fleet.sql`INSERT INTO instances (id, alias, ip, created_at, last_seen)
      VALUES (${`${appId}/${m.id}`}, ${m.alias ?? ""}, ${m.ip ?? "192.0.2.1"}, ${m.createdAt}, ${m.createdAt})`
    yield* fleet.sql`INSERT INTO instance_apps (instance_id, app_id, group_id, track, arch, version, status, hold, error_code, last_check)
      VALUES (${`${appId}/${m.id}`}, ${appId}, ${m.group}::uuid, 'canary', 'amd64', ${m.version}, ${m.status}, ${m.hold ?? null},
        ${m.errorCode ?? null}, ${m.createdAt})`
  })

const change = (fleet: Fleet, appId: string, group: string, id: string, status: string, version: string, at: Date, errorCode?: number) =>
  fleet.sql`INSERT INTO instance_status_history (instance_id, app_id, group_id, status, version, error_code, created_at)
    VALUES (${`${appId}/${id}`}, ${appId}, ${group}::uuid, ${status}, ${version}, ${errorCode ?? null}, ${at})`

const setUp = (fleet: Fleet, appId: string) =>
  Effect.gen(function*() {
    const admin = client(fleet, fleet.admin)
    yield* admin.post("/api/apps", { id: appId, name: "Progress" })
    yield* admin.post(`${app(appId)}/channels`, { name: "stable", arch: "amd64" })
    const canary = (yield* admin.post(`${app(appId)}/groups`, { name: "canary", channel: "stable" })).json.id as string
    const prod = (yield* admin.post(`${app(appId)}/groups`, { name: "prod", channel: "stable" })).json.id as string
    return { canary, prod }
  })

const suite = layer(fleetLayer(), { timeout: 60_000 })

suite("rollout status API", (it) => {
  it.effect("a group's status: machines by status and by version, newest first; holds and error codes by count", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const appId = "{progress-status}"
      const { canary, prod } = yield* setUp(fleet, appId)
      const at = new Date()
      const held = "on hold: 5 of 5 updates in the last 1 h"
      const rows: Array<Omit<Seeded, "createdAt">> = [
        { id: "a", group: canary, version: "3815.10.0", status: "complete" },
        { id: "b", group: canary, version: "3815.10.0", status: "complete" },
        { id: "c", group: canary, version: "3815.2.0", status: "onHold", hold: held },
        { id: "d", group: canary, version: "3815.2.0", status: "onHold", hold: held },
        { id: "e", group: canary, version: "3815.2.0", status: "onHold", hold: "on hold: outside the maintenance windows" },
        { id: "f", group: canary, version: "3815.2.0", status: "error", errorCode: 10 },
        { id: "g", group: canary, version: "3815.2.0", status: "downloading" },
        { id: "h", group: prod, version: "3815.2.0", status: "error", errorCode: 44 },
        { id: "i", group: null, version: "3815.2.0", status: "undefined" }
      ]
      for (const row of rows) yield* seedInstance(fleet, appId, { ...row, createdAt: at })

      const answer = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/canary/status`)
      expect(answer.status).toBe(200)
      const zero = { undefined: 0, granted: 0, downloading: 0, downloaded: 0, installed: 0, complete: 0, error: 0, onHold: 0 }
      expect(answer.json).toEqual({
        appId,
        group: "canary",
        total: 7,
        statuses: { ...zero, complete: 2, onHold: 3, error: 1, downloading: 1 },
        versions: [
          { version: "3815.10.0", count: 2, statuses: { ...zero, complete: 2 } },
          { version: "3815.2.0", count: 5, statuses: { ...zero, onHold: 3, error: 1, downloading: 1 } }
        ],
        holds: [{ reason: held, count: 2 }, { reason: "on hold: outside the maintenance windows", count: 1 }],
        errors: [{ code: 10, count: 1 }],
        at: answer.json.at
      })
      expect(Math.abs(Date.parse(answer.json.at) - Date.now())).toBeLessThan(10_000)

      const empty = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/prod/status`)
      expect(empty.json).toMatchObject({ total: 1, errors: [{ code: 44, count: 1 }], holds: [] })
      const missing = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/nope/status`)
      expect(missing.status).toBe(404)
      expect(missing.json).toEqual({ error: "NotFound", message: `no group "nope" of "${appId}"` })
      const noApp = yield* client(fleet, fleet.viewer).get(`${app("{nothing}")}/groups/canary/status`)
      expect(noApp.json).toEqual({ error: "NotFound", message: "no application \"{nothing}\"" })
      expect((yield* client(fleet, undefined).get(`${app(appId)}/groups/canary/status`)).status).toBe(401)
    }))

  it.effect("a group's timeline, rebuilt from the status history, ends with the group as it stands", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const appId = "{progress-timeline}"
      const { canary, prod } = yield* setUp(fleet, appId)
      const now = Date.now()
      const ago = (minutes: number) => new Date(now - minutes * minute)
      // a: updated from 1.0.0 to 2.0.0 half an hour ago, saying so in its 3/2 event.
      yield* seedInstance(fleet, appId, { id: "a", group: canary, version: "2.0.0", status: "complete", createdAt: ago(50.5) })
      yield* change(fleet, appId, canary, "a", "granted", "2.0.0", ago(40.5))
      yield* change(fleet, appId, canary, "a", "downloading", "2.0.0", ago(39.5))
      yield* change(fleet, appId, canary, "a", "installed", "2.0.0", ago(38.5))
      yield* change(fleet, appId, canary, "a", "complete", "2.0.0", ago(30.5))
      yield* fleet.sql`INSERT INTO events (instance_id, app_id, event_type, event_result, previous_version, created_at)
        VALUES (${`${appId}/a`}, ${appId}, 3, 2, '1.0.0', ${ago(30.5)})`
      // b: never changed status; on hold now.
      yield* seedInstance(fleet, appId, {
        id: "b",
        group: canary,
        version: "1.0.0",
        status: "onHold",
        hold: "on hold: the rollout is paused",
        createdAt: ago(50.5)
      })
      // c: first seen twenty minutes ago, failed ten minutes ago.
      yield* seedInstance(fleet, appId, { id: "c", group: canary, version: "1.0.0", status: "error", errorCode: 10, createdAt: ago(20.5) })
      yield* change(fleet, appId, canary, "c", "error", "2.0.0", ago(10.5), 10)
      // e: updated to 2.0.0 three hours ago, before the window; to 3.0.0 inside it.
      yield* seedInstance(fleet, appId, { id: "e", group: canary, version: "3.0.0", status: "complete", createdAt: ago(300) })
      yield* change(fleet, appId, canary, "e", "complete", "2.0.0", ago(180))
      yield* change(fleet, appId, canary, "e", "granted", "3.0.0", ago(20.5))
      yield* change(fleet, appId, canary, "e", "complete", "3.0.0", ago(10.5))
      // f: downloading since before the window, complete inside it, with no 3/2 event to say what it ran before.
      yield* seedInstance(fleet, appId, { id: "f", group: canary, version: "2.0.0", status: "complete", createdAt: ago(300) })
      yield* change(fleet, appId, canary, "f", "downloading", "2.0.0", ago(120))
      yield* change(fleet, appId, canary, "f", "complete", "2.0.0", ago(25.5))
      // d: another group's.
      yield* seedInstance(fleet, appId, { id: "d", group: prod, version: "2.0.0", status: "complete", createdAt: ago(50.5) })
      yield* change(fleet, appId, prod, "d", "complete", "2.0.0", ago(45.5))

      const answer = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/canary/timeline?window=1h`)
      expect(answer.status).toBe(200)
      const { points, ...rest } = answer.json as {
        points: Array<{ at: string; statuses: Record<string, number>; versions: Record<string, number> }>
      }
      expect(rest).toEqual({ appId, group: "canary", window: "1h", stepSeconds: 60 })
      expect(points.length).toBe(61)
      const end = Date.parse(points[60]!.at)
      expect(Math.abs(end - now)).toBeLessThan(20_000)
      points.forEach((p, k) => expect(Date.parse(p.at)).toBe(end - (60 - k) * minute))
      // One point per minute: k minutes before the end is points[60 - k].
      const at = (minutesAgo: number) => points[60 - minutesAgo]!
      const counts = (minutesAgo: number) => ({ statuses: at(minutesAgo).statuses, versions: at(minutesAgo).versions })
      expect(counts(55)).toEqual({ statuses: { complete: 1, downloading: 1 }, versions: { "2.0.0": 1, "": 1 } })
      expect(counts(45)).toEqual({
        statuses: { undefined: 2, complete: 1, downloading: 1 },
        versions: { "1.0.0": 2, "2.0.0": 1, "": 1 }
      })
      expect(counts(35)).toEqual({
        statuses: { installed: 1, undefined: 1, complete: 1, downloading: 1 },
        versions: { "1.0.0": 2, "2.0.0": 1, "": 1 }
      })
      expect(counts(25)).toEqual({ statuses: { complete: 3, undefined: 1 }, versions: { "2.0.0": 3, "1.0.0": 1 } })
      expect(counts(15)).toEqual({ statuses: { complete: 2, undefined: 2, granted: 1 }, versions: { "2.0.0": 3, "1.0.0": 2 } })
      expect(counts(5)).toEqual({
        statuses: { complete: 3, undefined: 1, error: 1 },
        versions: { "2.0.0": 2, "1.0.0": 2, "3.0.0": 1 }
      })
      expect(counts(0)).toEqual({
        statuses: { complete: 3, onHold: 1, error: 1 },
        versions: { "2.0.0": 2, "1.0.0": 2, "3.0.0": 1 }
      })

      const day = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/canary/timeline`)
      expect(day.json).toMatchObject({ window: "1d", stepSeconds: 900 })
      expect(day.json.points.length).toBe(97)
      for (const [window, step, count] of [["7d", 7200, 85], ["30d", 21600, 121]] as const) {
        const answer = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/canary/timeline?window=${window}`)
        expect(answer.json).toMatchObject({ window, stepSeconds: step })
        expect(answer.json.points.length).toBe(count)
      }
      const bad = yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/canary/timeline?window=2h`)
      expect(bad.status).toBe(400)
      expect(bad.json.error).toBe("InvalidRequest")
      expect((yield* client(fleet, fleet.viewer).get(`${app(appId)}/groups/nope/timeline`)).status).toBe(404)
    }))

  it.effect("the session names the caller's role; without a token it is 401", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const admin = yield* client(fleet, fleet.admin).get("/api/session")
      expect(admin.status).toBe(200)
      expect(admin.json).toMatchObject({ role: "admin", name: "test admin" })
      expect(Object.keys(admin.json).sort()).toEqual(["createdAt", "id", "lastUsed", "name", "role"])
      expect((yield* client(fleet, fleet.viewer).get("/api/session")).json).toMatchObject({ role: "viewer", name: "test viewer" })
      const none = yield* client(fleet, undefined).get("/api/session")
      expect(none.status).toBe(401)
      expect(none.json.error).toBe("Unauthorized")
    }))

  it.effect("the instance list searches ids, aliases and addresses, and sorts by a column (versions by their numbers)", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const appId = "{progress-instances}"
      const { canary } = yield* setUp(fleet, appId)
      const at = new Date()
      const machines = [
        { id: "m-1", alias: "web-1", ip: "198.51.100.1", version: "3815.2.0" },
        { id: "m-2", alias: "web-10", ip: "198.51.100.2", version: "3815.10.0" },
        { id: "m-3", alias: "db_1", ip: "203.0.113.9", version: "3815.9.1" },
        { id: "m-4", alias: "DB-2", ip: "203.0.113.10", version: "3760.2.0" }
      ]
      for (const m of machines) yield* seedInstance(fleet, appId, { ...m, group: canary, status: "complete", createdAt: at })
      const list = (query: string) =>
        Effect.map(
          client(fleet, fleet.viewer).get(`${app(appId)}/instances?${query}`),
          (a) => ({
            total: a.json.total,
            ids: (a.json.items ?? []).map((i: { machineId: string }) => i.machineId.slice(appId.length + 1))
          })
        )
      expect(yield* list("search=web-1&sort=machineId")).toEqual({ total: 2, ids: ["m-1", "m-2"] })
      expect(yield* list("search=db&sort=machineId")).toEqual({ total: 2, ids: ["m-3", "m-4"] })
      expect(yield* list("search=203.0.113.1")).toEqual({ total: 1, ids: ["m-4"] })
      expect(yield* list(`search=${encodeURIComponent("/M-3")}`)).toEqual({ total: 1, ids: ["m-3"] })
      // LIKE's wildcards are taken as themselves.
      expect(yield* list("search=db_")).toEqual({ total: 1, ids: ["m-3"] })
      expect(yield* list("search=%25")).toEqual({ total: 0, ids: [] })
      expect(yield* list("sort=version")).toEqual({ total: 4, ids: ["m-4", "m-1", "m-3", "m-2"] })
      expect(yield* list("sort=version&order=desc")).toEqual({ total: 4, ids: ["m-2", "m-3", "m-1", "m-4"] })
      expect(yield* list("search=web&sort=alias&order=desc")).toEqual({ total: 2, ids: ["m-2", "m-1"] })
      expect(yield* list("sort=version&perPage=3&page=2")).toEqual({ total: 4, ids: ["m-2"] })
      const bad = yield* client(fleet, fleet.viewer).get(`${app(appId)}/instances?sort=colour`)
      expect(bad.status).toBe(400)
    }))

  it.effect("the OpenAPI document lists the progress endpoints and the session", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const doc = (yield* client(fleet, undefined).get("/api/openapi.json")).json
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
        "/api/apps/{app}/groups/{name}/status",
        "/api/apps/{app}/groups/{name}/timeline",
        "/api/session"
      ]))
      const timeline = doc.paths["/api/apps/{app}/groups/{name}/timeline"].get
      expect(timeline.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["app", "name", "window"]))
      const instances = doc.paths["/api/apps/{app}/instances"].get
      expect(instances.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(["search", "sort", "order"]))
    }))
})
