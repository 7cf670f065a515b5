/**
 * A release through the fleet server, operated as its users operate it, on
 * 127.0.0.1: `fleet-server serve` as a process; `fleet-server apply` of a
 * two-group setup (beta, everyone at once; production, 15 updates per 4 s);
 * `package add` uploading the payload onto the stable channel and `channel
 * update` moving beta; a webhook receiver registered through the API; then
 * 50 machines (the project's own Omaha client: 10 on beta, 40 on stable)
 * updating in the production group's steps. At each step `rollout status`
 * (table and JSON) and a scrape of /metrics (parsed) show the counts, and
 * the receiver is told, signed, that each group's rollout started and then
 * finished.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import * as AppClient from "../../src/client/AppClient.js"
import * as OmahaClient from "../../src/client/OmahaClient.js"
import * as Webhooks from "../../src/fleet/Webhooks.js"
import { EventRequest } from "../../src/protocol/Request.js"
import { parse, valueOf } from "../fleet/exposition.js"
import { request } from "../fleet/http.js"
import { type Ran, run, type Running, start, waitFor } from "./process.js"

const app = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"
const secret = "a secret the receiver shares with the server"
const periodSeconds = 4
const perPeriod = 15

const fleetFile = `apps:
  - id: "${app}"
    name: Flatcar
    channels:
      - name: stable
        arch: amd64
      - name: beta
        arch: amd64
    groups:
      - name: beta
        channel: beta
        policy:
          safeMode: false
          maxUpdatesPerPeriod: 100
          periodSeconds: 3600
      - name: production
        track: stable
        channel: stable
        policy:
          safeMode: false
          maxUpdatesPerPeriod: ${perPeriod}
          periodSeconds: ${periodSeconds}
`

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fleet-operations-"))
const data = Path.join(dir, "data")
const payloadFile = Path.join(dir, "update.gz")
const payload = Crypto.randomBytes(256 * 1024)
let server: Running
let base: string
let admin: string
let viewer: string

// Webhook deliveries as received, with their signature header.
const deliveries: Array<{ readonly body: string; readonly signature: string }> = []
const receiver = Http.createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (c: Buffer) => chunks.push(c))
  req.on("end", () => {
    deliveries.push({ body: Buffer.concat(chunks).toString("utf8"), signature: String(req.headers[Webhooks.signatureHeader]) })
    res.writeHead(204).end()
  })
})

const cli = (args: ReadonlyArray<string>): Promise<Ran> =>
  run("fleet-server", args, { env: { ...process.env, FLEET_SERVER: base, FLEET_TOKEN: admin, FLEET_APP: app } })

const ok = (ran: Ran): string => {
  expect(ran.stderr, ran.stdout).toBe("")
  expect(ran.status).toBe(0)
  return ran.stdout
}

const eventually = async (condition: () => boolean | Promise<boolean>, what: string, millis = 10_000) => {
  const deadline = Date.now() + millis
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

beforeAll(async () => {
  Fs.writeFileSync(payloadFile, payload)
  Fs.writeFileSync(Path.join(dir, "fleet.yaml"), fleetFile)
  const token = async (role: string) => {
    const made = await run("fleet-server", ["token", "create", "--role", role, "--data", data])
    expect(made.status, made.stderr).toBe(0)
    return made.stdout.trim()
  }
  admin = await token("admin")
  viewer = await token("viewer")
  server = start("fleet-server", ["serve", "--listen-address", "127.0.0.1:0", "--data", data])
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()), 60_000)
  base = new URL("/", /^SERVER=(\S+)$/m.exec(server.stdout())![1]!).href.replace(/\/$/, "")
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve))
}, 120_000)

afterAll(async () => {
  if (server !== undefined && server.child.exitCode === null) {
    server.child.kill("SIGTERM")
    await server.exited
  }
  await new Promise((resolve) => receiver.close(resolve))
  Fs.rmSync(dir, { recursive: true, force: true })
})

// -- machines ----------------------------------------------------------------

interface Machine {
  readonly id: string
  readonly client: AppClient.AppClientService
}

const machines = (count: number, track: string, prefix: string) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`), (id) =>
    Effect.gen(function*() {
      const omaha = yield* OmahaClient.make({ serverUrl: `${base}/v1/update/`, userId: id, retry: { tries: 1 } })
      const client = yield* AppClient.make({ appId: app, version: "1.0.0", track, board: "amd64-usr" }).pipe(
        Effect.provideService(OmahaClient.OmahaClient, omaha)
      )
      return { id, client } satisfies Machine
    }))

/** Every machine checks once; the ones answered with an update. */
const checkAll = (fleet: ReadonlyArray<Machine>) =>
  Effect.map(
    Effect.forEach(fleet, (m) => m.client.updateCheck(), { concurrency: 10 }),
    (answers) => fleet.filter((_, i) => answers[i]!._tag === "UpdateAvailable")
  )

const event = (type: number, result: number) => new EventRequest({ eventType: type, eventResult: result })

/** Downloads, installs, reboots into 2.0.0 and says so (3/2 with the next check). */
const update = (fleet: ReadonlyArray<Machine>) =>
  Effect.forEach(fleet, (m) =>
    Effect.gen(function*() {
      for (const e of [event(13, 1), event(14, 1), event(3, 1)]) yield* Effect.flatten(m.client.event(e))
      yield* m.client.setVersion("2.0.0")
      const next = yield* m.client.updateCheck()
      expect(next._tag, m.id).toBe("NoUpdate")
    }), { concurrency: 10, discard: true })

// -- what an operator reads --------------------------------------------------

const rolloutStatus = (group: string) =>
  Effect.promise(async () => {
    const json = JSON.parse(ok(await cli(["rollout", "status", group, "--json"])))
    const table = ok(await cli(["rollout", "status", group]))
    return { json, table }
  })

const scrapeNow = async () => {
  const answer = await request(base, "GET", "/metrics", { token: viewer })
  expect(answer.status).toBe(200)
  expect(answer.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/)
  return parse(answer.text)
}
const scrape = Effect.promise(scrapeNow)
const sleep = (millis: number) => Effect.sleep(`${millis} millis`)
const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

const counter = (families: ReturnType<typeof parse>, name: string, labels: Record<string, string>) =>
  valueOf(families, name, { app, ...labels }) ?? 0

const webhookKinds = () =>
  deliveries.map((d) => {
    const body = JSON.parse(d.body)
    return `${body.kind} ${body.group} ${body.version}`
  })

describe("a release through fleet-server's commands, API, metrics and webhooks", () => {
  it.live("50 machines update in the production group's steps, seen at each step", () =>
    Effect.gen(function*() {
      // The setup from a file, twice: the second apply has nothing to change.
      const applied = ok(yield* promise(() => cli(["apply", Path.join(dir, "fleet.yaml")])))
      expect(applied).toContain(`  + application: name "Flatcar"\n`)
      expect(applied).toMatch(/^  \+ group "beta": track "beta", channel "beta", /m)
      expect(applied).toMatch(/^  \+ group "production": track "stable", channel "stable", policy.maxUpdatesPerPeriod 15, policy.periodSeconds 4, /m)
      expect(applied).toMatch(/^made 5 changes on /m)
      const again = ok(yield* promise(() => cli(["apply", Path.join(dir, "fleet.yaml")])))
      expect(again).not.toMatch(/^  [+~-] /m)

      // The release: uploaded onto stable, and beta moved to it.
      const added = yield* promise(() => cli(["package", "add", payloadFile, "--version", "2.0.0", "--channel", "stable"]))
      expect(added.status, added.stderr).toBe(0)
      // Piped, the progress is plain lines on stderr, ending at 100 %.
      expect(added.stderr).toMatch(/^uploading update.gz .* 100%\n$/m)
      expect(added.stderr).not.toContain("\u001b")
      expect(added.stdout).toContain(`channel "stable" (amd64) points to 2.0.0`)
      ok(yield* promise(() => cli(["channel", "update", "beta", "--package", "2.0.0"])))
      const listed = JSON.parse(ok(yield* promise(() => cli(["package", "list", "--json"]))))
      expect(listed).toEqual([
        expect.objectContaining({ version: "2.0.0", size: payload.length, sha256: Crypto.createHash("sha256").update(payload).digest("base64") })
      ])

      const hook = yield* promise(() => request(base, "POST", "/api/webhooks", {
        token: admin,
        json: { url: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, secret, kinds: ["rolloutStarted", "rolloutFinished"] }
      }))
      expect(hook.status, hook.text).toBe(201)
      // The engine and the webhooks follow configuration within a second.
      yield* sleep(1500)

      const beta = yield* machines(10, "beta", "beta")
      const production = yield* machines(40, "stable", "prod")

      // Step 1: beta all at once; production 15 granted, 25 held by the period's limit.
      expect(yield* checkAll(beta)).toHaveLength(10)
      const first = yield* checkAll(production)
      expect(first).toHaveLength(perPeriod)
      let status = yield* rolloutStatus("production")
      expect(status.json).toMatchObject({ total: 40, statuses: { granted: 15, onHold: 25, complete: 0 } })
      expect(status.json.holds).toEqual([expect.objectContaining({ count: 25 })])
      expect(status.json.holds[0].reason).toMatch(/15 of 15 updates/)
      expect(status.table).toMatch(/^granted: +15$/m)
      expect(status.table).toMatch(/^on hold: +25$/m)
      expect(status.table).toMatch(/^on hold: 15 of 15 updates in the last 4 s +25$/m)
      let metrics = yield* scrape
      expect(counter(metrics, "fleet_grants_total", { group: "production" })).toBe(15)
      expect(counter(metrics, "fleet_grants_total", { group: "beta" })).toBe(10)
      expect(counter(metrics, "fleet_update_checks_total", { answer: "hold", reason: "period_limit" })).toBe(25)
      yield* promise(() => eventually(() => webhookKinds().length === 2, "two rollouts started"))
      expect(webhookKinds().sort()).toEqual(["rolloutStarted beta 2.0.0", "rolloutStarted production 2.0.0"])

      // The granted ones update: beta's rollout is finished, production's is not.
      yield* update([...beta, ...first])
      status = yield* rolloutStatus("production")
      expect(status.json).toMatchObject({ total: 40, statuses: { complete: 15, granted: 0 } })
      expect(status.json.versions).toEqual([
        expect.objectContaining({ version: "2.0.0", count: 15 }),
        expect.objectContaining({ version: "1.0.0", count: 25 })
      ])
      expect(status.table).toMatch(/^complete: +15$/m)
      metrics = yield* scrape
      expect(counter(metrics, "fleet_updates_completed_total", { group: "production" })).toBe(15)
      expect(counter(metrics, "fleet_updates_completed_total", { group: "beta" })).toBe(10)
      expect(counter(metrics, "fleet_rollouts_finished_total", { group: "beta" })).toBe(1)
      expect(counter(metrics, "fleet_rollouts_finished_total", { group: "production" })).toBe(0)
      yield* promise(() => eventually(() => webhookKinds().length === 3, "beta's rollout finished"))
      expect(webhookKinds()[2]).toBe("rolloutFinished beta 2.0.0")

      // Steps 2 and 3, a period apart: 15 more, then the last 10.
      let waiting = production.filter((m) => !first.includes(m))
      for (const expected of [15, 10]) {
        yield* sleep(periodSeconds * 1000 + 300)
        const granted = yield* checkAll(waiting)
        expect(granted).toHaveLength(expected)
        yield* update(granted)
        waiting = waiting.filter((m) => !granted.includes(m))
        status = yield* rolloutStatus("production")
        expect(status.json.statuses.complete).toBe(40 - waiting.length)
        metrics = yield* scrape
        expect(counter(metrics, "fleet_grants_total", { group: "production" })).toBe(40 - waiting.length)
      }
      expect(waiting).toEqual([])
      expect(status.json).toMatchObject({ total: 40, statuses: { complete: 40, onHold: 0, granted: 0 } })
      expect(status.json.versions).toEqual([expect.objectContaining({ version: "2.0.0", count: 40 })])

      // Finished, once, and said so signed.
      yield* promise(() => eventually(() => webhookKinds().length === 4, "production's rollout finished"))
      expect(webhookKinds()[3]).toBe("rolloutFinished production 2.0.0")
      for (const d of deliveries) expect(Webhooks.verify(secret, d.body, d.signature)).toBe(true)
      metrics = yield* scrape
      expect(counter(metrics, "fleet_rollouts_finished_total", { group: "production" })).toBe(1)
      expect(counter(metrics, "fleet_updates_completed_total", { group: "production" })).toBe(40)
      // The machines gauge is read from the database (kept for a few seconds).
      yield* promise(() => eventually(async () =>
        counter(await scrapeNow(), "fleet_instances", { group: "production", version: "2.0.0", status: "complete" }) === 40, "the gauge", 15_000))
    }).pipe(Effect.scoped, Effect.provide(NodeHttpClient.layer)), 180_000)
})
