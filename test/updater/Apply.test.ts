import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Stream, TestClock } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Apply, ExitCode, Publish, Release, Repository } from "effect-omaha"
import { binary, bzip2, choriaRelease, fileServer, listing, sha256, target, tempDir } from "./support.js"

const platform = { os: "linux", arch: "amd64" } as const
const oldBytes = binary(1_500_000, 1)
const newBytes = binary(1_600_000, 2)
const newBz2 = bzip2(newBytes)
const dirs: Array<string> = []
afterAll(() => dirs.forEach((d) => Fs.rmSync(d, { recursive: true, force: true })))

/** A target directory and a repository directory holding release 2.0.0 (choria's layout). */
const setup = (release?: Parameters<typeof choriaRelease>[1]) => {
  const root = tempDir()
  dirs.push(root)
  const repo = Path.join(root, "repo")
  const bin = Path.join(root, "bin")
  Fs.mkdirSync(bin)
  const made = choriaRelease(repo, release ?? { name: "tool", version: "2.0.0", bytes: newBytes, payload: newBz2 })
  return { repo, bin, tool: target(bin, oldBytes), made }
}

/** The source as a layer that also records what it is told, as an Omaha source would report it. */
const recorded = (inner: Layer.Layer<Repository.Repository, never, never>, log: Array<string>) =>
  Layer.effect(
    Repository.Repository,
    Effect.map(Repository.Repository, (source): Repository.Source => ({
      ...source,
      report: {
        downloadStarted: (r) => Effect.sync(() => log.push(`13/1 ${r.version}`)),
        downloadFinished: (r) => Effect.sync(() => log.push(`14/1 ${r.version}`)),
        updated: (r) => Effect.sync(() => log.push(`3/1 ${r.version}`)),
        failed: (r, code) => Effect.sync(() => log.push(`3/0 ${Option.match(r, { onNone: () => "-", onSome: (x) => x.version })} ${code}`))
      }
    }))
  ).pipe(Layer.provide(inner))

const services = Layer.mergeAll(NodeContext.layer, NodeHttpClient.layer)
const directory = (path: string) => Repository.layerDirectory({ path, ...platform }).pipe(Layer.provide(services))
const http = (url: string) =>
  Repository.layerHttp({ url, ...platform, timeouts: { connect: "5 seconds", idle: "5 seconds" } }).pipe(
    Layer.provide(services)
  )

const apply = (source: Layer.Layer<Repository.Repository>, options: Partial<Apply.Options> & { target: string }, log: Array<string> = []) =>
  Apply.apply({ version: "2.0.0", ...platform, ...options }).pipe(
    Effect.provide(Layer.merge(recorded(source, log), services)),
    Effect.either
  )

/** The target is still the old binary, whole, with its mode, and nothing of the failed apply is left. */
const untouched = (tool: string, kept: Array<string> = ["tool"]) => {
  expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
  expect(Fs.statSync(tool).mode & 0o777).toBe(0o751)
  expect(listing(Path.dirname(tool))).toEqual(kept)
}

describe("Apply", () => {
  it.live("installs a release from a directory: new bytes, old mode, the old binary kept as backup, nothing else", () =>
    Effect.gen(function*() {
      const { repo, tool } = setup()
      const log: Array<string> = []
      const result = yield* apply(directory(repo), { target: tool, currentVersion: "1.0.0" }, log)
      expect(result._tag === "Right" && result.right).toMatchObject({ _tag: "Updated", size: newBytes.length })
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
      expect(Fs.statSync(tool).mode & 0o777).toBe(0o751)
      expect(Fs.readFileSync(`${tool}.backup`).equals(oldBytes)).toBe(true)
      expect(listing(Path.dirname(tool))).toEqual(["tool", "tool.backup"])
      expect(log).toEqual(["13/1 2.0.0", "14/1 2.0.0", "3/1 2.0.0"])
    }))

  it.live.skipIf(process.getuid?.() !== 0)("keeps the owner of a target when running as root, set-user-ID bit included", () =>
    Effect.gen(function*() {
      const { repo, tool } = setup()
      Fs.chownSync(tool, 65534, 65534)
      Fs.chmodSync(tool, 0o4755)
      const result = yield* apply(directory(repo), { target: tool })
      expect(result._tag).toBe("Right")
      const info = Fs.statSync(tool)
      expect({ uid: info.uid, gid: info.gid, mode: info.mode & 0o7777 }).toEqual({ uid: 65534, gid: 65534, mode: 0o4755 })
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    }))

  it.live("installs a signed release over HTTP with a public key configured", () =>
    Effect.gen(function*() {
      const root = tempDir()
      dirs.push(root)
      const keys = Crypto.generateKeyPairSync("ed25519")
      Fs.writeFileSync(Path.join(root, "tool"), newBytes)
      yield* Publish.publish({
        binary: Path.join(root, "tool"),
        version: "2.0.0",
        ...platform,
        repo: Path.join(root, "repo"),
        force: false,
        compression: "gzip",
        signKey: keys.privateKey
      }).pipe(Effect.provide(services))
      const bin = Path.join(root, "bin")
      Fs.mkdirSync(bin)
      const tool = target(bin, oldBytes)
      const server = yield* Effect.promise(() => fileServer(Path.join(root, "repo")))
      const result = yield* apply(http(server.url), { target: tool, publicKey: keys.publicKey })
      yield* Effect.promise(server.close)
      expect(result._tag).toBe("Right")
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
      expect(server.seen.map((s) => s.url)).toEqual([
        "/2.0.0/linux/amd64/release.json",
        "/2.0.0/linux/amd64/tool-linux-amd64-2.0.0.gz"
      ])
    }))

  it.live("has nothing to do for the same version (without asking the source) or a target that already has the release's hash", () =>
    Effect.gen(function*() {
      const { repo, tool } = setup()
      const same = yield* apply(directory("/nonexistent/repo"), { target: tool, currentVersion: "2.0" })
      expect(same._tag === "Right" && same.right).toEqual({ _tag: "UpToDate", version: "2.0" })
      Fs.writeFileSync(tool, newBytes)
      const hashed = yield* apply(directory(repo), { target: tool })
      expect(hashed._tag === "Right" && hashed.right).toEqual({ _tag: "UpToDate", version: "2.0.0" })
      expect(listing(Path.dirname(tool))).toEqual(["tool"])
    }))

  it.live("refuses a downgrade unless allowed", () =>
    Effect.gen(function*() {
      const { repo, tool } = setup()
      const refused = yield* apply(directory(repo), { target: tool, currentVersion: "3.0.0" })
      expect(refused._tag === "Left" && refused.left.message).toBe(
        "refusing to downgrade from 3.0.0 to 2.0.0 (allow it with --allow-downgrade)"
      )
      untouched(tool)
      const allowed = yield* apply(directory(repo), { target: tool, currentVersion: "3.0.0", allowDowngrade: true })
      expect(allowed._tag).toBe("Right")
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    }))

  describe("faults leave the target byte-identical and no temp files", () => {
    const keys = Crypto.generateKeyPairSync("ed25519")
    const corrupt = Buffer.from(newBz2)
    corrupt.fill(0x42, 5000, 5200)
    const cases: Array<{
      name: string
      release?: Parameters<typeof choriaRelease>[1]
      options?: Partial<Apply.Options>
      tag: string
      code: number
    }> = [
      {
        name: "hash mismatch",
        release: { name: "tool", version: "2.0.0", bytes: binary(1000, 3), payload: newBz2 },
        tag: "PackageHashMismatch",
        code: ExitCode.Code.PayloadHashMismatchError
      },
      {
        name: "missing signature with a key configured",
        options: { publicKey: keys.publicKey },
        tag: "SignatureMissing",
        code: ExitCode.Code.DownloadSignatureMissingInManifest
      },
      {
        name: "bad signature with a key configured",
        release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: newBz2, release: { signature: Buffer.alloc(64, 1).toString("base64") } },
        options: { publicKey: keys.publicKey },
        tag: "SignatureInvalid",
        code: ExitCode.Code.DownloadPayloadPubKeyVerificationError
      },
      {
        name: "truncated bz2",
        release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: newBz2.subarray(0, newBz2.length - 999) },
        tag: "CorruptPayload",
        code: ExitCode.Code.DownloadPayloadVerificationError
      },
      {
        name: "corrupt bz2",
        release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: corrupt },
        tag: "CorruptPayload",
        code: ExitCode.Code.DownloadPayloadVerificationError
      },
      {
        name: "decompression bomb",
        release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: bzip2(Buffer.alloc(48 * 1024 * 1024)) },
        options: { maxBytes: 8 * 1024 * 1024 },
        tag: "PayloadTooLarge",
        code: ExitCode.Code.PayloadSizeMismatchError
      },
      {
        name: "a release for another platform",
        options: { arch: "arm64" },
        tag: "ReleaseInvalid",
        code: ExitCode.Code.OmahaResponseInvalid
      },
      {
        name: "a release.json with a hash that is not SHA-256",
        release: { name: "tool", version: "2.0.0", bytes: newBytes, release: { hash: "nope" } },
        tag: "ReleaseInvalid",
        code: ExitCode.Code.OmahaResponseInvalid
      }
    ]
    for (const c of cases) {
      it.live(c.name, () =>
        Effect.gen(function*() {
          const { repo, tool } = setup(c.release)
          const log: Array<string> = []
          const result = yield* apply(directory(repo), { target: tool, ...c.options }, log)
          expect(result._tag === "Left" && result.left._tag).toBe(c.tag)
          expect(result._tag === "Left" && Apply.updateEngineCode(result.left)).toBe(c.code)
          expect(log.at(-1)).toMatch(new RegExp(`^3/0 .* ${c.code}$`))
          untouched(tool)
        }))
    }

    it.live("404 for release.json and for the payload", () =>
      Effect.gen(function*() {
        const { repo, tool, made } = setup()
        const server = yield* Effect.promise(() => fileServer(repo))
        const log: Array<string> = []
        const missing = yield* apply(http(server.url), { target: tool, version: "9.9.9" }, log)
        expect(missing._tag === "Left" && missing.left).toMatchObject({ _tag: "ReleaseNotFound", status: 404 })
        expect(log).toEqual(["3/0 - 2404"])
        Fs.rmSync(made.path)
        const gone = yield* apply(http(server.url), { target: tool }, log)
        yield* Effect.promise(server.close)
        expect(gone._tag === "Left" && gone.left).toMatchObject({ _tag: "DownloadFailed", status: 404 })
        expect(log.at(-1)).toBe("3/0 2.0.0 9")
        untouched(tool)
      }))

    it.live("the server dying mid-download", () =>
      Effect.gen(function*() {
        const { repo, tool } = setup()
        const server = yield* Effect.promise(() => fileServer(repo, { dieAfter: 300_000 }))
        const result = yield* apply(http(server.url), { target: tool })
        expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "DownloadFailed", retryable: true })
        untouched(tool)
      }))

    it.live("a failed health check: the old binary is restored and the error says so", () =>
      Effect.gen(function*() {
        const { repo, tool } = setup()
        const log: Array<string> = []
        const check = { command: `test "$(sha256sum < "$UPDATE_SELF_TARGET" | cut -c1-64)" = ${sha256(newBytes)} && exit 3`, timeout: Duration.seconds(10) }
        const result = yield* apply(directory(repo), { target: tool, check }, log)
        expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "RollbackError", rolledBack: true })
        expect(result._tag === "Left" && result.left.message).toMatch(/exited with status 3\); rolled back to the previous binary$/)
        expect(log.at(-1)).toBe(`3/0 2.0.0 ${ExitCode.Code.RollbackError}`)
        untouched(tool, ["tool", "tool.backup"])
        const timedOut = yield* apply(directory(repo), { target: tool, check: { command: "sleep 30", timeout: Duration.millis(300) } })
        expect(timedOut._tag === "Left" && timedOut.left.message).toMatch(/did not finish within/)
        untouched(tool, ["tool", "tool.backup"])
        const passed = yield* apply(directory(repo), { target: tool, check: { command: "true", timeout: "10 seconds" } })
        expect(passed._tag).toBe("Right")
      }))

    it.live("another apply holding the lock", () =>
      Effect.gen(function*() {
        const { repo, tool } = setup()
        const lock = `${tool}.lock`
        Fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, host: Os.hostname(), since: 0 }))
        const result = yield* apply(directory(repo), { target: tool })
        expect(result._tag === "Left" && result.left._tag).toBe("UpdateLocked")
        Fs.rmSync(lock)
        untouched(tool)
      }))

    it.live("interruption during the download and during the health check", () =>
      Effect.gen(function*() {
        const { repo, tool } = setup()
        const server = yield* Effect.promise(() => fileServer(repo, { chunkDelay: 50 }))
        const downloading = yield* Effect.fork(apply(http(server.url), { target: tool }))
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(downloading)
        yield* Effect.promise(server.close)
        untouched(tool)
        const checking = yield* Effect.fork(apply(directory(repo), { target: tool, check: { command: "sleep 30", timeout: "60 seconds" } }))
        // Wait until the new binary is in place, then stop the apply during its check.
        for (let i = 0; i < 100 && !Fs.readFileSync(tool).equals(newBytes); i++) yield* Effect.sleep("50 millis")
        expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
        yield* Fiber.interrupt(checking)
        untouched(tool, ["tool", "tool.backup"])
      }))
  })

  describe("time limit", () => {
    const release = new Release.Release({
      version: "2.0.0",
      ...platform,
      name: "tool",
      location: "http://updates.example/tool",
      sha256: sha256(newBytes)
    })
    /** A source that offers 2.0.0 (or stays in its check, with `resolve`) and whose payload never comes. */
    const stuck = (resolve: Repository.Source["resolve"] = () => Effect.succeed(Option.some(release))) => {
      const calls = { fetch: 0, resolve: 0 }
      const source = Layer.succeed(Repository.Repository, {
        location: "http://updates.example",
        resolve: (wanted) => Effect.zipRight(Effect.sync(() => calls.resolve++), resolve(wanted)),
        fetch: () =>
          Effect.sync(() => {
            calls.fetch++
            return { start: 0, total: newBytes.length, stream: Stream.never as Stream.Stream<Uint8Array> }
          }),
        report: Repository.silent
      })
      return { source, calls }
    }

    it.effect("stops at the limit wherever it is, says where, and leaves the target as it was (TestClock)", () =>
      Effect.gen(function*() {
        for (const [step, code] of [["downloading", ExitCode.Code.DownloadTransferError], ["checking", ExitCode.Code.Error]] as const) {
          const { tool } = setup()
          const { calls, source } = step === "checking" ? stuck(() => Effect.never) : stuck()
          const log: Array<string> = []
          const fiber = yield* Effect.fork(apply(source, { target: tool, timeout: "5 minutes" }, log))
          // The target, the lock and the partial file are real files: the clock moves once the source is asked.
          while ((step === "checking" ? calls.resolve : calls.fetch) === 0) {
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))
          }
          yield* TestClock.adjust("4 minutes")
          expect(fiber.unsafePoll()).toBeNull()
          yield* TestClock.adjust("1 minute")
          const result = yield* Fiber.join(fiber)
          expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "UpdateTimedOut", step, timeoutMillis: 300_000 })
          expect(result._tag === "Left" && result.left.message).toBe(
            `the update of ${tool} did not finish within 300 s (it was ${step === "checking" ? "checking for an update" : "downloading"}); ` +
              "stopped, and the previous binary is in place"
          )
          expect(log).toEqual([step === "checking" ? `3/0 - ${code}` : `13/1 2.0.0`, ...(step === "checking" ? [] : [`3/0 2.0.0 ${code}`])])
          untouched(tool)
        }
      }))
  })

  describe("disk use", () => {
    /** A repository holding release 2.0.0 uncompressed, as `update-repo --compression none` publishes it. */
    const uncompressed = () =>
      Effect.gen(function*() {
        const root = tempDir()
        dirs.push(root)
        Fs.writeFileSync(Path.join(root, "tool"), newBytes)
        const repo = Path.join(root, "repo")
        yield* Publish.publish({ binary: Path.join(root, "tool"), version: "2.0.0", ...platform, repo, force: false, compression: "none" })
        const bin = Path.join(root, "bin")
        Fs.mkdirSync(bin)
        return { repo, tool: target(bin, oldBytes) }
      }).pipe(Effect.provide(services))

    it.live("stages an uncompressed payload once: its partial file becomes the new binary, never a second copy beside it", () =>
      Effect.gen(function*() {
        const { repo, tool } = yield* uncompressed()
        const dir = Path.dirname(tool)
        const server = yield* Effect.promise(() => fileServer(repo, { chunkDelay: 20 }))
        // What lies beside the target besides itself and its backup (and links to them), in bytes, at each look.
        const looks: Array<{ names: Array<string>; bytes: number }> = []
        const watcher = yield* Effect.fork(Effect.forever(Effect.zipRight(
          Effect.sync(() => {
            const names = listing(dir).filter((n) => n !== "tool" && n !== "tool.backup" && n !== "tool.lock")
            const bytes = names.reduce((sum, n) => {
              const info = Fs.statSync(Path.join(dir, n), { throwIfNoEntry: false })
              return sum + (info === undefined || info.nlink > 1 ? 0 : info.size)
            }, 0)
            looks.push({ names, bytes })
          }),
          Effect.sleep("5 millis")
        )))
        const result = yield* apply(http(server.url), { target: tool })
        yield* Fiber.interrupt(watcher)
        yield* Effect.promise(server.close)
        expect(result._tag).toBe("Right")
        expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
        // The download was watched while under way (a partial file of some size was seen)...
        expect(looks.filter((l) => l.names.some((n) => n.endsWith(".part")) && l.bytes > 0).length).toBeGreaterThan(10)
        // ...and there was never more than one copy of the payload: no .new beside a .part, at most its size in all.
        expect(looks.filter((l) => l.names.includes(".tool.new") && l.names.some((n) => n.endsWith(".part")))).toEqual([])
        expect(Math.max(...looks.map((l) => l.bytes))).toBeLessThanOrEqual(newBytes.length)
        expect(listing(dir)).toEqual(["tool", "tool.backup"])
      }))

    it.live("still resumes an uncompressed payload with a Range request, and removes its partial file when it fails", () =>
      Effect.gen(function*() {
        const { repo, tool } = yield* uncompressed()
        const server = yield* Effect.promise(() => fileServer(repo, { cutOnceAfter: 500_000 }))
        const result = yield* apply(http(server.url), { target: tool })
        yield* Effect.promise(server.close)
        expect(result._tag).toBe("Right")
        expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
        const payload = server.seen.filter((s) => s.url.endsWith("tool-linux-amd64-2.0.0"))
        expect(payload.map((s) => s.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)])
        expect(listing(Path.dirname(tool))).toEqual(["tool", "tool.backup"])
        // A payload that does not hash as announced leaves nothing behind.
        const bad = yield* uncompressed()
        const release = Path.join(bad.repo, "2.0.0", "linux", "amd64", "release.json")
        Fs.writeFileSync(release, JSON.stringify({ ...JSON.parse(Fs.readFileSync(release, "utf8")), hash: sha256(binary(10, 99)) }))
        const refused = yield* apply(directory(bad.repo), { target: bad.tool })
        expect(refused._tag === "Left" && refused.left._tag).toBe("PackageHashMismatch")
        untouched(bad.tool)
      }))
  })

  describe("resuming", () => {
    it.live("continues a cut transfer with a Range request, also when the server ignores Range", () =>
      Effect.gen(function*() {
        for (const ignoreRange of [false, true]) {
          const { repo, tool, made } = setup()
          const server = yield* Effect.promise(() => fileServer(repo, { cutOnceAfter: 400_000, ignoreRange }))
          const result = yield* apply(http(server.url), { target: tool })
          yield* Effect.promise(server.close)
          expect(result._tag).toBe("Right")
          expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
          const payload = server.seen.filter((s) => s.url.endsWith(made.file))
          expect(payload.length).toBe(2)
          expect(payload[1]!.range).toMatch(/^bytes=\d+-$/)
          expect(Number(payload[1]!.range!.slice(6, -1))).toBeGreaterThanOrEqual(400_000 - 64 * 1024)
          expect(listing(Path.dirname(tool))).toEqual(["tool", "tool.backup"])
        }
      }))

    it.live("resumes from the partial file a killed run left for the same hash, and drops one for another hash", () =>
      Effect.gen(function*() {
        const { repo, tool, made } = setup()
        const dir = Path.dirname(tool)
        const part = Path.join(dir, `.tool.${sha256(newBytes)}.part`)
        Fs.writeFileSync(part, newBz2.subarray(0, 500_000))
        const stale = Path.join(dir, `.tool.${sha256(oldBytes)}.part`)
        Fs.writeFileSync(stale, "old")
        Fs.writeFileSync(Path.join(dir, ".tool.new"), "left by a killed run")
        const server = yield* Effect.promise(() => fileServer(repo))
        const result = yield* apply(http(server.url), { target: tool })
        yield* Effect.promise(server.close)
        expect(result._tag).toBe("Right")
        expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
        expect(server.seen.filter((s) => s.url.endsWith(made.file)).map((s) => s.range)).toEqual(["bytes=500000-"])
        expect(listing(dir)).toEqual(["tool", "tool.backup"])
      }))
  })
})
