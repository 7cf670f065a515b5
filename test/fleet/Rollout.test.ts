import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Schema, TestClock } from "effect"
import { Request } from "effect-omaha"
import {
  Channel,
  defaultPolicy,
  FailureBrake,
  Floor,
  Group,
  MaintenanceWindow,
  Package,
  Policy,
  PostinstallAction
} from "../../src/fleet/Model.js"
import * as Rollout from "../../src/fleet/Rollout.js"

const appId = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const groupId = "5b810680-e36c-4879-b98a-4f989e80b899"

const pkg = (version: string, arch: Package["arch"] = "amd64") =>
  new Package({
    appId,
    version,
    arch,
    name: "update.gz",
    size: 1000,
    sha1: "+LXvjiaPkeYDLHoNKlf9qbJwvnk=",
    sha256: "0VAlQW3RE99SGtSB5R4m08antAHO8XDoBMKDyxQT/Mg=",
    action: new PostinstallAction({ isDelta: false, needsAdmin: false, disablePayloadBackoff: true }),
    extraFiles: [],
    createdAt: new Date(0)
  })

const policy = (fields: Partial<ConstructorParameters<typeof Policy>[0]> = {}) =>
  new Policy({ ...defaultPolicy, safeMode: false, maxUpdatesPerPeriod: 5, periodSeconds: 3600, ...fields })

const group = (
  policyFields: Partial<ConstructorParameters<typeof Policy>[0]> = {},
  fields: Partial<ConstructorParameters<typeof Group>[0]> = {}
) =>
  new Group({
    id: groupId,
    appId,
    name: "Stable",
    description: "",
    track: "stable",
    channel: "stable",
    policy: policy(policyFields),
    paused: false,
    createdAt: new Date(0),
    ...fields
  })

const channel = (fields: Partial<ConstructorParameters<typeof Channel>[0]> = {}) =>
  new Channel({
    appId,
    name: "stable",
    arch: "amd64",
    color: "",
    package: "3815.2.1",
    floors: [],
    blocklist: [],
    updatedAt: new Date(0),
    ...fields
  })

const versions = ["3033.2.0", "3139.2.0", "3227.2.0", "3374.2.0", "3510.2.0", "3602.2.0", "3760.2.0", "3815.2.1"]

const config = (channels: ReadonlyArray<Channel> = [channel()], groups: ReadonlyArray<Group> = [group()]) =>
  new Rollout.Config({
    applications: [],
    packages: [...versions.map((v) => pkg(v)), pkg("3815.2.1", "arm64"), pkg("4000.0.0", "all")],
    channels,
    groups
  })

const machine = (version: string | undefined, fields: Partial<Rollout.Machine> = {}): Rollout.Machine => ({
  version,
  arch: "amd64",
  multiManifestOk: false,
  ...fields
})

const stepVersions = (target: Rollout.Target) =>
  target._tag === "Steps" ? target.steps.map((step) => step.package.version) : target.reason

const app = (fields: Partial<ConstructorParameters<typeof Request.AppRequest>[0]> = {}) =>
  new Request.AppRequest({ appId, ...fields })

describe("Rollout.archOf", () => {
  it("reads the arch from the board, then os@arch, else amd64", () => {
    const request = (arch?: string) => Request.make({ os: new Request.Os({ platform: "CoreOS", ...(arch === undefined ? {} : { arch }) }) })
    expect(Rollout.archOf(request(), app({ board: "amd64-usr" }))).toBe("amd64")
    expect(Rollout.archOf(request(), app({ board: "arm64-usr" }))).toBe("arm64")
    expect(Rollout.archOf(request(), app({ board: "amd64-generic" }))).toBe("amd64")
    expect(Rollout.archOf(request("x64"), app({ board: "arm64-usr" }))).toBe("arm64")
    expect(Rollout.archOf(request("arm64"), app())).toBe("arm64")
    expect(Rollout.archOf(request("aarch64"), app())).toBe("arm64")
    expect(Rollout.archOf(request("x64"), app())).toBe("amd64")
    expect(Rollout.archOf(request("x86"), app())).toBe("x86")
    expect(Rollout.archOf(request("arm64"), app({ board: "pentium-usr" }))).toBe("arm64")
    expect(Rollout.archOf(request("sparc"), app())).toBe("amd64")
    expect(Rollout.archOf(request(), app())).toBe("amd64")
    expect(Rollout.archOf(new Request.Request({ protocol: "3.0", apps: [] }), app())).toBe("amd64")
  })
})

describe("Rollout.groupFor and channelFor", () => {
  it("finds a group by its track, else by its id, within the app", () => {
    const beta = group({}, { id: "9d5a37f4-7f3a-4a37-9d2c-3c3f0e6a7b10", name: "Beta", track: "beta", channel: "beta" })
    const cfg = config([channel()], [group(), beta])
    expect(Rollout.groupFor(cfg, appId, "stable")?.name).toBe("Stable")
    expect(Rollout.groupFor(cfg, appId, "beta")?.name).toBe("Beta")
    expect(Rollout.groupFor(cfg, appId, groupId)?.name).toBe("Stable")
    expect(Rollout.groupFor(cfg, appId, "alpha")).toBeUndefined()
    expect(Rollout.groupFor(cfg, appId, undefined)).toBeUndefined()
    expect(Rollout.groupFor(cfg, appId, "")).toBeUndefined()
    expect(Rollout.groupFor(cfg, "{other}", "stable")).toBeUndefined()
  })

  it("uses the channel of the machine's arch, else the channel for all arches", () => {
    const arm = channel({ arch: "arm64", package: "3760.2.0" })
    const all = channel({ arch: "all", package: "4000.0.0" })
    const cfg = config([channel(), arm, all])
    expect(Rollout.channelFor(cfg, group(), "amd64")?.package).toBe("3815.2.1")
    expect(Rollout.channelFor(cfg, group(), "arm64")?.package).toBe("3760.2.0")
    expect(Rollout.channelFor(cfg, group(), "x86")?.package).toBe("4000.0.0")
    expect(Rollout.channelFor(config([channel()]), group(), "arm64")).toBeUndefined()
  })
})

describe("Rollout.target", () => {
  it("offers the channel's package to older versions only", () => {
    const cfg = config()
    expect(stepVersions(Rollout.target(cfg, group(), channel(), machine("3760.2.0")))).toEqual(["3815.2.1"])
    expect(stepVersions(Rollout.target(cfg, group(), channel(), machine("3815.2.1")))).toBe(
      "3815.2.1 is not older than 3815.2.1"
    )
    expect(stepVersions(Rollout.target(cfg, group(), channel(), machine("3815.2.1.0")))).toBe(
      "3815.2.1.0 is not older than 3815.2.1"
    )
    expect(stepVersions(Rollout.target(cfg, group(), channel(), machine("3900.0.0")))).toBe(
      "3900.0.0 is not older than 3815.2.1"
    )
    expect(Rollout.target(cfg, group(), channel(), machine("3900.0.0"))._tag).toBe("UpToDate")
    expect(stepVersions(Rollout.target(cfg, group(), channel(), machine("ForcedUpdate")))).toEqual(["3815.2.1"])
  })

  it("downgrades only when the group's policy allows it, straight to the target", () => {
    const back = channel({ package: "3760.2.0", floors: [new Floor({ version: "3602.2.0", reason: "x" })] })
    expect(Rollout.target(config([back]), group(), back, machine("3815.2.1"))._tag).toBe("UpToDate")
    const target = Rollout.target(config([back]), group({ allowDowngrade: true }), back, machine("3815.2.1"))
    expect(stepVersions(target)).toEqual(["3760.2.0"])
    expect(target._tag === "Steps" && target.steps[0].isTarget).toBe(true)
    expect(Rollout.target(config([back]), group({ allowDowngrade: true }), back, machine("3760.2.0"))._tag).toBe("UpToDate")
  })

  it("brings a stock client through every floor, one step per check, in version order", () => {
    const floors = [
      new Floor({ version: "3374.2.0", reason: "new partition layout" }),
      new Floor({ version: "3139.2.0", reason: "cgroups v2" }),
      new Floor({ version: "3602.2.0", reason: "new signing key" }),
      new Floor({ version: "4000.0.0", reason: "above the target, never offered" })
    ]
    const ch = channel({ floors })
    const cfg = config([ch])
    const path: Array<string> = []
    let version = "3033.2.0"
    for (let check = 0; check < 10; check++) {
      const target = Rollout.target(cfg, group(), ch, machine(version))
      if (target._tag !== "Steps") break
      expect(target.steps).toHaveLength(1)
      expect(target.target.version).toBe("3815.2.1")
      version = target.steps[0].package.version
      path.push(`${version}${target.steps[0].floorReason === undefined ? "" : ` (${target.steps[0].floorReason})`}`)
    }
    expect(path).toEqual([
      "3139.2.0 (cgroups v2)",
      "3374.2.0 (new partition layout)",
      "3602.2.0 (new signing key)",
      "3815.2.1"
    ])
    // A machine already on a floor skips it; one past every floor goes straight to the target.
    expect(stepVersions(Rollout.target(cfg, group(), ch, machine("3374.2.0")))).toEqual(["3602.2.0"])
    expect(stepVersions(Rollout.target(cfg, group(), ch, machine("3760.2.0")))).toEqual(["3815.2.1"])
  })

  it("gives a multi-manifest client every floor and the target, at most five manifests, never skipping a floor", () => {
    const three = channel({ floors: ["3602.2.0", "3139.2.0", "3374.2.0"].map((version) => new Floor({ version, reason: `to ${version}` })) })
    const target = Rollout.target(config([three]), group(), three, machine("3033.2.0", { multiManifestOk: true }))
    expect(target._tag).toBe("Steps")
    if (target._tag !== "Steps") return
    expect(target.steps.map((s) => [s.package.version, s.floorReason, s.isTarget])).toEqual([
      ["3139.2.0", "to 3139.2.0", false],
      ["3374.2.0", "to 3374.2.0", false],
      ["3602.2.0", "to 3602.2.0", false],
      ["3815.2.1", undefined, true]
    ])
    expect(Rollout.grantedVersionOf(target)).toBe("3815.2.1")

    const four = channel({ floors: versions.slice(1, 5).map((version) => new Floor({ version, reason: "" })) })
    expect(stepVersions(Rollout.target(config([four]), group(), four, machine("3033.2.0", { multiManifestOk: true }))))
      .toEqual(["3139.2.0", "3227.2.0", "3374.2.0", "3510.2.0", "3815.2.1"])

    const six = channel({ floors: versions.slice(1, 7).map((version) => new Floor({ version, reason: "" })) })
    const first = Rollout.target(config([six]), group(), six, machine("3033.2.0", { multiManifestOk: true }))
    expect(stepVersions(first)).toEqual(["3139.2.0", "3227.2.0", "3374.2.0", "3510.2.0", "3602.2.0"])
    expect(first._tag === "Steps" && Rollout.grantedVersionOf(first)).toBe("3602.2.0")
    expect(stepVersions(Rollout.target(config([six]), group(), six, machine("3602.2.0", { multiManifestOk: true }))))
      .toEqual(["3760.2.0", "3815.2.1"])
  })

  it("skips blocklisted floors and never offers a blocklisted target", () => {
    const floors = ["3139.2.0", "3374.2.0"].map((version) => new Floor({ version, reason: "" }))
    const ch = channel({ floors, blocklist: ["3139.2.0"] })
    expect(stepVersions(Rollout.target(config([ch]), group(), ch, machine("3033.2.0")))).toEqual(["3374.2.0"])
    expect(stepVersions(Rollout.target(config([ch]), group(), ch, machine("3033.2.0", { multiManifestOk: true }))))
      .toEqual(["3374.2.0", "3815.2.1"])
    const blocked = channel({ floors, blocklist: ["3815.2.1"] })
    const target = Rollout.target(config([blocked]), group(), blocked, machine("3033.2.0"))
    expect(target).toEqual(new Rollout.UpToDate({ reason: "3815.2.1 is blocklisted on channel stable" }))
  })

  it("serves the package of the machine's arch, else the one for all arches, else nothing", () => {
    const cfg = config()
    const arm = Rollout.target(cfg, group(), channel({ arch: "arm64" }), machine("3760.2.0", { arch: "arm64" }))
    expect(arm._tag === "Steps" && arm.steps[0].package.arch).toBe("arm64")
    const all = Rollout.target(cfg, group(), channel({ arch: "all", package: "4000.0.0" }), machine("3760.2.0", { arch: "x86" }))
    expect(all._tag === "Steps" && all.steps[0].package.arch).toBe("all")
    expect(Rollout.target(cfg, group(), channel({ arch: "all" }), machine("3760.2.0", { arch: "x86" }))).toEqual(
      new Rollout.Unavailable({ reason: "no package 3815.2.1 for x86" })
    )
  })

  it("offers nothing for a channel without a package or a version it cannot read", () => {
    const empty = new Channel({ appId, name: "stable", arch: "amd64", color: "", floors: [], blocklist: [], updatedAt: new Date(0) })
    expect(Rollout.target(config(), group(), empty, machine("1.0.0"))).toEqual(
      new Rollout.Unavailable({ reason: "channel stable has no package" })
    )
    for (const version of [undefined, "", "latest", "1.x"]) {
      const target = Rollout.target(config(), group(), channel(), machine(version))
      expect(target._tag, String(version)).toBe("Unavailable")
    }
  })
})

describe("Rollout.bucket", () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `${i.toString(16).padStart(8, "0")}c0ffee4d9083b41c3253212c0c37`)
  const keyA = Rollout.rolloutKey(group(), "3815.2.1")
  const placesA = ids.map((id) => Rollout.bucket(id, keyA))
  const inside = (places: ReadonlyArray<number>, percent: number) =>
    new Set(ids.filter((_, i) => Rollout.inRollout(places[i]!, percent)))

  it("is deterministic and in [0, 100)", () => {
    expect(Rollout.bucket(ids[0]!, keyA)).toBe(placesA[0])
    expect(Math.min(...placesA)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...placesA)).toBeLessThan(100)
  })

  it("lets in the configured share of 10,000 machines, within one percentage point", () => {
    for (const percent of [1, 5, 10, 25, 33.3, 50, 75, 90, 99]) {
      const share = (inside(placesA, percent).size / ids.length) * 100
      expect(Math.abs(share - percent), `${percent} %: ${share}`).toBeLessThanOrEqual(1)
    }
    expect(inside(placesA, 0).size).toBe(0)
    expect(inside(placesA, 100).size).toBe(ids.length)
  })

  it("keeps every machine already in when the percentage is raised", () => {
    let previous = new Set<string>()
    for (const percent of [1, 5, 10, 20, 50, 80, 100]) {
      const now = inside(placesA, percent)
      for (const id of previous) expect(now.has(id), `${id} at ${percent} %`).toBe(true)
      expect(now.size).toBeGreaterThan(previous.size)
      previous = now
    }
  })

  it("shuffles the machines again for a new target version or another group", () => {
    const first = inside(placesA, 10)
    for (const key of [Rollout.rolloutKey(group(), "3815.2.2"), Rollout.rolloutKey(group({}, { id: "other" }), "3815.2.1")]) {
      const places = ids.map((id) => Rollout.bucket(id, key))
      const next = inside(places, 10)
      const both = [...next].filter((id) => first.has(id)).length
      // Independent draws: about 10 % of the 10 % overlap (100 machines), far from all 1,000.
      expect(both).toBeGreaterThan(50)
      expect(both).toBeLessThan(150)
    }
  })
})

const noStats: Rollout.Stats = {
  grantedInPeriod: 0,
  inProgress: 0,
  rolloutFinished: 0,
  rolloutFailed: 0,
  rolloutInProgress: 0,
  rolloutTimedOut: 0
}

const decide = (g: Group, stats: Partial<Rollout.Stats> = {}, now = Date.UTC(2025, 5, 2, 10), place = 10) => {
  const answer = Rollout.admit({ group: g, stats: { ...noStats, ...stats }, now, bucket: place })
  return answer._tag === "Grant" ? "grant" : answer.reason
}

describe("Rollout.admit", () => {
  const weekdays = new MaintenanceWindow({ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timeZone: "UTC" })
  const saturday = Date.UTC(2025, 5, 7, 10) // Sat 10:00 UTC

  it("grants when no rule holds", () => {
    expect(decide(group())).toBe("grant")
    expect(decide(group({ safeMode: true }), { rolloutFinished: 1, rolloutInProgress: 1 })).toBe("grant")
  })

  it("holds a paused group, saying why it was paused", () => {
    expect(decide(group({}, { paused: true }))).toBe("on hold: group paused")
    expect(decide(group({}, { paused: true, pausedReason: "failure brake: 3 of 5 finished updates failed, over 20 %" })))
      .toBe("on hold: group paused (failure brake: 3 of 5 finished updates failed, over 20 %)")
  })

  it("holds a group with updates disabled", () => {
    expect(decide(group({ updatesEnabled: false }))).toBe("on hold: updates disabled for the group")
  })

  it("holds outside every maintenance window", () => {
    expect(decide(group({ windows: [weekdays] }), {}, saturday)).toBe("on hold: outside the maintenance windows")
    const weekend = new MaintenanceWindow({ days: ["sat"], start: "08:00", end: "12:00", timeZone: "UTC" })
    expect(decide(group({ windows: [weekdays, weekend] }), {}, saturday)).toBe("grant")
  })

  it("holds machines outside the rollout percentage", () => {
    expect(decide(group({ rolloutPercent: 25 }), {}, undefined, 24.9)).toBe("grant")
    expect(decide(group({ rolloutPercent: 25 }), {}, undefined, 25)).toBe("on hold: not in the 25 % of machines this rollout reaches")
    expect(decide(group({ rolloutPercent: 0 }), {}, undefined, 0)).toBe("on hold: not in the 0 % of machines this rollout reaches")
  })

  it("holds when the period's grants are used up", () => {
    expect(decide(group(), { grantedInPeriod: 4 })).toBe("grant")
    expect(decide(group(), { grantedInPeriod: 5 })).toBe("on hold: 5 of 5 updates in the last 1 h")
    expect(decide(group({ maxUpdatesPerPeriod: 2, periodSeconds: 900 }), { grantedInPeriod: 2 })).toBe(
      "on hold: 2 of 2 updates in the last 15 min"
    )
    expect(decide(group({ maxUpdatesPerPeriod: 0 }))).toBe("on hold: 0 of 0 updates in the last 1 h")
  })

  it("holds when as many updates as allowed are in progress", () => {
    expect(decide(group({ maxConcurrentUpdates: 2 }), { grantedInPeriod: 2, inProgress: 2 })).toBe(
      "on hold: 2 of 2 updates in progress"
    )
    expect(decide(group({ maxConcurrentUpdates: 2 }), { grantedInPeriod: 2, inProgress: 1 })).toBe("grant")
    // Without its own limit, the period's maximum bounds the updates in progress.
    expect(decide(group({ maxUpdatesPerPeriod: 3, periodSeconds: 60 }), { inProgress: 3 })).toBe(
      "on hold: 3 of 3 updates in progress"
    )
  })

  it("in safe mode lets one update through until an attempt of the rollout has finished", () => {
    const safe = group({ safeMode: true })
    expect(decide(safe)).toBe("grant")
    expect(decide(safe, { grantedInPeriod: 1, inProgress: 1, rolloutInProgress: 1 })).toBe(
      "on hold: safe mode, waiting for the first update of the rollout to finish"
    )
    expect(decide(safe, { grantedInPeriod: 1, inProgress: 1, rolloutInProgress: 1, rolloutFinished: 1, rolloutFailed: 1 }))
      .toBe("grant")
    expect(decide(group(), { grantedInPeriod: 1, inProgress: 1, rolloutInProgress: 1 })).toBe("grant")
  })

  it("in safe mode turns updates off once as many updates timed out as a period allows", () => {
    const safe = group({ safeMode: true, maxUpdatesPerPeriod: 2 })
    expect(decide(safe, { rolloutTimedOut: 1 })).toBe("grant")
    const answer = Rollout.admit({ group: safe, stats: { ...noStats, rolloutTimedOut: 2 }, now: 0, bucket: 0 })
    expect(answer).toEqual(
      new Rollout.Hold({ reason: "on hold: safe mode turned updates off for the group after 2 updates timed out", disableUpdates: true })
    )
    expect(decide(group({ maxUpdatesPerPeriod: 2 }), { rolloutTimedOut: 2 })).toBe("grant")
  })

  it("applies the rules in order: paused, disabled, window, percentage, period, concurrency, safe mode", () => {
    // Every rule holds at first; lifting the rule that answered lets the next one answer.
    let fields: Partial<ConstructorParameters<typeof Group>[0]> = { paused: true }
    let policyFields: Partial<ConstructorParameters<typeof Policy>[0]> = {
      updatesEnabled: false,
      windows: [weekdays],
      rolloutPercent: 10,
      safeMode: true,
      maxUpdatesPerPeriod: 2,
      maxConcurrentUpdates: 1
    }
    let stats: Partial<Rollout.Stats> = { grantedInPeriod: 2, inProgress: 1, rolloutInProgress: 1, rolloutTimedOut: 2 }
    const lift: Array<() => void> = [
      () => (fields = {}),
      () => (policyFields = { ...policyFields, updatesEnabled: true }),
      () => (policyFields = { ...policyFields, windows: [] }),
      () => (policyFields = { ...policyFields, rolloutPercent: 100 }),
      () => (stats = { ...stats, grantedInPeriod: 1 }),
      () => (stats = { ...stats, inProgress: 0 }),
      () => (stats = { ...stats, rolloutInProgress: 0 }),
      () => (stats = { ...stats, rolloutTimedOut: 0 })
    ]
    const answers: Array<string> = []
    for (const next of [...lift, () => {}]) {
      answers.push(decide(group(policyFields, fields), stats, saturday, 50))
      next()
    }
    expect(answers).toEqual([
      "on hold: group paused",
      "on hold: updates disabled for the group",
      "on hold: outside the maintenance windows",
      "on hold: not in the 10 % of machines this rollout reaches",
      "on hold: 2 of 2 updates in the last 1 h",
      "on hold: 1 of 1 updates in progress",
      "on hold: safe mode, waiting for the first update of the rollout to finish",
      "on hold: safe mode turned updates off for the group after 2 updates timed out",
      "grant"
    ])
  })

  it("gate answers the configuration's holds alone, and nothing once they pass", () => {
    expect(Rollout.gate({ group: group({ updatesEnabled: false }), now: 0, bucket: 0 })?.reason).toBe(
      "on hold: updates disabled for the group"
    )
    expect(Rollout.gate({ group: group(), now: 0, bucket: 0 })).toBeUndefined()
  })
})

describe("Rollout.resume", () => {
  const now = 10_000_000
  const p = policy({ updateTimeoutSeconds: 3600 })
  const state = (status: Rollout.InstanceState["status"], lastGrant = now - 60_000) => ({
    status,
    grantedVersion: "3815.2.1",
    lastGrant
  })

  it("sends a granted machine below its granted version the same package again, within the timeout", () => {
    expect(Rollout.resume(state("granted"), p, now, "3760.2.0")).toEqual({ _tag: "Again", grantedVersion: "3815.2.1" })
    expect(Rollout.resume(state("granted"), p, now, "3815.2.1")._tag).toBe("Fresh")
    expect(Rollout.resume(state("granted", now - 3_600_000), p, now, "3760.2.0")._tag).toBe("Fresh")
  })

  it("refuses a second update while one is downloading, or installed and waiting for the reboot", () => {
    expect(Rollout.resume(state("downloading"), p, now, "3760.2.0")).toEqual({ _tag: "InProgress", reason: "on hold: update in progress" })
    expect(Rollout.resume(state("downloaded"), p, now, "3760.2.0")._tag).toBe("InProgress")
    expect(Rollout.resume(state("downloading", now - 3_600_000), p, now, "3760.2.0")._tag).toBe("Fresh")
    expect(Rollout.resume(state("installed", now - 86_400_000), p, now, "3760.2.0")).toEqual({
      _tag: "InProgress",
      reason: "on hold: update installed, waiting for the machine to reboot"
    })
    for (const status of ["undefined", "complete", "error", "onHold"] as const) {
      expect(Rollout.resume(state(status), p, now, "3760.2.0")._tag, status).toBe("Fresh")
    }
    expect(Rollout.resume(undefined, p, now, "3760.2.0")._tag).toBe("Fresh")
  })

  it("regrant serves the granted steps again, or the granted package alone after the channel moved", () => {
    const ch = channel({ floors: [new Floor({ version: "3602.2.0", reason: "key" })] })
    expect(stepVersions(Rollout.regrant(config([ch]), group(), ch, machine("3033.2.0"), "3602.2.0")!)).toEqual(["3602.2.0"])
    expect(
      stepVersions(Rollout.regrant(config([ch]), group(), ch, machine("3033.2.0", { multiManifestOk: true }), "3815.2.1")!)
    ).toEqual(["3602.2.0", "3815.2.1"])
    expect(stepVersions(Rollout.regrant(config([ch]), group(), ch, machine("3033.2.0"), "3510.2.0")!)).toEqual(["3510.2.0"])
    expect(Rollout.regrant(config([ch]), group(), ch, machine("3033.2.0"), "9.9.9")).toBeUndefined()
  })
})

describe("Rollout.eventTransition", () => {
  const granted = { status: "granted" as const, version: "3760.2.0", grantedVersion: "3815.2.1" }
  const ev = (eventType: number, eventResult: number, errorCode?: number) => ({
    eventType,
    eventResult,
    ...(errorCode === undefined ? {} : { errorCode })
  })

  it("follows update_engine's progress to completion on the granted version", () => {
    let state: Rollout.EventState = granted
    const seen: Array<string> = []
    for (const event of [ev(13, 1), ev(14, 1), ev(3, 1), ev(3, 2)]) {
      const next = Rollout.eventTransition(state, event)!
      seen.push(`${next.status} ${next.version} ${next.outcome ?? "-"}`)
      state = { ...state, status: next.status, version: next.version }
    }
    expect(seen).toEqual([
      "downloading 3760.2.0 -",
      "downloaded 3760.2.0 -",
      "installed 3760.2.0 -",
      "complete 3815.2.1 complete"
    ])
    expect(Rollout.eventTransition({ ...granted, status: "downloaded" }, ev(800, 1))?.status).toBe("installed")
  })

  it("turns any error result into an error with the code, flag bits masked, and marks rollbacks", () => {
    expect(Rollout.eventTransition({ ...granted, status: "downloading" }, ev(3, 0, 268435490))).toEqual({
      status: "error",
      version: "3760.2.0",
      errorCode: 34,
      outcome: "error",
      rollback: false
    })
    expect(Rollout.eventTransition({ ...granted, status: "installed" }, ev(3, 0, 44))?.rollback).toBe(true)
    expect(Rollout.eventTransition(granted, ev(14, 0))).toEqual({ status: "error", version: "3760.2.0", outcome: "error", rollback: false })
  })

  it("moves nothing without an update in progress, or for other events", () => {
    for (const status of ["undefined", "complete", "error", "onHold"] as const) {
      expect(Rollout.eventTransition({ ...granted, status }, ev(3, 2)), status).toBeUndefined()
      expect(Rollout.eventTransition({ ...granted, status }, ev(3, 0, 9)), status).toBeUndefined()
    }
    expect(Rollout.eventTransition(granted, ev(3, 9, 36))).toBeUndefined()
    expect(Rollout.eventTransition(granted, ev(50, 1))).toBeUndefined()
  })
})

describe("Rollout.brakeTrips", () => {
  const brake = new FailureBrake({ ratio: 0.2, minAttempts: 5 })

  it("pauses once enough attempts finished and too many failed", () => {
    expect(Rollout.brakeTrips(brake, { finished: 4, failed: 4 })).toBeUndefined()
    expect(Rollout.brakeTrips(brake, { finished: 5, failed: 1 })).toBeUndefined()
    expect(Rollout.brakeTrips(brake, { finished: 5, failed: 2 })).toBe("failure brake: 2 of 5 finished updates failed, over 20 %")
    expect(Rollout.brakeTrips(brake, { finished: 10, failed: 2 })).toBeUndefined()
    expect(Rollout.brakeTrips(brake, { finished: 10, failed: 3 })).toBe("failure brake: 3 of 10 finished updates failed, over 20 %")
    expect(Rollout.brakeTrips(undefined, { finished: 100, failed: 100 })).toBeUndefined()
    expect(Rollout.brakeTrips(new FailureBrake({ ratio: 0, minAttempts: 1 }), { finished: 1, failed: 1 })).toBe(
      "failure brake: 1 of 1 finished updates failed, over 0 %"
    )
  })
})

describe("Rollout maintenance windows", () => {
  const at = (iso: string) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse(iso))
      return yield* Clock.currentTimeMillis
    })
  const answerAt = (windows: ReadonlyArray<MaintenanceWindow>, iso: string) =>
    Effect.map(at(iso), (now) => Rollout.gate({ group: group({ windows }), now, bucket: 0 })?.reason ?? "grant")
  const open = (windows: ReadonlyArray<MaintenanceWindow>, times: ReadonlyArray<string>) =>
    Effect.forEach(times, (iso) => Effect.map(answerAt(windows, iso), (answer) => `${iso} ${answer === "grant" ? "open" : "closed"}`))

  it.effect("opens on its days between its hours", () =>
    Effect.gen(function*() {
      const office = new MaintenanceWindow({ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timeZone: "UTC" })
      expect(yield* answerAt([office], "2025-06-02T08:59:00Z")).toBe("on hold: outside the maintenance windows")
      expect(
        yield* open([office], [
          "2025-06-02T08:59:00Z",
          "2025-06-02T09:00:00Z",
          "2025-06-02T16:59:00Z",
          "2025-06-02T17:00:00Z",
          "2025-06-06T12:00:00Z",
          "2025-06-07T12:00:00Z",
          "2025-06-08T12:00:00Z"
        ])
      ).toEqual([
        "2025-06-02T08:59:00Z closed",
        "2025-06-02T09:00:00Z open",
        "2025-06-02T16:59:00Z open",
        "2025-06-02T17:00:00Z closed",
        "2025-06-06T12:00:00Z open",
        "2025-06-07T12:00:00Z closed",
        "2025-06-08T12:00:00Z closed"
      ])
      const allDay = new MaintenanceWindow({ days: ["sun"], start: "00:00", end: "24:00", timeZone: "UTC" })
      expect(yield* open([allDay], ["2025-06-08T00:00:00Z", "2025-06-08T23:59:00Z", "2025-06-09T00:00:00Z"])).toEqual([
        "2025-06-08T00:00:00Z open",
        "2025-06-08T23:59:00Z open",
        "2025-06-09T00:00:00Z closed"
      ])
    }))

  it.effect("runs a window that ends before it starts past midnight into the next day", () =>
    Effect.gen(function*() {
      const night = new MaintenanceWindow({ days: ["fri"], start: "22:00", end: "02:00", timeZone: "UTC" })
      expect(
        yield* open([night], [
          "2025-06-06T21:59:00Z", // Fri
          "2025-06-06T22:00:00Z",
          "2025-06-06T23:59:00Z",
          "2025-06-07T01:59:00Z", // Sat, still Friday's window
          "2025-06-07T02:00:00Z",
          "2025-06-07T22:30:00Z", // Sat night: not a window day
          "2025-06-06T01:00:00Z" // Fri early: Thursday's night is no window
        ])
      ).toEqual([
        "2025-06-06T21:59:00Z closed",
        "2025-06-06T22:00:00Z open",
        "2025-06-06T23:59:00Z open",
        "2025-06-07T01:59:00Z open",
        "2025-06-07T02:00:00Z closed",
        "2025-06-07T22:30:00Z closed",
        "2025-06-06T01:00:00Z closed"
      ])
    }))

  it.effect("follows the time zone's wall clock across the March DST change in Europe/Berlin", () =>
    Effect.gen(function*() {
      const office = new MaintenanceWindow({
        days: ["mon", "tue", "wed", "thu", "fri"],
        start: "09:00",
        end: "17:00",
        timeZone: "Europe/Berlin"
      })
      // Friday 28 March 2025 is on CET (UTC+1), Monday 31 March on CEST (UTC+2).
      expect(
        yield* open([office], [
          "2025-03-28T07:59:00Z",
          "2025-03-28T08:00:00Z",
          "2025-03-28T15:59:00Z",
          "2025-03-28T16:00:00Z",
          "2025-03-31T06:59:00Z",
          "2025-03-31T07:00:00Z",
          "2025-03-31T14:59:00Z",
          "2025-03-31T15:00:00Z"
        ])
      ).toEqual([
        "2025-03-28T07:59:00Z closed",
        "2025-03-28T08:00:00Z open",
        "2025-03-28T15:59:00Z open",
        "2025-03-28T16:00:00Z closed",
        "2025-03-31T06:59:00Z closed",
        "2025-03-31T07:00:00Z open",
        "2025-03-31T14:59:00Z open",
        "2025-03-31T15:00:00Z closed"
      ])
      // On Sunday 30 March the clocks jump from 02:00 to 03:00: 01:00-04:00 lasts two hours that night.
      const night = new MaintenanceWindow({ days: ["sun"], start: "01:00", end: "04:00", timeZone: "Europe/Berlin" })
      expect(
        yield* open([night], [
          "2025-03-29T23:59:00Z",
          "2025-03-30T00:00:00Z",
          "2025-03-30T00:59:00Z",
          "2025-03-30T01:00:00Z",
          "2025-03-30T01:59:00Z",
          "2025-03-30T02:00:00Z"
        ])
      ).toEqual([
        "2025-03-29T23:59:00Z closed",
        "2025-03-30T00:00:00Z open",
        "2025-03-30T00:59:00Z open",
        "2025-03-30T01:00:00Z open",
        "2025-03-30T01:59:00Z open",
        "2025-03-30T02:00:00Z closed"
      ])
    }))

  it("refuses a time zone that is not an IANA name, and never opens one that slipped through", () => {
    const decode = Schema.decodeUnknownEither(MaintenanceWindow)
    expect(decode({ days: ["mon"], start: "09:00", end: "17:00", timeZone: "Europe/Berlin" })._tag).toBe("Right")
    expect(decode({ days: ["mon"], start: "09:00", end: "17:00", timeZone: "Mars/Olympus" })._tag).toBe("Left")
    expect(decode({ days: ["mon"], start: "9:00", end: "17:00", timeZone: "UTC" })._tag).toBe("Left")
    const bogus = MaintenanceWindow.make({ days: ["mon"], start: "00:00", end: "24:00", timeZone: "UTC" })
    expect(Rollout.inWindow({ ...bogus, timeZone: "Mars/Olympus" }, Date.UTC(2025, 5, 2, 12))).toBe(false)
    expect(Rollout.inWindow(bogus, Date.UTC(2025, 5, 2, 12))).toBe(true)
  })
})
