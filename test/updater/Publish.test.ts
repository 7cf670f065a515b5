import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Compression, Publish, Release } from "effect-omaha"
import { binary, listing, sha256, tempDir } from "./support.js"

const bytes = binary(200_000, 7)
const setup = () => {
  const dir = tempDir()
  Fs.writeFileSync(Path.join(dir, "tool"), bytes)
  return { dir, options: { binary: Path.join(dir, "tool"), version: "1.0.0", os: "linux", arch: "arm64", repo: Path.join(dir, "repo"), force: false, compression: "bz2" as Compression.Compression } }
}

describe("Publish", () => {
  it.live("lays a release out as choria does, and refuses to overwrite it without force", () =>
    Effect.gen(function*() {
      const { dir, options } = setup()
      const published = yield* Publish.publish(options)
      const releaseDir = Path.join(dir, "repo", "1.0.0", "linux", "arm64")
      expect(listing(releaseDir)).toEqual(["release.json", "tool-linux-arm64-1.0.0.bz2"])
      expect(JSON.parse(Fs.readFileSync(Path.join(releaseDir, "release.json"), "utf8"))).toEqual({
        binary: "tool-linux-arm64-1.0.0.bz2",
        hash: sha256(bytes)
      })
      expect(published).toMatchObject({ sha256: sha256(bytes), size: bytes.length, signed: false })
      expect(Compression.sniff(Fs.readFileSync(published.payload))).toBe("bz2")
      const again = yield* Effect.either(Publish.publish(options))
      expect(again._tag === "Left" && again.left).toMatchObject({ _tag: "ReleaseExists", path: Path.join(releaseDir, "release.json") })
      yield* Publish.publish({ ...options, force: true, compression: "none" })
      expect(listing(releaseDir)).toEqual(["release.json", "tool-linux-arm64-1.0.0", "tool-linux-arm64-1.0.0.bz2"])
      const file = yield* Release.decodeReleaseFile(Fs.readFileSync(Path.join(releaseDir, "release.json")), "r")
      expect(file.binary).toBe("tool-linux-arm64-1.0.0")
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("refuses versions and platform names that cannot be path segments, and a missing binary", () =>
    Effect.gen(function*() {
      const { dir, options } = setup()
      for (const bad of [{ version: "../1.0.0" }, { version: "not a version" }, { os: "linux/../../x" }, { arch: ".." }]) {
        const result = yield* Effect.either(Publish.publish({ ...options, ...bad }))
        expect(result._tag === "Left" && result.left._tag, JSON.stringify(bad)).toMatch(/^(InvalidName|InvalidVersion)$/)
      }
      const missing = yield* Effect.either(Publish.publish({ ...options, binary: Path.join(dir, "absent") }))
      expect(missing._tag === "Left" && missing.left.message).toBe(`cannot read binary ${Path.join(dir, "absent")}: no such file`)
      expect(Fs.existsSync(Path.join(dir, "repo"))).toBe(false)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("names the directory it could not create and why, not the ENOENT of a recursive mkdir", () =>
    Effect.gen(function*() {
      const { dir, options } = setup()
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true })))
      // A repository below a regular file: its first missing level cannot be made.
      const result = yield* Effect.either(Publish.publish({ ...options, repo: Path.join(dir, "tool", "repo") }))
      expect(result._tag === "Left" && result.left.message).toBe(
        `cannot create ${Path.join(dir, "tool", "repo")}: a part of the path is not a directory (ENOTDIR)`
      )
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
