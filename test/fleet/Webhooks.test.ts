import { NodeHttpClient } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestServices } from "effect"
import { FleetEvent } from "../../src/fleet/FleetEvents.js"
import * as Webhooks from "../../src/fleet/Webhooks.js"
import { deadUrl, eventually, receiver } from "./receiver.js"
import { describeStores, truncateAll } from "./support.js"

const secret = "a secret of some length"
const app = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

const started = FleetEvent.RolloutStarted({ appId: app, group: "production", version: "3815.2.1", at: Date.UTC(2026, 0, 2, 3, 4, 5) })
const finished = FleetEvent.RolloutFinished({ appId: app, group: "production", version: "3815.2.1", at: Date.UTC(2026, 0, 3) })
const failed = FleetEvent.Failed({
  appId: app,
  group: "production",
  machineId: "m-1",
  version: "3815.2.1",
  errorCode: 44,
  rollback: true,
  at: Date.UTC(2026, 0, 2)
})

// Deliveries need real sockets and real time.
const live = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeHttpClient.layer), TestServices.provideLive)

const withApps = Effect.gen(function*() {
  yield* truncateAll
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO applications (id, name) VALUES (${app}, 'Flatcar'), ('other', 'Other')`
})

describe("signatures", () => {
  it("are sha256= and the hex HMAC-SHA256 of the body, checked in constant time", () => {
    // echo -n '{"a":1}' | openssl dgst -sha256 -hmac key
    expect(Webhooks.sign("key", "{\"a\":1}")).toBe("sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342")
    const signature = Webhooks.sign("key", "body")
    expect(Webhooks.verify("key", "body", signature)).toBe(true)
    expect(Webhooks.verify("key", Buffer.from("body"), signature)).toBe(true)
    expect(Webhooks.verify("key", "body!", signature)).toBe(false)
    expect(Webhooks.verify("other", "body", signature)).toBe(false)
    expect(Webhooks.verify("key", "body", undefined)).toBe(false)
    expect(Webhooks.verify("key", "body", "sha256=00")).toBe(false)
  })
})

describeStores("Webhooks", (it) => {
  it.effect("are stored with their secret, which the service never shows", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const sql = yield* SqlClient.SqlClient
      const hooks = yield* Webhooks.make()
      const created = yield* hooks.create({ url: "http://127.0.0.1:9/a", secret, kinds: ["rolloutStarted", "rolloutStarted"], appId: app })
      expect(created).toMatchObject({ url: "http://127.0.0.1:9/a", kinds: ["rolloutStarted"], appId: app, description: "" })
      expect(JSON.stringify(created)).not.toContain(secret)
      expect(yield* sql`SELECT secret, kinds FROM webhooks`).toEqual([{ secret, kinds: ["rolloutStarted"] }])

      const changed = yield* hooks.update(created.id, { kinds: ["rolloutFinished", "instanceFailed"], appId: null, description: "ops" })
      expect(changed).toMatchObject({ url: "http://127.0.0.1:9/a", kinds: ["rolloutFinished", "instanceFailed"], description: "ops" })
      expect(changed.appId).toBeUndefined()
      yield* hooks.update(created.id, { secret: "another secret, longer" })
      expect(yield* sql`SELECT secret FROM webhooks`).toEqual([{ secret: "another secret, longer" }])
      expect((yield* hooks.list).map((h) => h.id)).toEqual([created.id])
      expect((yield* hooks.get(created.id)).description).toBe("ops")

      expect((yield* hooks.remove(created.id)).id).toBe(created.id)
      expect(yield* hooks.list).toEqual([])
      expect(yield* Effect.flip(hooks.get(created.id))).toBeInstanceOf(Webhooks.WebhookNotFound)
      expect(yield* Effect.flip(hooks.remove(created.id))).toBeInstanceOf(Webhooks.WebhookNotFound)
    })))

  it.effect("refuse a URL that is not http(s) and an application that does not exist, storing nothing", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const sql = yield* SqlClient.SqlClient
      const hooks = yield* Webhooks.make()
      for (const url of ["ftp://example.com/x", "not a url", "http://"]) {
        const error = yield* Effect.flip(hooks.create({ url, secret, kinds: ["rolloutStarted"] }))
        expect(error).toBeInstanceOf(Webhooks.InvalidWebhookUrl)
        expect(error.message).toContain("http:// or https://")
      }
      const missing = yield* Effect.flip(hooks.create({ url: "http://127.0.0.1:9/", secret, kinds: ["rolloutStarted"], appId: "nope" }))
      expect(missing).toBeInstanceOf(Webhooks.WebhookAppNotFound)
      expect(yield* sql`SELECT count(*)::int AS n FROM webhooks`).toEqual([{ n: 0 }])
      const created = yield* hooks.create({ url: "http://127.0.0.1:9/", secret, kinds: ["rolloutStarted"] })
      expect(yield* Effect.flip(hooks.update(created.id, { url: "file:///etc/passwd" }))).toBeInstanceOf(Webhooks.InvalidWebhookUrl)
      expect(yield* Effect.flip(hooks.update(created.id + 1, { description: "x" }))).toBeInstanceOf(Webhooks.WebhookNotFound)
      expect((yield* hooks.get(created.id)).url).toBe("http://127.0.0.1:9/")
    })))

  it.effect("deliver the events a webhook asks for, signed, with the kind and delivery id in headers", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const target = yield* receiver()
      const elsewhere = yield* receiver()
      const hooks = yield* Webhooks.make()
      yield* hooks.create({ url: target.url, secret, kinds: ["rolloutStarted", "rolloutFinished", "instanceFailed"], appId: app })
      // Another application's webhook hears none of these.
      yield* hooks.create({ url: elsewhere.url, secret, kinds: ["rolloutStarted"], appId: "other" })
      for (const event of [started, failed, finished]) yield* hooks.listener(event)
      // Events no webhook kind names are not delivered.
      yield* hooks.listener(FleetEvent.Granted({ appId: app, group: "production", machineId: "m", version: "1", at: 0 }))
      yield* eventually(() => target.received.length === 3)
      yield* eventually(() => Effect.runSync(hooks.pending) === 0)
      expect(elsewhere.received).toEqual([])

      const bodies = target.received.map((r) => JSON.parse(r.body))
      expect(bodies.map((b) => b.kind).sort()).toEqual(["instanceFailed", "rolloutFinished", "rolloutStarted"])
      for (const r of target.received) {
        expect(Webhooks.verify(secret, r.body, r.headers[Webhooks.signatureHeader] as string)).toBe(true)
        expect(r.headers["content-type"]).toBe("application/json")
        expect(r.headers[Webhooks.eventHeader]).toBe(JSON.parse(r.body).kind)
        expect(r.headers[Webhooks.deliveryHeader]).toBe(JSON.parse(r.body).id)
      }
      expect(bodies.find((b) => b.kind === "rolloutStarted")).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        kind: "rolloutStarted",
        at: "2026-01-02T03:04:05.000Z",
        appId: app,
        group: "production",
        version: "3815.2.1",
        message: "production: rollout of 3815.2.1 started"
      })
      expect(bodies.find((b) => b.kind === "instanceFailed")).toMatchObject({
        machineId: "m-1",
        errorCode: 44,
        rollback: true,
        message: "m-1 failed to update to 3815.2.1 (error 44, rolled back)"
      })
    })))

  it.effect("retry 5xx with backoff under the same delivery id, and drop a delivery after its last attempt", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const flaky = yield* receiver({ statuses: [503, 500, 200] })
      const refusing = yield* receiver({ statuses: [404] })
      const down = yield* deadUrl
      const outcomes: Array<Webhooks.Outcome> = []
      const hooks = yield* Webhooks.make({ baseDelay: "20 millis", maxAttempts: 3, observe: (o) => outcomes.push(o) })
      yield* hooks.create({ url: flaky.url, secret, kinds: ["rolloutStarted"] })
      yield* hooks.create({ url: refusing.url, secret, kinds: ["rolloutStarted"] })
      yield* hooks.create({ url: down, secret, kinds: ["rolloutStarted"] })
      yield* hooks.listener(started)
      yield* eventually(() => flaky.received.length === 3 && Effect.runSync(hooks.pending) === 0)
      // Backoff: 20 ms, then 40 ms.
      const [a, b, c] = flaky.received
      expect(b!.at - a!.at).toBeGreaterThanOrEqual(15)
      expect(c!.at - b!.at).toBeGreaterThanOrEqual(35)
      expect(new Set(flaky.received.map((r) => r.headers[Webhooks.deliveryHeader])).size).toBe(1)
      // 404 is final: one attempt.
      expect(refusing.received).toHaveLength(1)
      // Delivered once (after 2 retries); the refused one and the one nobody answers dropped.
      expect(outcomes.filter((o) => o === "delivered")).toHaveLength(1)
      expect(outcomes.filter((o) => o === "dropped")).toHaveLength(2)
      expect(outcomes.filter((o) => o === "retried")).toHaveLength(4)
    })))

  it.effect("a receiver that holds every connection open never holds up publishing: the queue drops past its capacity", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const hanging = yield* receiver({ hang: true })
      const outcomes: Array<Webhooks.Outcome> = []
      const hooks = yield* Webhooks.make({
        queueCapacity: 3,
        concurrency: 2,
        timeout: "30 seconds",
        observe: (o) => outcomes.push(o)
      })
      yield* hooks.create({ url: hanging.url, secret, kinds: ["rolloutStarted"] })
      yield* hooks.listener(started)
      yield* eventually(() => hanging.open() === 1)
      for (let i = 0; i < 20; i++) yield* hooks.listener(started)
      // Every publish returned while the receiver has answered nothing.
      yield* eventually(() => hanging.open() === 2)
      expect(Effect.runSync(hooks.pending)).toBe(5)
      expect(outcomes.filter((o) => o === "queueFull").length).toBe(21 - 5)
      expect(outcomes.filter((o) => o === "delivered")).toEqual([])
    })))

  it.effect("follow a change made elsewhere (another replica) through the notification", () =>
    live(Effect.gen(function*() {
      yield* withApps
      const sql = yield* SqlClient.SqlClient
      const target = yield* receiver()
      const hooks = yield* Webhooks.make({ pollInterval: "1 hour" })
      yield* sql`INSERT INTO webhooks (url, secret, kinds, description, created_at, updated_at)
        VALUES (${target.url}, ${secret}, '["rolloutFinished"]'::jsonb, '', now(), now())`
      yield* eventually(() => {
        Effect.runFork(hooks.listener(finished))
        return target.received.length > 0
      }, 2000)
      expect(JSON.parse(target.received[0]!.body).kind).toBe("rolloutFinished")
    })))
})
