/**
 * The admin API over real HTTP on 127.0.0.1: every path of the contract,
 * both roles, the OpenAPI document, and hostile input (bad tokens, bad
 * JSON, unknown fields, oversized bodies, uploads over the limit or cut
 * off midway), checked on the wire, in the database and on disk.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Path from "node:path"
import { app, client, type Fleet, FleetServer, layer as fleetLayer, request } from "./fleetServer.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const maxUploadBytes = 1024 * 1024

const digests = (bytes: Buffer) => ({
  size: bytes.length,
  sha1: Crypto.createHash("sha1").update(bytes).digest("base64"),
  sha256: Crypto.createHash("sha256").update(bytes).digest("base64")
})

const upload = (fleet: Fleet, appId: string, version: string, bytes: Buffer, query = "arch=amd64&name=update.gz") =>
  Effect.promise(() =>
    request(fleet.base, "PUT", `${app(appId)}/packages/${version}?${query}`, {
      token: fleet.admin,
      body: bytes,
      headers: { "content-type": "application/octet-stream" }
    })
  )

/** Files in the payload directory (hosted payloads and temporary uploads). */
const payloadFiles = (fleet: Fleet) => (Fs.existsSync(fleet.payloadDirectory) ? Fs.readdirSync(fleet.payloadDirectory).sort() : [])

const waitUntil = (check: () => boolean, timeoutMs = 5000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!check()) {
      if (Date.now() > deadline) throw new Error("timed out")
      await new Promise((r) => setTimeout(r, 25))
    }
  })

/** Streams a chunked body; resolves with the answer, whatever happens to the rest of the body. */
const streamUpload = (fleet: Fleet, path: string, chunk: Buffer, chunks: number) =>
  Effect.promise(() =>
    new Promise<{ status: number; headers: Http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      const req = Http.request(new URL(path, fleet.base), {
        method: "PUT",
        headers: { authorization: `Bearer ${fleet.admin}`, "content-type": "application/octet-stream" },
        agent: false
      })
      let answered = false
      req.on("response", (res) => {
        answered = true
        const parts: Array<Buffer> = []
        res.on("data", (c: Buffer) => parts.push(c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString() }))
        res.on("error", () => {})
      })
      req.on("error", (e) => (answered ? undefined : reject(e)))
      let sent = 0
      const pump = () => {
        while (sent < chunks && !answered) {
          sent++
          if (!req.write(chunk)) return req.once("drain", pump)
        }
        if (!answered) req.end()
      }
      pump()
    })
  )

const suite = layer(fleetLayer({ maxUploadBytes, maxBodyBytes: 64 * 1024 }), { timeout: 60_000 })

suite("admin API", (it) => {
  it.effect("/health and /api/openapi.json need no token; the document lists the contract", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const health = yield* Effect.promise(() => request(fleet.base, "GET", "/health"))
      expect(health.status).toBe(200)
      expect(health.json).toEqual({ status: "ok" })
      const doc = yield* Effect.promise(() => request(fleet.base, "GET", "/api/openapi.json"))
      expect(doc.status).toBe(200)
      expect(doc.headers["content-type"]).toContain("application/json")
      expect(doc.json.openapi).toMatch(/^3\./)
      const paths = doc.json.paths as Record<string, Record<string, unknown>>
      expect(Object.keys(paths["/api/apps/{app}/packages/{version}"]!).sort()).toEqual(["delete", "get", "put"])
      expect(Object.keys(paths["/api/apps/{app}/channels/{name}/floors/{version}"]!).sort()).toEqual(["delete", "put"])
      expect(Object.keys(paths["/api/apps/{app}/groups/{name}/pause"]!)).toEqual(["post"])
      expect(doc.json.components.securitySchemes.bearer).toEqual({ type: "http", scheme: "bearer" })
      const instances = paths["/api/apps/{app}/instances"]!["get"] as { parameters: Array<{ name: string; in: string }> }
      expect(instances.parameters.filter((p) => p.in === "query").map((p) => p.name)).toEqual([
        "group",
        "status",
        "version",
        "search",
        "sort",
        "order",
        "lastCheckAfter",
        "lastCheckBefore",
        "page",
        "perPage"
      ])
      expect((paths["/health"]!["get"] as { security: Array<unknown> }).security).toEqual([])
      // The framework's decode error is never sent, so the document does not promise it.
      expect(doc.text).not.toContain("HttpApiDecodeError")
      expect(doc.json.components.schemas.InvalidRequest.properties.error).toBeDefined()
    }))

  it.effect("tokens: missing, malformed or unknown is 401; a viewer reads and gets 403 on every write", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const none = yield* client(fleet, undefined).get("/api/apps")
      expect(none.status).toBe(401)
      expect(none.json).toEqual({ error: "Unauthorized", message: "missing token: send Authorization: Bearer <token>" })
      const basic = yield* Effect.promise(() =>
        request(fleet.base, "GET", "/api/apps", { headers: { authorization: "Basic YWRtaW46YWRtaW4=" } })
      )
      expect(basic.status).toBe(401)
      expect(basic.json.error).toBe("Unauthorized")
      const unknown = yield* client(fleet, `fleet_${"A".repeat(43)}`).get("/api/apps")
      expect(unknown.status).toBe(401)
      expect(unknown.json).toEqual({ error: "Unauthorized", message: "unknown token" })
      // The token's hash is what a guess would have to match, not a prefix of the token.
      const truncated = yield* client(fleet, fleet.admin.slice(0, -1)).get("/api/apps")
      expect(truncated.status).toBe(401)

      const viewer = client(fleet, fleet.viewer)
      expect((yield* viewer.get("/api/apps")).status).toBe(200)
      expect((yield* viewer.get("/api/activity")).status).toBe(200)
      const writes = [
        yield* viewer.post("/api/apps", { id: "viewer-made", name: "No" }),
        yield* viewer.patch(app("viewer-made"), { name: "No" }),
        yield* viewer.del(app("viewer-made")),
        yield* viewer.post("/api/tokens", { role: "admin" }),
        yield* viewer.put(`${app("viewer-made")}/channels/stable/floors/1.0.0`, { reason: "x" })
      ]
      for (const write of writes) {
        expect(write.status).toBe(403)
        expect(write.json.error).toBe("Forbidden")
      }
      expect(yield* fleet.sql`SELECT 1 FROM applications WHERE id = 'viewer-made'`).toHaveLength(0)
    }))

  it.effect("applications, packages, channels, floors, blocklist, groups and activity, through the contract's paths", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)

      const created = yield* api.post("/api/apps", { id: flatcar, name: "Flatcar", description: "Container Linux" })
      expect(created.status).toBe(201)
      expect(created.json).toMatchObject({ id: flatcar, name: "Flatcar", description: "Container Linux" })
      expect(Date.parse(created.json.createdAt)).toBeGreaterThan(Date.parse("2024-01-01"))
      expect((yield* api.post("/api/apps", { id: flatcar, name: "Again" })).json).toEqual({
        error: "Conflict",
        message: `application "${flatcar}" already exists`
      })
      expect((yield* api.get("/api/apps")).json.map((a: { id: string }) => a.id)).toContain(flatcar)
      expect((yield* api.patch(app(flatcar), { description: "Flatcar Container Linux" })).json).toMatchObject({
        name: "Flatcar",
        description: "Flatcar Container Linux"
      })
      expect((yield* api.get(app(flatcar))).json.description).toBe("Flatcar Container Linux")
      expect((yield* api.get(app("{nope}"))).status).toBe(404)

      // A hosted payload: hashed while it streams, kept as <sha256-hex>.
      const payload = Crypto.randomBytes(300 * 1024 + 5)
      const uploaded = yield* upload(fleet, flatcar, "3815.2.0", payload)
      expect(uploaded.status).toBe(201)
      expect(uploaded.json).toMatchObject({ version: "3815.2.0", arch: "amd64", name: "update.gz", ...digests(payload) })
      expect(uploaded.json.url).toBeUndefined()
      const hex = Crypto.createHash("sha256").update(payload).digest("hex")
      expect(Fs.readFileSync(Path.join(fleet.payloadDirectory, hex)).equals(payload)).toBe(true)
      expect(payloadFiles(fleet).filter((f) => f.startsWith("."))).toEqual([])
      expect((yield* upload(fleet, flatcar, "3815.2.0", payload)).json.error).toBe("Conflict")

      // An external payload, by URL and facts.
      const external = {
        version: "3815.2.1",
        arch: "amd64",
        name: "flatcar_production_update.gz",
        url: "https://update.release.flatcar-linux.net/amd64-usr/3815.2.1/flatcar_production_update.gz",
        ...digests(Buffer.from("external"))
      }
      const registered = yield* api.post(`${app(flatcar)}/packages`, external)
      expect(registered.status).toBe(201)
      expect(registered.json).toMatchObject(external)
      expect((yield* api.post(`${app(flatcar)}/packages`, { ...external, version: "3815.2.2", url: "ftp://x/y.gz" })).json.error)
        .toBe("InvalidRequest")
      yield* api.post(`${app(flatcar)}/packages`, { ...external, version: "3815.1.0", arch: "arm64" })
      const listed = yield* api.get(`${app(flatcar)}/packages`)
      expect(listed.json.map((p: { version: string; arch: string }) => `${p.version}/${p.arch}`)).toEqual([
        "3815.1.0/arm64",
        "3815.2.0/amd64",
        "3815.2.1/amd64"
      ])

      // Channels point to versions; a missing version is refused.
      const missing = yield* api.post(`${app(flatcar)}/channels`, { name: "stable", arch: "amd64", package: "9999.0.0" })
      expect(missing.status).toBe(422)
      expect(missing.json.error).toBe("MissingReference")
      const channel = yield* api.post(`${app(flatcar)}/channels`, { name: "stable", arch: "amd64", package: "3815.2.0" })
      expect(channel.status).toBe(201)
      expect(channel.json).toMatchObject({ name: "stable", arch: "amd64", package: "3815.2.0", floors: [], blocklist: [] })
      const moved = yield* api.patch(`${app(flatcar)}/channels/stable?arch=amd64`, { package: "3815.2.1" })
      expect(moved.status).toBe(200)
      expect(moved.json.package).toBe("3815.2.1")
      expect((yield* api.get(`${app(flatcar)}/channels/stable`)).json.package).toBe("3815.2.1")

      const floor = yield* api.put(`${app(flatcar)}/channels/stable/floors/3815.2.0?arch=amd64`, { reason: "new partition layout" })
      expect(floor.status).toBe(200)
      expect(floor.json.floors).toEqual([{ version: "3815.2.0", reason: "new partition layout" }])
      const blocked = yield* api.put(`${app(flatcar)}/channels/stable/blocklist/3815.2.0?arch=amd64`)
      expect(blocked.json.blocklist).toEqual(["3815.2.0"])
      expect((yield* api.del(`${app(flatcar)}/channels/stable/blocklist/3815.2.0?arch=amd64`)).json.blocklist).toEqual([])
      // A package that is a floor stays.
      const inUse = yield* api.del(`${app(flatcar)}/packages/3815.2.0?arch=amd64`)
      expect(inUse.status).toBe(409)
      expect(inUse.json.message).toBe(`package 3815.2.0 (amd64) of "${flatcar}" is a floor of channel "stable" (amd64)`)
      expect((yield* api.del(`${app(flatcar)}/channels/stable/floors/3815.2.0?arch=amd64`)).json.floors).toEqual([])

      // Groups, their policy, PATCH merging, pause and resume.
      const group = yield* api.post(`${app(flatcar)}/groups`, {
        name: "production",
        track: "stable",
        channel: "stable",
        policy: { maxUpdatesPerPeriod: 5, periodSeconds: 3600, rolloutPercent: 10 }
      })
      expect(group.status).toBe(201)
      expect(group.json.policy).toMatchObject({
        updatesEnabled: true,
        maxUpdatesPerPeriod: 5,
        periodSeconds: 3600,
        updateTimeoutSeconds: 3600,
        safeMode: true,
        rolloutPercent: 10,
        windows: []
      })
      const patched = yield* api.patch(`${app(flatcar)}/groups/production`, {
        policy: { rolloutPercent: 50, windows: [{ days: ["sat", "sun"], start: "02:00", end: "05:00", timeZone: "UTC" }] }
      })
      expect(patched.status).toBe(200)
      expect(patched.json.policy).toMatchObject({ maxUpdatesPerPeriod: 5, periodSeconds: 3600, rolloutPercent: 50 })
      expect(patched.json.policy.windows).toEqual([{ days: ["sat", "sun"], start: "02:00", end: "05:00", timeZone: "UTC" }])
      expect((yield* api.patch(`${app(flatcar)}/groups/production`, {
        policy: { windows: [{ days: ["sat"], start: "02:00", end: "05:00", timeZone: "Mars/Olympus" }] }
      })).json.error).toBe("InvalidRequest")
      const paused = yield* api.post(`${app(flatcar)}/groups/production/pause`, { reason: "holiday freeze" })
      expect(paused.json).toMatchObject({ paused: true, pausedReason: "holiday freeze" })
      const resumed = yield* api.post(`${app(flatcar)}/groups/production/resume`)
      expect(resumed.json.paused).toBe(false)
      expect((yield* api.get(`${app(flatcar)}/groups`)).json.map((g: { name: string }) => g.name)).toEqual(["production"])

      const activity = yield* api.get(`/api/activity?app=${encodeURIComponent(flatcar)}`)
      expect(activity.json.map((a: { kind: string; message: string }) => [a.kind, a.message])).toEqual([
        ["rolloutResumed", `group "production" resumed (was paused: holiday freeze)`],
        ["rolloutPaused", `group "production" paused: holiday freeze`],
        ["channelMoved", `channel "stable" (amd64) moved from 3815.2.0 to 3815.2.1`],
        ["channelMoved", `channel "stable" (amd64) created on 3815.2.0`]
      ])
      expect(activity.json[0].group).toBe("production")

      // Deleting a package that nothing uses removes its hosted file.
      yield* api.patch(`${app(flatcar)}/channels/stable?arch=amd64`, { package: "3815.2.1" })
      expect((yield* api.del(`${app(flatcar)}/packages/3815.2.0?arch=amd64`)).status).toBe(204)
      expect(Fs.existsSync(Path.join(fleet.payloadDirectory, hex))).toBe(false)
    }))

  it.effect("instances: filters and paging with a total, one machine with history and events", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.viewer)
      const admin = client(fleet, fleet.admin)
      const appId = "{instances-app}"
      yield* admin.post("/api/apps", { id: appId, name: "Instances" })
      yield* admin.post(`${app(appId)}/channels`, { name: "stable", arch: "amd64" })
      const group = (yield* admin.post(`${app(appId)}/groups`, { name: "prod", channel: "stable" })).json
      const base = Date.parse("2025-06-01T00:00:00Z")
      for (let i = 0; i < 12; i++) {
        const id = `machine-${String(i).padStart(2, "0")}`
        const at = new Date(base + i * 1000)
        yield* fleet.sql`INSERT INTO instances (id, alias, ip, created_at, last_seen) VALUES (${id}, ${`node${i}`}, '192.0.2.7', ${at}, ${at})`
        yield* fleet.sql`INSERT INTO instance_apps (instance_id, app_id, group_id, track, arch, version, status, hold, last_check)
          VALUES (${id}, ${appId}, ${group.id}::uuid, 'prod', 'amd64', ${i < 4 ? "3815.2.0" : "3815.2.1"},
            ${i % 3 === 0 ? "onHold" : "complete"}, ${i % 3 === 0 ? "on hold: 5 of 5 updates in the last 1 h" : null}, ${at})`
      }
      yield* fleet.sql`INSERT INTO instance_status_history (instance_id, app_id, status, version, created_at)
        VALUES ('machine-03', ${appId}, 'granted', '3815.2.0', ${new Date(base)})`
      yield* fleet.sql`INSERT INTO events (instance_id, app_id, event_type, event_result, created_at)
        VALUES ('machine-03', ${appId}, 13, 1, ${new Date(base + 500)})`

      const page = yield* api.get(`${app(appId)}/instances?perPage=5&page=2`)
      expect(page.status).toBe(200)
      expect(page.json.total).toBe(12)
      expect(page.json.items.map((i: { machineId: string }) => i.machineId)).toEqual([
        "machine-06",
        "machine-05",
        "machine-04",
        "machine-03",
        "machine-02"
      ])
      expect(page.json.items[0]).toEqual({
        machineId: "machine-06",
        alias: "node6",
        ip: "192.0.2.7",
        version: "3815.2.1",
        status: "onHold",
        group: "prod",
        track: "prod",
        arch: "amd64",
        hold: "on hold: 5 of 5 updates in the last 1 h",
        lastCheck: new Date(base + 6000).toISOString()
      })
      const held = yield* api.get(`${app(appId)}/instances?group=prod&status=onHold&version=3815.2.1`)
      expect(held.json.items.map((i: { machineId: string }) => i.machineId)).toEqual(["machine-09", "machine-06"])
      expect(held.json.total).toBe(2)
      const seen = yield* api.get(
        `${app(appId)}/instances?lastCheckAfter=${new Date(base + 10_000).toISOString()}`
      )
      expect(seen.json.items.map((i: { machineId: string }) => i.machineId)).toEqual(["machine-11", "machine-10"])
      expect((yield* api.get(`${app(appId)}/instances?status=sleeping`)).json.error).toBe("InvalidRequest")
      expect((yield* api.get(`${app(appId)}/instances?perPage=0`)).status).toBe(400)
      expect((yield* api.get(`${app(appId)}/instances?colour=red`)).json.message).toContain("colour")

      const one = yield* api.get(`${app(appId)}/instances/machine-03`)
      expect(one.status).toBe(200)
      expect(one.json).toMatchObject({ machineId: "machine-03", alias: "node3", status: "onHold", group: "prod" })
      expect(one.json.history).toEqual([{ status: "granted", version: "3815.2.0", at: new Date(base).toISOString() }])
      expect(one.json.events).toEqual([{ eventType: 13, eventResult: 1, at: new Date(base + 500).toISOString() }])
      expect((yield* api.get(`${app(appId)}/instances/nobody`)).status).toBe(404)
      expect((yield* admin.del(`${app(appId)}/instances/machine-03`)).status).toBe(204)
      expect((yield* api.get(`${app(appId)}/instances/machine-03`)).status).toBe(404)
    }))

  it.effect("bad JSON, unknown fields, wrong types and wrong content types are 4xx with a JSON error, and store nothing", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const send = (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) =>
        Effect.promise(() => request(fleet.base, "POST", path, { token: fleet.admin, body, headers }))

      const badJson = yield* send("/api/apps", `{"id": "broken",`)
      expect(badJson.status).toBe(400)
      expect(badJson.json.error).toBe("InvalidRequest")
      expect(badJson.json.message).toMatch(/^the body is not JSON: /)

      const unknownField = yield* send("/api/apps", JSON.stringify({ id: "extra", name: "Extra", colour: "red" }))
      expect(unknownField.status).toBe(400)
      expect(unknownField.json).toEqual({
        error: "InvalidRequest",
        message: `colour: is unexpected, expected: "id" | "name" | "description"`
      })
      const wrongType = yield* send("/api/apps", JSON.stringify({ id: "typed", name: 42 }))
      expect(wrongType.status).toBe(400)
      expect(wrongType.json.message).not.toContain("\n")
      const notJson = yield* send("/api/apps", "id=form&name=Form", { "content-type": "application/x-www-form-urlencoded" })
      expect(notJson.status).toBe(415)
      expect(notJson.json.error).toBe("UnsupportedMediaType")
      const empty = yield* send("/api/apps", "")
      expect(empty.status).toBe(400)
      expect(yield* fleet.sql`SELECT id FROM applications WHERE id IN ('broken', 'extra', 'typed', 'form')`).toHaveLength(0)

      // Unknown fields deep inside a body are refused as well.
      yield* client(fleet, fleet.admin).post("/api/apps", { id: "strict", name: "Strict" })
      yield* client(fleet, fleet.admin).post(`${app("strict")}/channels`, { name: "stable", arch: "amd64" })
      const nested = yield* send(
        `${app("strict")}/groups`,
        JSON.stringify({ name: "g", channel: "stable", policy: { maxUpdatesPerPeriod: 1, turbo: true } })
      )
      expect(nested.status).toBe(400)
      expect(nested.json.message).toContain("policy.turbo: is unexpected")
      expect(yield* fleet.sql`SELECT 1 FROM groups WHERE app_id = 'strict'`).toHaveLength(0)
      const outOfRange = yield* send(`${app("strict")}/groups`, JSON.stringify({ name: "g", channel: "stable", policy: { rolloutPercent: 101 } }))
      expect(outOfRange.status).toBe(400)
      expect(outOfRange.json.message).toContain("policy.rolloutPercent")

      const route = yield* client(fleet, fleet.admin).get("/api/nothing/here")
      expect(route.status).toBe(404)
      expect(route.json).toEqual({ error: "NotFound", message: "no endpoint GET /api/nothing/here" })
      const badVersion = yield* upload(fleet, "strict", "not-a-version", Buffer.from("x"))
      expect(badVersion.status).toBe(400)
      expect(badVersion.json.message).toContain("is not a version")
      const traversal = yield* upload(fleet, "strict", "1.0.0", Buffer.from("x"), "arch=amd64&name=..%2F..%2Fetc%2Fpasswd")
      expect(traversal.status).toBe(400)
      expect(traversal.json.message).toContain("is not a plain file name")
      const unknownParam = yield* upload(fleet, "strict", "1.0.0", Buffer.from("x"), "arch=amd64&colour=red")
      expect(unknownParam.status).toBe(400)
      expect(unknownParam.json.message).toContain("colour: is unexpected")
      // Refused before its body is read: the connection is closed rather than left to carry the rest.
      const anonymous = yield* Effect.promise(() =>
        request(fleet.base, "PUT", `${app("strict")}/packages/1.0.0?arch=amd64`, { body: Buffer.alloc(512 * 1024) })
      )
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers["connection"]).toBe("close")
      expect(payloadFiles(fleet).filter((f) => f.startsWith("."))).toEqual([])
      expect(yield* fleet.sql`SELECT 1 FROM packages WHERE app_id = 'strict'`).toHaveLength(0)
    }))

  it.effect("oversized JSON bodies are 413 with a JSON error, declared or streamed", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const big = JSON.stringify({ id: "big", name: "x".repeat(100 * 1024) })
      const declared = yield* Effect.promise(() =>
        request(fleet.base, "POST", "/api/apps", { token: fleet.admin, body: big, headers: { "content-type": "application/json" } })
      )
      expect(declared.status).toBe(413)
      expect(declared.json.error).toBe("PayloadTooLarge")
      expect(declared.json.message).toBe(`the body of ${big.length} bytes is over the 65536-byte limit`)
      // Without a Content-Length (chunked), the body is cut at the limit.
      const chunked = yield* Effect.promise(() =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = Http.request(new URL("/api/apps", fleet.base), {
            method: "POST",
            headers: { authorization: `Bearer ${fleet.admin}`, "content-type": "application/json", "transfer-encoding": "chunked" },
            agent: false
          }, (res) => {
            let text = ""
            res.on("data", (c: Buffer) => (text += c.toString()))
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text }))
          })
          req.on("error", reject)
          req.end(big)
        })
      )
      expect(chunked.status).toBe(413)
      expect(JSON.parse(chunked.text)).toEqual({ error: "PayloadTooLarge", message: "the request body is over the 65536-byte limit" })
      expect(yield* fleet.sql`SELECT 1 FROM applications WHERE id = 'big'`).toHaveLength(0)
    }))

  it.effect("an upload over --max-upload-size is 413; no file and no package are left", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      yield* client(fleet, fleet.admin).post("/api/apps", { id: "limits", name: "Limits" })
      const declared = yield* upload(fleet, "limits", "1.0.0", Buffer.alloc(maxUploadBytes + 1))
      expect(declared.status).toBe(413)
      expect(declared.headers["connection"]).toBe("close")
      expect(declared.json.error).toBe("PayloadTooLarge")

      const streamed = yield* streamUpload(fleet, `${app("limits")}/packages/1.0.1?arch=amd64`, Buffer.alloc(64 * 1024, 1), 40)
      expect(streamed.status).toBe(413)
      expect(JSON.parse(streamed.text)).toEqual({
        error: "PayloadTooLarge",
        message: `the request body is over the ${maxUploadBytes}-byte limit`
      })
      yield* waitUntil(() => payloadFiles(fleet).every((f) => !f.startsWith(".upload-")))
      expect(yield* fleet.sql`SELECT 1 FROM packages WHERE app_id = 'limits'`).toHaveLength(0)
      // Exactly at the limit is fine.
      const exact = yield* upload(fleet, "limits", "1.0.2", Buffer.alloc(maxUploadBytes, 2))
      expect(exact.status).toBe(201)
      expect(exact.json.size).toBe(maxUploadBytes)
    }))

  it.effect("an upload cut off midway (the client goes away) leaves no file and no package", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      yield* client(fleet, fleet.admin).post("/api/apps", { id: "cutoff", name: "Cut off" })
      const before = payloadFiles(fleet)
      yield* Effect.promise(() =>
        new Promise<void>((resolve, reject) => {
          const url = new URL(fleet.base)
          const socket = Net.connect(Number(url.port), url.hostname, () => {
            socket.write(
              `PUT ${app("cutoff")}/packages/2.0.0?arch=amd64 HTTP/1.1\r\nHost: ${url.host}\r\n` +
                `Authorization: Bearer ${fleet.admin}\r\nContent-Length: ${maxUploadBytes - 10}\r\n\r\n`
            )
            socket.write(Buffer.alloc(200 * 1024, 3), () => setTimeout(() => {
              socket.destroy()
              resolve()
            }, 200))
          })
          socket.on("error", reject)
        })
      )
      yield* waitUntil(() => payloadFiles(fleet).every((f) => !f.startsWith(".upload-")))
      expect(payloadFiles(fleet)).toEqual(before)
      expect(yield* fleet.sql`SELECT 1 FROM packages WHERE app_id = 'cutoff'`).toHaveLength(0)
      // And the server keeps serving.
      expect((yield* Effect.promise(() => request(fleet.base, "GET", "/health"))).status).toBe(200)
    }))

  it.effect("tokens through the API: created with a role, listed without secrets, deleted", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)
      const created = yield* api.post("/api/tokens", { role: "viewer", name: "dashboard" })
      expect(created.status).toBe(201)
      expect(created.json.token).toMatch(/^fleet_[A-Za-z0-9_-]{43}$/)
      expect(created.json).toMatchObject({ role: "viewer", name: "dashboard" })
      const hash = Crypto.createHash("sha256").update(created.json.token).digest("hex")
      const rows = yield* fleet.sql<{ hash: string }>`SELECT hash FROM tokens WHERE id = ${created.json.id}`
      expect(rows[0]!.hash).toBe(hash)
      expect((yield* client(fleet, created.json.token).get("/api/apps")).status).toBe(200)
      const listed = yield* api.get("/api/tokens")
      expect(listed.text).not.toContain(created.json.token)
      expect(listed.text).not.toContain(hash)
      expect((yield* api.del(`/api/tokens/${created.json.id}`)).status).toBe(204)
      expect((yield* client(fleet, created.json.token).get("/api/apps")).status).toBe(401)
    }))

  it.effect("hosted payloads are served at /packages/<sha256-hex>/<name>, whole and by range, until deleted", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)
      yield* api.post("/api/apps", { id: "served", name: "Served" })
      const bytes = Crypto.randomBytes(200 * 1024 + 3)
      const hex = Crypto.createHash("sha256").update(bytes).digest("hex")
      expect((yield* upload(fleet, "served", "1.0.0", bytes, "arch=amd64&name=flatcar_production_update.gz")).status).toBe(201)
      const get = (path: string, headers: Record<string, string> = {}) =>
        Effect.promise(() =>
          new Promise<{ status: number; headers: Http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
            Http.get(new URL(path, fleet.base), { headers, agent: false }, (res) => {
              const parts: Array<Buffer> = []
              res.on("data", (c: Buffer) => parts.push(c))
              res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }))
            }).on("error", reject)
          })
        )
      const whole = yield* get(`/packages/${hex}/flatcar_production_update.gz`)
      expect(whole.status).toBe(200)
      expect(whole.body.equals(bytes)).toBe(true)
      expect(whole.headers["etag"]).toBe(`"${hex}"`)
      const part = yield* get(`/packages/${hex}/flatcar_production_update.gz`, { range: "bytes=100-199" })
      expect(part.status).toBe(206)
      expect(part.body.equals(bytes.subarray(100, 200))).toBe(true)
      expect((yield* get(`/packages/${hex}/update.gz`)).status).toBe(404)
      expect((yield* get(`/packages/${"0".repeat(64)}/flatcar_production_update.gz`)).status).toBe(404)
      expect((yield* get(`/packages/${hex}`)).status).toBe(404)
      expect((yield* api.del(`${app("served")}/packages/1.0.0`)).status).toBe(204)
      expect((yield* get(`/packages/${hex}/flatcar_production_update.gz`)).status).toBe(404)
    }))

  it.effect("deleting an application removes its hosted payloads", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const api = client(fleet, fleet.admin)
      yield* api.post("/api/apps", { id: "gone", name: "Gone" })
      const bytes = Crypto.randomBytes(1000)
      expect((yield* upload(fleet, "gone", "1.0.0", bytes)).status).toBe(201)
      const file = Path.join(fleet.payloadDirectory, Crypto.createHash("sha256").update(bytes).digest("hex"))
      expect(Fs.existsSync(file)).toBe(true)
      expect((yield* api.del(app("gone"))).status).toBe(204)
      expect(Fs.existsSync(file)).toBe(false)
      expect((yield* api.get(app("gone"))).status).toBe(404)
    }))
})
