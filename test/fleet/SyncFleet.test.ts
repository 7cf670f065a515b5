/**
 * Sync end to end on loopback: a fleet server mirroring a serve-package and
 * another fleet server (floors and all), payloads hosted here with the
 * upstream's hashes.
 */
import { HttpClient } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Upstream from "../../src/cli/internal/upstream.js"
import * as Sync from "../../src/fleet/Sync.js"
import { fromFile, PackageFacts } from "../../src/protocol/Package.js"
import * as Version from "../../src/protocol/Version.js"
import * as PackageFiles from "../../src/server/PackageFiles.js"
import * as TrivialUpdater from "../../src/server/TrivialUpdater.js"
import { startServer } from "../server/support.js"
import { request } from "./http.js"
import { api, appPath, type Fleet, startFleet } from "./operations.js"

const sample = "fixtures/sample/update.gz"
const app = Sync.flatcarAppId
const stable: Sync.SyncChannel = { channel: "stable", arch: "amd64", track: "stable" }

// A serve-package on loopback offering the sample payload as `version`, announcing `facts`.
const servePackage = (version: string, facts?: PackageFacts) =>
  Effect.gen(function*() {
    const real = yield* fromFile(sample)
    const files = yield* PackageFiles.make([{ name: "update.gz", path: sample }])
    const { base } = yield* startServer(
      { packages: files },
      TrivialUpdater.layer({ name: "update.gz", version: Option.getOrThrow(Version.parseOption(version)), facts: facts ?? real })
    )
    return { base, facts: real }
  }).pipe(Effect.provide(NodeContext.layer))

// One round of the sync into `fleet` from `upstream`.
const syncOnce = (fleet: Fleet, upstream: string, options: Partial<Sync.Options> = {}) =>
  Sync.syncAll({ channels: [stable], ...options }).pipe(
    Effect.provide(Layer.mergeAll(Upstream.layer({ url: upstream, tries: 1 }), Layer.succeedContext(fleet.context)))
  )

const sha256Hex = (bytes: Buffer) => Crypto.createHash("sha256").update(bytes).digest("hex")

const download = (url: string) =>
  Effect.gen(function*() {
    const response = yield* (yield* HttpClient.HttpClient).get(url)
    return { status: response.status, bytes: Buffer.from(yield* response.arrayBuffer) }
  })

const live = <A, E>(effect: Effect.Effect<A, E, import("effect/Scope").Scope | HttpClient.HttpClient>) =>
  Effect.scoped(effect).pipe(Effect.provide(NodeHttpClient.layer))

describe("Sync into a fleet server", () => {
  it.live("from a serve-package: creates the package, moves the channel, and serves the payload from its own data directory", () =>
    live(Effect.gen(function*() {
      const upstream = yield* servePackage("3815.2.1")
      const fleet = yield* startFleet()
      const [synced] = yield* syncOnce(fleet, upstream.base, { hostPayloads: true })
      expect(synced).toEqual({ channel: stable, created: ["3815.2.1"], moved: "3815.2.1" })

      const packages = (yield* api(fleet, "GET", `${appPath(app)}/packages`)).json
      expect(packages).toEqual([expect.objectContaining({ version: "3815.2.1", arch: "amd64", name: "update.gz", size: upstream.facts.size })])
      expect(packages[0].url).toBeUndefined()
      expect(packages[0].sha1).toBe(upstream.facts.sha1)
      expect(packages[0].sha256).toBe(upstream.facts.sha256)
      const channel = (yield* api(fleet, "GET", `${appPath(app)}/channels/stable?arch=amd64`)).json
      expect(channel.package).toBe("3815.2.1")
      const activity = (yield* api(fleet, "GET", "/api/activity")).json
      expect(activity).toEqual(expect.arrayContaining([expect.objectContaining({ kind: "channelMoved", version: "3815.2.1" })]))

      // The bytes, from our data directory and our payload URL, hash as the upstream's.
      const hex = Buffer.from(upstream.facts.sha256, "base64").toString("hex")
      expect(sha256Hex(Fs.readFileSync(Path.join(fleet.payloadDirectory, hex)))).toBe(hex)
      const served = yield* download(`${fleet.base}/packages/${hex}/update.gz`)
      expect(served.status).toBe(200)
      expect(sha256Hex(served.bytes)).toBe(hex)
      expect(sha256Hex(Fs.readFileSync(sample))).toBe(hex)

      // Again: nothing new.
      expect(yield* syncOnce(fleet, upstream.base, { hostPayloads: true })).toEqual([{ channel: stable, created: [], moved: undefined }])
    })), 30_000)

  it.live("without hosting, the package points at the upstream's payload", () =>
    live(Effect.gen(function*() {
      const upstream = yield* servePackage("3815.2.1")
      const fleet = yield* startFleet()
      yield* syncOnce(fleet, upstream.base)
      const [pkg] = (yield* api(fleet, "GET", `${appPath(app)}/packages`)).json
      expect(pkg.url).toBe(`${upstream.base}/packages/update.gz`)
      expect(Fs.readdirSync(fleet.payloadDirectory)).toEqual([])
    })), 30_000)

  it.live("a payload whose bytes are not what the upstream announced is kept nowhere, and the channel stays", () =>
    live(Effect.gen(function*() {
      const lying = new PackageFacts({ size: 10, sha1: Buffer.alloc(20).toString("base64"), sha256: Buffer.alloc(32).toString("base64") })
      const upstream = yield* servePackage("3815.2.1", lying)
      const fleet = yield* startFleet()
      const synced = yield* syncOnce(fleet, upstream.base, { hostPayloads: true })
      expect(synced).toEqual([])
      expect((yield* api(fleet, "GET", `${appPath(app)}/packages`)).json).toEqual([])
      expect((yield* api(fleet, "GET", `${appPath(app)}/channels/stable?arch=amd64`)).json.package).toBeUndefined()
      expect(Fs.readdirSync(fleet.payloadDirectory)).toEqual([])
      expect(fleet.logs.map((l) => String(l.message))).toEqual(
        expect.arrayContaining([expect.stringMatching(/^sync: channel stable \(amd64\): payload .*update\.gz: more than the announced 10 bytes$/)])
      )
    })), 30_000)

  it.live("from another fleet server: the floors and the target, with the floor's reason, hosted with the same hashes", () =>
    live(Effect.gen(function*() {
      const source = yield* startFleet()
      expect((yield* api(source, "POST", "/api/apps", { id: app, name: "Flatcar" })).status).toBe(201)
      const payload = (version: string) => Buffer.from(`payload of ${version}\n`.repeat(1000))
      for (const version of ["2.0.0", "3.0.0"]) {
        const put = yield* Effect.promise(() =>
          request(source.base, "PUT", `${appPath(app)}/packages/${version}?arch=amd64&name=flatcar-${version}.gz`, {
            token: source.admin,
            body: payload(version),
            headers: { "content-type": "application/octet-stream" }
          })
        )
        expect(put.status).toBe(201)
      }
      yield* api(source, "POST", `${appPath(app)}/channels`, { name: "stable", arch: "amd64", package: "3.0.0" })
      yield* api(source, "PUT", `${appPath(app)}/channels/stable/floors/2.0.0?arch=amd64`, { reason: "new signing key" })
      yield* api(source, "POST", `${appPath(app)}/groups`, {
        name: "stable",
        track: "stable",
        channel: "stable",
        policy: { safeMode: false, maxUpdatesPerPeriod: 100 }
      })
      yield* Effect.sleep("1200 millis")

      const fleet = yield* startFleet()
      const [synced] = yield* syncOnce(fleet, `${source.base}/v1/update/`, { hostPayloads: true })
      expect(synced).toEqual({ channel: stable, created: ["2.0.0", "3.0.0"], moved: "3.0.0" })
      const channel = (yield* api(fleet, "GET", `${appPath(app)}/channels/stable?arch=amd64`)).json
      expect(channel.package).toBe("3.0.0")
      expect(channel.floors).toEqual([{ version: "2.0.0", reason: "new signing key" }])
      const theirs = (yield* api(source, "GET", `${appPath(app)}/packages`)).json
      const ours = (yield* api(fleet, "GET", `${appPath(app)}/packages`)).json
      const facts = (list: Array<{ version: string; sha1: string; sha256: string; size: number; name: string }>) =>
        list.map(({ name, sha1, sha256, size, version }) => ({ version, name, size, sha1, sha256 })).sort((a, b) => a.version < b.version ? -1 : 1)
      expect(facts(ours)).toEqual(facts(theirs))
      for (const pkg of ours) {
        const hex = Buffer.from(pkg.sha256, "base64").toString("hex")
        const served = yield* download(`${fleet.base}/packages/${hex}/${pkg.name}`)
        expect(sha256Hex(served.bytes)).toBe(hex)
      }
      // The upstream saw the syncer as a machine that asked as Flatcar would.
      const upstreamMachine = Sync.syncMachineId(app, stable)
      const seen = (yield* api(source, "GET", `${appPath(app)}/instances/${upstreamMachine}`)).json
      expect(seen).toMatchObject({ machineId: upstreamMachine, group: "stable" })
      expect(yield* syncOnce(fleet, `${source.base}/v1/update/`, { hostPayloads: true })).toEqual([
        { channel: stable, created: [], moved: undefined }
      ])
    })), 30_000)
})
