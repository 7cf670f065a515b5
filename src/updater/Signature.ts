/**
 * Release signatures: ed25519 over bytes that bind a release's version, OS,
 * architecture and binary hash, so a signature made for one release cannot be
 * replayed for another; plus the PEM key files `update-repo keygen` writes.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import * as Crypto from "node:crypto"
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

/** `keygen` would overwrite an existing key file. */
export class KeyFileExists extends Schema.TaggedError<KeyFileExists>()("KeyFileExists", {
  path: Schema.String
}) {
  override get message(): string {
    return `key file ${this.path} already exists; refusing to overwrite it`
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

/**
 * Writes a new key pair: the private key readable by its owner only (0600),
 * the public key 0644. Existing files are refused unless `force`; a file that
 * cannot be written is a {@link WriteFailed} naming it.
 */
export const writeKeyPair = (options: {
  readonly privateKey: string
  readonly publicKey: string
  readonly force: boolean
}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const pair = yield* generateKeyPair
    if (!options.force) {
      for (const path of [options.privateKey, options.publicKey]) {
        if (yield* Effect.orElseSucceed(fs.exists(path), () => false)) return yield* new KeyFileExists({ path })
      }
    }
    const write = (path: string, kind: "public" | "private", text: string, mode: number) =>
      Effect.gen(function*() {
        yield* fs.remove(path, { force: true })
        // Exclusive create: the private key is never briefly readable by others.
        yield* fs.writeFileString(path, text, { flag: "wx", mode })
      }).pipe(Effect.mapError(writeFailed(path, `write the ${kind} key`)))
    yield* write(options.privateKey, "private", pair.privateKey, 0o600)
    yield* write(options.publicKey, "public", pair.publicKey, 0o644)
  })
