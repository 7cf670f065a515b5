/**
 * Release signatures: ed25519 over bytes that bind a release's version, OS,
 * architecture and binary hash, so a signature made for one release cannot be
 * replayed for another; plus the PEM key files `update-repo keygen` writes.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Option, Schema } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { describeFileError } from "../internal/fileError.js"
import { writeFailed } from "./Download.js"

/** What a signature vouches for. */
export interface Signed {
  readonly version: string
  readonly os: string
  readonly arch: string
  /** SHA-256 hex of the binary as installed. */
  readonly sha256: string
}

// NUL separates the fields: none of them can contain one, so no two releases share a message.
const domain = "effect-omaha release signature v1"

/**
 * The content type of a package's `<metadata>` when it carries a release
 * signature over Omaha (the base64 signature is the element's text): how
 * `serve-package --sign-key` publishes one and the Omaha source reads it.
 */
export const metadataContentType = "application/vnd.effect-omaha.release-signature"

/** The exact bytes a release's signature covers. */
export const message = (release: Signed): Uint8Array =>
  Buffer.from([domain, release.version, release.os, release.arch, release.sha256.toLowerCase()].join("\0"), "utf8")

/** The base64 ed25519 signature of a release with a private key. */
export const sign = (privateKey: Crypto.KeyObject, release: Signed): string =>
  Crypto.sign(null, message(release), privateKey).toString("base64")

/** A public key is configured but the release carries no signature. */
export class SignatureMissing extends Schema.TaggedError<SignatureMissing>()("SignatureMissing", {
  version: Schema.String,
  os: Schema.String,
  arch: Schema.String
}) {
  override get message(): string {
    return `release ${this.version} for ${this.os}/${this.arch} is not signed, and a public key is configured`
  }
}

/** The release's signature does not verify with the configured public key. */
export class SignatureInvalid extends Schema.TaggedError<SignatureInvalid>()("SignatureInvalid", {
  version: Schema.String,
  os: Schema.String,
  arch: Schema.String
}) {
  override get message(): string {
    return `release ${this.version} for ${this.os}/${this.arch}: signature does not verify with the configured public key`
  }
}

/** Checks a release's signature (fails closed: a missing or malformed one is refused). */
export const verify = (
  publicKey: Crypto.KeyObject,
  release: Signed & { readonly signature?: string | undefined }
): Effect.Effect<void, SignatureMissing | SignatureInvalid> =>
  Effect.suspend((): Effect.Effect<void, SignatureMissing | SignatureInvalid> => {
    const facts = { version: release.version, os: release.os, arch: release.arch }
    const text = release.signature?.trim() ?? ""
    if (text === "") return Effect.fail(new SignatureMissing(facts))
    const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, "base64") : Buffer.alloc(0)
    const ok = bytes.length === 64 && Crypto.verify(null, message(release), publicKey, bytes)
    return ok ? Effect.void : Effect.fail(new SignatureInvalid(facts))
  })

/** A key file that cannot be read or holds no ed25519 key of the expected kind. */
export class KeyFileInvalid extends Schema.TaggedError<KeyFileInvalid>()("KeyFileInvalid", {
  path: Schema.String,
  kind: Schema.Literal("public", "private"),
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read ${this.kind} key ${this.path}: ${this.reason}`
  }
}

/** `keygen` would overwrite an existing key file, or a private key with a public one. */
export class KeyFileExists extends Schema.TaggedError<KeyFileExists>()("KeyFileExists", {
  path: Schema.String,
  /** The file holds a private key and would receive the public key: refused even with `force`. */
  holdsPrivateKey: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return this.holdsPrivateKey === true
      ? `key file ${this.path} holds a private key; refusing to overwrite it with the public key`
      : `key file ${this.path} already exists; refusing to overwrite it`
  }
}

/** `keygen` was asked to write both keys to one file (the same path, however spelled, or two links to one file). */
export class KeyPathsSame extends Schema.TaggedError<KeyPathsSame>()("KeyPathsSame", {
  privateKey: Schema.String,
  publicKey: Schema.String
}) {
  override get message(): string {
    return this.privateKey === this.publicKey
      ? `the private and the public key cannot both be written to ${this.privateKey}; give two different paths`
      : `${this.privateKey} and ${this.publicKey} are the same file; give the private and the public key two different files`
  }
}

const maxKeyFileBytes = 16 * 1024

const readKey = (path: string, kind: "public" | "private") =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const invalid = (reason: string) => new KeyFileInvalid({ path, kind, reason })
    const info = yield* Effect.mapError(fs.stat(path), (e) => invalid(describeFileError(e)))
    if (info.type !== "File") return yield* Effect.fail(invalid(`not a regular file (${info.type.toLowerCase()})`))
    if (Number(info.size) > maxKeyFileBytes) {
      return yield* Effect.fail(invalid(`larger than ${maxKeyFileBytes} bytes, so not a PEM key file`))
    }
    const text = yield* Effect.mapError(fs.readFileString(path), (e) => invalid(describeFileError(e)))
    const key = yield* Effect.try({
      try: () => (kind === "public" ? Crypto.createPublicKey(text) : Crypto.createPrivateKey(text)),
      catch: () => invalid(`not a PEM ${kind} key`)
    })
    if (key.asymmetricKeyType !== "ed25519") {
      return yield* Effect.fail(invalid(`not an ed25519 key (${key.asymmetricKeyType ?? "another kind"})`))
    }
    return key
  })

/** Reads an ed25519 public key (PEM, SPKI). */
export const readPublicKey = (path: string) => readKey(path, "public")

/** Reads an ed25519 private key (PEM, PKCS#8). */
export const readPrivateKey = (path: string) => readKey(path, "private")

/** A new ed25519 key pair as PEM text. */
export const generateKeyPair = Effect.sync(() => {
  const { privateKey, publicKey } = Crypto.generateKeyPairSync("ed25519")
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString()
  }
})

/** A path with its directory's symbolic links resolved (and the file's own, when it exists). */
const canonicalPath = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const absolute = Path.resolve(path)
    return yield* fs.realPath(absolute).pipe(
      Effect.orElse(() => Effect.map(fs.realPath(Path.dirname(absolute)), (dir) => Path.join(dir, Path.basename(absolute)))),
      Effect.orElseSucceed(() => absolute)
    )
  })

/** Whether two paths name one file: the same path however spelled, or (both existing) the same inode. */
const sameFile = (a: string, b: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if ((yield* canonicalPath(a)) === (yield* canonicalPath(b))) return true
    const [x, y] = [yield* Effect.option(fs.stat(a)), yield* Effect.option(fs.stat(b))]
    return Option.isSome(x) && Option.isSome(y) && x.value.dev === y.value.dev && Option.isSome(x.value.ino) &&
      Option.isSome(y.value.ino) && x.value.ino.value === y.value.ino.value
  })

/** Whether a file holds a PEM private key (so a public key must not replace it). */
const holdsPrivateKey = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path)
    if (info.type !== "File" || Number(info.size) > maxKeyFileBytes) return false
    return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(yield* fs.readFileString(path))
  }).pipe(Effect.orElseSucceed(() => false))

/**
 * Writes a new key pair: the private key readable by its owner only (0600),
 * the public key 0644. Refused when both paths name one file, however spelled
 * (the public key would replace the private one). Existing files are refused
 * unless `force`, and even then a file holding a private key never receives
 * the public key. Each key is written to a temporary file beside its path and
 * renamed into place, the public key first, so a failure leaves an existing
 * private key as it was. A key that cannot be written is a {@link WriteFailed}
 * naming its path.
 */
export const writeKeyPair = (options: {
  readonly privateKey: string
  readonly publicKey: string
  readonly force: boolean
}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    if (yield* sameFile(options.privateKey, options.publicKey)) {
      return yield* new KeyPathsSame({ privateKey: options.privateKey, publicKey: options.publicKey })
    }
    for (const path of [options.privateKey, options.publicKey]) {
      const exists = yield* Effect.orElseSucceed(fs.exists(path), () => false)
      if (exists && !options.force) return yield* new KeyFileExists({ path })
      if (exists && path === options.publicKey && (yield* holdsPrivateKey(path))) {
        return yield* new KeyFileExists({ path, holdsPrivateKey: true })
      }
    }
    const pair = yield* generateKeyPair
    const failed = (path: string) =>
      writeFailed(path, `write the ${path === options.privateKey ? "private" : "public"} key`)
    // Exclusive create: the private key is never briefly readable by others.
    const staged = (path: string, text: string, mode: number) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          const temp = Path.join(Path.dirname(path), `.${Path.basename(path)}.${process.pid}.new`)
          yield* fs.remove(temp, { force: true })
          yield* fs.writeFileString(temp, text, { flag: "wx", mode })
          return temp
        }).pipe(Effect.mapError(failed(path))),
        (temp) => fs.remove(temp, { force: true }).pipe(Effect.ignore)
      )
    // Without force, a link (which never replaces) rather than a rename (which does).
    const place = (temp: string, path: string) =>
      (options.force ? fs.rename(temp, path) : fs.link(temp, path)).pipe(
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () =>
          Effect.fail(new KeyFileExists({ path }))),
        Effect.catchTag("SystemError", "BadArgument", (e) => Effect.fail(failed(path)(e)))
      )
    yield* Effect.scoped(Effect.gen(function*() {
      const privateTemp = yield* staged(options.privateKey, pair.privateKey, 0o600)
      const publicTemp = yield* staged(options.publicKey, pair.publicKey, 0o644)
      yield* place(publicTemp, options.publicKey)
      yield* place(privateTemp, options.privateKey)
    }))
  })
