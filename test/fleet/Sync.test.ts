import { HttpClient } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Stream } from "effect"
import * as Upstream from "../../src/cli/internal/upstream.js"
import * as Sync from "../../src/fleet/Sync.js"
import { fromFile } from "../../src/protocol/Package.js"
import * as Response from "../../src/protocol/Response.js"
import * as Version from "../../src/protocol/Version.js"
import * as PackageFiles from "../../src/server/PackageFiles.js"
import * as TrivialUpdater from "../../src/server/TrivialUpdater.js"
import { startServer } from "../server/support.js"

const sample = "fixtures/sample/update.gz"

const pkg = (name: string, without: ReadonlyArray<"size" | "hash" | "hashSha256"> = []) => {
  const fields: Record<string, unknown> = {
    name,
    hash: Buffer.alloc(20, 1).toString("base64"),
    hashSha256: Buffer.alloc(32, 2).toString("hex"),
    size: 10
  }
  for (const key of without) delete fields[key]
  return new Response.Package(fields as ConstructorParameters<typeof Response.Package>[0])
}
const manifest = (version: string, flags: { isFloor?: boolean; isTarget?: boolean; floorReason?: string } = {}) =>
  new Response.Manifest({
    version,
    ...flags,
    packages: [pkg(`flatcar-${version}.gz`)],
    actions: [new Response.Action({ event: "postinstall", sha256: Buffer.alloc(32, 2).toString("base64"), needsAdmin: false, metadataSize: 42 })]
  })
const answer = (manifests: ReadonlyArray<Response.Manifest>, codebase = "https://update.example.com/flatcar/") =>
  new Response.UpdateResponse({ status: "ok", urls: [new Response.Url({ codebase })], manifests })

describe("Sync", () => {
  it.effect("reads --sync-channel as NAME[:ARCH][=TRACK]", () =>
    Effect.gen(function*() {
      expect(yield* Sync.parseSyncChannel("stable")).toEqual({ channel: "stable", arch: "amd64", track: "stable" })
      expect(yield* Sync.parseSyncChannel("beta:arm64")).toEqual({ channel: "beta", arch: "arm64", track: "beta" })
      expect(yield* Sync.parseSyncChannel("lts:amd64=lts-2024")).toEqual({ channel: "lts", arch: "amd64", track: "lts-2024" })
      for (const bad of ["", "a:x86", "a:", "a b", ":amd64"]) {
        const error = yield* Effect.flip(Sync.parseSyncChannel(bad))
        expect(error.message).toContain("NAME:ARCH")
      }
    }))

  it("reads the floors and the target of a multi-step answer, with absolute URLs and base64 digests", () => {
    const release = Either.getOrThrow(releaseOf(answer([
      manifest("3000.0.0", { isFloor: true, floorReason: "new signing key" }),
      manifest("3100.0.0", { isFloor: true }),
      manifest("3200.0.0", { isTarget: true })
    ])))
    expect(release.complete).toBe(true)
    expect(release.steps.map((s) => [s.version, s.isTarget, s.floorReason])).toEqual([
      ["3000.0.0", false, "new signing key"],
      ["3100.0.0", false, undefined],
      ["3200.0.0", true, undefined]
    ])
    expect(release.steps[0]).toMatchObject({
      name: "flatcar-3000.0.0.gz",
      url: "https://update.example.com/flatcar/flatcar-3000.0.0.gz",
      size: 10,
      sha1: Buffer.alloc(20, 1).toString("base64"),
      // Announced in hex, kept in base64 as the fleet keeps digests.
      sha256: Buffer.alloc(32, 2).toString("base64"),
      action: { needsAdmin: false, metadataSize: "42" }
    })
    // An answer that stops at a floor is not complete: the sync asks again from there.
    expect(Either.getOrThrow(releaseOf(answer([manifest("3000.0.0", { isFloor: true })]))).complete).toBe(false)
    // A server that does not do multi-step answers: its one manifest is the target.
    expect(Either.getOrThrow(releaseOf(answer([manifest("3200.0.0")]))).steps[0]!.isTarget).toBe(true)
    expect(Sync.releaseOf(new Response.UpdateResponse({ status: "noupdate", urls: [], manifests: [] }), "http://u/")).toEqual(
      Either.right(Option.none())
    )
  })

  it("refuses an answer it cannot mirror, saying why", () => {
    const reasons = [
      answer([manifest("3200.0.0")], ""),
      answer([new Response.Manifest({ version: "3200.0.0", packages: [pkg("u.gz", ["size"])], actions: [] })]),
      answer([new Response.Manifest({ version: "3200.0.0", packages: [pkg("u.gz", ["hash"])], actions: [] })]),
      answer([new Response.Manifest({ version: "3200.0.0", packages: [pkg("u.gz", ["hashSha256"])], actions: [] })]),
      answer([new Response.Manifest({ version: "3200.0.0", packages: [pkg("../../etc/passwd")], actions: [] })]),
      answer([new Response.Manifest({ version: "not a version", packages: [pkg("u.gz")], actions: [] })]),
      new Response.UpdateResponse({ status: "error-internal", urls: [], manifests: [] })
    ].map((update) => Either.flip(Sync.releaseOf(update, "http://u/")).pipe(Either.map((e) => e.reason), Either.getOrThrow))
    expect(reasons).toEqual([
      "the update has no URL",
      "package u.gz of 3200.0.0 has no size",
      "package u.gz of 3200.0.0 has no SHA-1",
      "package u.gz of 3200.0.0 has no SHA-256",
      "package name \"../../etc/passwd\" is not a file name",
      "\"not a version\" is not a version",
      "it answered error-internal"
    ])
  })

  it.effect("a payload's stream fails when its size or digests are not the announced ones", () =>
    Effect.gen(function*() {
      const bytes = new TextEncoder().encode("payload bytes")
      const facts = yield* Effect.promise(async () => {
        const Crypto = await import("node:crypto")
        return {
          sha1: Crypto.createHash("sha1").update(bytes).digest("base64"),
          sha256: Crypto.createHash("sha256").update(bytes).digest("base64")
        }
      })
      const step = { ...releaseSteps()[0]!, size: bytes.length, ...facts }
      const body = Stream.fromIterable([bytes.subarray(0, 4), bytes.subarray(4)])
      const through = yield* Stream.runCollect(Sync.verified(body, step))
      expect(Buffer.concat(Chunk.toReadonlyArray(through)).toString()).toBe("payload bytes")
      const cases: Array<[Partial<Sync.Step>, string]> = [
        [{ size: 4 }, "more than the announced 4 bytes"],
        [{ size: 100 }, "13 bytes, the upstream announced 100"],
        [{ sha1: Buffer.alloc(20).toString("base64") }, "SHA-1 is"],
        [{ sha256: Buffer.alloc(32).toString("base64") }, "SHA-256 is"]
      ]
      for (const [change, reason] of cases) {
        const error = yield* Effect.flip(Stream.runDrain(Sync.verified(body, { ...step, ...change })))
        expect(error).toBeInstanceOf(Sync.PayloadMismatch)
        expect(error.reason).toContain(reason)
      }
    }))
})

const releaseOf = (update: Response.UpdateResponse) =>
  Either.map(Sync.releaseOf(update, "http://upstream/v1/update/"), Option.getOrThrow)
const releaseSteps = () => Either.getOrThrow(releaseOf(answer([manifest("3200.0.0")]))).steps

describe("the upstream over the Omaha client, against serve-package", () => {
  it.live("offers serve-package's payload to an older version, with its facts, and the bytes match them", () =>
    Effect.gen(function*() {
      const facts = yield* fromFile(sample)
      const files = yield* PackageFiles.make([{ name: "update.gz", path: sample }])
      const version = Version.parseOption("3815.2.1").pipe(Option.getOrThrow)
      const { base } = yield* startServer({ packages: files }, TrivialUpdater.layer({ name: "update.gz", version, facts }))
      const upstream = yield* Upstream.make({ url: base })
      const check = (v: string) =>
        upstream.check({ appId: Sync.flatcarAppId, version: v, track: "stable", board: "amd64-usr", machineId: "m" })

      const release = Option.getOrThrow(Either.getOrThrow(Sync.releaseOf(yield* check(Sync.noVersion), upstream.url)))
      expect(release.complete).toBe(true)
      expect(release.steps).toHaveLength(1)
      expect(release.steps[0]).toMatchObject({
        version: "3815.2.1",
        isTarget: true,
        name: "update.gz",
        url: `${base}/packages/update.gz`,
        size: facts.size,
        sha1: facts.sha1,
        sha256: facts.sha256
      })
      const http = yield* HttpClient.HttpClient
      const response = yield* http.get(release.steps[0]!.url)
      const downloaded = yield* Stream.runCollect(Sync.verified(response.stream, release.steps[0]!))
      expect(Chunk.reduce(downloaded, 0, (n, c) => n + c.length)).toBe(facts.size)

      // Up to date: nothing to mirror.
      expect(Option.isNone(Either.getOrThrow(Sync.releaseOf(yield* check("3815.2.1"), upstream.url)))).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeHttpClient.layer, NodeContext.layer))))

  it.live("says which upstream failed and how", () =>
    Effect.gen(function*() {
      const upstream = yield* Upstream.make({ url: "http://127.0.0.1:9/", tries: 1 })
      const error = yield* Effect.flip(
        upstream.check({ appId: Sync.flatcarAppId, version: "1.0.0", track: "stable", board: "amd64-usr", machineId: "m" })
      )
      expect(error).toBeInstanceOf(Sync.UpstreamFailed)
      expect(error.message).toMatch(/^upstream http:\/\/127\.0\.0\.1:9\/v1\/update\/: /)
      expect(yield* Effect.flip(Upstream.make({ url: "ftp://x" }))).toMatchObject({ _tag: "InvalidServerUrl" })
    }).pipe(Effect.provide(NodeHttpClient.layer)))
})
