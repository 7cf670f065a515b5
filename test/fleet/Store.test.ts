/**
 * The configuration store on a real database: what each call leaves in the
 * tables, read back through the store and through SQL, and the typed
 * errors for missing rows, taken keys and references to missing packages.
 */
import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Store } from "../../src/fleet/Store.js"
import { describeStores, truncateAll } from "./support.js"

const digest = (n: number) => Buffer.alloc(n === 1 ? 20 : 32, 7).toString("base64")

const pkg = (appId: string, version: string, arch: "amd64" | "arm64" | "all" = "amd64", url?: string) => ({
  appId,
  version,
  arch,
  name: "update.gz",
  size: 1234,
  sha1: digest(1),
  sha256: digest(2),
  ...(url === undefined ? {} : { url })
})

const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

// Each test starts from empty tables, with the store over the suite's database.
const fresh = <A, E>(effect: Effect.Effect<A, E, Store | SqlClient.SqlClient>) =>
  Effect.zipRight(truncateAll, effect).pipe(Effect.provide(Store.Default))

describeStores("Store", (it) => {
  it.effect("applications: create, list, get, patch, delete, and a taken id", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const created = yield* store.createApplication({ id: "{app-1}", name: "One" })
      expect(created.description).toBe("")
      const conflict = yield* failure(store.createApplication({ id: "{app-1}", name: "Again" }))
      expect(conflict._tag).toBe("Conflict")
      expect(conflict.message).toBe(`application "{app-1}" already exists`)

      const patched = yield* store.updateApplication("{app-1}", { description: "the first" })
      expect(patched.name).toBe("One")
      expect(patched.description).toBe("the first")
      expect((yield* store.listApplications()).map((a) => a.id)).toContain("{app-1}")

      yield* store.deleteApplication("{app-1}")
      const missing = yield* failure(store.getApplication("{app-1}"))
      expect(missing._tag).toBe("NotFound")
      expect(missing.message).toBe(`no application "{app-1}"`)
      expect((yield* failure(store.updateApplication("{app-1}", { name: "x" })))._tag).toBe("NotFound")
      expect((yield* failure(store.deleteApplication("{app-1}")))._tag).toBe("NotFound")
    })))

  it.effect("packages: facts kept as given, one per version and arch, missing application refused", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      yield* store.createApplication({ id: "pk", name: "Packages" })
      const hosted = yield* store.createPackage({ ...pkg("pk", "1.0.0"), action: { metadataSize: "42" } })
      expect(hosted.url).toBeUndefined()
      expect(hosted.action.disablePayloadBackoff).toBe(true)
      expect(hosted.action.metadataSize).toBe("42")
      expect(hosted.size).toBe(1234)
      yield* store.createPackage(pkg("pk", "1.0.0", "arm64", "https://example.com/a/update.gz"))
      yield* store.createPackage(pkg("pk", "0.9.0"))

      const taken = yield* failure(store.createPackage(pkg("pk", "1.0.0")))
      expect(taken._tag).toBe("Conflict")
      expect(taken.message).toBe(`package 1.0.0 (amd64) of "pk" already exists`)
      expect((yield* failure(store.createPackage(pkg("nope", "1.0.0"))))._tag).toBe("NotFound")

      const listed = yield* store.listPackages("pk")
      expect(listed.map((p) => `${p.version}/${p.arch}`)).toEqual(["0.9.0/amd64", "1.0.0/amd64", "1.0.0/arm64"])
      expect((yield* store.getPackage("pk", "1.0.0", "arm64")).url).toBe("https://example.com/a/update.gz")
      const ambiguous = yield* failure(store.getPackage("pk", "1.0.0"))
      expect(ambiguous.message).toBe("package 1.0.0 exists for amd64, arm64: say which arch")
      expect((yield* store.getPackage("pk", "0.9.0")).version).toBe("0.9.0")

      const found = yield* store.hostedPackage(Buffer.from(digest(2), "base64").toString("hex"), "update.gz")
      expect(Option.map(found, (p) => p.version)).toEqual(Option.some("1.0.0"))
      expect(Option.isNone(yield* store.hostedPackage(Buffer.from(digest(2), "base64").toString("hex"), "other.gz"))).toBe(true)
      expect(yield* store.payloadInUse(digest(2))).toBe(true)

      yield* store.deletePackage("pk", "0.9.0")
      expect((yield* failure(store.getPackage("pk", "0.9.0")))._tag).toBe("NotFound")
    })))

  it.effect("channels: a missing package version is a MissingReference and nothing is written", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const sql = yield* SqlClient.SqlClient
      yield* store.createApplication({ id: "ch", name: "Channels" })
      yield* store.createPackage(pkg("ch", "1.0.0"))
      const missing = yield* failure(store.createChannel({ appId: "ch", name: "stable", arch: "amd64", package: "2.0.0" }))
      expect(missing._tag).toBe("MissingReference")
      expect(missing.message).toBe(`channel "stable" (amd64): no package 2.0.0 for amd64 (or all arches)`)
      expect(yield* sql`SELECT * FROM channels WHERE app_id = 'ch'`).toHaveLength(0)
      // An arm64 channel cannot point to an amd64 package either.
      expect((yield* failure(store.createChannel({ appId: "ch", name: "stable", arch: "arm64", package: "1.0.0" })))._tag)
        .toBe("MissingReference")

      const channel = yield* store.createChannel({ appId: "ch", name: "stable", arch: "amd64", package: "1.0.0" })
      expect(channel.package).toBe("1.0.0")
      expect((yield* failure(store.createChannel({ appId: "ch", name: "stable", arch: "amd64" })))._tag).toBe("Conflict")

      const moved = yield* failure(store.updateChannel({ appId: "ch", name: "stable" }, { package: "3.0.0" }))
      expect(moved._tag).toBe("MissingReference")
      expect((yield* store.getChannel({ appId: "ch", name: "stable" })).package).toBe("1.0.0")
    })))

  it.effect("channels: moves are recorded as activity; floors and blocklist; packages in use cannot be deleted", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      yield* store.createApplication({ id: "mv", name: "Moves" })
      for (const v of ["1.0.0", "1.5.0", "2.0.0"]) yield* store.createPackage(pkg("mv", v))
      yield* store.createPackage(pkg("mv", "1.2.0", "all"))
      yield* store.createChannel({ appId: "mv", name: "stable", arch: "amd64", package: "1.0.0" })
      yield* store.createChannel({ appId: "mv", name: "stable", arch: "arm64" })

      const ambiguous = yield* failure(store.getChannel({ appId: "mv", name: "stable" }))
      expect(ambiguous._tag).toBe("AmbiguousArch")
      expect(ambiguous.message).toBe(`channel "stable" exists for amd64, arm64: say which arch`)

      const key = { appId: "mv", name: "stable", arch: "amd64" } as const
      const moved = yield* store.updateChannel(key, { package: "2.0.0" })
      expect(moved.package).toBe("2.0.0")
      yield* store.updateChannel(key, { color: "#00ff00" })
      const activity = yield* store.listActivity({ appId: "mv" })
      expect(activity.map((a) => a.message)).toEqual([
        `channel "stable" (amd64) moved from 1.0.0 to 2.0.0`,
        `channel "stable" (amd64) created on 1.0.0`
      ])
      expect(activity[0]!.kind).toBe("channelMoved")
      expect(activity[0]!.version).toBe("2.0.0")

      yield* store.setFloor(key, "1.5.0", "migrates the disk layout")
      yield* store.setFloor(key, "1.2.0", "an arch-independent step")
      const floored = yield* store.setFloor(key, "1.5.0", "new reason")
      expect(floored.floors.map((f) => [f.version, f.reason])).toEqual([
        ["1.2.0", "an arch-independent step"],
        ["1.5.0", "new reason"]
      ])
      expect((yield* failure(store.setFloor(key, "9.9.9", "x")))._tag).toBe("MissingReference")
      const blocked = yield* store.blockVersion(key, "1.0.0")
      expect(blocked.blocklist).toEqual(["1.0.0"])

      const inUse = yield* failure(store.deletePackage("mv", "2.0.0", "amd64"))
      expect(inUse._tag).toBe("Conflict")
      expect(inUse.message).toBe(`package 2.0.0 (amd64) of "mv" is the package of channel "stable" (amd64)`)
      expect((yield* failure(store.deletePackage("mv", "1.5.0", "amd64"))).message).toContain(`a floor of channel "stable" (amd64)`)

      yield* store.removeFloor(key, "1.5.0")
      expect((yield* failure(store.removeFloor(key, "1.5.0")))._tag).toBe("NotFound")
      const unblocked = yield* store.unblockVersion(key, "1.0.0")
      expect(unblocked.blocklist).toEqual([])
      yield* store.deletePackage("mv", "1.5.0", "amd64")
      expect((yield* store.getChannel(key)).floors.map((f) => f.version)).toEqual(["1.2.0"])
    })))

  it.effect("groups: defaults, PATCH merges policy fields, name and track unique, channel must exist", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const sql = yield* SqlClient.SqlClient
      yield* store.createApplication({ id: "gr", name: "Groups" })
      yield* store.createChannel({ appId: "gr", name: "stable", arch: "amd64" })
      yield* store.createChannel({ appId: "gr", name: "beta", arch: "amd64" })

      const missing = yield* failure(store.createGroup({ appId: "gr", name: "prod", channel: "nightly" }))
      expect(missing._tag).toBe("MissingReference")
      expect(missing.message).toBe(`group "prod": no channel "nightly" of "gr"`)

      const group = yield* store.createGroup({
        appId: "gr",
        name: "prod",
        channel: "stable",
        policy: { maxUpdatesPerPeriod: 5, failureBrake: { ratio: 0.2, minAttempts: 10 } }
      })
      expect(group.track).toBe("prod")
      expect(group.policy.maxUpdatesPerPeriod).toBe(5)
      expect(group.policy.periodSeconds).toBe(900)
      expect(group.policy.safeMode).toBe(true)
      expect(group.policy.failureBrake).toEqual({ ratio: 0.2, minAttempts: 10 })

      const patched = yield* store.updateGroup("gr", "prod", {
        description: "production",
        policy: {
          rolloutPercent: 25,
          windows: [{ days: ["mon", "tue"], start: "22:00", end: "04:00", timeZone: "Europe/Berlin" }]
        }
      })
      expect(patched.description).toBe("production")
      expect(patched.policy.rolloutPercent).toBe(25)
      // Left out, so kept:
      expect(patched.policy.maxUpdatesPerPeriod).toBe(5)
      expect(patched.policy.failureBrake).toEqual({ ratio: 0.2, minAttempts: 10 })
      expect(patched.policy.windows[0]!.timeZone).toBe("Europe/Berlin")
      const [row] = yield* sql<{ max_updates_per_period: number; rollout_percent: number }>`
        SELECT max_updates_per_period, rollout_percent FROM groups WHERE id = ${group.id}::uuid`
      expect(row).toEqual({ max_updates_per_period: 5, rollout_percent: 25 })

      const cleared = yield* store.updateGroup("gr", "prod", { policy: { failureBrake: null } })
      expect(cleared.policy.failureBrake).toBeUndefined()
      expect(cleared.policy.rolloutPercent).toBe(25)

      const invalid = yield* failure(store.updateGroup("gr", "prod", { policy: { rolloutPercent: 150 } }))
      expect(invalid._tag).toBe("InvalidInput")

      yield* store.createGroup({ appId: "gr", name: "canary", track: "beta-track", channel: "beta" })
      const trackTaken = yield* failure(store.createGroup({ appId: "gr", name: "other", track: "beta-track", channel: "beta" }))
      expect(trackTaken.message).toBe(`group "canary" already has track "beta-track"`)
      expect((yield* failure(store.updateGroup("gr", "canary", { name: "prod" }))).message)
        .toBe(`group "prod" of "gr" already exists`)

      const followed = yield* failure(store.deleteChannel({ appId: "gr", name: "beta" }))
      expect(followed.message).toBe(`channel "beta" (amd64) is followed by group "canary"`)
      expect((yield* store.listGroups("gr")).map((g) => g.name)).toEqual(["canary", "prod"])
      yield* store.deleteGroup("gr", "canary")
      yield* store.deleteChannel({ appId: "gr", name: "beta" })
      expect((yield* store.listChannels("gr")).map((c) => c.name)).toEqual(["stable"])
    })))

  it.effect("groups: pause and resume are recorded in the activity feed", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      yield* store.createApplication({ id: "pa", name: "Pause" })
      yield* store.createChannel({ appId: "pa", name: "stable", arch: "amd64" })
      yield* store.createGroup({ appId: "pa", name: "prod", channel: "stable" })
      const paused = yield* store.pauseGroup("pa", "prod", "investigating failures")
      expect(paused.paused).toBe(true)
      expect(paused.pausedReason).toBe("investigating failures")
      // Pausing again changes nothing and records nothing.
      yield* store.pauseGroup("pa", "prod")
      const resumed = yield* store.resumeGroup("pa", "prod")
      expect(resumed.paused).toBe(false)
      expect(resumed.pausedReason).toBeUndefined()
      const activity = yield* store.listActivity({ appId: "pa" })
      expect(activity.map((a) => [a.kind, a.group, a.message])).toEqual([
        ["rolloutResumed", "prod", `group "prod" resumed (was paused: investigating failures)`],
        ["rolloutPaused", "prod", `group "prod" paused: investigating failures`]
      ])
      expect(activity[0]!.id).toBeGreaterThan(activity[1]!.id)
      const older = yield* store.listActivity({ appId: "pa", before: activity[0]!.id })
      expect(older.map((a) => a.kind)).toEqual(["rolloutPaused"])
    })))

  it.effect("tokens: only the hash is stored; use marks it", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const sql = yield* SqlClient.SqlClient
      const token = yield* store.createToken({ hash: "ab".repeat(32), role: "viewer", name: "dashboard" })
      expect(token.lastUsed).toBeUndefined()
      const used = yield* store.useToken("ab".repeat(32))
      expect(Option.map(used, (t) => t.role)).toEqual(Option.some("viewer"))
      expect(Option.isNone(yield* store.useToken("cd".repeat(32)))).toBe(true)
      const [row] = yield* sql<{ hash: string; last_used: Date | null }>`SELECT hash, last_used FROM tokens WHERE id = ${token.id}`
      expect(row!.hash).toBe("ab".repeat(32))
      expect(row!.last_used).not.toBeNull()
      yield* store.deleteToken(token.id)
      expect((yield* failure(store.deleteToken(token.id)))._tag).toBe("NotFound")
    })))

  it.effect("instances: filters, paging with a total, one machine with history and events, delete", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const sql = yield* SqlClient.SqlClient
      yield* store.createApplication({ id: "in", name: "Instances" })
      yield* store.createChannel({ appId: "in", name: "stable", arch: "amd64" })
      const group = yield* store.createGroup({ appId: "in", name: "prod", channel: "stable" })
      const base = Date.parse("2025-01-01T00:00:00Z")
      for (let i = 0; i < 30; i++) {
        const id = `m${String(i).padStart(2, "0")}`
        const at = new Date(base + i * 60_000)
        yield* sql`INSERT INTO instances (id, alias, ip, created_at, last_seen) VALUES (${id}, ${`host-${i}`}, '10.0.0.1', ${at}, ${at})`
        yield* sql`INSERT INTO instance_apps (instance_id, app_id, group_id, track, arch, version, status, hold, last_check)
          VALUES (${id}, 'in', ${i % 3 === 0 ? null : group.id}::uuid, 'prod', 'amd64', ${i < 10 ? "1.0.0" : "2.0.0"},
            ${i % 2 === 0 ? "complete" : "onHold"}, ${i % 2 === 0 ? null : "on hold: 2 of 2 updates in the last 15 min"}, ${at})`
      }
      const all = yield* store.listInstances("in", { perPage: 7, page: 2 })
      expect(all.total).toBe(30)
      expect(all.items.map((i) => i.machineId)).toEqual(["m22", "m21", "m20", "m19", "m18", "m17", "m16"])
      const held = all.items.find((i) => i.machineId === "m19")!
      expect(held.hold).toBe("on hold: 2 of 2 updates in the last 15 min")
      expect(held.group).toBe("prod")
      expect(held.alias).toBe("host-19")
      expect(all.items.find((i) => i.machineId === "m18")!.group).toBeUndefined()

      const filtered = yield* store.listInstances("in", { group: "prod", status: "complete", version: "2.0.0" })
      expect(filtered.items.map((i) => i.machineId)).toEqual(["m28", "m26", "m22", "m20", "m16", "m14", "m10"])
      expect(filtered.total).toBe(7)
      const recent = yield* store.listInstances("in", {
        lastCheckAfter: new Date(base + 25 * 60_000),
        lastCheckBefore: new Date(base + 28 * 60_000)
      })
      expect(recent.items.map((i) => i.machineId)).toEqual(["m27", "m26", "m25"])
      expect((yield* failure(store.listInstances("unknown")))._tag).toBe("NotFound")

      yield* sql`INSERT INTO instance_status_history (instance_id, app_id, status, version, created_at) VALUES
        ('m00', 'in', 'granted', '1.0.0', ${new Date(base + 1000)}), ('m00', 'in', 'complete', '2.0.0', ${new Date(base + 2000)})`
      yield* sql`INSERT INTO events (instance_id, app_id, event_type, event_result, previous_version, created_at) VALUES
        ('m00', 'in', 3, 2, '1.0.0', ${new Date(base + 2000)})`
      const one = yield* store.getInstance("in", "m00")
      expect(one.alias).toBe("host-0")
      expect(one.history.map((h) => [h.status, h.version])).toEqual([["complete", "2.0.0"], ["granted", "1.0.0"]])
      expect(one.events).toHaveLength(1)
      expect(one.events[0]!.previousVersion).toBe("1.0.0")
      expect((yield* failure(store.getInstance("in", "nobody")))._tag).toBe("NotFound")

      yield* store.deleteInstance("in", "m00")
      expect((yield* failure(store.getInstance("in", "m00")))._tag).toBe("NotFound")
      expect(yield* sql`SELECT 1 FROM instances WHERE id = 'm00'`).toHaveLength(0)
      expect(yield* sql`SELECT 1 FROM instance_status_history WHERE instance_id = 'm00'`).toHaveLength(0)
    })))

  it.effect("deleting an application answers its hosted payloads and removes everything of it", () =>
    fresh(Effect.gen(function*() {
      const store = yield* Store
      const sql = yield* SqlClient.SqlClient
      yield* store.createApplication({ id: "del", name: "Delete" })
      yield* store.createPackage(pkg("del", "1.0.0"))
      yield* store.createPackage(pkg("del", "1.1.0", "amd64", "https://example.com/u.gz"))
      yield* store.createChannel({ appId: "del", name: "stable", arch: "amd64", package: "1.0.0" })
      expect(yield* store.deleteApplication("del")).toEqual([digest(2)])
      expect(yield* sql`SELECT 1 FROM packages WHERE app_id = 'del'`).toHaveLength(0)
      expect(yield* sql`SELECT 1 FROM channels WHERE app_id = 'del'`).toHaveLength(0)
    })))
})
