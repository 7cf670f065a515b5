/**
 * fleet-server's admin commands as users run them: the bundled command
 * against a real `fleet-server serve` on 127.0.0.1 (the embedded database,
 * and PostgreSQL where one is configured, whose rows the tests read). Each
 * command's happy path (its table, its `--json` parsed), its API error path
 * (one line with the API's reason and status, and its exit status),
 * `package add` uploading a payload whose hashes the API reports, `apply`
 * twice (the second changes nothing) and `--dry-run` (no row changes).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Pg from "pg"
import * as Yaml from "yaml"
import { fixturePath } from "../fixtures.js"
import { post } from "../server/support.js"
import { describePostgres, freshDatabase } from "../fleet/support.js"
import { binPath, type Ran, run, type Running, shellWord, start, waitFor } from "./process.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const example = fixturePath("fleet/fleet.yaml")

interface Served {
  readonly base: string
  readonly admin: string
  readonly viewer: string
  readonly server: Running
}

/** Tokens, then `serve` on a free port (embedded in `data`, or on the database in `env`). */
const serve = async (data: string, env: NodeJS.ProcessEnv = process.env): Promise<Served> => {
  const token = async (role: string) => {
    const made = await run("fleet-server", ["token", "create", "--role", role, "--data", data], { env })
    expect(made.status, made.stderr).toBe(0)
    return made.stdout.trim()
  }
  const admin = await token("admin")
  const viewer = await token("viewer")
  const server = start("fleet-server", ["serve", "--listen-address", "127.0.0.1:0", "--data", data, "--max-upload-size", "4M"], { env })
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()), 60_000)
  const base = new URL("/", /^SERVER=(\S+)$/m.exec(server.stdout())![1]!).href.replace(/\/$/, "")
  return { base, admin, viewer, server }
}

const stop = async (served: Served | undefined) => {
  if (served !== undefined && served.server.child.exitCode === null) {
    served.server.child.kill("SIGTERM")
    await served.server.exited
  }
}

/** Runs `fleet-server` with the server and an admin token in its environment (FLEET_APP set but empty: as not set). */
const cli = (served: Served, args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Ran> =>
  run("fleet-server", args, {
    env: { ...process.env, FLEET_SERVER: served.base, FLEET_TOKEN: served.admin, FLEET_APP: "", ...env }
  })

/** A command that worked: status 0, nothing on stderr; its stdout. */
const ok = (ran: Ran): string => {
  expect(ran.stderr, ran.stdout).toBe("")
  expect(ran.status).toBe(0)
  return ran.stdout
}

/** A command that failed: `status`, nothing on stdout, one line on stderr; that line. */
const fails = (ran: Ran, status: number): string => {
  expect({ status: ran.status, stdout: ran.stdout }, ran.stderr).toEqual({ status, stdout: "" })
  expect(ran.stderr).toMatch(/^fleet-server: [^\n]+\n$/)
  return ran.stderr.trimEnd()
}

/** An upload that failed: `status`, and after its progress lines, one line saying why; that line. */
const uploadFails = (ran: Ran, status: number): string => {
  expect({ status: ran.status, stdout: ran.stdout }, ran.stderr).toEqual({ status, stdout: "" })
  const lines = ran.stderr.trimEnd().split("\n")
  expect(lines.slice(0, -1).every((line) => line.startsWith("uploading "))).toBe(true)
  expect(lines.at(-1)).toMatch(/^fleet-server: /)
  return lines.at(-1)!
}

const json = (ran: Ran): any => JSON.parse(ok(ran))

/** An update check as a Flatcar machine on 3510.2.0 in `track` sends it. */
const check = (machine: string, track: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
  <os version="Chateau" platform="CoreOS" sp="3510.2.0_x86_64"></os>
  <app appid="${flatcar}" version="3510.2.0" track="${track}" machineid="${machine}" board="amd64-usr" oem="qemu">
    <ping active="1"></ping>
    <updatecheck></updatecheck>
  </app>
</request>`

/** An event of a Flatcar machine on 3510.2.0 in `track`. */
const event = (machine: string, track: string, type: number, result: number, errorCode?: number) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
  <os version="Chateau" platform="CoreOS" sp="3510.2.0_x86_64"></os>
  <app appid="${flatcar}" version="3510.2.0" track="${track}" machineid="${machine}" board="amd64-usr" oem="qemu">
    <event eventtype="${type}" eventresult="${result}"${errorCode === undefined ? "" : ` errorcode="${errorCode}"`}></event>
  </app>
</request>`

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-admin-e2e-"))
let served: Served

beforeAll(async () => {
  served = await serve(Path.join(dir, "data"))
}, 120_000)

afterAll(async () => {
  await stop(served)
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("fleet-server admin commands", () => {
  it("apply --dry-run prints the plan and changes nothing; apply makes it; a second apply changes nothing", async () => {
    const dry = ok(await cli(served, ["apply", "--dry-run", example]))
    expect(dry.split("\n")).toEqual([
      `${flatcar}:`,
      `  + application: name "Flatcar", description "Flatcar Container Linux"`,
      `  + channel "stable" (amd64): color "#2ca02c"`,
      `  + channel "beta" (amd64): color "#ff7f0e"`,
      expect.stringMatching(/^ {2}\+ group "beta": track "beta", channel "beta", /),
      expect.stringMatching(/^ {2}\+ group "production": track "stable", channel "stable", /),
      "5 changes to make (dry run: nothing was changed)",
      ""
    ])
    expect(json(await cli(served, ["app", "list", "--json"]))).toEqual([])

    const applied = ok(await cli(served, ["apply", example]))
    expect(applied.split("\n").slice(0, -2)).toEqual(dry.split("\n").slice(0, -2))
    expect(applied.split("\n").at(-2)).toBe(`made 5 changes on ${served.base}`)
    const again = ok(await cli(served, ["apply", example]))
    expect(again).toBe(`no changes: ${served.base} matches ${example}\n`)
    const asJson = json(await cli(served, ["apply", "--json", example]))
    expect(asJson).toEqual({ server: served.base, file: example, dryRun: false, changes: [] })

    // What the file said is what the API has.
    const production = json(await cli(served, ["group", "show", "production", "--app", flatcar, "--json"]))
    expect(production).toMatchObject({
      name: "production",
      track: "stable",
      channel: "stable",
      paused: false,
      policy: {
        maxUpdatesPerPeriod: 5,
        periodSeconds: 3600,
        rolloutPercent: 50,
        safeMode: true,
        failureBrake: { ratio: 0.2, minAttempts: 5 },
        windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "22:00", end: "04:00", timeZone: "Europe/Berlin" }]
      }
    })

    // An edited file: only what changed is changed, with the change said.
    const edited = Path.join(dir, "edited.yaml")
    Fs.writeFileSync(edited, Fs.readFileSync(example, "utf8").replace("maxUpdatesPerPeriod: 5", "maxUpdatesPerPeriod: 8"))
    const dryEdit = ok(await cli(served, ["apply", "--dry-run", "--json", edited]))
    expect(JSON.parse(dryEdit).changes).toEqual([{
      action: "update",
      subject: "group",
      app: flatcar,
      group: "production",
      fields: [{ field: "policy.maxUpdatesPerPeriod", from: 5, to: 8 }]
    }])
    expect(ok(await cli(served, ["apply", edited]))).toBe(
      `${flatcar}:\n  ~ group "production": policy.maxUpdatesPerPeriod 5 -> 8\nmade 1 change on ${served.base}\n`
    )
  }, 120_000)

  it("apply refuses a file with a problem, saying its line and field, and changes nothing", async () => {
    const bad = Path.join(dir, "bad.yaml")
    Fs.writeFileSync(bad, Fs.readFileSync(example, "utf8").replace("        color: \"#ff7f0e\"", "        colour: \"#ff7f0e\""))
    expect(fails(await cli(served, ["apply", bad]), 9)).toBe(
      `fleet-server: ${bad}:16:9: apps[0].channels[1].colour: unknown field (known here: name, arch, package, color, floors, blocklist)`
    )
    const broken = Path.join(dir, "broken.yaml")
    Fs.writeFileSync(broken, "apps:\n  - id: \"lab\n    name: Lab\n")
    expect(fails(await cli(served, ["apply", broken]), 9)).toMatch(
      new RegExp(`^fleet-server: ${broken.replace(/[.]/g, "\\.")}:\\d+:\\d+: not valid YAML: `)
    )
    const badJson = Path.join(dir, "bad.json")
    Fs.writeFileSync(badJson, `{"apps": [{"id": "lab", "name": "Lab",}]}`)
    expect(fails(await cli(served, ["apply", badJson]), 9)).toMatch(
      new RegExp(`^fleet-server: ${badJson.replace(/[.]/g, "\\.")}:1:\\d+: not valid JSON: `)
    )
    // The same setup as JSON (with the first test's edit) is what the server has.
    const asJson = Path.join(dir, "fleet.json")
    Fs.writeFileSync(asJson, JSON.stringify(Yaml.parse(Fs.readFileSync(example, "utf8").replace("maxUpdatesPerPeriod: 5", "maxUpdatesPerPeriod: 8"))))
    expect(ok(await cli(served, ["apply", asJson]))).toBe(`no changes: ${served.base} matches ${asJson}\n`)
    const missing = Path.join(dir, "missing-package.yaml")
    Fs.writeFileSync(missing, Fs.readFileSync(example, "utf8").replace("        color: \"#2ca02c\"", "        color: \"#2ca02c\"\n        package: 9999.0.0"))
    expect(fails(await cli(served, ["apply", missing]), 9)).toMatch(
      /:14:9: apps\[0\]\.channels\[0\]\.package: the server has no package 9999\.0\.0 for amd64 \(or all arches\); upload it first/
    )
    expect(fails(await cli(served, ["apply", Path.join(dir, "nothing.yaml")]), 9)).toBe(
      `fleet-server: cannot read ${Path.join(dir, "nothing.yaml")}: no such file`
    )
    expect(json(await cli(served, ["channel", "list", "--app", flatcar, "--json"])).map((c: { color: string }) => c.color)).toEqual([
      "#ff7f0e",
      "#2ca02c"
    ])
  })

  it("app: list, show, create, update, delete; and the API's refusals", async () => {
    const table = ok(await cli(served, ["app", "list"]))
    expect(table.split("\n")[0]).toMatch(/^ID +NAME +DESCRIPTION +CREATED$/)
    expect(table).toContain(`${flatcar}  Flatcar  Flatcar Container Linux  `)
    expect(ok(await cli(served, ["app", "create", "--id", "lab", "--name", "Lab"]))).toBe(`created application lab ("Lab")\n`)
    expect(fails(await cli(served, ["app", "create", "--id", "lab", "--name", "Lab"]), 6)).toBe(
      `fleet-server: application "lab" already exists (409)`
    )
    const updated = json(await cli(served, ["app", "update", "lab", "--description", "test machines", "--json"]))
    expect([updated.id, updated.name, updated.description]).toEqual(["lab", "Lab", "test machines"])
    expect(ok(await cli(served, ["app", "show", "lab"]))).toMatch(/^id: +lab\nname: +Lab\ndescription: +test machines\ncreated: /)
    expect(ok(await cli(served, ["app", "delete", "lab"]))).toBe("deleted application lab\n")
    expect(fails(await cli(served, ["app", "show", "lab"]), 6)).toBe(`fleet-server: no application "lab" (404)`)
    expect(fails(await cli(served, ["app", "update", "lab"]), 2)).toBe(
      "fleet-server: say what to change: --name or --description; see fleet-server app update --help"
    )
  }, 120_000)

  it("package add streams a payload, which the API reports with its hashes, and points a channel at it", async () => {
    const payload = Crypto.randomBytes(2 * 1024 * 1024 + 5)
    const file = Path.join(dir, "flatcar_production_update.gz")
    Fs.writeFileSync(file, payload)
    const added = await cli(served, ["package", "add", file, "--version", "3815.2.1", "--app", flatcar, "--name", "update.gz", "--channel", "stable"])
    expect(added.status, added.stderr).toBe(0)
    const sha256 = Crypto.createHash("sha256").update(payload).digest("base64")
    expect(added.stdout).toBe(
      `uploaded 3815.2.1 (amd64) as update.gz: 2.0 MiB, sha256 ${sha256}\nchannel "stable" (amd64) points to 3815.2.1\n`
    )
    // Not a terminal: a line per tenth of the payload.
    const lines = added.stderr.trimEnd().split("\n")
    expect(lines.length).toBeGreaterThanOrEqual(10)
    expect(lines.every((line) => /^uploading update\.gz \d+\.\d\/2\.0 MiB \d+%$/.test(line))).toBe(true)
    expect(lines.at(-1)).toBe("uploading update.gz 2.0/2.0 MiB 100%")

    const reported = json(await cli(served, ["package", "show", "3815.2.1", "--app", flatcar, "--json"]))
    expect(reported).toMatchObject({
      version: "3815.2.1",
      arch: "amd64",
      name: "update.gz",
      size: payload.length,
      sha1: Crypto.createHash("sha1").update(payload).digest("base64"),
      sha256
    })
    expect(json(await cli(served, ["channel", "show", "stable", "--app", flatcar, "--json"])).package).toBe("3815.2.1")
    expect(ok(await cli(served, ["package", "list", "--app", flatcar]))).toMatch(
      new RegExp(`^3815\\.2\\.1 +amd64 +update\\.gz +2\\.0 MiB +${sha256.replace(/[+/]/g, "\\$&")} +hosted +`, "m")
    )
    // On a terminal: one bar redrawn in place with carriage returns, no escape sequences.
    // (`script` runs it on a pseudo-terminal; the server is another process, so a blocking spawn is fine.)
    const tty = ChildProcess.spawnSync("script", [
      "-qec",
      `${shellWord(process.execPath)} ${shellWord(binPath("fleet-server"))} package add ${shellWord(file)} --version 3815.2.5 --app '${flatcar}' --name update.gz --arch all`,
      "/dev/null"
    ], { encoding: "utf8", env: { ...process.env, FLEET_SERVER: served.base, FLEET_TOKEN: served.admin, FLEET_APP: "" } })
    expect(tty.status, tty.stdout).toBe(0)
    expect(tty.stdout).toMatch(/^(\r\[[# ]+\] uploading update\.gz \d+\.\d\/2\.0 MiB \d+%)+\r\[#+\] uploading update\.gz 2\.0\/2\.0 MiB 100%\r\nuploaded 3815\.2\.5 \(all\) as update\.gz: /)
    expect(tty.stdout).not.toContain("\u001b")
    expect(ok(await cli(served, ["package", "delete", "3815.2.5", "--app", flatcar, "--arch", "all"]))).toBe("deleted package 3815.2.5\n")

    // A payload hosted elsewhere, registered by its URL and facts.
    const registered = json(await cli(served, [
      "package",
      "register",
      "--app",
      flatcar,
      "--version",
      "3815.2.0",
      "--url",
      "https://cdn.example.com/flatcar/3815.2.0/flatcar_production_update.gz",
      "--size",
      String(payload.length),
      "--sha1",
      Crypto.createHash("sha1").update(payload).digest("base64"),
      "--sha256",
      sha256,
      "--json"
    ]))
    expect(registered).toMatchObject({
      version: "3815.2.0",
      arch: "amd64",
      name: "flatcar_production_update.gz",
      url: "https://cdn.example.com/flatcar/3815.2.0/flatcar_production_update.gz",
      size: payload.length
    })
    expect(ok(await cli(served, ["package", "list", "--app", flatcar]))).toMatch(
      /^3815\.2\.0 +amd64 +flatcar_production_update\.gz +2\.0 MiB +\S+ +https:\/\/cdn\.example\.com\/flatcar\/3815\.2\.0\/flatcar_production_update\.gz +/m
    )
    expect(ok(await cli(served, ["package", "delete", "3815.2.0", "--app", flatcar]))).toBe("deleted package 3815.2.0\n")
    expect(fails(await cli(served, ["package", "delete", "3815.2.0", "--app", flatcar]), 6)).toMatch(/\(404\)$/)

    // Asked before a byte is sent: the server would refuse it unread, and a reset could hide its answer.
    expect(fails(await cli(served, ["package", "add", file, "--version", "3815.2.1", "--app", flatcar]), 6)).toBe(
      `fleet-server: package 3815.2.1 (amd64) of "${flatcar}" already exists (409)`
    )
    // Over the server's limit: refused unread, its answer or the reset that may overtake it.
    const big = Path.join(dir, "big.gz")
    Fs.writeFileSync(big, Buffer.alloc(5 * 1024 * 1024))
    const tooBig = await cli(served, ["package", "add", big, "--version", "3815.2.2", "--app", flatcar])
    expect([
      "fleet-server: the payload of 5242880 bytes is over the 4194304-byte upload limit (413)",
      `fleet-server: cannot reach the fleet server at ${served.base}: the connection was closed before the whole payload ` +
      "was sent (is it over the server's --max-upload-size?)"
    ]).toContain(uploadFails(tooBig, tooBig.status === 6 ? 6 : 7))
    expect(fails(await cli(served, ["package", "show", "3815.2.2", "--app", flatcar]), 6)).toMatch(/\(404\)$/)
    expect(fails(await cli(served, ["package", "add", Path.join(dir, "none.gz"), "--version", "1.0.0", "--app", flatcar]), 9)).toBe(
      `fleet-server: cannot read ${Path.join(dir, "none.gz")}: no such file`
    )
    expect(fails(await cli(served, ["package", "add", file, "--version", "1.0.0", "--app", "nope"]), 6)).toBe(
      `fleet-server: no application "nope" (404)`
    )
  }, 120_000)

  it("channel and floor: create, list, show, update, delete; and the API's refusals", async () => {
    expect(ok(await cli(served, ["channel", "create", "edge", "--app", flatcar, "--arch", "arm64"]))).toBe(
      `created channel "edge" (arm64)\n`
    )
    expect(fails(await cli(served, ["channel", "create", "edge", "--app", flatcar, "--arch", "arm64"]), 6)).toBe(
      `fleet-server: channel "edge" (arm64) of "${flatcar}" already exists (409)`
    )
    expect(fails(await cli(served, ["channel", "update", "edge", "--app", flatcar, "--package", "3815.2.1"]), 6)).toBe(
      `fleet-server: channel "edge" (arm64): no package 3815.2.1 for arm64 (or all arches) (422)`
    )
    ok(await cli(served, ["floor", "set", "3815.2.1", "--channel", "stable", "--app", flatcar, "--reason", "new partition layout"]))
    expect(json(await cli(served, ["floor", "list", "--channel", "stable", "--app", flatcar, "--json"]))).toEqual([
      { version: "3815.2.1", reason: "new partition layout" }
    ])
    expect(ok(await cli(served, ["channel", "show", "stable", "--app", flatcar]))).toMatch(
      /^channel: +stable\narch: +amd64\npackage: +3815\.2\.1\n[^]*\nFLOOR +REASON\n3815\.2\.1 +new partition layout\n$/
    )
    ok(await cli(served, ["floor", "delete", "3815.2.1", "--channel", "stable", "--app", flatcar]))
    expect(fails(await cli(served, ["floor", "delete", "3815.2.1", "--channel", "stable", "--app", flatcar]), 6)).toBe(
      `fleet-server: no floor 3815.2.1 of channel "stable" (amd64) (404)`
    )
    expect(ok(await cli(served, ["blocklist", "add", "3815.2.1", "--channel", "stable", "--app", flatcar]))).toBe(
      `3815.2.1 is blocked on channel "stable" (amd64)\n`
    )
    expect(json(await cli(served, ["blocklist", "list", "--channel", "stable", "--app", flatcar, "--json"]))).toEqual(["3815.2.1"])
    expect(ok(await cli(served, ["blocklist", "delete", "3815.2.1", "--channel", "stable", "--app", flatcar]))).toBe(
      `3815.2.1 is no longer blocked on channel "stable" (amd64)\n`
    )
    expect(ok(await cli(served, ["blocklist", "list", "--channel", "stable", "--app", flatcar]))).toBe("no versions blocked\n")
    expect(fails(await cli(served, ["blocklist", "add", "1.2.3", "--channel", "stable", "--app", flatcar]), 6)).toMatch(
      /^fleet-server: .*1\.2\.3.*\((404|422)\)$/
    )
    const listed = ok(await cli(served, ["channel", "list", "--app", flatcar]))
    expect(listed.split("\n").map((l) => l.split(/ {2,}/).slice(0, 3))).toEqual([
      ["NAME", "ARCH", "PACKAGE"],
      ["beta", "amd64", "-"],
      ["edge", "arm64", "-"],
      ["stable", "amd64", "3815.2.1"],
      [""]
    ])
    ok(await cli(served, ["channel", "delete", "edge", "--app", flatcar]))
    expect(fails(await cli(served, ["channel", "delete", "stable", "--app", flatcar]), 6)).toBe(
      `fleet-server: channel "stable" (amd64) is followed by group "production" (409)`
    )
  }, 120_000)

  it("group and rollout: create with policy flags, update, pause, resume, delete; and the API's refusals", async () => {
    const made = json(
      await cli(served, [
        "group",
        "create",
        "canary",
        "--app",
        flatcar,
        "--channel",
        "beta",
        "--max-updates",
        "3",
        "--period",
        "30m",
        "--safe-mode",
        "off",
        "--failure-brake",
        "25%:4",
        "--window",
        "sat,sun 02:00-05:00 UTC",
        "--json"
      ])
    )
    expect(made).toMatchObject({
      name: "canary",
      track: "canary",
      channel: "beta",
      policy: {
        maxUpdatesPerPeriod: 3,
        periodSeconds: 1800,
        safeMode: false,
        failureBrake: { ratio: 0.25, minAttempts: 4 },
        windows: [{ days: ["sat", "sun"], start: "02:00", end: "05:00", timeZone: "UTC" }]
      }
    })
    // A PATCH merges: what is not given keeps its value.
    const updated = json(await cli(served, ["group", "update", "canary", "--app", flatcar, "--failure-brake", "off", "--no-windows", "--json"]))
    expect(updated.policy.maxUpdatesPerPeriod).toBe(3)
    expect(updated.policy.failureBrake).toBeUndefined()
    expect(updated.policy.windows).toEqual([])
    expect(fails(await cli(served, ["group", "create", "again", "--app", flatcar, "--channel", "beta", "--track", "canary"]), 6)).toBe(
      `fleet-server: group "canary" already has track "canary" (409)`
    )
    expect(fails(await cli(served, ["group", "create", "x", "--app", flatcar, "--channel", "nope"]), 6)).toBe(
      `fleet-server: group "x": no channel "nope" of "${flatcar}" (422)`
    )
    expect(fails(await cli(served, ["group", "create", "x", "--app", flatcar, "--channel", "beta", "--window", "weekdays 9-17"]), 2)).toBe(
      `fleet-server: --window "weekdays 9-17": write DAYS HH:MM-HH:MM [TIME ZONE] (e.g. "mon-fri 22:00-04:00 Europe/Berlin"); ` +
        "see fleet-server group create --help"
    )

    expect(ok(await cli(served, ["rollout", "pause", "canary", "--app", flatcar, "--reason", "bad kernel"]))).toBe(
      `paused group "canary": bad kernel\n`
    )
    const table = ok(await cli(served, ["group", "list", "--app", flatcar]))
    expect(table).toMatch(/^canary +canary +beta +paused +3 per 30 min +100%$/m)
    expect(table).toMatch(/^production +stable +stable +enabled +8 per 1 h +50%$/m)
    expect(json(await cli(served, ["rollout", "resume", "canary", "--app", flatcar, "--json"])).paused).toBe(false)
    expect(fails(await cli(served, ["rollout", "pause", "nope", "--app", flatcar]), 6)).toBe(
      `fleet-server: no group "nope" of "${flatcar}" (404)`
    )
    const activity = json(await cli(served, ["activity", "--app", flatcar, "--json"]))
    expect(activity.slice(0, 2).map((a: { kind: string }) => a.kind)).toEqual(["rolloutResumed", "rolloutPaused"])
    expect(ok(await cli(served, ["activity", "--app", flatcar, "--limit", "1"]))).toMatch(/^AT +SEVERITY +KIND +GROUP +MESSAGE\n.* +info +rolloutResumed +/)

    expect(ok(await cli(served, ["group", "delete", "canary", "--app", flatcar]))).toBe(`deleted group "canary"\n`)
    expect(fails(await cli(served, ["group", "show", "canary", "--app", flatcar]), 6)).toBe(
      `fleet-server: no group "canary" of "${flatcar}" (404)`
    )
  }, 120_000)

  it("instance and rollout status: machines that checked in, by status and version, with their holds", async () => {
    expect(ok(await cli(served, ["instance", "list", "--app", flatcar, "--group", "lab"]))).toBe("no instances\n")
    ok(await cli(served, ["group", "create", "lab", "--app", flatcar, "--channel", "stable", "--safe-mode", "off", "--max-updates", "2"]))
    const answers = await Promise.all([1, 2, 3, 4].map((n) => post(served.base, check(`lab-${n}`, "lab"))))
    expect(answers.map((a) => /<updatecheck status="(\w+)"/.exec(a.text)?.[1]).sort()).toEqual(["noupdate", "noupdate", "ok", "ok"])
    // Check-ins are written in batches: wait for all four.
    const deadline = Date.now() + 10_000
    while (json(await cli(served, ["instance", "list", "--app", flatcar, "--group", "lab", "--json"])).total < 4) {
      if (Date.now() > deadline) throw new Error("the check-ins were not recorded")
      await new Promise((r) => setTimeout(r, 200))
    }
    const status = json(await cli(served, ["rollout", "status", "lab", "--app", flatcar, "--json"]))
    expect(status).toMatchObject({
      appId: flatcar,
      group: "lab",
      total: 4,
      statuses: { granted: 2, onHold: 2, complete: 0, error: 0 },
      versions: [{ version: "3510.2.0", count: 4 }]
    })
    expect(status.holds).toEqual([{ reason: expect.stringMatching(/^on hold: 2 of 2 updates in the last/), count: 2 }])
    const text = ok(await cli(served, ["rollout", "status", "lab", "--app", flatcar]))
    expect(text).toMatch(/^group: +lab \(track "lab", channel "stable"\)\nrollout: +100% of the group, 2 per 15 min\nmachines: +4\ngranted: +2\nin progress: +0\ncomplete: +0\nfailed: +0\non hold: +2\nidle: +0\n/)
    expect(text).toMatch(/^VERSION +MACHINES +GRANTED +IN PROGRESS +COMPLETE +FAILED +ON HOLD +IDLE\n3510\.2\.0 +4 +2 +0 +0 +0 +2 +0$/m)
    expect(text).toMatch(/^HOLD +MACHINES\non hold: 2 of 2 updates in the last \S+ \S+ +2$/m)

    const held = json(await cli(served, ["instance", "list", "--app", flatcar, "--group", "lab", "--status", "onHold", "--json"]))
    expect(held.total).toBe(2)
    const granted = json(await cli(served, ["instance", "list", "--app", flatcar, "--group", "lab", "--status", "granted", "--json"]))
    const machine = granted.items[0].machineId as string
    expect(ok(await cli(served, ["instance", "list", "--app", flatcar, "--group", "lab", "--per-page", "3"]))).toMatch(
      /^MACHINE +ALIAS +VERSION +STATUS +GROUP +LAST CHECK +HOLD\n(lab-\d +- +3510\.2\.0 +(UpdateGranted|OnHold) +lab +.*\n){3}page 1 of 2 \(4 instances\); --page 2 for more\n$/
    )
    expect(ok(await cli(served, ["instance", "show", machine, "--app", flatcar]))).toMatch(
      new RegExp(
        `^machine: +${machine}\nalias:\nip: +127\\.0\\.0\\.1\nversion: +3510\\.2\\.0\nstatus: +UpdateGranted\ngroup: +lab\n` +
          `[^]*\ngranted: +3815\\.2\\.1 at [^]*\nAT +STATUS +VERSION +ERROR\n\\S+ \\S+ +UpdateGranted +`
      )
    )
    expect(ok(await cli(served, ["instance", "delete", machine, "--app", flatcar]))).toBe(`deleted instance ${machine}\n`)
    expect(fails(await cli(served, ["instance", "show", machine, "--app", flatcar]), 6)).toMatch(/^fleet-server: no instance .*\(404\)$/)
    // The other granted machine downloads, then fails: in progress, then failed with its error code.
    const other = (granted.items as Array<{ machineId: string }>).map((i) => i.machineId).find((id) => id !== machine)!
    const statusOf = async () => json(await cli(served, ["rollout", "status", "lab", "--app", flatcar, "--json"]))
    expect((await post(served.base, event(other, "lab", 13, 1))).status).toBe(200)
    expect((await statusOf()).statuses).toMatchObject({ granted: 0, downloading: 1, onHold: 2 })
    expect(ok(await cli(served, ["rollout", "status", "lab", "--app", flatcar]))).toMatch(
      /^machines: +3\ngranted: +0\nin progress: +1 \(downloading 1\)\ncomplete: +0\nfailed: +0\n/m
    )
    expect((await post(served.base, event(other, "lab", 3, 0, 10))).status).toBe(200)
    const failed = ok(await cli(served, ["rollout", "status", "lab", "--app", flatcar]))
    expect(failed).toMatch(/^in progress: +0\ncomplete: +0\nfailed: +1\non hold: +2\n/m)
    expect(failed).toMatch(/^3510\.2\.0 +3 +0 +0 +0 +1 +2 +0$/m)
    expect(failed).toMatch(/^ERROR +MACHINES\nPayloadHashMismatchError \(10\) +1$/m)
    expect(fails(await cli(served, ["rollout", "status", "nope", "--app", flatcar]), 6)).toBe(
      `fleet-server: no group "nope" of "${flatcar}" (404)`
    )
  }, 120_000)

  it("tokens: none, unreadable, unknown and a viewer's write end with status 8; a viewer may read", async () => {
    expect(fails(await cli(served, ["app", "list"], { FLEET_TOKEN: "" }), 8)).toBe(
      "fleet-server: no API token: set FLEET_TOKEN or give --token-file FILE (fleet-server token create --role admin makes one)"
    )
    expect(fails(await cli(served, ["app", "list", "--token-file", Path.join(dir, "no.token")], { FLEET_TOKEN: "" }), 8)).toBe(
      `fleet-server: cannot read the token file ${Path.join(dir, "no.token")}: no such file`
    )
    expect(fails(await cli(served, ["app", "list"], { FLEET_TOKEN: `fleet_${"A".repeat(43)}` }), 8)).toBe(
      "fleet-server: unknown token (401)"
    )
    const viewerFile = Path.join(dir, "viewer.token")
    Fs.writeFileSync(viewerFile, `${served.viewer}\n`)
    const asViewer = ["--token-file", viewerFile]
    expect(json(await cli(served, ["app", "list", "--json", ...asViewer], { FLEET_TOKEN: "" })).map((a: { id: string }) => a.id)).toEqual([
      flatcar
    ])
    expect(fails(await cli(served, ["rollout", "pause", "production", "--app", flatcar, ...asViewer]), 8)).toBe(
      "fleet-server: a viewer token may only read: POST needs an admin token (403)"
    )
    // The file differs from the server (an earlier test edited a limit): the first change is refused.
    expect(fails(await cli(served, ["apply", example, ...asViewer]), 8)).toBe(
      `fleet-server: apply stopped after 0 changes, at ~ group "production" of ${flatcar}: policy.maxUpdatesPerPeriod 8 -> 5: ` +
        "a viewer token may only read: PATCH needs an admin token (403)"
    )
  }, 120_000)

  it("a server that cannot be reached is status 7; a bad URL or a missing flag is a usage error", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = Net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as Net.AddressInfo
        s.close(() => resolve(port))
      })
    })
    expect(fails(await cli(served, ["app", "list", "--server", `http://127.0.0.1:${port}`]), 7)).toBe(
      `fleet-server: cannot reach the fleet server at http://127.0.0.1:${port}: connection refused`
    )
    expect(fails(await cli(served, ["apply", example], { FLEET_SERVER: `http://127.0.0.1:${port}` }), 7)).toMatch(/connection refused$/)
    expect(fails(await cli(served, ["app", "list", "--server", "localhost:8000"]), 2)).toBe(
      `fleet-server: invalid server URL "localhost:8000": give http://host:port or https://host`
    )
    expect(fails(await cli(served, ["group", "list"]), 2)).toBe("fleet-server: missing --app APP; see fleet-server group list --help")
    expect(fails(await cli(served, ["group", "frob"]), 2)).toBe(
      `fleet-server: unknown command "group frob": group takes list, show, create, update, delete; see fleet-server group --help`
    )
    const help = ok(await cli(served, ["group", "--help"]))
    expect(help).toContain("fleet-server group create --channel CHANNEL [options] <GROUP>")
    const listHelp = ok(await cli(served, ["app", "list", "--help"]))
    expect(listHelp).toMatch(/^ {2}--server URL\n.*\n {6}default: \$FLEET_SERVER, else http:\/\/localhost:8000$/m)
    expect(listHelp).toContain("--token-file FILE")
    const applyHelp = ok(await cli(served, ["apply", "--help"]))
    expect(applyHelp).toContain("--dry-run")
    expect(applyHelp).toMatch(/^ {4}9 {2}a file cannot be read, or the fleet file is not valid/m)
    const verbHelp = ok(await cli(served, ["package", "add", "--help"]))
    expect(verbHelp).toMatch(/^ {2}--arch all \| amd64 \| arm64 \| x86\n.*\n {6}default: amd64$/m)
    expect(verbHelp).toMatch(/^ {4}6 {2}the API refused the request/m)
    expect(verbHelp).not.toContain("\u001b[")
  }, 120_000)
})

describePostgres("fleet-server admin commands on PostgreSQL", (url) => {
  const scope = Effect.runSync(Scope.make())
  let database: string
  let pg: Served
  /** Every row of every table but the migrations' record and the tokens (whose last use changes). */
  const rows = async () => {
    const client = new Pg.Client({ connectionString: database })
    await client.connect()
    try {
      const tables = await client.query<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
      )
      const dump: Record<string, unknown> = {}
      for (const { name } of tables.rows) {
        if (name === "tokens" || name.includes("migrations")) continue
        dump[name] = (await client.query(`SELECT * FROM "${name}" ORDER BY 1`)).rows
      }
      return dump
    } finally {
      await client.end()
    }
  }
  beforeAll(async () => {
    database = await Effect.runPromise(Scope.extend(freshDatabase(url), scope))
    pg = await serve(Path.join(dir, "pg-data"), { ...process.env, FLEET_DATABASE_URL: database })
  }, 120_000)
  afterAll(async () => {
    await stop(pg)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("apply --dry-run leaves every row as it was; apply twice changes rows once", async () => {
    const empty = await rows()
    ok(await cli(pg, ["apply", "--dry-run", example]))
    expect(await rows()).toEqual(empty)
    ok(await cli(pg, ["apply", example]))
    const applied = await rows()
    expect((applied["groups"] as Array<{ name: string }>).map((g) => g.name).sort()).toEqual(["beta", "production"])
    expect(ok(await cli(pg, ["apply", example]))).toMatch(/^no changes: /)
    expect(await rows()).toEqual(applied)
    const edited = Path.join(dir, "pg-edited.yaml")
    Fs.writeFileSync(edited, Fs.readFileSync(example, "utf8").replace("rolloutPercent: 50", "rolloutPercent: 75"))
    ok(await cli(pg, ["apply", "--dry-run", edited]))
    expect(await rows()).toEqual(applied)
  }, 120_000)
})
