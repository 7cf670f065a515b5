import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Stream, TestClock } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { Download, Release } from "effect-omaha"
import { tempDir } from "./support.js"

/** A server that answers every request with `handler`, on a loopback port. */
const serve = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer(handler)
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.sync(() => {
      server.closeAllConnections()
      server.close()
    })
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))

const services = Layer.mergeAll(NodeContext.layer, NodeHttpClient.layer)
const timeouts = { connect: "2 seconds", idle: "300 millis" } as const

describe("Download.fetchHttp", () => {
  it.scopedLive("fails a transfer that stalls longer than the idle timeout, as retryable", () =>
    Effect.gen(function*() {
      const url = yield* serve((_, res) => {
        res.writeHead(200, { "content-length": 1000 })
        res.write("x".repeat(100))
      })
      const body = yield* Download.fetchHttp(`${url}/p`, 0, timeouts)
      const result = yield* Effect.either(Stream.runDrain(body.stream))
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "DownloadFailed", retryable: true, reason: "no data for 300ms" })
    }).pipe(Effect.provide(services)))

  it.scopedLive("sends Range from an offset, follows redirects, and refuses a range that starts elsewhere", () =>
    Effect.gen(function*() {
      const seen: Array<string | undefined> = []
      const url = yield* serve((req, res) => {
        seen.push(req.headers.range)
        if (req.url === "/moved") return void res.writeHead(302, { location: "/p" }).end()
        if (req.url === "/wrong") return void res.writeHead(206, { "content-range": "bytes 0-9/10", "content-length": 10 }).end("0123456789")
        res.writeHead(206, { "content-range": "bytes 4-9/10", "content-length": 6 }).end("456789")
      })
      const body = yield* Download.fetchHttp(`${url}/moved`, 4, timeouts)
      const text = yield* Stream.runCollect(body.stream)
      expect({ start: body.start, total: body.total, bytes: Buffer.concat([...text]).toString() }).toEqual({ start: 4, total: 10, bytes: "456789" })
      expect(seen).toEqual(["bytes=4-", "bytes=4-"])
      const wrong = yield* Effect.either(Download.fetchHttp(`${url}/wrong`, 4, timeouts))
      expect(wrong._tag === "Left" && wrong.left.reason).toBe("server answered range 4- with bytes 0-9/10")
    }).pipe(Effect.provide(services)))

  it.scopedLive("fails with the HTTP status, retryable only for 408, 429 and 5xx", () =>
    Effect.gen(function*() {
      const url = yield* serve((req, res) => void res.writeHead(Number(req.url!.slice(1))).end())
      for (const [status, retryable] of [[404, false], [403, false], [503, true], [429, true]] as const) {
        const result = yield* Effect.either(Download.fetchHttp(`${url}/${status}`, 0, timeouts))
        expect(result._tag === "Left" && result.left).toMatchObject({ status, retryable, reason: `HTTP status ${status}` })
      }
      const refused = yield* Effect.either(Download.fetchHttp("http://127.0.0.1:1/x", 0, timeouts))
      expect(refused._tag === "Left" && refused.left).toMatchObject({ retryable: true })
      expect(refused._tag === "Left" && refused.left.message).toMatch(/^download of http:\/\/127\.0\.0\.1:1\/x failed: .*ECONNREFUSED/)
    }).pipe(Effect.provide(services)))
})

describe("Download.toFile", () => {
  const release = new Release.Release({
    version: "2.0.0",
    os: "linux",
    arch: "amd64",
    name: "tool",
    location: "http://updates.example/tool",
    sha256: "0".repeat(64)
  })
  // A server that answers and then sends nothing: each attempt fails after 25 s without data.
  const stalled: Download.Fetch = () =>
    Effect.succeed({
      start: 0,
      total: 1000,
      stream: (Stream.never as Stream.Stream<Uint8Array>).pipe(
        Stream.timeoutFail(
          () => new Download.DownloadFailed({ location: release.location, reason: "no data for 25s", retryable: true }),
          "25 seconds"
        )
      )
    })

  it.effect("says what it waits for while it waits, and before each retry (TestClock)", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const told: Array<[number, string]> = []
      let fetched = 0
      const fiber = yield* Effect.fork(Effect.either(Download.toFile({
        release,
        fetch: (offset) => Effect.zipRight(Effect.sync(() => fetched++), stalled(offset)),
        outputPath: Path.join(dir, ".tool.new"),
        partPath: Path.join(dir, ".tool.part"),
        maxBytes: 1024,
        attempts: 3,
        onWait: (waiting) =>
          Effect.map(TestClock.currentTimeMillis, (now) => void told.push([now, Download.describeWaiting(waiting)]))
      })))
      // The partial file is opened for real; the clock starts once the first request is out. Each
      // attempt starts after the wait before it (0.25 s, then 0.5 s), and its silence counts from there.
      while (fetched === 0) yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
      yield* TestClock.adjust(Duration.seconds(90))
      const result = yield* Fiber.join(fiber)
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "DownloadFailed", reason: "no data for 25s" })
      const url = release.location
      expect(told).toEqual([
        [10_000, `waiting for data from ${url} (attempt 1 of 3, 10 s without data)`],
        [20_000, `waiting for data from ${url} (attempt 1 of 3, 20 s without data)`],
        [25_000, `download of ${url} failed: no data for 25s; retrying in 0.25 s (attempt 2 of 3)`],
        [35_250, `waiting for data from ${url} (attempt 2 of 3, 10 s without data)`],
        [45_250, `waiting for data from ${url} (attempt 2 of 3, 20 s without data)`],
        [50_250, `download of ${url} failed: no data for 25s; retrying in 0.5 s (attempt 3 of 3)`],
        [60_750, `waiting for data from ${url} (attempt 3 of 3, 10 s without data)`],
        [70_750, `waiting for data from ${url} (attempt 3 of 3, 20 s without data)`]
      ])
      expect(Fs.readdirSync(dir)).toEqual([])
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})
