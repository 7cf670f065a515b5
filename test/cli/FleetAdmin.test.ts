import { describe, expect, it } from "@effect/vitest"
import { HelpDoc } from "@effect/cli"
import { Effect, Exit, Option } from "effect"
import * as FleetAdmin from "../../src/cli/FleetAdmin.js"
import * as ApiClient from "../../src/fleet/ApiClient.js"
import * as FleetFile from "../../src/fleet/FleetFile.js"

const command = "fleet-server group create"

const reason = <A, E extends { readonly message: string }>(effect: Effect.Effect<A, E>) =>
  Effect.runSync(Effect.flip(effect)).message

describe("FleetAdmin flag values", () => {
  it("reads durations as seconds: bare, s, m/min, h, d", () => {
    const read = (text: string) => Effect.runSync(FleetAdmin.parseSeconds(command, "--period", text))
    expect(["900", "45s", "15m", "15min", "1h", "2d", " 1H "].map(read)).toEqual([900, 45, 900, 900, 3600, 172800, 3600])
    for (const bad of ["", "0", "-5", "1.5h", "1w", "soon"]) {
      expect(reason(FleetAdmin.parseSeconds(command, "--period", bad))).toBe(
        `--period: ${JSON.stringify(bad)} is not a duration (900, 15m, 1h, 2d); see ${command} --help`
      )
    }
  })

  it("reads maintenance windows: day ranges and lists, daily, UTC when no zone is given", () => {
    const read = (text: string) => {
      const w = Effect.runSync(FleetAdmin.parseWindow(command, text))
      return [w.days.join(","), w.start, w.end, w.timeZone]
    }
    expect(read("mon-fri 22:00-04:00 Europe/Berlin")).toEqual(["mon,tue,wed,thu,fri", "22:00", "04:00", "Europe/Berlin"])
    expect(read("sat,sun 02:00-05:00")).toEqual(["sat,sun", "02:00", "05:00", "UTC"])
    expect(read("daily 00:00-24:00 UTC")).toEqual(["mon,tue,wed,thu,fri,sat,sun", "00:00", "24:00", "UTC"])
    expect(read("MON,wed-thu 09:00-17:00")).toEqual(["mon,wed,thu", "09:00", "17:00", "UTC"])
    expect(reason(FleetAdmin.parseWindow(command, "weekdays 9-17"))).toMatch(/^--window "weekdays 9-17": write DAYS HH:MM-HH:MM/)
    expect(reason(FleetAdmin.parseWindow(command, "fri-mon 09:00-17:00"))).toMatch(/"fri-mon" is not a day or a range of days/)
    expect(reason(FleetAdmin.parseWindow(command, "mon 25:00-26:00"))).toMatch(/times are HH:MM, 00:00 to 24:00/)
    expect(reason(FleetAdmin.parseWindow(command, "mon 09:00-17:00 Mars/Olympus"))).toMatch(/unknown time zone "Mars\/Olympus"/)
  })

  it("reads the failure brake as a ratio or a percentage with the attempts, or off", () => {
    const read = (text: string) => Effect.runSync(FleetAdmin.parseBrake(command, text))
    expect(read("0.2:5")).toMatchObject({ ratio: 0.2, minAttempts: 5 })
    expect(read("25%:4")).toMatchObject({ ratio: 0.25, minAttempts: 4 })
    expect(read("off")).toBeNull()
    for (const bad of ["0.2", "150%:5", "1.5:5", "0.2:0", "x:y"]) {
      expect(reason(FleetAdmin.parseBrake(command, bad))).toMatch(/write RATIO:ATTEMPTS \(0\.2:5 or 20%:5\), or off/)
    }
  })
})

describe("FleetAdmin output", () => {
  it("says durations and times for people", () => {
    expect([45, 90, 60, 900, 3600, 5400, 86400, 172800].map(FleetAdmin.formatSeconds)).toEqual([
      "45 s",
      "90 s",
      "1 min",
      "15 min",
      "1 h",
      "1 h 30 min",
      "1 d",
      "2 d"
    ])
    expect(FleetAdmin.formatTime(new Date("2024-05-01T12:00:00.123Z"))).toBe("2024-05-01 12:00:00Z")
    expect(FleetAdmin.formatTime(undefined)).toBe("-")
  })

  it("folds a rollout's statuses into granted, in progress, complete, failed, on hold and idle", () => {
    expect(FleetAdmin.rolloutColumns({
      undefined: 1,
      granted: 2,
      downloading: 3,
      downloaded: 4,
      installed: 5,
      complete: 6,
      error: 7,
      onHold: 8
    })).toEqual({ granted: 2, inProgress: 12, complete: 6, failed: 7, onHold: 8, idle: 1 })
  })
})

describe("FleetAdmin exit statuses", () => {
  it("maps each failure to its documented status: refused 6, unreachable 7, tokens 8, files 9, a bad URL 2", () => {
    const refused = (status: number) => new ApiClient.Refused({ status, error: "x", reason: "no" })
    const unreachable = new ApiClient.Unreachable({ server: "http://127.0.0.1:1", reason: "connection refused" })
    expect([
      refused(404),
      refused(409),
      refused(401),
      refused(403),
      unreachable,
      new ApiClient.UnexpectedAnswer({ server: "s", reason: "r" }),
      new ApiClient.InvalidApiUrl({ url: "x" }),
      new FleetAdmin.NoToken(),
      new FleetAdmin.TokenFileUnreadable({ path: "t", reason: "no such file" }),
      new FleetAdmin.FileUnreadable({ path: "f", reason: "no such file" }),
      new FleetFile.FleetFileInvalid({ file: "f", field: "", reason: "r", more: 0 }),
      new FleetAdmin.ApplyStopped({ change: "c", done: 1, cause: refused(403) }),
      new FleetAdmin.ApplyStopped({ change: "c", done: 1, cause: unreachable })
    ].map(FleetAdmin.adminExitStatus)).toEqual([6, 6, 8, 8, 7, 7, 2, 8, 8, 9, 9, 8, 7])
    expect(FleetAdmin.adminExitCodes.map(([status]) => status)).toEqual([6, 7, 8, 9])
  })
})

describe("FleetAdmin dispatch", () => {
  const dispatch = (...words: Array<string>) => FleetAdmin.dispatch(["node", "fleet-server", ...words], HelpDoc.empty)

  it("takes the admin nouns and apply, and leaves every other first word to fleet-server", () => {
    for (const words of [["apply", "f.yaml"], ["app", "list"], ["group"], ["rollout", "pause", "g"], ["activity"]]) {
      expect(Option.isSome(dispatch(...words)), words.join(" ")).toBe(true)
    }
    for (const words of [["serve"], ["token", "create"], ["--help"], ["launch"], []]) {
      expect(Option.isNone(dispatch(...words)), words.join(" ")).toBe(true)
    }
    expect([...FleetAdmin.nouns.keys()].sort()).toEqual([
      "app",
      "blocklist",
      "channel",
      "floor",
      "group",
      "instance",
      "package",
      "rollout"
    ])
  })

  it("refuses an unknown verb or none with a usage error naming the verbs", () => {
    const run = (...words: Array<string>) =>
      // These end before anything of the environment is used.
      Effect.runSyncExit(Option.getOrThrow(dispatch(...words)) as Effect.Effect<void, unknown>)
    const failure = (exit: Exit.Exit<unknown, unknown>) =>
      Exit.isFailure(exit) && exit.cause._tag === "Fail" ? (exit.cause.error as { message: string }).message : "none"
    expect(failure(run("group", "frob"))).toBe(
      `unknown command "group frob": group takes list, show, create, update, delete; see fleet-server group --help`
    )
    expect(failure(run("floor"))).toBe("say what to do with floor: list, set, delete; see fleet-server floor --help")
  })
})
