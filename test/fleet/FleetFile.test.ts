import { describe, expect, it } from "@effect/vitest"
import { Either, Option } from "effect"
import * as FleetFile from "../../src/fleet/FleetFile.js"
import { defaultPolicy, FailureBrake, Floor, Policy } from "../../src/fleet/Model.js"
import { readFixture } from "../fixtures.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

const parsed = (name: string, text: string): FleetFile.Parsed => {
  const result = FleetFile.parse(name, text)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const failure = (name: string, text: string): FleetFile.FleetFileInvalid => {
  const result = FleetFile.parse(name, text)
  if (Either.isRight(result)) throw new Error("expected the file to be refused")
  return result.left
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type State = Map<string, Mutable<FleetFile.ServerApplication>>

/** What a server that carries out `changes` has afterwards (the store's rules, in miniature). */
const carryOut = (state: FleetFile.ServerState, changes: ReadonlyArray<FleetFile.Change>): FleetFile.ServerState => {
  const next: State = new Map(
    [...state].map(([id, app]) => [id, {
      ...app,
      channels: app.channels.map((c) => ({ ...c, floors: [...c.floors], blocklist: [...c.blocklist] })),
      groups: app.groups.map((g) => ({ ...g })),
      packages: [...app.packages]
    }])
  )
  const appOf = (id: string) => next.get(id)!
  const channelOf = (c: { app: string; channel: string; arch: string }) =>
    appOf(c.app).channels.find((x) => x.name === c.channel && x.arch === c.arch)! as Mutable<
      FleetFile.ServerApplication["channels"][number]
    >
  const merge = (policy: Policy, patch: FleetFile.PolicyRequest): Policy => {
    const merged: Record<string, unknown> = { ...policy }
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key]
      else merged[key] = value
    }
    return Policy.make(merged as unknown as Policy)
  }
  for (const change of changes) {
    FleetFile.Change.$match(change, {
      CreateApplication: ({ body }) => {
        const existing = next.get(body.id)
        next.set(body.id, { ...(existing ?? { channels: [], groups: [], packages: [] }), application: body })
      },
      UpdateApplication: ({ app, patch }) => {
        const a = appOf(app)
        a.application = { ...a.application!, ...patch }
      },
      CreateChannel: ({ app, body }) => {
        ;(appOf(app).channels as Array<unknown>).push({ ...body, floors: [], blocklist: [] })
      },
      UpdateChannel: (c) => {
        const channel = channelOf(c)
        if (c.patch.color !== undefined) channel.color = c.patch.color
        if (c.patch.package !== undefined) {
          if (c.patch.package === null) delete channel.package
          else channel.package = c.patch.package
        }
      },
      SetFloor: (c) => {
        const channel = channelOf(c)
        channel.floors = [...channel.floors.filter((f) => f.version !== c.version), Floor.make({ version: c.version, reason: c.reason })]
      },
      RemoveFloor: (c) => {
        const channel = channelOf(c)
        channel.floors = channel.floors.filter((f) => f.version !== c.version)
      },
      BlockVersion: (c) => {
        const channel = channelOf(c)
        channel.blocklist = [...channel.blocklist, c.version]
      },
      UnblockVersion: (c) => {
        const channel = channelOf(c)
        channel.blocklist = channel.blocklist.filter((v) => v !== c.version)
      },
      CreateGroup: ({ app, body }) => {
        ;(appOf(app).groups as Array<unknown>).push({ ...body, policy: merge(defaultPolicy, body.policy) })
      },
      UpdateGroup: ({ app, group, patch }) => {
        const groups = appOf(app).groups as Array<Mutable<FleetFile.ServerApplication["groups"][number]>>
        const g = groups.find((x) => x.name === group)!
        if (patch.description !== undefined) g.description = patch.description
        if (patch.track !== undefined) g.track = patch.track
        if (patch.channel !== undefined) g.channel = patch.channel
        if (patch.policy !== undefined) g.policy = merge(g.policy, patch.policy)
      }
    })
  }
  return next
}

const withPackages = (versions: ReadonlyArray<string>, arch: "amd64" | "all" = "amd64"): FleetFile.ServerState =>
  new Map([[flatcar, {
    application: { id: flatcar, name: "Flatcar", description: "" },
    channels: [],
    groups: [],
    packages: versions.map((version) => ({ version, arch }))
  }]])

describe("FleetFile.parse", () => {
  it("reads the example file, and the same setup written as JSON", () => {
    const yaml = parsed("fleet.yaml", readFixture("fleet/fleet.yaml"))
    expect(yaml.file.apps.map((a) => a.id)).toEqual([flatcar])
    expect(yaml.file.apps[0]!.groups!.map((g) => [g.name, FleetFile.trackOf(g), g.channel])).toEqual([
      ["beta", "beta", "beta"],
      ["production", "stable", "stable"]
    ])
    const json = parsed("fleet.json", JSON.stringify(yaml.file, null, 2))
    expect(JSON.stringify(json.file)).toBe(JSON.stringify(yaml.file))
  })

  it("refuses an unknown field, saying its line, column and path, and the fields known there", () => {
    const error = failure(
      "fleet.yaml",
      ["apps:", "  - id: a", "    name: A", "    channels:", "      - name: stable", "        arch: amd64", "        colour: red", ""]
        .join("\n")
    )
    expect(error.message).toBe(
      "fleet.yaml:7:9: apps[0].channels[0].colour: unknown field (known here: name, arch, package, color, floors, blocklist)"
    )
  })

  it("says what a wrong value should be, for every problem, the first in the file first", () => {
    const error = failure(
      "fleet.yaml",
      [
        "apps:",
        "  - id: a",
        "    name: A",
        "    channels:",
        "      - name: stable",
        "        arch: arm",
        "    groups:",
        "      - name: g",
        "        channel: stable",
        "        policy:",
        "          maxUpdatesPerPeriod: -1",
        "          safeMode: maybe",
        ""
      ].join("\n")
    )
    expect(error.message).toBe(
      `fleet.yaml:6:9: apps[0].channels[0].arch: expected one of "all", "amd64", "arm64" or "x86", got "arm" (and 2 more problems)`
    )
    const single = failure("f.yaml", "apps:\n  - id: a\n    name: A\n    groups:\n      - name: g\n        channel: c\n        policy:\n          safeMode: maybe\n")
    expect(single.message).toBe(`f.yaml:8:11: apps[0].groups[0].policy.safeMode: expected boolean, got "maybe"`)
    expect({ line: single.line, column: single.column, field: single.field }).toEqual({
      line: 8,
      column: 11,
      field: "apps[0].groups[0].policy.safeMode"
    })
  })

  it("points a missing field at the object that lacks it", () => {
    const error = failure("f.yaml", "apps:\n  - id: a\n    channels: []\n")
    expect(error.message).toBe("f.yaml:2:5: apps[0].name: missing: this field is required")
  })

  it("refuses versions, time zones and windows that the server would refuse", () => {
    const base = "apps:\n  - id: a\n    name: A\n    channels:\n      - name: s\n        arch: amd64\n"
    expect(failure("f.yaml", base + "        package: latest\n").message).toBe(
      `f.yaml:7:9: apps[0].channels[0].package: "latest" is not a version (such as 3815.2.1)`
    )
    const window = (zone: string, start = "22:00") =>
      "apps:\n  - id: a\n    name: A\n    groups:\n      - name: g\n        channel: s\n        policy:\n          windows:\n" +
      `            - days: [mon]\n              start: "${start}"\n              end: "04:00"\n              timeZone: ${zone}\n`
    expect(failure("f.yaml", window("Mars/Olympus")).message).toBe(
      `f.yaml:12:15: apps[0].groups[0].policy.windows[0].timeZone: "Mars/Olympus" is not an IANA time zone`
    )
    expect(failure("f.yaml", window("UTC", "25:00")).field).toBe("apps[0].groups[0].policy.windows[0].start")
  })

  it("says where YAML and JSON syntax is broken", () => {
    const yaml = failure("f.yaml", "apps:\n  - id: a\n    name: [A\n")
    expect(yaml.line).toBe(4)
    expect(yaml.message).toMatch(/^f\.yaml:4:1: not valid YAML: /)
    const twice = failure("f.yaml", "apps: []\napps: []\n")
    expect(twice.message).toMatch(/^f\.yaml:2:1: not valid YAML: map keys must be unique/)
    const json = failure("f.json", "{\n  \"apps\": [],\n}\n")
    expect(json.message).toMatch(/^f\.json:3:1: not valid JSON: /)
    expect(failure("f.yaml", "# nothing yet\n").message).toBe("f.yaml: the file is empty: it needs an apps list")
  })

  it("refuses names used twice: applications, channels of an arch, floors, groups and tracks", () => {
    const app = (body: string) => `apps:\n  - id: a\n    name: A\n${body}`
    expect(failure("f.yaml", "apps:\n  - id: a\n    name: A\n  - id: a\n    name: B\n").message).toBe(
      `f.yaml:4:5: apps[1].id: application "a" is already listed at apps[0]`
    )
    expect(
      failure("f.yaml", app("    channels:\n      - { name: s, arch: amd64 }\n      - { name: s, arch: arm64 }\n      - { name: s, arch: amd64 }\n"))
        .message
    ).toBe(`f.yaml:7:11: apps[0].channels[2].name: channel "s" (amd64) is already listed at apps[0].channels[0]`)
    expect(
      failure("f.yaml", app("    channels:\n      - name: s\n        arch: amd64\n        floors: [{ version: 1.0.0 }, { version: 1.0.0 }]\n"))
        .field
    ).toBe("apps[0].channels[0].floors[1].version")
    expect(
      failure("f.yaml", app("    groups:\n      - { name: beta, channel: s }\n      - { name: other, track: beta, channel: s }\n")).message
    ).toBe(`f.yaml:6:24: apps[0].groups[1].track: track "beta" is already the track of group "beta"`)
  })
})

describe("FleetFile.plan", () => {
  const example = parsed("fleet.yaml", readFixture("fleet/fleet.yaml")).file

  it("creates everything on an empty server: an application, then its channels, then its groups", () => {
    const { changes, problems } = FleetFile.plan(example, new Map())
    expect(problems).toEqual([])
    expect(changes.map((c) => FleetFile.describe(c))).toEqual([
      `+ application ${flatcar}: name "Flatcar", description "Flatcar Container Linux"`,
      `+ channel "stable" (amd64) of ${flatcar}: color "#2ca02c"`,
      `+ channel "beta" (amd64) of ${flatcar}: color "#ff7f0e"`,
      `+ group "beta" of ${flatcar}: track "beta", channel "beta", description "Canaries, updated first", ` +
      `policy.maxUpdatesPerPeriod 10, policy.periodSeconds 600, policy.safeMode false`,
      `+ group "production" of ${flatcar}: track "stable", channel "stable", ` +
      `description "Everything else, a few at a time, at night", policy.maxUpdatesPerPeriod 5, ` +
      `policy.periodSeconds 3600, policy.rolloutPercent 50, policy.failureBrake {"minAttempts":5,"ratio":0.2}, ` +
      `policy.windows [{"days":["mon","tue","wed","thu","fri"],"end":"04:00","start":"22:00","timeZone":"Europe/Berlin"}]`
    ])
    // A new group's request carries the whole policy, so the server's own defaults do not matter.
    const production = changes.find((c) => c._tag === "CreateGroup" && c.group === "production")!
    expect(production._tag === "CreateGroup" && Object.keys(production.body.policy).sort()).toEqual(
      ["allowDowngrade", "failureBrake", "maxUpdatesPerPeriod", "periodSeconds", "rolloutPercent", "safeMode", "updateTimeoutSeconds", "updatesEnabled", "windows"]
    )
  })

  it("plans application by application, and says a change without its application for lines under its id", () => {
    const file = parsed(
      "f.yaml",
      "apps:\n  - id: a\n    name: A\n    channels: [{ name: s, arch: all }]\n    groups: [{ name: g, channel: s }]\n" +
        "  - id: b\n    name: B\n    channels: [{ name: s, arch: all }]\n"
    ).file
    const changes = FleetFile.plan(file, new Map()).changes
    expect(changes.map((c) => `${c.app} ${c._tag}`)).toEqual([
      "a CreateApplication",
      "a CreateChannel",
      "a CreateGroup",
      "b CreateApplication",
      "b CreateChannel"
    ])
    expect(changes.map((c) => FleetFile.describe(c, false)).slice(0, 3)).toEqual([
      `+ application: name "A"`,
      `+ channel "s" (all)`,
      `+ group "g": track "g", channel "s"`
    ])
  })

  it("plans nothing once its changes are made (a second apply changes nothing)", () => {
    const files = [
      example,
      parsed(
        "f.yaml",
        [
          "apps:",
          "  - id: a",
          "    name: A",
          "    channels:",
          "      - { name: s, arch: amd64, package: 2.0.0, floors: [{ version: 1.0.0, reason: schema }], blocklist: [1.5.0] }",
          "      - { name: s, arch: all, package: null }",
          "    groups:",
          "      - { name: g, channel: s, policy: { maxConcurrentUpdates: 3, updatesEnabled: false } }",
          ""
        ].join("\n")
      ).file
    ]
    const server: FleetFile.ServerState = new Map([["a", {
      channels: [],
      groups: [],
      packages: ["1.0.0", "1.5.0", "2.0.0"].map((version) => ({ version, arch: "all" as const }))
    }]])
    for (const file of files) {
      const first = FleetFile.plan(file, server)
      expect(first.problems).toEqual([])
      expect(first.changes.length).toBeGreaterThan(0)
      const after = carryOut(server, first.changes)
      expect(FleetFile.plan(file, after)).toEqual({ changes: [], problems: [] })
    }
  })

  it("puts defaults back for fields the file leaves out, and clears a brake it no longer has", () => {
    const state = carryOut(new Map(), FleetFile.plan(example, new Map()).changes)
    const trimmed = parsed(
      "f.yaml",
      readFixture("fleet/fleet.yaml")
        .replace(/ {10}failureBrake:\n.*\n.*\n/, "")
        .replace("          rolloutPercent: 50\n", "")
        .replace("        description: Canaries, updated first\n", "")
    ).file
    const { changes } = FleetFile.plan(trimmed, state)
    expect(changes.map((c) => FleetFile.describe(c))).toEqual([
      `~ group "beta" of ${flatcar}: description "Canaries, updated first" -> ""`,
      `~ group "production" of ${flatcar}: policy.rolloutPercent 50 -> 100, policy.failureBrake {"minAttempts":5,"ratio":0.2} -> none`
    ])
    const production = changes[1]!
    expect(production._tag === "UpdateGroup" && production.patch).toEqual({
      policy: { rolloutPercent: 100, failureBrake: null }
    })
  })

  it("leaves a channel's package, floors and blocklist alone unless the file names them", () => {
    const server: FleetFile.ServerState = new Map([[flatcar, {
      application: { id: flatcar, name: "Flatcar", description: "Flatcar Container Linux" },
      channels: [
        { name: "stable", arch: "amd64", color: "#2ca02c", package: "3815.2.1", floors: [Floor.make({ version: "3510.2.0", reason: "r" })], blocklist: ["3602.2.0"] },
        { name: "beta", arch: "amd64", color: "#ff7f0e", floors: [], blocklist: [] }
      ],
      groups: [],
      packages: []
    }]])
    expect(FleetFile.plan(example, server).changes.map((c) => c._tag)).toEqual(["CreateGroup", "CreateGroup"])
    const named = parsed(
      "f.yaml",
      readFixture("fleet/fleet.yaml").replace(
        `        color: "#2ca02c"\n`,
        `        color: "#2ca02c"\n        package: null\n        floors: []\n        blocklist: []\n`
      )
    ).file
    expect(FleetFile.plan(named, server).changes.slice(0, 3).map((c) => FleetFile.describe(c))).toEqual([
      `~ channel "stable" (amd64) of ${flatcar}: package "3815.2.1" -> none`,
      `- floor 3510.2.0 on channel "stable" (amd64) of ${flatcar}`,
      `- blocked 3602.2.0 on channel "stable" (amd64) of ${flatcar}`
    ])
    const first = FleetFile.plan(named, server).changes[0]!
    expect(first._tag === "UpdateChannel" && first.patch).toEqual({ package: null })
  })

  it("changes a floor's reason in place", () => {
    const file = parsed(
      "f.yaml",
      `apps:\n  - id: "${flatcar}"\n    name: Flatcar\n    channels:\n      - name: s\n        arch: amd64\n        floors:\n          - { version: 1.0.0, reason: new }\n`
    ).file
    const server: FleetFile.ServerState = new Map([[flatcar, {
      application: { id: flatcar, name: "Flatcar", description: "" },
      channels: [{ name: "s", arch: "amd64", color: "", floors: [Floor.make({ version: "1.0.0", reason: "old" })], blocklist: [] }],
      groups: [],
      packages: [{ version: "1.0.0", arch: "amd64" }]
    }]])
    const { changes } = FleetFile.plan(file, server)
    expect(changes.map((c) => FleetFile.describe(c))).toEqual([`~ floor 1.0.0 on channel "s" (amd64) of ${flatcar}: reason "old" -> "new"`])
    expect(changes[0]!._tag === "SetFloor" && Option.getOrNull(changes[0]!.previous)).toBe("old")
  })

  it("refuses a package, channel or track the server cannot take, with the field, and plans nothing", () => {
    const text = [
      "apps:",
      `  - id: "${flatcar}"`,
      "    name: Flatcar",
      "    channels:",
      "      - name: stable",
      "        arch: amd64",
      "        package: 3815.2.1",
      "        floors: [{ version: 3510.2.0 }]",
      "    groups:",
      "      - name: production",
      "        track: stable",
      "        channel: stabel",
      ""
    ].join("\n")
    const file = parsed("f.yaml", text)
    const server = withPackages(["3510.2.0"])
    const result = FleetFile.plan(file.file, server)
    expect(result.changes).toEqual([])
    expect(FleetFile.invalid(file, result.problems).message).toBe(
      "f.yaml:7:9: apps[0].channels[0].package: the server has no package 3815.2.1 for amd64 (or all arches); " +
        "upload it first (fleet-server package add) (and 1 more problem)"
    )
    expect(result.problems.map((p) => FleetFile.formatPath(p.path))).toEqual([
      "apps[0].channels[0].package",
      "apps[0].groups[0].channel"
    ])
    // A package for all arches serves an amd64 channel.
    expect(FleetFile.plan(file.file, withPackages(["3510.2.0", "3815.2.1"], "all")).problems.map((p) => p.message)).toEqual([
      `no channel "stabel": list it under this application's channels`
    ])
    // A new application has no packages yet: the message says how to get there.
    expect(FleetFile.plan(file.file, new Map()).problems[0]!.message).toMatch(/the application is new; apply without it/)
    // A track a group not in the file already has.
    const clash = new Map([[flatcar, {
      ...withPackages(["3510.2.0", "3815.2.1"]).get(flatcar)!,
      channels: [{ name: "stabel", arch: "amd64" as const, color: "", floors: [], blocklist: [] }],
      groups: [{ name: "old", description: "", track: "stable", channel: "stabel", policy: defaultPolicy }]
    }]])
    expect(FleetFile.invalid(file, FleetFile.plan(file.file, clash).problems).message).toBe(
      `f.yaml:11:9: apps[0].groups[0].track: track "stable" is the track of group "old" on the server`
    )
  })

  it("never touches what the file does not list", () => {
    const server: FleetFile.ServerState = new Map([[flatcar, {
      application: { id: flatcar, name: "Flatcar", description: "Flatcar Container Linux" },
      channels: [
        { name: "stable", arch: "amd64", color: "#2ca02c", floors: [], blocklist: [] },
        { name: "beta", arch: "amd64", color: "#ff7f0e", floors: [], blocklist: [] },
        { name: "stable", arch: "arm64", color: "", floors: [], blocklist: [] }
      ],
      groups: [{ name: "lab", description: "", track: "lab", channel: "stable", policy: Policy.make({ ...defaultPolicy, updatesEnabled: false }) }],
      packages: []
    }]])
    const changes = FleetFile.plan(example, server).changes
    expect(changes.map((c) => c._tag === "CreateGroup" ? c.group : c._tag)).toEqual(["beta", "production"])
  })

  it("writes each change as JSON with its subject, key and fields", () => {
    const change = FleetFile.Change.UpdateGroup({
      app: flatcar,
      group: "production",
      patch: { policy: { failureBrake: FailureBrake.make({ ratio: 0.5, minAttempts: 2 }) } },
      fields: [{ field: "policy.failureBrake", from: null, to: { ratio: 0.5, minAttempts: 2 } }]
    })
    expect(FleetFile.toJson(change)).toEqual({
      action: "update",
      subject: "group",
      app: flatcar,
      group: "production",
      fields: [{ field: "policy.failureBrake", from: null, to: { ratio: 0.5, minAttempts: 2 } }]
    })
    expect(FleetFile.toJson(FleetFile.Change.BlockVersion({ app: "a", channel: "s", arch: "amd64", version: "1.0.0" }))).toEqual({
      action: "create",
      subject: "blocklist",
      app: "a",
      channel: "s",
      arch: "amd64",
      version: "1.0.0",
      fields: []
    })
  })
})
