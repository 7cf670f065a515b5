/**
 * The README's fleet-server walk-through, run as written by bash (only the
 * port, and the paths of the clone's files for a run outside it, changed):
 * a token, the server, the application, the sample payload, a channel and a
 * group. Then a machine in the group checks in as update_engine does and is
 * offered the payload, which it downloads whole from the codebase it got.
 * Then the admin commands' block, run as written against the same server.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Xml } from "effect-omaha"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { request } from "../fleet/http.js"
import { post } from "../server/support.js"
import { linkClone } from "./process.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-readme-"))
// The walk-through runs in its own directory, as written (node dist/bin/..., fixtures/...).
linkClone(dir)
const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

/** The `sh` block of the fleet-server section that makes the first token. */
const walkthrough = (): string => {
  const section = readme.slice(readme.indexOf("## fleet-server"))
  const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].find((m) => m[1]!.includes("token create"))
  if (block === undefined) throw new Error("README: no fleet-server walk-through")
  return block[1]!
}

/** The `sh` block of the admin commands, which continues the walk-through. */
const adminBlock = (): string => {
  const block = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].find((m) => m[1]!.includes("apply fixtures/fleet/fleet.yaml"))
  if (block === undefined) throw new Error("README: no admin commands block")
  return block[1]!
}

/** Runs a script with bash to its end. */
const bash = (script: string, cwd: string) =>
  new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = ChildProcess.spawn("bash", ["-euo", "pipefail", "-c", script], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

let shell: ChildProcess.ChildProcess | undefined
afterAll(async () => {
  // The shell and the server it started in the background are one process group.
  if (shell?.pid !== undefined && shell.exitCode === null) {
    const ended = new Promise((resolve) => shell!.on("exit", resolve))
    process.kill(-shell.pid, "SIGTERM")
    await ended
  }
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("README fleet-server walk-through", () => {
  it("sets up a fleet that offers the payload to a machine of the group, which downloads it", async () => {
    const port = await freePort()
    const script = walkthrough()
      .replaceAll("8000", String(port))
    let out = ""
    shell = ChildProcess.spawn("bash", ["-euo", "pipefail", "-c", `${script}\necho WALKTHROUGH-DONE\nwait`], {
      cwd: dir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    shell.stdout!.on("data", (c: Buffer) => (out += c.toString()))
    shell.stderr!.on("data", (c: Buffer) => (out += c.toString()))
    const deadline = Date.now() + 90_000
    while (!out.includes("WALKTHROUGH-DONE")) {
      if (shell.exitCode !== null) throw new Error(`the walk-through failed (${shell.exitCode}):\n${out}`)
      if (Date.now() > deadline) throw new Error(`the walk-through timed out:\n${out}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const base = `http://127.0.0.1:${port}/`
    const token = Fs.readFileSync(Path.join(dir, "admin.token"), "utf8").trim()
    const appPath = `/api/apps/${encodeURIComponent(flatcar)}`
    const groups = await request(base, "GET", `${appPath}/groups`, { token })
    expect(groups.json.map((g: { name: string; track: string }) => [g.name, g.track])).toEqual([["production", "stable"]])

    // A Flatcar machine on GROUP=stable, older than the channel's package.
    const check = `<?xml version="1.0" encoding="UTF-8"?>
<request protocol="3.0" version="update_engine-0.4.10" updaterversion="update_engine-0.4.10" installsource="scheduler" ismachine="1">
 <os version="Chateau" platform="CoreOS" sp="3815.2.0_x86_64"></os>
 <app appid="${flatcar}" version="3815.2.0" track="stable" bootid="{b2f5c1d6-0000-4000-8000-000000000001}" oem="qemu" oemversion="0.0.1" alephversion="3815.2.0" machineid="readme-machine-1" machinealias="" lang="en-US" board="amd64-usr" hardware_class="" delta_okay="false">
  <ping active="1"></ping>
  <updatecheck></updatecheck>
 </app>
</request>`
    const reply = await post(base, check)
    expect(reply.status).toBe(200)
    const response = await Effect.runPromise(Xml.decodeResponse(reply.text))
    const update = response.apps[0]!.updateCheck!
    expect(update.status).toBe("ok")
    const manifest = update.manifests[0]!
    expect(manifest.version).toBe("9999.0.0")
    const payload = manifest.packages[0]!
    const url = new URL(payload.name, update.urls[0]!.codebase)
    const sample = Fs.readFileSync(Path.join(root, "fixtures/sample/update.gz"))
    const downloaded = await fetch(url)
    expect(downloaded.status).toBe(200)
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(sample)).toBe(true)
    expect(payload.size).toBe(sample.length)

    const instances = await request(base, "GET", `${appPath}/instances`, { token })
    expect(instances.json.items.map((i: { machineId: string; status: string; group: string }) => [i.machineId, i.status, i.group]))
      .toEqual([["readme-machine-1", "granted", "production"]])

    // The admin commands' block, as written, against the same server.
    const admin = await bash(
      adminBlock()
        .replaceAll("8000", String(port)),
      dir
    )
    expect(admin.status, admin.stderr).toBe(0)
    const fleetFile = "fixtures/fleet/fleet.yaml"
    const origin = `http://localhost:${port}`
    const [dryRun, applied, again] = admin.stdout.split(/^(?=\{e96281a6|no changes)/m)
    expect(dryRun).toMatch(/^\{e96281a6-d1af-4bde-9a0a-97b76e56dc57\}:\n {2}~ application: description "" -> "Flatcar Container Linux"\n/)
    expect(dryRun).toContain(`  + channel "beta" (amd64): color "#ff7f0e"\n`)
    expect(dryRun).toMatch(/^ {2}~ group "production": description "" -> "Everything else, a few at a time, at night", .*policy\.rolloutPercent 100 -> 50/m)
    expect(dryRun).toMatch(/\n\d+ changes to make \(dry run: nothing was changed\)\n$/)
    expect(applied).toMatch(new RegExp(`\\nmade \\d+ changes on ${origin}\\n$`))
    expect(applied!.split("\n").slice(0, -2)).toEqual(dryRun!.split("\n").slice(0, -2))
    expect(again).toMatch(new RegExp(`^no changes: ${origin} matches ${fleetFile}\\n`))
    expect(again).toContain('uploaded 9999.0.1 (amd64) as update.gz: ')
    expect(again).toContain('channel "beta" (amd64) points to 9999.0.1\n')
    expect(again).toMatch(/^9999\.0\.1 +amd64 +update\.gz +/m)
    expect(again).toMatch(/^production +stable +stable +enabled +5 per 1 h +50%$/m)
    expect(again).toContain('paused group "production": waiting for the canaries\ngroup: ')
    expect(again).toMatch(/^group: +beta \(track "beta", channel "beta"\)\nrollout: +100% of the group, 10 per 10 min\nmachines: +0\n/m)
    expect(again).toContain("no machines have checked in\nresumed group \"production\"\n")
    const listed = JSON.parse(again!.slice(again!.indexOf("{\n")))
    expect(listed.items.map((i: { machineId: string }) => i.machineId)).toEqual(["readme-machine-1"])
    const channels = await request(base, "GET", `${appPath}/channels`, { token })
    expect(channels.json.map((c: { name: string; package?: string }) => [c.name, c.package])).toEqual([
      ["beta", "9999.0.1"],
      ["stable", "9999.0.0"]
    ])
  }, 150_000)
})
