/**
 * fleet-server mirroring a serve-package, both as users run them: the
 * bundled commands as processes on 127.0.0.1. With `--sync-from` and
 * `--sync-host-payloads`, the fleet server creates the package, moves the
 * channel and serves the payload from its own data directory with the
 * upstream's hashes; `--metrics-open` serves /metrics without a token. The
 * operations flags in `serve --help`, and their bad values refused. The
 * README's mirroring example, run by bash as written.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { request } from "../fleet/http.js"
import { parse, valueOf } from "../fleet/exposition.js"
import { linkClone, run, type Running, start, waitFor } from "./process.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-sync-e2e-"))
const data = Path.join(dir, "data")
const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const appPath = `/api/apps/${encodeURIComponent(flatcar)}`
const sample = Fs.readFileSync("fixtures/sample/update.gz")
const hex = Crypto.createHash("sha256").update(sample).digest("hex")

let upstream: Running
let fleet: Running
let token: string
let base: string

const stop = async (running: Running | undefined) => {
  if (running !== undefined && running.child.exitCode === null) {
    running.child.kill("SIGKILL")
    await running.exited
  }
}

beforeAll(async () => {
  upstream = start("serve-package", [
    "--package-file",
    "fixtures/sample/update.gz",
    "--package-version",
    "9999.0.0",
    "--listen-address",
    "127.0.0.1:0"
  ])
  await waitFor(upstream, () => /^SERVER=\S+$/m.test(upstream.stdout()), 30_000)
  const upstreamUrl = /^SERVER=(\S+)$/m.exec(upstream.stdout())![1]!
  const created = await run("fleet-server", ["token", "create", "--role", "viewer", "--data", data])
  expect(created.status, created.stderr).toBe(0)
  token = created.stdout.trim()
  fleet = start("fleet-server", [
    "serve",
    "--listen-address",
    "127.0.0.1:0",
    "--data",
    data,
    "--sync-from",
    upstreamUrl,
    "--sync-channel",
    "stable:amd64",
    "--sync-host-payloads",
    "--metrics-open"
  ])
  await waitFor(fleet, () => /^SERVER=\S+$/m.test(fleet.stdout()), 60_000)
  base = new URL("/", /^SERVER=(\S+)$/m.exec(fleet.stdout())![1]!).href
}, 120_000)

afterAll(async () => {
  await stop(fleet)
  await stop(upstream)
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("fleet-server --sync-from a serve-package", () => {
  it("says what it syncs, then creates the package, moves the channel, and serves the payload itself", async () => {
    expect(fleet.stderr()).toMatch(/^fleet-server: syncing stable:amd64 from http:\/\/127\.0\.0\.1:\d+\/v1\/update\/ every 3600 s, payloads hosted here$/m)
    let channel: { package?: string } | undefined
    for (let i = 0; i < 100 && channel?.package === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      const answer = await request(base, "GET", `${appPath}/channels/stable?arch=amd64`, { token })
      channel = answer.status === 200 ? answer.json : undefined
    }
    expect(channel?.package).toBe("9999.0.0")
    const [pkg] = (await request(base, "GET", `${appPath}/packages`, { token })).json
    expect(pkg).toMatchObject({ version: "9999.0.0", arch: "amd64", name: "update.gz", size: sample.length })
    expect(pkg.url).toBeUndefined()
    expect(Buffer.from(pkg.sha256, "base64").toString("hex")).toBe(hex)
    expect(Fs.readFileSync(Path.join(data, "payloads", hex)).equals(sample)).toBe(true)
    const served = await fetch(new URL(`packages/${hex}/update.gz`, base))
    expect(served.status).toBe(200)
    expect(Crypto.createHash("sha256").update(Buffer.from(await served.arrayBuffer())).digest("hex")).toBe(hex)
    expect(fleet.stderr()).toContain("sync: channel stable (amd64) from http://127.0.0.1:")
  }, 60_000)

  it("serves /metrics without a token under --metrics-open", async () => {
    const answer = await request(base, "GET", "/metrics")
    expect(answer.status).toBe(200)
    const families = parse(answer.text)
    expect(families.get("fleet_update_checks_total")?.type).toBe("counter")
    expect(valueOf(families, "fleet_api_request_duration_seconds_count", { route: "/api/apps/{app}/packages", status: "200" })).toBe(1)
    expect(valueOf(families, "process_resident_memory_bytes")).toBeGreaterThan(0)
  })
})

describe("fleet-server serve's operations flags", () => {
  it("--help lists them with their defaults", async () => {
    const help = await run("fleet-server", ["serve", "--help"])
    expect(help.status).toBe(0)
    const text = help.stdout.replace(/\s+/g, " ")
    const flags: ReadonlyArray<readonly [string, string]> = [
      ["--metrics-open", "Serve /metrics without a token"],
      ["--sync-from URL", "Mirror channels of an upstream Omaha server"],
      ["--sync-channel NAME[:ARCH][=TRACK]", "Default: stable."],
      ["--sync-app APP_ID", "default: Flatcar's"],
      ["--sync-interval SECONDS", "the first runs 5 s after start. default: 3600"],
      ["--sync-host-payloads", "Download mirrored payloads into DIR/payloads"],
      ["--retain-instances-days DAYS", "(0 keeps them). default: 30"],
      ["--retain-history-days DAYS", "(0 keeps them). default: 90"]
    ]
    for (const [flag, shown] of flags) {
      expect(text).toContain(flag)
      expect(text.slice(text.indexOf(flag)), flag).toContain(shown)
    }
  })

  it("bad values end with exit 2 and one line, before anything is opened", async () => {
    const other = Path.join(dir, "never")
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--sync-interval", "10"], "--sync-interval must be at least 60, not 10; see fleet-server serve --help"],
      [["--sync-interval", "often"], "--sync-interval: 'often' is not an integer; see fleet-server serve --help"],
      [["--sync-from", "upstream"], `invalid Omaha server URL "upstream": not an absolute URL`],
      [["--sync-from", "ftp://example/"], `invalid Omaha server URL "ftp://example/": the scheme must be http or https, not ftp`],
      [
        ["--sync-from", "http://127.0.0.1:1/", "--sync-channel", "stable:mips"],
        `invalid --sync-channel "stable:mips": give NAME, NAME:ARCH or NAME:ARCH=TRACK, ARCH amd64 or arm64`
      ],
      [
        ["--sync-from", "http://127.0.0.1:1/", "--sync-app", ""],
        `invalid --sync-app "": give an application id of 1 to 200 characters without spaces around it`
      ],
      [["--retain-instances-days", "-1"], "--retain-instances-days must be at least 0, not -1; see fleet-server serve --help"],
      [["--retain-history-days", "1.5"], "--retain-history-days: '1.5' is not an integer; see fleet-server serve --help"]
    ]
    for (const [args, line] of cases) {
      const ran = await run("fleet-server", ["serve", "--data", other, "--listen-address", "127.0.0.1:0", ...args], { timeoutMs: 30_000 })
      expect([ran.status, ran.stderr], args.join(" ")).toEqual([2, `fleet-server: ${line}\n`])
    }
    expect(Fs.existsSync(other)).toBe(false)
  }, 120_000)
})

const root = fileURLToPath(new URL("../..", import.meta.url))

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as Net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

describe("README: mirroring a serve-package", () => {
  it("runs as written (only the ports, and the clone's paths for a run outside it, changed)", async () => {
    const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("### Mirroring an upstream"))
    const block = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].find((m) => m[1]!.includes("--sync-from"))
    expect(block, "README: no mirroring example").toBeDefined()
    const [upstreamPort, mirrorPort] = [await freePort(), await freePort()]
    const script = block![1]!
      .replaceAll("8080", String(upstreamPort))
      .replaceAll("8001", String(mirrorPort))
    const cwd = Fs.mkdtempSync(Path.join(dir, "readme-"))
    linkClone(cwd)
    const ran = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = ""
      let stderr = ""
      const shell = ChildProcess.spawn("bash", ["-euo", "pipefail", "-c", `${script}\nwait`], { cwd, stdio: ["ignore", "pipe", "pipe"] })
      const timer = setTimeout(() => shell.kill("SIGKILL"), 90_000)
      shell.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
      shell.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
      shell.on("exit", (status) => {
        clearTimeout(timer)
        resolve({ status, stdout, stderr })
      })
    })
    expect(ran.status, ran.stderr).toBe(0)
    const digests = [...ran.stdout.matchAll(/^([0-9a-f]{64}) {2}(\S+)$/gm)].map((m) => [m[1], Path.basename(m[2]!)])
    expect(digests).toEqual([[hex, "mirrored.gz"], [hex, "update.gz"]])
    expect(ran.stderr).toContain(
      `sync: channel stable (amd64) from http://localhost:${upstreamPort}/v1/update/: created 9999.0.0; moved to 9999.0.0`
    )
    expect(Fs.readFileSync(Path.join(cwd, "mirror-data", "payloads", hex)).equals(sample)).toBe(true)
  }, 120_000)
})
