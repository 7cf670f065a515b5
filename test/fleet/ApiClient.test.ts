/**
 * The API client against a fleet server over real HTTP on 127.0.0.1: the
 * derived methods with app ids and names that need encoding, the three
 * failures (refused with the API's reason and status, unreachable, not a
 * fleet server), and a streamed upload whose hashes the server reports.
 */
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { expect, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ApiClient from "../../src/fleet/ApiClient.js"
import { type Fleet, FleetServer, layer as fleetLayer } from "./fleetServer.js"

const flatcar = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

const clientOf = (fleet: Fleet, token: string | undefined = fleet.admin) =>
  ApiClient.make({ server: fleet.base, token }).pipe(Effect.orDie)

const failureOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.exit(effect), (exit) =>
    Exit.isFailure(exit) && exit.cause._tag === "Fail" ? Effect.succeed(exit.cause.error) : Effect.die(`expected a failure, got ${String(exit)}`))

/** A server on 127.0.0.1 that answers every request with `status` and `body`; its URL. */
const fakeServer = (status: number, body: string, contentType = "text/html") =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((_, res) => res.writeHead(status, { "content-type": contentType }).end(body))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`))

const suite = layer(
  Layer.merge(fleetLayer(), Layer.merge(NodeHttpClient.layer, NodeContext.layer)),
  { timeout: 60_000 }
)

suite("ApiClient", (it) => {
  it.effect("calls the API's endpoints, encoding app ids and names in paths", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const client = yield* clientOf(fleet)
      const created = yield* client.apps.createApp({ payload: { id: flatcar, name: "Flatcar" } })
      expect(created.id).toBe(flatcar)
      expect((yield* client.apps.getApp({ path: { app: flatcar } })).name).toBe("Flatcar")
      expect((yield* client.apps.listApps()).map((a) => a.id)).toContain(flatcar)
      yield* client.channels.createChannel({ path: { app: flatcar }, payload: { name: "stable", arch: "amd64" } })
      const odd = "night shift/eu?#%"
      yield* client.groups.createGroup({ path: { app: flatcar }, payload: { name: odd, track: "eu", channel: "stable" } })
      const group = yield* client.groups.getGroup({ path: { app: flatcar, name: odd } })
      expect([group.name, group.track, group.policy.safeMode]).toEqual([odd, "eu", true])
      const paused = yield* client.groups.pauseGroup({ path: { app: flatcar, name: odd }, payload: { reason: "checking" } })
      expect([paused.paused, paused.pausedReason]).toEqual([true, "checking"])
    }))

  it.effect("a refusal carries the API's reason and status; a viewer's write and a bad token too", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const client = yield* clientOf(fleet)
      const missing = yield* failureOf(
        client.groups.getGroup({ path: { app: flatcar, name: "nope" } }).pipe(ApiClient.normalize(client.server))
      )
      expect(missing).toBeInstanceOf(ApiClient.Refused)
      expect(missing.message).toBe(`no group "nope" of "${flatcar}" (404)`)
      const viewer = yield* clientOf(fleet, fleet.viewer)
      const write = yield* failureOf(
        viewer.apps.createApp({ payload: { id: "x", name: "X" } }).pipe(ApiClient.normalize(viewer.server))
      )
      expect(write._tag === "Refused" && [write.status, write.error]).toEqual([403, "Forbidden"])
      const stranger = yield* clientOf(fleet, `fleet_${"A".repeat(43)}`)
      const unknown = yield* failureOf(stranger.apps.listApps().pipe(ApiClient.normalize(stranger.server)))
      expect(unknown.message).toBe("unknown token (401)")
    }))

  it.effect("a closed port is unreachable; a page that is not the API is an unexpected answer", () =>
    Effect.gen(function*() {
      const port = yield* Effect.async<number>((resume) => {
        const server = Net.createServer().listen(0, "127.0.0.1", () => {
          const { port } = server.address() as Net.AddressInfo
          server.close(() => resume(Effect.succeed(port)))
        })
      })
      const closed = yield* ApiClient.make({ server: `http://127.0.0.1:${port}`, token: "t" })
      const unreachable = yield* failureOf(closed.apps.listApps().pipe(ApiClient.normalize(closed.server)))
      expect(unreachable.message).toBe(`cannot reach the fleet server at http://127.0.0.1:${port}: connection refused`)

      const proxy = yield* fakeServer(502, "<html>Bad Gateway</html>")
      const behind = yield* ApiClient.make({ server: proxy, token: "t" })
      const page = yield* failureOf(behind.apps.listApps().pipe(ApiClient.normalize(behind.server)))
      expect(page.message).toBe(`${proxy} does not answer as a fleet server: HTTP 502 without a JSON body`)
      // An error body with a tag this client does not know is still the API's refusal.
      const newer = yield* fakeServer(429, JSON.stringify({ error: "TooManyRequests", message: "slow down" }), "application/json")
      const later = yield* ApiClient.make({ server: newer, token: "t" })
      expect((yield* failureOf(later.apps.listApps().pipe(ApiClient.normalize(later.server)))).message).toBe("slow down (429)")
      // A 200 whose body is not the API's.
      const other = yield* fakeServer(200, JSON.stringify({ hello: "world" }), "application/json")
      const wrong = yield* ApiClient.make({ server: other, token: "t" })
      expect((yield* failureOf(wrong.apps.listApps().pipe(ApiClient.normalize(wrong.server)))).message).toMatch(
        /does not answer as a fleet server: its answer does not match this client/
      )
      expect((yield* failureOf(ApiClient.make({ server: "ftp://x" }))).message).toBe(
        `invalid server URL "ftp://x": give http://host:port or https://host`
      )
    }).pipe(Effect.scoped))

  it.effect("streams an upload from a file, reporting progress; the server answers the payload's hashes", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const client = yield* clientOf(fleet)
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "api-client-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const bytes = Crypto.randomBytes(1024 * 1024 + 17)
      const file = Path.join(dir, "update.gz")
      Fs.writeFileSync(file, bytes)
      const sent: Array<number> = []
      const { body, size } = yield* ApiClient.fileBody(file, (n) => Effect.sync(() => sent.push(n)))
      const stored = yield* client.upload({ app: flatcar, version: "3815.2.1+build.1", arch: "amd64", name: "update.gz", body, size })
      expect({ version: stored.version, size: stored.size, sha1: stored.sha1, sha256: stored.sha256 }).toEqual({
        version: "3815.2.1+build.1",
        size: bytes.length,
        sha1: Crypto.createHash("sha1").update(bytes).digest("base64"),
        sha256: Crypto.createHash("sha256").update(bytes).digest("base64")
      })
      expect(sent.length).toBeGreaterThan(10)
      expect(sent.at(-1)).toBe(bytes.length)
      const listed = yield* client.packages.getPackage({ path: { app: flatcar, version: "3815.2.1+build.1" }, urlParams: {} })
      expect(listed.sha256).toBe(stored.sha256)
      // Refused uploads say why, as every call does.
      const again = yield* failureOf(
        client.upload({ app: flatcar, version: "3815.2.1+build.1", arch: "amd64", body: Stream.make(new Uint8Array([1])), size: 1 })
      )
      expect(again._tag === "Refused" && again.status).toBe(409)
    }).pipe(Effect.scoped))

  it.effect("an upload the server refuses unread is refused before a byte is sent: an existing package, an unknown application", () =>
    Effect.gen(function*() {
      const fleet = yield* FleetServer
      const client = yield* clientOf(fleet)
      // A server refusing a payload unread closes the connection, and a client still sending may meet
      // a reset instead of the answer; so what can be known is asked first, and nothing is sent.
      let pulled = 0
      const body = Stream.repeatValue(new Uint8Array(256 * 1024)).pipe(
        Stream.take(32),
        Stream.tap((chunk) => Effect.sync(() => (pulled += chunk.byteLength)))
      )
      const upload = { version: "3815.2.1+build.1", arch: "amd64" as const, body, size: 32 * 256 * 1024 }
      const exists = yield* failureOf(client.upload({ app: flatcar, ...upload }))
      expect(exists.message).toBe(`package 3815.2.1+build.1 (amd64) of "${flatcar}" already exists (409)`)
      const unknown = yield* failureOf(client.upload({ app: "nope", ...upload }))
      expect(unknown.message).toBe(`no application "nope" (404)`)
      expect(pulled).toBe(0)
    }))

  it.effect("an answer that comes before the whole payload is sent is the answer, even if the connection is then reset", () =>
    Effect.gen(function*() {
      // Answers uploads at once without reading them, and resets the connection a moment later.
      const server = yield* Effect.acquireRelease(
        Effect.async<Http.Server>((resume) => {
          const server = Http.createServer((req, res) => {
            const json = (status: number, body: unknown) =>
              res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))
            if (req.method === "GET" && req.url!.endsWith("/packages/1.0.0?arch=amd64")) {
              return json(404, { error: "NotFound", message: "no package 1.0.0" })
            }
            if (req.method === "GET") {
              return json(200, { id: "a", name: "A", description: "", createdAt: new Date().toISOString() })
            }
            json(413, { error: "PayloadTooLarge", message: "the payload is over the 1-byte upload limit" })
            setTimeout(() => req.socket.destroy(), 200)
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const client = yield* ApiClient.make({ server: `http://127.0.0.1:${(server.address() as Net.AddressInfo).port}`, token: "t" })
      const body = Stream.repeatValue(new Uint8Array(1024 * 1024)).pipe(Stream.take(256))
      const refused = yield* failureOf(client.upload({ app: "a", version: "1.0.0", arch: "amd64", body, size: 256 * 1024 * 1024 }))
      expect(refused.message).toBe("the payload is over the 1-byte upload limit (413)")
    }).pipe(Effect.scoped))
})
