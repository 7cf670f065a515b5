/**
 * fleet-server as users run it: the bundled command as processes on
 * 127.0.0.1 over the embedded database in a data directory. `token create`
 * prints one token and stores only its hash; `serve` prints the
 * update.conf lines, serves the API with that token, takes update_engine's
 * captured request through a whole update (granted, 13/1, 14/1, 3/1, then
 * the new version with 3/2 and its next check: complete, as the API shows),
 * refuses a second process on the same data directory, and stops with 0 on
 * SIGTERM; mistakes end with one line and the documented status.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { Effect, Exit, Scope } from "effect"
import { Xml } from "effect-omaha"
import { readFixture } from "../fixtures.js"
import { describePostgres, freshDatabase } from "../fleet/support.js"
import { request } from "../fleet/http.js"
import { post } from "../server/support.js"
import { run, type Running, start, waitFor } from "./process.js"

const root = Path.resolve(import.meta.dirname, "..", "..")
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-server-e2e-"))
const data = Path.join(dir, "data")
const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const appPath = `/api/apps/${encodeURIComponent(flatcar)}`

/** Every file below `root`. */
const filesBelow = (root: string): Array<string> =>
  (Fs.readdirSync(root, { recursive: true, encoding: "utf8" }) as Array<string>)
    .map((name) => Path.join(root, name))
    .filter((path) => Fs.statSync(path).isFile())

let token: string
let server: Running
let base: string
let endpoint: string
const payload = Crypto.randomBytes(64 * 1024)

// update_engine's captured request, for this fleet: Flatcar's app id and the group's track, at `version`.
const machineId = "{8BDE4C4D-9083-4D61-B41C-3253212C0C37}"
const updateEngine = (version: string, event?: string) => {
  const captured = readFixture("omaha/update-engine/update/request.xml")
    .replace("{87efface-864d-49a5-9bb3-4b050a7c227a}", flatcar)
    .replace(`track="dev-channel"`, `track="stable"`)
    .replaceAll("ForcedUpdate", version)
  return event === undefined ? captured : captured.replace(/<event [^>]*><\/event>/, event)
}
/** A progress report as update_engine sends it: the app with one event, nothing else. */
const updateEngineEvent = (version: string, type: number, result: number) =>
  updateEngine(version).replace(
    /<ping[^>]*><\/ping>\s*<updatecheck[^>]*><\/updatecheck>\s*<event[^>]*><\/event>/,
    `<event eventtype="${type}" eventresult="${result}"></event>`
  )

beforeAll(async () => {
  const created = await run("fleet-server", ["token", "create", "--role", "admin", "--name", "e2e", "--data", data])
  expect(created.status, created.stderr).toBe(0)
  // A first start takes seconds: it says so, on stderr, before it does it.
  expect(created.stderr).toContain(`creating the database in ${data}/pgdata`)
  token = created.stdout.trim()
  server = start("fleet-server", ["serve", "--listen-address", "127.0.0.1:0", "--data", data, "--max-upload-size", "2M"])
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()), 60_000)
  endpoint = /^SERVER=(\S+)$/m.exec(server.stdout())![1]!
  base = new URL("/", endpoint).href
}, 120_000)

afterAll(async () => {
  if (server !== undefined && server.child.exitCode === null) {
    server.child.kill("SIGKILL")
    await server.exited
  }
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("fleet-server", () => {
  it("token create printed one token; the data directory holds its hash, never the token", () => {
    expect(token).toMatch(/^fleet_[A-Za-z0-9_-]{43}$/)
    const hash = Buffer.from(Crypto.createHash("sha256").update(token).digest("hex"))
    const files = filesBelow(data).map((path) => Fs.readFileSync(path))
    expect(files.some((bytes) => bytes.includes(Buffer.from(token)))).toBe(false)
    expect(files.some((bytes) => bytes.includes(hash))).toBe(true)
  })

  it("serve prints the update.conf lines and where it listens", () => {
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/update\/$/)
    expect(server.stdout()).toContain("# Put these lines in /etc/flatcar/update.conf")
    expect(server.stdout()).toMatch(/^GROUP=stable$/m)
    expect(server.stderr()).toMatch(
      /^fleet-server: listening on 127\.0\.0\.1:\d+; dashboard at http:\/\/127\.0\.0\.1:\d+\/; API at http:\/\/127\.0\.0\.1:\d+\/api\/; database embedded/m
    )
    expect(server.stderr()).toContain("uploads up to 2.0 MiB")
  })

  it("the API answers with the token, and sets up an application, a payload, a channel and a group", async () => {
    expect((await request(base, "GET", "/health")).json).toEqual({ status: "ok" })
    expect((await request(base, "GET", "/api/apps")).status).toBe(401)
    const auth = { token }
    const made = await request(base, "POST", "/api/apps", { ...auth, json: { id: flatcar, name: "Flatcar" } })
    expect(made.status).toBe(201)
    const uploaded = await request(base, "PUT", `${appPath}/packages/3815.2.1?arch=amd64&name=update.gz`, { ...auth, body: payload })
    expect(uploaded.status).toBe(201)
    expect(uploaded.json.sha256).toBe(Crypto.createHash("sha256").update(payload).digest("base64"))
    expect(Fs.existsSync(Path.join(data, "payloads", Crypto.createHash("sha256").update(payload).digest("hex")))).toBe(true)
    const tooBig = await request(base, "PUT", `${appPath}/packages/3815.2.2?arch=amd64`, { ...auth, body: Buffer.alloc(3 * 1024 * 1024) })
    expect(tooBig.status).toBe(413)
    expect((await request(base, "POST", `${appPath}/channels`, { ...auth, json: { name: "stable", arch: "amd64", package: "3815.2.1" } })).status)
      .toBe(201)
    expect((await request(base, "POST", `${appPath}/groups`, { ...auth, json: { name: "production", track: "stable", channel: "stable" } })).status)
      .toBe(201)
    expect((await request(base, "GET", `${appPath}/groups/production`, auth)).json.track).toBe("stable")
  })

  it("serves the package's built dashboard at /, its bundles under /assets/, other origins forbidden", async () => {
    const page = await request(base, "GET", "/")
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'")
    expect(page.headers["content-security-policy"]).toContain("connect-src 'self'")
    const built = Fs.readFileSync(Path.join(root, "dist", "dashboard", "index.html"), "utf8")
    expect(page.text).toBe(built)
    const script = /src="(\/assets\/main-[A-Z0-9]+\.js)"/.exec(page.text)![1]!
    const bundle = await request(base, "GET", script)
    expect(bundle.status).toBe(200)
    expect(bundle.headers["cache-control"]).toBe("public, max-age=31536000, immutable")
    expect(bundle.text).toBe(Fs.readFileSync(Path.join(root, "dist", "dashboard", script), "utf8"))
  })

  it("answers Omaha update checks at the printed SERVER URL: unknown apps refused, a machine of the group offered the payload", async () => {
    const unknown = await post(base, readFixture("omaha/update-engine/update/request.xml"))
    expect(unknown.status).toBe(400)
    expect(unknown.text).toContain(`<app appid="{87efface-864d-49a5-9bb3-4b050a7c227a}" status="error-unknownApplication"/>`)

    // The captured update_engine request, for this fleet's application and group, with its 3/2
    // of an earlier update that nothing waits for (recorded, moving nothing).
    const reply = await post(base, updateEngine("3815.2.0"))
    expect(reply.status).toBe(200)
    const response = Effect.runSync(Xml.decodeResponse(reply.text))
    expect(response.apps[0]!.events.map((e) => e.status)).toEqual(["ok"])
    const update = response.apps[0]!.updateCheck!
    expect(update.status).toBe("ok")
    expect(update.manifests[0]!.version).toBe("3815.2.1")
    const hex = Crypto.createHash("sha256").update(payload).digest("hex")
    expect(update.urls[0]!.codebase).toBe(new URL(`packages/${hex}/`, base).href)
    const downloaded = await fetch(new URL(update.manifests[0]!.packages[0]!.name, update.urls[0]!.codebase))
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(payload)).toBe(true)
    const machine = await request(base, "GET", `${appPath}/instances/${encodeURIComponent(machineId)}`, { token })
    expect(machine.json).toMatchObject({ machineId, alias: "mymachine", status: "granted", group: "production", version: "3815.2.0" })
  })

  it("takes the machine through download and install, then its next check with the new version and 3/2: complete, with its history", async () => {
    // update_engine reports progress in requests of one event each, no ping and no check.
    for (const [type, result, status] of [[13, 1, "downloading"], [14, 1, "downloaded"], [3, 1, "installed"]] as const) {
      const reply = await post(base, updateEngineEvent("3815.2.0", type, result))
      expect(reply.status).toBe(200)
      const app = Effect.runSync(Xml.decodeResponse(reply.text)).apps[0]!
      expect(app.events.map((e) => e.status)).toEqual(["ok"])
      expect(app.updateCheck).toBeUndefined()
      const machine = await request(base, "GET", `${appPath}/instances/${encodeURIComponent(machineId)}`, { token })
      expect(machine.json.status).toBe(status)
    }
    // After the reboot: the new version, the 3/2 of the update and the next check, in one request.
    const rebooted = await post(base, updateEngine("3815.2.1", `<event eventtype="3" eventresult="2" previousversion="3815.2.0"></event>`))
    expect(rebooted.status).toBe(200)
    const app = Effect.runSync(Xml.decodeResponse(rebooted.text)).apps[0]!
    expect(app.events.map((e) => e.status)).toEqual(["ok"])
    expect(app.updateCheck?.status).toBe("noupdate")

    const machine = await request(base, "GET", `${appPath}/instances/${encodeURIComponent(machineId)}`, { token })
    expect(machine.status).toBe(200)
    expect(machine.json).toMatchObject({ machineId, status: "complete", version: "3815.2.1", group: "production" })
    expect(machine.json.hold).toBeUndefined()
    expect(machine.json.history.map((h: { status: string; version: string }) => `${h.status} ${h.version}`)).toEqual([
      "complete 3815.2.1",
      "installed 3815.2.1",
      "downloaded 3815.2.1",
      "downloading 3815.2.1",
      "granted 3815.2.1"
    ])
    expect(machine.json.events.map((e: { eventType: number; eventResult: number }) => `${e.eventType}/${e.eventResult}`))
      .toEqual(["3/2", "3/1", "14/1", "13/1", "3/2"])
    expect(machine.json.events[0].previousVersion).toBe("3815.2.0")
  })

  it("token create on the data directory while serve holds it: exit 5 with one line, nothing created", async () => {
    const second = await run("fleet-server", ["token", "create", "--role", "viewer", "--data", data])
    expect(second.status).toBe(5)
    expect(second.stdout).toBe("")
    expect(second.stderr.trim().split("\n")).toHaveLength(1)
    expect(second.stderr).toMatch(/^fleet-server: data directory .* is in use by process \d+/)
    const tokens = await request(base, "GET", "/api/tokens", { token })
    expect(tokens.json.map((t: { role: string }) => t.role)).toEqual(["admin"])
  })

  it("mistakes end with their documented status and one line", async () => {
    const unknown = await run("fleet-server", ["launch"])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toBe(`fleet-server: unknown command "launch": use serve, token create, apply, or an admin command; see fleet-server --help\n`)
    const size = await run("fleet-server", ["serve", "--data", Path.join(dir, "other"), "--max-upload-size", "lots"])
    expect(size.status).toBe(2)
    expect(size.stderr).toBe(`fleet-server: invalid --max-upload-size "lots": give bytes, or a number with K, M or G (e.g. 4G)\n`)
    const typo = await run("fleet-server", ["serve", "--listen-adress", "127.0.0.1:0"])
    expect(typo.status).toBe(2)
    expect(typo.stderr).toBe("fleet-server: unknown option --listen-adress; see fleet-server serve --help\n")
    const database = await run("fleet-server", ["token", "create", "--role", "admin", "--database-url", "postgres://nobody@127.0.0.1:1/none"])
    expect(database.status).toBe(3)
    expect(database.stderr).toBe("fleet-server: cannot connect to PostgreSQL at nobody@127.0.0.1:1/none: connect ECONNREFUSED 127.0.0.1:1\n")
  }, 120_000)

  it("--help shows the way from nothing to a machine updating, and the exit statuses", async () => {
    const help = await run("fleet-server", ["--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("fleet-server token create --role admin --name me > admin.token")
    expect(help.stdout).toContain(`"$APP/packages/3815.2.1?arch=amd64&name=update.gz"`)
    expect(help.stdout).toContain("SERVER=http://<this host>:8000/v1/update/")
    expect(help.stdout).toMatch(/^ {4}5 {2}the data directory is in use by another process/m)
  })

  it("SIGTERM stops serve with 0 and frees the data directory; a busy address is exit 4", async () => {
    server.child.kill("SIGTERM")
    expect(await server.exited).toBe(0)
    expect(Fs.existsSync(Path.join(data, "lock"))).toBe(false)
    const after = await run("fleet-server", ["token", "create", "--role", "viewer", "--data", data])
    expect(after.status, after.stderr).toBe(0)

    const taken = Net.createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as Net.AddressInfo).port
    const busy = await run("fleet-server", ["serve", "--data", data, "--listen-address", `127.0.0.1:${port}`])
    taken.close()
    expect(busy.status).toBe(4)
    expect(busy.stderr).toBe(
      `fleet-server: cannot listen on 127.0.0.1:${port}: the address is already in use (is another server running there?); ` +
        "choose another --listen-address\n"
    )
  }, 60_000)
})

describePostgres("fleet-server on PostgreSQL", (url) => {
  const scope = Effect.runSync(Scope.make())
  let database: string
  beforeAll(async () => {
    database = await Effect.runPromise(Scope.extend(freshDatabase(url), scope))
  }, 60_000)
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)))

  it("token create and serve with FLEET_DATABASE_URL; the token works through the server", async () => {
    const env = { ...process.env, FLEET_DATABASE_URL: database }
    const pgData = Path.join(dir, "pg-data")
    const created = await run("fleet-server", ["token", "create", "--role", "viewer", "--data", pgData], { env })
    expect(created.status, created.stderr).toBe(0)
    expect(created.stderr).toMatch(/^fleet-server: created viewer token 1; /)
    const viewer = created.stdout.trim()
    // The embedded database is not used: the data directory only holds payloads.
    expect(Fs.existsSync(Path.join(pgData, "pgdata"))).toBe(false)

    const serving = start("fleet-server", ["serve", "--listen-address", "127.0.0.1:0", "--data", pgData], { env })
    try {
      await waitFor(serving, () => /^SERVER=\S+$/m.test(serving.stdout()), 60_000)
      expect(serving.stderr()).toMatch(/database PostgreSQL at postgres@127\.0\.0\.1:\d+\/fleet_test_[0-9a-f]+;/)
      const at = new URL("/", /^SERVER=(\S+)$/m.exec(serving.stdout())![1]!).href
      expect((await request(at, "GET", "/api/apps", { token: viewer })).status).toBe(200)
      expect((await request(at, "POST", "/api/apps", { token: viewer, json: { id: "x", name: "X" } })).status).toBe(403)
    } finally {
      serving.child.kill("SIGTERM")
      expect(await serving.exited).toBe(0)
    }
  }, 120_000)
})
