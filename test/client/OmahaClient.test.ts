import { FileSystem, HttpClient, HttpClientError } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Effect, Either, Exit, Fiber, Layer, Option, TestClock } from "effect"
import { AppClient, OmahaClient, Request } from "effect-omaha"
import { answerApps, clientLayer, onChecks, stall, startServer, testUserId } from "./server.js"

const parse = (url: string) => Effect.runSync(Effect.either(OmahaClient.parseServerUrl(url)))

/** The clock readings, from the first, at which an attempt ran while retried by `schedule` (driven by the TestClock). */
const attemptTimes = (error: OmahaClient.RequestError, policy = OmahaClient.defaultRetryPolicy) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    const attempt = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      times.push(now)
      return Effect.fail(error)
    })
    const fiber = yield* Effect.fork(Effect.retry(attempt, OmahaClient.retrySchedule(policy)))
    yield* TestClock.adjust("1 hour")
    const exit = yield* Fiber.await(fiber)
    expect(Exit.isFailure(exit)).toBe(true)
    return times.map((time) => time - times[0]!)
  })

const network = new OmahaClient.NetworkError({ url: "http://x/v1/update/", attempts: 1, reason: "refused" })
const status = (code: number, retryAfterSeconds?: number) =>
  new OmahaClient.HttpStatusError({
    url: "http://x/v1/update/",
    status: code,
    attempts: 1,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds })
  })

describe("OmahaClient", () => {
  describe("server URL", () => {
    it("takes http and https with a host; an empty path becomes /v1/update/", () => {
      expect(parse("http://updates.example.com")).toEqual(Either.right("http://updates.example.com/v1/update/"))
      expect(parse("https://updates.example.com/")).toEqual(Either.right("https://updates.example.com/v1/update/"))
      expect(parse("https://updates.example.com:8443/omaha/v1?x=1#frag")).toEqual(
        Either.right("https://updates.example.com:8443/omaha/v1?x=1")
      )
      expect(parse("http://127.0.0.1:8000")).toEqual(Either.right("http://127.0.0.1:8000/v1/update/"))
    })

    it("refuses other schemes, relative URLs and URLs without a host", () => {
      for (const url of ["ftp://updates.example.com/", "file:///etc/passwd", "updates.example.com", "", "http://", "mailto:a@b"]) {
        const result = parse(url)
        expect(Either.isLeft(result), url).toBe(true)
        const error = Either.getLeft(result)
        expect(error._tag === "Some" && error.value).toBeInstanceOf(OmahaClient.InvalidServerUrl)
      }
      expect(Either.getLeft(parse("ftp://x/")).pipe((e) => e._tag === "Some" && e.value.message)).toBe(
        `invalid Omaha server URL "ftp://x/": the scheme must be http or https, not ftp`
      )
    })

    it.effect("a client refuses a bad URL and an empty user id when it is built", () =>
      Effect.gen(function*() {
        const build = (options: OmahaClient.Options) =>
          Effect.flip(Layer.build(OmahaClient.layer(options).pipe(Layer.provide(NodeHttpClient.layer)))).pipe(Effect.scoped)
        expect(yield* build({ serverUrl: "gopher://x", userId: "u" })).toBeInstanceOf(OmahaClient.InvalidServerUrl)
        const missing = yield* build({ serverUrl: "http://x", userId: "" })
        expect(missing).toBeInstanceOf(OmahaClient.MissingUserId)
        expect(AppClient.exitCodeOf(missing)).toBe(1)
      }))
  })

  describe("ids", () => {
    it.effect("random ids are braced version-4 UUIDs", () =>
      Effect.gen(function*() {
        const ids = new Set<string>()
        for (let i = 0; i < 200; i++) {
          const id = yield* OmahaClient.randomId
          expect(id).toMatch(/^\{[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\}$/)
          ids.add(id)
        }
        expect(ids.size).toBe(200)
      }))

    it.scopedLive("one session id per client, a fresh request id per request", () =>
      Effect.gen(function*() {
        const server = yield* startServer(onChecks((received) => answerApps(received.request)))
        const omaha = yield* Effect.provide(OmahaClient.OmahaClient, clientLayer(server.url))
        const app = yield* AppClient.make({ appId: "app", version: "1.0.0" }).pipe(
          Effect.provideService(OmahaClient.OmahaClient, omaha)
        )
        yield* app.updateCheck()
        yield* app.ping()
        const [first, second] = server.received.map((r) => r.request!)
        expect(first!.sessionId).toBe(omaha.sessionId)
        expect(second!.sessionId).toBe(omaha.sessionId)
        expect(first!.requestId).toMatch(/^\{[0-9a-f-]{36}\}$/)
        expect(second!.requestId).not.toBe(first!.requestId)
        expect(first!.userId).toBe(testUserId)
        expect(first!.version).toMatch(/^effect-omaha-\d+\.\d+\.\d+/)
        expect(first!.isMachine).toBeUndefined()
      }))
  })

  describe("retries", () => {
    it.effect("default policy: 7 tries, waits of 1, 2, 4, 8, 16 and 32 s", () =>
      Effect.gen(function*() {
        expect(yield* attemptTimes(network)).toEqual([0, 1, 3, 7, 15, 31, 63].map((s) => s * 1000))
        const timeout = new OmahaClient.RequestTimeout({ url: "u", attempts: 1, timeoutMillis: 90_000 })
        expect((yield* attemptTimes(timeout)).length).toBe(7)
      }))

    it.effect("retries 408, 429, 500, 502, 503 and 504 only", () =>
      Effect.gen(function*() {
        for (const code of [408, 429, 500, 502, 503, 504]) expect((yield* attemptTimes(status(code))).length).toBe(7)
        for (const code of [400, 401, 403, 404, 405, 413, 501, 505, 302]) {
          expect(yield* attemptTimes(status(code))).toEqual([0])
        }
        for (const error of [
          new OmahaClient.EmptyResponse({ url: "u" }),
          new OmahaClient.MalformedResponse({ url: "u", reason: "r" }),
          new OmahaClient.ResponseTooLarge({ url: "u", limit: 1 }),
          new OmahaClient.InvalidRequest({ reason: "r" })
        ]) {
          expect(yield* attemptTimes(error)).toEqual([0])
        }
      }))

    it.effect("a Retry-After longer than the backoff replaces it; one over the limit ends the retries", () =>
      Effect.gen(function*() {
        // max(backoff, 10 s): 10, 10, 10, 10, 16, 32
        expect(yield* attemptTimes(status(503, 10))).toEqual([0, 10, 20, 30, 40, 56, 88].map((s) => s * 1000))
        expect(yield* attemptTimes(status(429, 120))).toEqual([0, 120, 240, 360, 480, 600, 720].map((s) => s * 1000))
        expect(yield* attemptTimes(status(503, 121))).toEqual([0])
        expect(yield* attemptTimes(status(503, 600), { ...OmahaClient.defaultRetryPolicy, maxRetryAfter: "10 minutes" }))
          .toEqual([0, 600, 1200, 1800, 2400, 3000, 3600].map((s) => s * 1000))
      }))

    it("reads Retry-After as seconds or as an HTTP date", () => {
      const now = Date.parse("2025-01-01T00:00:00Z")
      const read = (value: string) => Option.getOrUndefined(OmahaClient.parseRetryAfter(value, now))
      expect(read(" 120 ")).toBe(120)
      expect(read("Wed, 01 Jan 2025 00:01:30 GMT")).toBe(90)
      expect(read("Tue, 31 Dec 2024 00:00:00 GMT")).toBe(0)
      expect(read("-5")).toBeUndefined()
      expect(read("soon")).toBeUndefined()
      expect(read("1.5")).toBeUndefined()
    })

    it.effect("says before each wait why and how long; a failed check's error event is tried once (TestClock)", () =>
      Effect.gen(function*() {
        // A server nobody can reach: every request fails at once, at the clock reading it was made.
        const requests: Array<{ at: number; body: string }> = []
        const unreachable = Layer.succeed(
          HttpClient.HttpClient,
          HttpClient.make((request) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => {
              const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
              requests.push({ at, body })
              return Effect.fail(
                new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("connect ECONNREFUSED") })
              )
            })
          )
        )
        const told: Array<[number, string]> = []
        const client = OmahaClient.layer({
          serverUrl: "http://updates.example/",
          userId: testUserId,
          onRetry: (retry) => Effect.map(Clock.currentTimeMillis, (at) => void told.push([at, OmahaClient.describeRetry(retry)]))
        }).pipe(Layer.provide(unreachable))
        const fiber = yield* Effect.fork(Effect.gen(function*() {
          const app = yield* AppClient.make({ appId: "{app}", version: "1.0.0" })
          const result = yield* Effect.either(app.updateCheck())
          yield* Effect.flatMap(OmahaClient.OmahaClient, (omaha) => omaha.flush)
          return result
        }).pipe(Effect.scoped, Effect.provide(client)))
        yield* TestClock.adjust("1 hour")
        const result = yield* Fiber.join(fiber)
        expect(Either.getLeft(result)).toMatchObject({ value: { _tag: "NetworkError", attempts: 7 } })
        expect(told).toEqual([1, 2, 4, 8, 16, 32].map((wait, i) => [
          (2 ** i - 1) * 1000,
          `Omaha server unreachable, retrying in ${wait} s (attempt ${i + 2} of 7)`
        ]))
        // Seven tries of the check over 63 s, then one of its error event at once, not seven more over another 63 s.
        const checks = requests.filter((r) => r.body.includes("<updatecheck"))
        const events = requests.filter((r) => r.body.includes(`eventresult="0"`))
        expect(checks.map((r) => r.at)).toEqual([0, 1, 3, 7, 15, 31, 63].map((s) => s * 1000))
        expect(events.map((r) => r.at)).toEqual([63_000])
        expect(requests.length).toBe(8)
      }))

    it.scoped("by default an attempt times out after 90 s (TestClock, real socket)", () =>
      Effect.gen(function*() {
        const server = yield* startServer(onChecks(() => stall))
        const omaha = yield* Effect.provide(
          OmahaClient.OmahaClient,
          OmahaClient.layer({ serverUrl: server.url, userId: testUserId, retry: { tries: 1 } }).pipe(
            Layer.provide(NodeHttpClient.layer)
          )
        )
        const app = new Request.AppRequest({ appId: "app", version: "1", updateCheck: new Request.UpdateRequest({}) })
        const fiber = yield* Effect.fork(Effect.either(omaha.send(yield* omaha.makeRequest([app]))))
        yield* Effect.promise(() => server.receivedCount(1))
        // The only timer is the attempt's timeout, 90 s from now.
        expect(Chunk.toReadonlyArray(yield* TestClock.sleeps())).toEqual([90_000])
        yield* TestClock.adjust("90 seconds")
        const result = yield* Fiber.join(fiber)
        expect(Either.getLeft(result)).toMatchObject({
          value: { _tag: "RequestTimeout", attempts: 1, timeoutMillis: 90_000 }
        })
      }))
  })

  describe("machine client", () => {
    it.scopedLive("uses the machine id as user id and the braced boot id as session id, with ismachine=1", () =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* fs.makeTempDirectoryScoped()
        const paths = { machineId: `${dir}/machine-id`, bootId: `${dir}/boot_id` }
        yield* fs.writeFileString(paths.machineId, "0123456789abcdef0123456789abcdef\n")
        yield* fs.writeFileString(paths.bootId, "7d52a1cc-7066-40f0-91c7-7cb6a871bfde\n")
        const server = yield* startServer(onChecks((received) => answerApps(received.request)))
        const omaha = yield* Effect.provide(
          OmahaClient.OmahaClient,
          OmahaClient.layerMachine({ serverUrl: server.url, paths }).pipe(Layer.provide(NodeHttpClient.layer))
        )
        const app = yield* AppClient.make({ appId: "app", version: "1.0.0" }).pipe(
          Effect.provideService(OmahaClient.OmahaClient, omaha)
        )
        yield* app.ping()
        const request = server.received[0]!.request!
        expect(request).toMatchObject({
          userId: "0123456789abcdef0123456789abcdef",
          sessionId: "{7d52a1cc-7066-40f0-91c7-7cb6a871bfde}",
          isMachine: true
        })
        expect(request.apps[0]).toMatchObject({
          machineId: "0123456789abcdef0123456789abcdef",
          bootId: "{7d52a1cc-7066-40f0-91c7-7cb6a871bfde}"
        })
        expect(server.received[0]!.body).toContain(` ismachine="1"`)
      }).pipe(Effect.provide(NodeContext.layer)))
  })
})
