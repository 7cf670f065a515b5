/**
 * Publishing a binary into a repository in choria's layout:
 * `<repo>/<version>/<os>/<arch>/<name>-<os>-<arch>-<version>.bz2` and its
 * `release.json`, optionally signed, then read back and checked, so a
 * published release is known to install.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Schema, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { describeFileError } from "../internal/fileError.js"
import * as Version from "../protocol/Version.js"
import * as Compression from "./Compression.js"
import { WriteFailed, writeFailed } from "./Download.js"
import { decodeReleaseFile, encodeReleaseFile, ReleaseFile, type ReleaseInvalid } from "./Release.js"
import * as Signature from "./Signature.js"

/** The release already exists and `force` was not given. */
export class ReleaseExists extends Schema.TaggedError<ReleaseExists>()("ReleaseExists", {
  path: Schema.String
}) {
  override get message(): string {
    return `${this.path} already exists; refusing to overwrite it (use --force)`
  }
}

/** The binary to publish cannot be read or is not a regular file. */
export class BinaryUnavailable extends Schema.TaggedError<BinaryUnavailable>()("BinaryUnavailable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read binary ${this.path}: ${this.reason}`
  }
}

/** An OS, architecture or binary name that cannot be a path segment or file name of a repository. */
export class InvalidName extends Schema.TaggedError<InvalidName>()("InvalidName", {
  what: Schema.String,
  value: Schema.String
}) {
  override get message(): string {
    return `${this.what} ${JSON.stringify(this.value)} is not usable in a repository (letters, digits, '.', '_', '+', '-')`
  }
}

/** What was written did not read back as the release (a disk or compressor fault). */
export class PublishVerifyFailed extends Schema.TaggedError<PublishVerifyFailed>()("PublishVerifyFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.path} does not read back as published: ${this.reason}`
  }
}

/** Every way publishing can fail. */
export type PublishError =
  | ReleaseExists
  | BinaryUnavailable
  | InvalidName
  | PublishVerifyFailed
  | WriteFailed
  | Version.InvalidVersion
  | Compression.Bzip2Unavailable
  | Compression.CompressFailed

/** What to publish. */
export interface Options {
  readonly binary: string
  readonly version: string
  readonly os: string
  readonly arch: string
  readonly repo: string
  readonly force: boolean
  readonly compression: Compression.Compression
  readonly signKey?: Crypto.KeyObject | undefined
}

/** What was published. */
export interface Published {
  readonly dir: string
  readonly payload: string
  readonly releaseFile: string
  readonly sha256: string
  readonly size: number
  readonly signed: boolean
}

const segment = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/

const sha256Of = <E, R>(stream: Stream.Stream<Uint8Array, E, R>) =>
  Effect.suspend(() => {
    const hash = Crypto.createHash("sha256")
    let size = 0
    return Stream.runForEach(stream, (bytes) =>
      Effect.sync(() => {
        hash.update(bytes)
        size += bytes.byteLength
      })).pipe(Effect.map(() => ({ sha256: hash.digest("hex"), size })))
  })

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive
 * mkdir answers ENOENT when a parent cannot be made (on a read-only file
 * system, say); one level at a time, the failure names its real cause and the
 * directory it struck.
 */
const makeDirectories = (fs: FileSystem.FileSystem, dir: string) =>
  Effect.gen(function*() {
    const missing: Array<string> = []
    for (let path = Path.resolve(dir); !(yield* Effect.orElseSucceed(fs.exists(path), () => false));) {
      missing.unshift(path)
      const parent = Path.dirname(path)
      if (parent === path) break
      path = parent
    }
    for (const path of missing) {
      yield* fs.makeDirectory(path).pipe(
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.void),
        Effect.mapError(writeFailed(path, "create"))
      )
    }
  })

/** Publishes a binary (see the module header); the release is checked by reading it back. */
export const publish = Effect.fn("Publish.publish")(function*(options: Options) {
  const fs = yield* FileSystem.FileSystem
  yield* Version.parse(options.version)
  for (const [what, value] of [["version", options.version], ["os", options.os], ["arch", options.arch]] as const) {
    if (!segment.test(value)) return yield* new InvalidName({ what, value })
  }
  const base = Path.basename(options.binary)
  if (!segment.test(base)) return yield* new InvalidName({ what: "binary name", value: base })

  const info = yield* fs.stat(options.binary).pipe(
    Effect.mapError((e) => new BinaryUnavailable({ path: options.binary, reason: describeFileError(e) }))
  )
  if (info.type !== "File") return yield* new BinaryUnavailable({ path: options.binary, reason: "not a regular file" })

  const dir = Path.join(options.repo, options.version, options.os, options.arch)
  const releasePath = Path.join(dir, "release.json")
  const name = `${base}-${options.os}-${options.arch}-${options.version}${Compression.suffix[options.compression]}`
  const payload = Path.join(dir, name)
  if (!options.force) {
    for (const path of [releasePath, payload]) {
      if (yield* Effect.orElseSucceed(fs.exists(path), () => false)) return yield* new ReleaseExists({ path })
    }
  }
  yield* makeDirectories(fs, dir)

  // Written under temporary names and renamed into place: a reader never sees half a release.
  const payloadTemp = Path.join(dir, `.${name}.tmp`)
  const releaseTemp = Path.join(dir, ".release.json.tmp")
  const facts = yield* Effect.scoped(Effect.gen(function*() {
    yield* Effect.addFinalizer(() =>
      Effect.all([fs.remove(payloadTemp, { force: true }), fs.remove(releaseTemp, { force: true })]).pipe(Effect.ignore)
    )
    const hash = Crypto.createHash("sha256")
    let size = 0
    const input = fs.stream(options.binary, { chunkSize: 1024 * 1024 }).pipe(
      Stream.mapError((e) => new BinaryUnavailable({ path: options.binary, reason: describeFileError(e) })),
      Stream.tap((bytes) =>
        Effect.sync(() => {
          hash.update(bytes)
          size += bytes.byteLength
        })
      )
    )
    yield* Compression.encode(input, options.compression).pipe(
      Stream.run(fs.sink(payloadTemp, { flag: "wx", mode: 0o644 })),
      Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(writeFailed(payloadTemp, "write")(e)))
    )
    const sha256 = hash.digest("hex")
    const signature = options.signKey === undefined
      ? undefined
      : Signature.sign(options.signKey, { version: options.version, os: options.os, arch: options.arch, sha256 })
    const file = new ReleaseFile({ binary: name, hash: sha256, ...(signature === undefined ? {} : { signature }) })
    yield* fs.writeFileString(releaseTemp, encodeReleaseFile(file), { flag: "wx", mode: 0o644 }).pipe(
      Effect.mapError(writeFailed(releaseTemp, "write"))
    )
    yield* fs.rename(payloadTemp, payload).pipe(Effect.mapError(writeFailed(payload, "create")))
    yield* fs.rename(releaseTemp, releasePath).pipe(Effect.mapError(writeFailed(releasePath, "create")))
    return { sha256, size, signed: signature !== undefined }
  }))

  yield* verifyWritten(releasePath, payload, facts.sha256, facts.size)
  return { dir, payload, releaseFile: releasePath, ...facts } satisfies Published
})

/** Reads a published release back: release.json must decode and the payload must decode to the binary. */
const verifyWritten = (releasePath: string, payload: string, sha256: string, size: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const failed = (path: string) => (e: { readonly message: string }) => new PublishVerifyFailed({ path, reason: e.message })
    const bytes = yield* Effect.mapError(fs.readFile(releasePath), failed(releasePath))
    const file = yield* Effect.mapError(decodeReleaseFile(bytes, releasePath), (e: ReleaseInvalid) => failed(releasePath)(e))
    if (file.hash !== sha256 || file.binary !== Path.basename(payload)) {
      return yield* new PublishVerifyFailed({ path: releasePath, reason: "hash or binary name differs" })
    }
    const decoded = Compression.decode(fs.stream(payload, { chunkSize: 1024 * 1024 }), {
      location: payload,
      name: file.binary,
      maxBytes: size
    })
    const facts = yield* Effect.mapError(sha256Of(decoded), failed(payload))
    if (facts.sha256 !== sha256 || facts.size !== size) {
      return yield* new PublishVerifyFailed({ path: payload, reason: `decodes to sha256 ${facts.sha256}, expected ${sha256}` })
    }
  })

/** The services publishing needs. */
export type Requirements = FileSystem.FileSystem
