import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Signature } from "effect-omaha"
import { tempDir } from "./support.js"

const { privateKey, publicKey } = Crypto.generateKeyPairSync("ed25519")
const release = { version: "1.2.3", os: "linux", arch: "amd64", sha256: "ab".repeat(32) }
const verdict = (r: Parameters<typeof Signature.verify>[1], key = publicKey) =>
  Effect.runSync(Effect.either(Signature.verify(key, r)))

describe("Signature", () => {
  it("verifies a release signed with the matching key", () => {
    const signature = Signature.sign(privateKey, release)
    expect(verdict({ ...release, signature })._tag).toBe("Right")
    // Hex digits in either case name the same hash.
    expect(verdict({ ...release, sha256: release.sha256.toUpperCase(), signature })._tag).toBe("Right")
  })

  it("refuses a signature replayed for another version, OS, architecture or hash", () => {
    const signature = Signature.sign(privateKey, release)
    for (const other of [{ version: "1.2.4" }, { os: "darwin" }, { arch: "arm64" }, { sha256: "cd".repeat(32) }]) {
      const result = verdict({ ...release, ...other, signature })
      expect(result._tag === "Left" && result.left._tag, JSON.stringify(other)).toBe("SignatureInvalid")
    }
  })

  it("fails closed: no signature, garbage, or another key's signature", () => {
    const missing = verdict(release)
    expect(missing._tag === "Left" && missing.left.message).toBe(
      "release 1.2.3 for linux/amd64 is not signed, and a public key is configured"
    )
    expect(verdict({ ...release, signature: "" })._tag === "Left").toBe(true)
    for (const signature of ["not base64!", "AAAA", Buffer.alloc(64).toString("base64")]) {
      const result = verdict({ ...release, signature })
      expect(result._tag === "Left" && result.left._tag).toBe("SignatureInvalid")
    }
    const other = Crypto.generateKeyPairSync("ed25519")
    const result = verdict({ ...release, signature: Signature.sign(other.privateKey, release) })
    expect(result._tag === "Left" && result.left._tag).toBe("SignatureInvalid")
  })

  it.effect("writes a key pair (private 0600), refuses to overwrite it, and reads it back", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const files = { privateKey: Path.join(dir, "release.key"), publicKey: Path.join(dir, "release.pub") }
      yield* Signature.writeKeyPair({ ...files, force: false })
      expect(Fs.statSync(files.privateKey).mode & 0o777).toBe(0o600)
      const before = Fs.readFileSync(files.privateKey, "utf8")
      const again = yield* Effect.either(Signature.writeKeyPair({ ...files, force: false }))
      expect(again._tag === "Left" && again.left).toMatchObject({ _tag: "KeyFileExists", path: files.privateKey })
      expect(Fs.readFileSync(files.privateKey, "utf8")).toBe(before)
      const priv = yield* Signature.readPrivateKey(files.privateKey)
      const pub = yield* Signature.readPublicKey(files.publicKey)
      expect(verdict({ ...release, signature: Signature.sign(priv, release) }, pub)._tag).toBe("Right")
      yield* Signature.writeKeyPair({ ...files, force: true })
      expect(Fs.readFileSync(files.privateKey, "utf8")).not.toBe(before)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("refuses one file for both keys, however it is reached, and never loses an existing private key", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const privateKey = Path.join(dir, "release.key")
      const same = (publicKey: string, force: boolean) => Effect.either(Signature.writeKeyPair({ privateKey, publicKey, force }))
      // Nothing there yet: the same path, and the same path spelled another way.
      for (const spelling of [privateKey, `${dir}/./sub/../release.key`]) {
        const result = yield* same(spelling, false)
        expect(result._tag === "Left" && result.left._tag).toBe("KeyPathsSame")
        expect(Fs.readdirSync(dir)).toEqual([])
      }
      yield* Signature.writeKeyPair({ privateKey, publicKey: Path.join(dir, "release.pub"), force: false })
      const before = Fs.readFileSync(privateKey, "utf8")
      // Through a symbolic link to the directory, and a hard link to the file, even with force.
      Fs.symlinkSync(dir, Path.join(dir, "alias"))
      Fs.linkSync(privateKey, Path.join(dir, "hard.key"))
      for (const other of [privateKey, Path.join(dir, "alias", "release.key"), Path.join(dir, "hard.key")]) {
        const result = yield* same(other, true)
        expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "KeyPathsSame", privateKey, publicKey: other })
        expect(result._tag === "Left" && result.left.message).toMatch(/give .*two different/)
        expect(Fs.readFileSync(privateKey, "utf8")).toBe(before)
      }
      // Another file that holds a private key never receives a public key, even with force.
      const otherKey = Path.join(dir, "other.key")
      Fs.writeFileSync(otherKey, before)
      const overwrite = yield* same(otherKey, true)
      expect(overwrite._tag === "Left" && overwrite.left).toMatchObject({ _tag: "KeyFileExists", path: otherKey, holdsPrivateKey: true })
      expect(Fs.readFileSync(otherKey, "utf8")).toBe(before)
      expect(Fs.readFileSync(privateKey, "utf8")).toBe(before)
      expect(Fs.readdirSync(dir).sort()).toEqual(["alias", "hard.key", "other.key", "release.key", "release.pub"])
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("refuses key files that hold no ed25519 key", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const rsa = Path.join(dir, "rsa.pub")
      Fs.writeFileSync(rsa, Crypto.generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }))
      const text = Path.join(dir, "text.pub")
      Fs.writeFileSync(text, "hello")
      for (const [path, reason] of [[rsa, /: not an ed25519 key \(rsa\)$/], [text, /: not a PEM public key$/], [
        Path.join(dir, "absent"),
        /^cannot read public key .*absent: no such file$/
      ], [dir, /: not a regular file \(directory\)$/]] as const) {
        const result = yield* Effect.either(Signature.readPublicKey(path))
        expect(result._tag === "Left" && result.left._tag).toBe("KeyFileInvalid")
        expect(result._tag === "Left" && result.left.message).toMatch(reason)
      }
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})
