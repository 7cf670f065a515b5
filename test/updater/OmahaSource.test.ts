import { HttpServer } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import {
  Apply,
  AppClient,
  OmahaClient,
  OmahaServer,
  OmahaSource,
  Package,
  PackageFiles,
  Response,
  Signature,
  TrivialUpdater,
  Updater,
  Version
} from "effect-omaha"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { binary, bzip2, listing, target, tempDir } from "./support.js"

const appId = "{7e2b4a4c-2f0d-4a5e-9b1e-3d3f6c1f0a11}"
const newBytes = binary(700_000, 31)
const oldBytes = binary(600_000, 32)

interface Seen {
  readonly events: Array<string>
}

// The trivial server's updater, recording the events clients report.
const recording = (payload: TrivialUpdater.Payload, seen: Seen, override?: Partial<Updater.UpdaterService>) =>
  Layer.effect(
    Updater.Updater,
    Effect.map(Effect.provide(Updater.Updater, TrivialUpdater.layer(payload)), (trivial) => ({
      ...trivial,
      event: (_, __, event) =>
        Effect.sync(() => {
          seen.events.push(`${event.eventType}/${event.eventResult}${event.errorCode === undefined ? "" : ` errorcode=${event.errorCode}`}`)
        }),
      ...override
    }))
  )

/** A served payload, the Omaha server for it, and everything an apply over Omaha needs, for the test's scope. */
const setup = (
  options: {
    readonly signature?: string
    readonly override?: Partial<Updater.UpdaterService>
    /** The bytes served (`newBytes` by default) and the name they are served under ("tool"). */
    readonly served?: Uint8Array
    readonly name?: string
  } = {}
) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(Effect.sync(() => tempDir()), (dir) =>
      Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
    const payloadPath = Path.join(dir, "tool-2.0.0")
    Fs.writeFileSync(payloadPath, options.served ?? newBytes)
    const facts = yield* Package.fromFile(payloadPath)
    const name = options.name ?? "tool"
    const files = yield* PackageFiles.make([{ name, path: payloadPath }])
    const seen: Seen = { events: [] }
    const payload: TrivialUpdater.Payload = {
      name,
      version: yield* Version.parseSemver("2.0.0"),
      facts,
      ...(options.signature === undefined ? {} : { signature: options.signature })
    }
    const server = yield* Layer.build(
      OmahaServer.layer({ host: "127.0.0.1", port: 0, packages: files }).pipe(
        Layer.provide(recording(payload, seen, options.override))
      )
    )
    const address = (yield* Effect.provide(HttpServer.HttpServer, server)).address
    const url = `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}/v1/update/`
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    return { dir, bin, tool, url, seen, facts }
  })

const sourceFor = (url: string, currentVersion: string) =>
  OmahaSource.layer({ os: "linux", arch: "amd64", flushTimeout: "5 seconds" }).pipe(
    Layer.provide(AppClient.layer({ appId, version: currentVersion })),
    Layer.provide(OmahaClient.layer({ serverUrl: url, userId: "test-user", retry: { baseDelay: "10 millis", tries: 2 } })),
    Layer.provide(NodeHttpClient.layer)
  )

const applyOver = (url: string, tool: string, options: Partial<Apply.Options> = {}) =>
  Effect.scoped(
    Effect.gen(function*() {
      const context = yield* Layer.build(sourceFor(url, options.currentVersion ?? "1.0.0"))
      return yield* Effect.either(
        Effect.provide(Apply.apply({ target: tool, os: "linux", arch: "amd64", currentVersion: "1.0.0", ...options }), context)
      )
    })
  )

describe("OmahaSource", () => {
  it.live("installs what an Omaha server offers and reports 13/1, 14/1 and 3/1", () =>
    Effect.gen(function*() {
      const { bin, seen, tool, url } = yield* setup()
      const result = yield* applyOver(url, tool)
      expect(result._tag).toBe("Right")
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
      expect(listing(bin)).toEqual(["tool", "tool.backup"])
      // The update check carries the 3/2 "complete" event; the rest follow the apply.
      expect(seen.events).toEqual(["3/2", "13/1", "14/1", "3/1"])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("is up to date when the server has nothing newer, and reports nothing more", () =>
    Effect.gen(function*() {
      const { seen, tool, url } = yield* setup()
      const result = yield* applyOver(url, tool, { currentVersion: "2.0.0" })
      expect(result._tag === "Right" && result.right).toEqual({ _tag: "UpToDate", version: "2.0.0" })
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect(seen.events).toEqual(["3/2"])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("refuses a payload that does not match the announced hash and reports 3/0 with code 10", () =>
    Effect.gen(function*() {
      const lie = (seenVersion: string) =>
        Effect.succeed(
          new Updater.Update({
            codebases: ["packages/"],
            manifests: [
              new Response.Manifest({
                version: seenVersion,
                packages: [
                  new Response.Package({
                    name: "tool",
                    hashSha256: Crypto.createHash("sha256").update("something else").digest("base64"),
                    size: newBytes.length
                  })
                ]
              })
            ]
          })
        )
      const { seen, tool, url } = yield* setup({ override: { checkUpdate: () => lie("2.0.0") } })
      const result = yield* applyOver(url, tool)
      expect(result._tag === "Left" && result.left._tag).toBe("PackageHashMismatch")
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect(listing(Path.dirname(tool))).toEqual(["tool"])
      expect(seen.events).toEqual(["3/2", "13/1", "3/0 errorcode=10"])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("decodes a gzip or bzip2 payload served as update.gz, after checking the bytes served against the package", () =>
    Effect.gen(function*() {
      for (const served of [Zlib.gzipSync(newBytes), bzip2(newBytes), newBytes]) {
        const { bin, seen, tool, url } = yield* setup({ served, name: "update.gz" })
        const result = yield* applyOver(url, tool)
        expect(result._tag === "Right" && result.right).toMatchObject({ _tag: "Updated", size: newBytes.length })
        expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
        expect(listing(bin)).toEqual(["tool", "tool.backup"])
        expect(seen.events).toEqual(["3/2", "13/1", "14/1", "3/1"])
      }
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("refuses a payload whose SHA-1 is not the package's hash, and one larger than the package's size", () =>
    Effect.gen(function*() {
      const served = Zlib.gzipSync(newBytes)
      const facts = yield* Package.fromStream(Stream.make(served))
      const offer = (pkg: Partial<ConstructorParameters<typeof Response.Package>[0]>) => () =>
        Effect.succeed(
          new Updater.Update({
            codebases: ["packages/"],
            manifests: [
              new Response.Manifest({
                version: "2.0.0",
                packages: [new Response.Package({ name: "update.gz", hash: facts.sha1, hashSha256: facts.sha256, size: facts.size, ...pkg })]
              })
            ]
          })
        )
      const otherSha1 = Crypto.createHash("sha1").update("something else").digest("base64")
      const wrongSha1 = yield* setup({ served, name: "update.gz", override: { checkUpdate: offer({ hash: otherSha1 }) } })
      const sha1 = yield* applyOver(wrongSha1.url, wrongSha1.tool)
      expect(sha1._tag === "Left" && sha1.left).toMatchObject({ _tag: "PackageHashMismatch", algorithm: "sha1" })
      expect(wrongSha1.seen.events).toEqual(["3/2", "13/1", "3/0 errorcode=10"])
      const shorter = yield* setup({ served, name: "update.gz", override: { checkUpdate: offer({ size: facts.size - 100 }) } })
      const size = yield* applyOver(shorter.url, shorter.tool)
      expect(size._tag === "Left" && size.left).toMatchObject({ _tag: "PackageSizeMismatch", expected: facts.size - 100 })
      expect(size._tag === "Left" && size.left._tag === "PackageSizeMismatch" && size.left.actual).toBeGreaterThan(facts.size - 100)
      for (const { bin, tool } of [wrongSha1, shorter]) {
        expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
        expect(listing(bin)).toEqual(["tool"])
      }
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("verifies a release signature carried as package metadata, and fails closed without one", () =>
    Effect.gen(function*() {
      const pem = yield* Signature.generateKeyPair
      const keys = { privateKey: Crypto.createPrivateKey(pem.privateKey), publicKey: Crypto.createPublicKey(pem.publicKey) }
      const newHash = Crypto.createHash("sha256").update(newBytes).digest("hex")
      const signature = Signature.sign(keys.privateKey, { version: "2.0.0", os: "linux", arch: "amd64", sha256: newHash })

      const signed = yield* setup({ signature })
      const ok = yield* applyOver(signed.url, signed.tool, { publicKey: keys.publicKey })
      expect(ok._tag).toBe("Right")
      expect(Fs.readFileSync(signed.tool).equals(newBytes)).toBe(true)

      const unsigned = yield* setup()
      const refused = yield* applyOver(unsigned.url, unsigned.tool, { publicKey: keys.publicKey })
      expect(refused._tag === "Left" && refused.left._tag).toBe("SignatureMissing")
      expect(Fs.readFileSync(unsigned.tool).equals(oldBytes)).toBe(true)
      expect(unsigned.seen.events).toEqual(["3/2", "3/0 errorcode=22"])

      // A signature made for another platform does not verify here.
      const other = Signature.sign(keys.privateKey, { version: "2.0.0", os: "darwin", arch: "arm64", sha256: newHash })
      const replayed = yield* setup({ signature: other })
      const bad = yield* applyOver(replayed.url, replayed.tool, { publicKey: keys.publicKey })
      expect(bad._tag === "Left" && bad.left._tag).toBe("SignatureInvalid")
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("maps the server's failures: HTTP errors keep their status, unusable answers are invalid releases", () =>
    Effect.gen(function*() {
      // With no app ok the server answers HTTP 400 (go-omaha's rule), which the source keeps.
      const refusedApp = yield* setup({
        override: { checkApp: () => Effect.fail(new Updater.AppRefused({ status: "error-unknownApplication" })) }
      })
      const refused = yield* applyOver(refusedApp.url, refusedApp.tool)
      expect(refused._tag === "Left" && refused.left).toMatchObject({ _tag: "RepositoryUnreachable", status: 400 })
      expect(refused._tag === "Left" && Apply.updateEngineCode(refused.left)).toBe(2400)
      const down = yield* applyOver("http://127.0.0.1:1/v1/update/", refusedApp.tool)
      expect(down._tag === "Left" && down.left).toMatchObject({ _tag: "RepositoryUnreachable" })
      expect(down._tag === "Left" && "status" in down.left && down.left.status).toBeFalsy()
      const failing = yield* setup({
        override: { checkUpdate: () => Effect.fail(new Updater.UpdateRefused({ status: "error-internal" })) }
      })
      const internal = yield* applyOver(failing.url, failing.tool)
      expect(internal._tag === "Left" && internal.left._tag).toBe("ReleaseInvalid")
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
