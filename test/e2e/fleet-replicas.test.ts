/**
 * Two fleet-server replicas as users run them: the bundled command, two
 * processes started together on one PostgreSQL database (their migrations
 * take turns) and one shared data directory for hosted payloads. 200
 * machines checking at once, half at each replica, against a group allowing
 * 5 updates per period get exactly 5 grants; the other 195 are answered
 * `noupdate` and the API shows each on hold with the reason. A channel moved
 * through one replica's API is served by the other within a second, with
 * the payload uploaded through the first.
 */
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { Xml } from "effect-omaha"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Pg from "pg"
import { readFixture } from "../fixtures.js"
import { type Answer, request } from "../fleet/http.js"
import { describePostgres, freshDatabase } from "../fleet/support.js"
import { post } from "../server/support.js"
import { run, type Running, start, waitFor } from "./process.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const appPath = `/api/apps/${encodeURIComponent(flatcar)}`
const held = "on hold: 5 of 5 updates in the last 1 h"

/** update_engine's captured request for this fleet's application, from `machineId` at `version` on `track`. */
const updateEngine = (machineId: string, version: string, track: string) =>
  readFixture("omaha/update-engine/update/request.xml")
    .replace("{87efface-864d-49a5-9bb3-4b050a7c227a}", flatcar)
    .replace("{8BDE4C4D-9083-4D61-B41C-3253212C0C37}", machineId)
    .replace(`track="dev-channel"`, `track="${track}"`)
    .replaceAll("ForcedUpdate", version)

/** The update check's answer: the offered version, or the status. */
const answerOf = (text: string): string => {
  const check = Effect.runSync(Xml.decodeResponse(text)).apps[0]!.updateCheck!
  return check.status === "ok" ? check.manifests[0]!.version : check.status
}

const until = async <A>(what: string, f: () => Promise<A>, done: (a: A) => boolean, ms = 5000): Promise<A> => {
  const deadline = Date.now() + ms
  for (;;) {
    const a = await f()
    if (done(a)) return a
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(a)} after ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describePostgres("fleet-server replicas on one PostgreSQL", (server) => {
  const scope = Effect.runSync(Scope.make())
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-replicas-"))
  const data = Path.join(dir, "data")
  let database: string
  let token: string
  let replicas: Array<{ readonly running: Running; readonly base: string }> = []

  beforeAll(async () => {
    database = await Effect.runPromise(Scope.extend(freshDatabase(server), scope))
    const env = { ...process.env, FLEET_DATABASE_URL: database }
    // Both start at once on an empty database: one migrates, the other waits for it.
    const started = [0, 1].map(() => start("fleet-server", ["serve", "--listen-address", "127.0.0.1:0", "--data", data], { env }))
    replicas = await Promise.all(started.map(async (running) => {
      await waitFor(running, () => /^SERVER=\S+$/m.test(running.stdout()), 60_000)
      return { running, base: new URL("/", /^SERVER=(\S+)$/m.exec(running.stdout())![1]!).href }
    }))
    const created = await run("fleet-server", ["token", "create", "--role", "admin", "--data", data], { env })
    expect(created.status, created.stderr).toBe(0)
    token = created.stdout.trim()
  }, 120_000)

  afterAll(async () => {
    for (const { running } of replicas) {
      if (running.child.exitCode === null) running.child.kill("SIGKILL")
      await running.exited
    }
    await Effect.runPromise(Scope.close(scope, Exit.void))
    Fs.rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  const api = (at: string, method: string, path: string, json?: unknown): Promise<Answer> =>
    request(at, method, path, { token, ...(json === undefined ? {} : { json }) })

  /** Waits until `replica` has the group of `track` in its cache: a machine checking there is recorded in it. */
  const knowsGroup = (replica: string, track: string, group: string) =>
    until(`${replica} knowing group ${group}`, async () => {
      const probe = `probe-${track}-${new URL(replica).port}`
      await post(replica, updateEngine(probe, "3815.2.1", track))
      return (await api(replica, "GET", `${appPath}/instances/${encodeURIComponent(probe)}`)).json?.group
    }, (g) => g === group)

  it("grants exactly 5 of 200 machines checking at once through two replicas; the other 195 get noupdate and show the hold", async () => {
    const [a, b] = replicas.map((r) => r.base) as [string, string]
    expect((await api(a, "POST", "/api/apps", { id: flatcar, name: "Flatcar" })).status).toBe(201)
    const payload = Crypto.randomBytes(4096)
    const put = await request(a, "PUT", `${appPath}/packages/3815.2.1?arch=amd64&name=update.gz`, { token, body: payload })
    expect(put.status).toBe(201)
    expect((await api(a, "POST", `${appPath}/channels`, { name: "stable", arch: "amd64", package: "3815.2.1" })).status).toBe(201)
    const group = await api(a, "POST", `${appPath}/groups`, {
      name: "production",
      track: "stable",
      channel: "stable",
      policy: { maxUpdatesPerPeriod: 5, periodSeconds: 3600, safeMode: false }
    })
    expect(group.status).toBe(201)
    await knowsGroup(a, "stable", "production")
    await knowsGroup(b, "stable", "production")

    const machines = Array.from({ length: 200 }, (_, i) => `machine-${String(i).padStart(3, "0")}`)
    const replies = await Promise.all(machines.map((id, i) => post(i % 2 === 0 ? a : b, updateEngine(id, "3815.2.0", "stable"))))
    expect(replies.map((r) => r.status)).toEqual(machines.map(() => 200))
    const answers = replies.map((r) => answerOf(r.text))
    const granted = machines.filter((_, i) => answers[i] === "3815.2.1")
    expect(granted).toHaveLength(5)
    expect(answers.filter((answer) => answer === "noupdate")).toHaveLength(195)

    // The holds are written with the replicas' next batches of check-ins.
    const onHold = await until(
      "the held machines",
      () => api(b, "GET", `${appPath}/instances?status=onHold&perPage=1000`),
      (r) => r.json?.total === 195
    )
    expect(new Set(onHold.json.items.map((item: { hold: string }) => item.hold))).toEqual(new Set([held]))
    expect(onHold.json.items.map((item: { machineId: string }) => item.machineId).sort()).toEqual(
      machines.filter((id) => !granted.includes(id))
    )
    const one = await api(a, "GET", `${appPath}/instances/${onHold.json.items[0].machineId}`)
    expect(one.json).toMatchObject({ status: "onHold", hold: held, version: "3815.2.0", group: "production" })
    const grantedList = await api(a, "GET", `${appPath}/instances?status=granted&perPage=1000`)
    expect(grantedList.json.items.map((item: { machineId: string }) => item.machineId).sort()).toEqual(granted)

    const client = new Pg.Client({ connectionString: database })
    await client.connect()
    try {
      const rows = await client.query(`SELECT instance_id FROM grants ORDER BY instance_id`)
      expect(rows.rows.map((row) => row.instance_id)).toEqual(granted)
    } finally {
      await client.end()
    }
  }, 120_000)

  it("serves a channel moved through one replica's API from the other within a second, with the payload uploaded through the first", async () => {
    const [a, b] = replicas.map((r) => r.base) as [string, string]
    const payload = Crypto.randomBytes(8192)
    const put = await request(a, "PUT", `${appPath}/packages/3815.2.2?arch=amd64&name=update.gz`, { token, body: payload })
    expect(put.status).toBe(201)
    // A group of its own on the same channel: the production group's period is used up.
    expect((await api(a, "POST", `${appPath}/groups`, {
      name: "canary",
      track: "canary",
      channel: "stable",
      policy: { maxUpdatesPerPeriod: 100, safeMode: false }
    })).status).toBe(201)
    await knowsGroup(b, "canary", "canary")
    expect(answerOf((await post(b, updateEngine("canary-1", "3815.2.1", "canary"))).text)).toBe("noupdate")

    const moved = await api(a, "PATCH", `${appPath}/channels/stable?arch=amd64`, { package: "3815.2.2" })
    expect(moved.status).toBe(200)
    const changed = Date.now()
    const reply = await until(
      "the other replica offering 3815.2.2",
      () => post(b, updateEngine("canary-1", "3815.2.1", "canary")),
      (r) => answerOf(r.text) === "3815.2.2",
      1000
    )
    expect(Date.now() - changed).toBeLessThan(1000)
    const update = Effect.runSync(Xml.decodeResponse(reply.text)).apps[0]!.updateCheck!
    expect(update.urls[0]!.codebase.startsWith(b)).toBe(true)
    const downloaded = await fetch(new URL(update.manifests[0]!.packages[0]!.name, update.urls[0]!.codebase))
    expect(downloaded.status).toBe(200)
    expect(Buffer.from(await downloaded.arrayBuffer()).equals(payload)).toBe(true)
  }, 60_000)

  it("both replicas stop with 0 on SIGTERM", async () => {
    for (const { running } of replicas) running.child.kill("SIGTERM")
    expect(await Promise.all(replicas.map(({ running }) => running.exited))).toEqual([0, 0])
  }, 60_000)
})
