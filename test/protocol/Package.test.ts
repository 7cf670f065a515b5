import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Package, Response } from "effect-omaha"

// Published test vectors for "abc".
const abc = {
  size: 3,
  sha1: "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
  sha256: "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
  sha256Hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
}

const bytes = (text: string) => new TextEncoder().encode(text)

describe("Package", () => {
  it.effect("computes size, base64 SHA-1 and base64 SHA-256 in one pass over any chunking", () =>
    Effect.gen(function*() {
      const whole = yield* Package.fromStream(Stream.make(bytes("abc")))
      const split = yield* Package.fromStream(Stream.fromChunk(Chunk.make(bytes("a"), bytes(""), bytes("bc"))))
      for (const facts of [whole, split]) {
        expect({ size: facts.size, sha1: facts.sha1, sha256: facts.sha256, sha256Hex: facts.sha256Hex }).toEqual(abc)
      }
    }))

  it.effect("reports progress as bytes are read", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      yield* Package.fromStream(Stream.make(bytes("ab"), bytes("cde")), {
        onProgress: (n) => Effect.sync(() => seen.push(n))
      })
      expect(seen).toEqual([5])
      yield* Package.fromStream(Stream.make(bytes("ab"), bytes("cde")).pipe(Stream.rechunk(1)), { // one chunk per array
        onProgress: (n) => Effect.sync(() => seen.push(n))
      })
      expect(seen).toEqual([5, 2, 5])
    }))

  it.effect("hashes a file larger than one read and builds its <package>", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-package-"))
      const file = Path.join(dir, "update.gz")
      const data = Crypto.randomBytes(3 * 1024 * 1024 + 17)
      Fs.writeFileSync(file, data)
      const pkg = yield* Package.packageFromFile(file)
      expect(pkg).toStrictEqual(
        new Response.Package({
          name: "update.gz",
          hash: Crypto.createHash("sha1").update(data).digest("base64"),
          hashSha256: Crypto.createHash("sha256").update(data).digest("base64"),
          size: data.length,
          required: true
        })
      )
      yield* Package.verifyFile(pkg, file)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("fails on a missing file with the platform's error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Package.fromFile("/nonexistent/effect-omaha/update.gz"))
      expect(error._tag).toBe("SystemError")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  describe("verify", () => {
    const facts = new Package.PackageFacts({ size: abc.size, sha1: abc.sha1, sha256: abc.sha256 })
    const pkg = (fields: Partial<ConstructorParameters<typeof Response.Package>[0]>) =>
      new Response.Package({ name: "p", ...fields })
    const verdict = (p: Response.Package) => Effect.runSync(Effect.either(Package.verify(p, facts)))

    it("accepts matching size and hashes, SHA-256 in base64 or hex", () => {
      expect(verdict(pkg({ size: 3, hash: abc.sha1, hashSha256: abc.sha256 }))._tag).toBe("Right")
      expect(verdict(pkg({ size: 3, hash: abc.sha1, hashSha256: abc.sha256Hex }))._tag).toBe("Right")
      expect(verdict(pkg({ size: 3, hash: abc.sha1, hashSha256: abc.sha256Hex.toUpperCase() }))._tag).toBe("Right")
      // SHA-256 is an extension: a package with only the SHA-1 still verifies.
      expect(verdict(pkg({ size: 3, hash: abc.sha1 }))._tag).toBe("Right")
    })

    it("fails with PackageSizeMismatch on a wrong size", () => {
      const result = verdict(pkg({ size: 4, hash: abc.sha1 }))
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "PackageSizeMismatch", expected: 4, actual: 3 })
      expect(result._tag === "Left" && result.left.message).toBe("package p: size is 3 bytes, expected 4")
    })

    it("fails with PackageHashMismatch on a wrong or missing hash", () => {
      const wrongSha1 = verdict(pkg({ size: 3, hash: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=" }))
      expect(wrongSha1._tag === "Left" && wrongSha1.left).toMatchObject({ _tag: "PackageHashMismatch", algorithm: "sha1" })
      const wrongSha256 = verdict(pkg({ hash: abc.sha1, hashSha256: "00".repeat(32) }))
      expect(wrongSha256._tag === "Left" && wrongSha256.left).toMatchObject({ algorithm: "sha256", actual: abc.sha256 })
      const garbage = verdict(pkg({ hashSha256: "not a digest" }))
      expect(garbage._tag === "Left" && garbage.left._tag).toBe("PackageHashMismatch")
      const none = verdict(pkg({ size: 3 }))
      expect(none._tag === "Left" && none.left.message).toBe("package p: no sha256 hash to verify against")
    })
  })
})
