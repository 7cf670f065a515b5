/**
 * Package facts: the size, base64 SHA-1 and base64 SHA-256 of a payload,
 * computed in one streaming pass, and verification of a payload against the
 * facts a response announced.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Schema, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import * as Response from "./Response.js"

/** Size and digests of one payload. */
export class PackageFacts extends Schema.Class<PackageFacts>("effect-omaha/PackageFacts")({
  size: Schema.NonNegativeInt,
  /** Base64 SHA-1, as in `package@hash`. */
  sha1: Schema.String,
  /** Base64 SHA-256, as in `package@hash_sha256` and `action@sha256`. */
  sha256: Schema.String
}) {
  /** The SHA-256 in lowercase hex. */
  get sha256Hex(): string {
    return Buffer.from(this.sha256, "base64").toString("hex")
  }
}

/** The payload's size differs from the size the package announced. */
export class PackageSizeMismatch extends Schema.TaggedError<PackageSizeMismatch>()("PackageSizeMismatch", {
  name: Schema.String,
  expected: Schema.Number,
  actual: Schema.Number
}) {
  override get message(): string {
    return `package ${this.name}: size is ${this.actual} bytes, expected ${this.expected}`
  }
}

/** The payload's digest differs from the hash the package announced (or it announced none). */
export class PackageHashMismatch extends Schema.TaggedError<PackageHashMismatch>()("PackageHashMismatch", {
  name: Schema.String,
  algorithm: Schema.Literal("sha1", "sha256"),
  expected: Schema.String,
  actual: Schema.String
}) {
  override get message(): string {
    return this.expected === ""
      ? `package ${this.name}: no ${this.algorithm} hash to verify against`
      : `package ${this.name}: ${this.algorithm} is ${this.actual}, expected ${this.expected}`
  }
}

/** Called with the number of bytes read so far, after each chunk. */
export type Progress = (bytesRead: number) => Effect.Effect<void>

// Both digests and the size, fed chunk by chunk.
const makeHasher = () => {
  const sha1 = Crypto.createHash("sha1")
  const sha256 = Crypto.createHash("sha256")
  let size = 0
  return {
    update: (bytes: Uint8Array) => {
      sha1.update(bytes)
      sha256.update(bytes)
      size += bytes.byteLength
      return size
    },
    facts: () => new PackageFacts({ size, sha1: sha1.digest("base64"), sha256: sha256.digest("base64") })
  }
}

/** The facts of the bytes of `stream`, read once. */
export const fromStream = <E, R>(
  stream: Stream.Stream<Uint8Array, E, R>,
  options: { readonly onProgress?: Progress } = {}
): Effect.Effect<PackageFacts, E, R> =>
  Effect.suspend(() => {
    const hasher = makeHasher()
    const onProgress = options.onProgress
    return Stream.runForEachChunk(stream, (chunk) => {
      let size = 0
      for (const bytes of chunk) size = hasher.update(bytes)
      return onProgress === undefined ? Effect.void : onProgress(size)
    }).pipe(Effect.map(hasher.facts))
  })

const chunkSize = 1024 * 1024

/**
 * The facts of a file, read once through a single reused 1 MiB buffer, so
 * hashing a payload of any size takes constant memory.
 */
export const fromFile = (path: string, options: { readonly onProgress?: Progress } = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = yield* fs.open(path, { flag: "r" })
    const buffer = new Uint8Array(chunkSize)
    const hasher = makeHasher()
    for (;;) {
      const read = Number(yield* file.read(buffer))
      if (read === 0) break
      const size = hasher.update(buffer.subarray(0, read))
      if (options.onProgress !== undefined) yield* options.onProgress(size)
    }
    return hasher.facts()
  }).pipe(Effect.scoped)

/** A `<package>` for a payload: its file name, both hashes, size, `required="true"`. */
export const toPackage = (facts: PackageFacts, name: string): Response.Package =>
  new Response.Package({ name, hash: facts.sha1, hashSha256: facts.sha256, size: facts.size, required: true })

/** A `<package>` for a file, named after its base name. */
export const packageFromFile = (path: string) =>
  Effect.map(fromFile(path), (facts) => toPackage(facts, Path.basename(path)))

const hex = /^(?:[0-9a-fA-F]{2})+$/
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** The bytes of a digest written in hex or base64; undefined for anything else. */
export const digestBytes = (digest: string): Buffer | undefined => {
  const text = digest.trim()
  // Hex first: padded base64 digests always end in "=", which hex never contains.
  if (text.length > 0 && hex.test(text)) return Buffer.from(text, "hex")
  if (text.length > 0 && base64.test(text)) return Buffer.from(text, "base64")
  return undefined
}

/** True when `announced` (hex or base64) names the same digest as `actualBase64`. */
export const digestMatches = (announced: string, actualBase64: string): boolean => {
  const bytes = digestBytes(announced)
  return bytes !== undefined && bytes.equals(Buffer.from(actualBase64, "base64"))
}

/**
 * Checks facts against a package: the size when announced, then the SHA-1 and
 * SHA-256 when announced (hex or base64). A package with neither hash fails:
 * nothing would vouch for the bytes.
 */
export const verify = (
  pkg: Response.Package,
  facts: PackageFacts
): Effect.Effect<void, PackageSizeMismatch | PackageHashMismatch> =>
  Effect.gen(function*() {
    if (pkg.size !== undefined && pkg.size !== facts.size) {
      return yield* new PackageSizeMismatch({ name: pkg.name, expected: pkg.size, actual: facts.size })
    }
    if (pkg.hash === undefined && pkg.hashSha256 === undefined) {
      return yield* new PackageHashMismatch({ name: pkg.name, algorithm: "sha256", expected: "", actual: facts.sha256 })
    }
    if (pkg.hash !== undefined && !digestMatches(pkg.hash, facts.sha1)) {
      return yield* new PackageHashMismatch({ name: pkg.name, algorithm: "sha1", expected: pkg.hash, actual: facts.sha1 })
    }
    if (pkg.hashSha256 !== undefined && !digestMatches(pkg.hashSha256, facts.sha256)) {
      return yield* new PackageHashMismatch({
        name: pkg.name,
        algorithm: "sha256",
        expected: pkg.hashSha256,
        actual: facts.sha256
      })
    }
  })

/** Verifies the file at `path` against a package, reading it once. */
export const verifyFile = (pkg: Response.Package, path: string) =>
  Effect.flatMap(fromFile(path), (facts) => verify(pkg, facts))
