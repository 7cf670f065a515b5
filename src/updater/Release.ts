/**
 * Releases: choria's `release.json` as it sits in a repository, read strictly,
 * and the release a source hands to the updater (which binary, for which
 * version and platform, where to fetch it, and what it must hash to).
 */
import { Effect, ParseResult, Schema } from "effect"
import { Compression } from "./Compression.js"

/** The most a `release.json` may weigh; a real one is a few hundred bytes. */
export const maxReleaseFileBytes = 64 * 1024

/** Lowercase or uppercase hex of a SHA-256 digest (64 digits). */
export const Sha256Hex = Schema.String.pipe(
  Schema.pattern(/^[0-9a-fA-F]{64}$/, { message: () => "expected 64 hex characters (a SHA-256 digest)" })
)

/** A file name with no directory part, no leading dot and nothing a shell or URL would treat specially. */
export const FileName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,254}$/, {
    message: () => "expected a plain file name (letters, digits, '.', '_', '+', '-'; no '/' and no leading '.')"
  })
)

/** An absolute http or https URL. */
export const HttpUrl = Schema.String.pipe(
  Schema.filter((text) => {
    if (!URL.canParse(text)) return "expected an absolute URL"
    const url = new URL(text)
    return url.protocol === "http:" || url.protocol === "https:" || `expected an http or https URL, not ${url.protocol}`
  })
)

/** `release.json` in choria's format; fields it does not know are ignored. */
export class ReleaseFile extends Schema.Class<ReleaseFile>("effect-omaha/updater/ReleaseFile")({
  /** The payload's file name, next to `release.json` unless `uri` says otherwise. */
  binary: FileName,
  /** SHA-256 hex of the binary as installed (after decompression). */
  hash: Sha256Hex,
  /** Where to download the payload from instead. */
  uri: Schema.optional(HttpUrl),
  /** The release's ed25519 signature (see `Signature`), base64. */
  signature: Schema.optional(Schema.String)
}) {}

/** A `release.json` that is too large, not JSON, or breaks a rule of the format. */
export class ReleaseInvalid extends Schema.TaggedError<ReleaseInvalid>()("ReleaseInvalid", {
  /** The URL or path the file came from. */
  location: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `release ${this.location} is invalid: ${this.reason}`
  }
}

const decodeFile = Schema.decodeUnknown(Schema.parseJson(ReleaseFile), { errors: "first" })

// The first problem as `field: what is wrong`, on one line (Schema's own report is a tree).
const firstProblem = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "unreadable"
  const message = issue._tag === "Missing" ? "missing" : issue.message.charAt(0).toLowerCase() + issue.message.slice(1)
  if (issue.path.length > 0) return `${issue.path.join(".")}: ${message}`
  return issue._tag === "Transformation" ? `not JSON (${message})` : "expected a JSON object"
}

/** Reads a `release.json` from its bytes, refusing anything over {@link maxReleaseFileBytes}. */
export const decodeReleaseFile = (bytes: Uint8Array, location: string): Effect.Effect<ReleaseFile, ReleaseInvalid> =>
  bytes.byteLength > maxReleaseFileBytes
    ? Effect.fail(new ReleaseInvalid({ location, reason: `larger than ${maxReleaseFileBytes} bytes` }))
    : decodeFile(new TextDecoder("utf-8", { fatal: false }).decode(bytes)).pipe(
      Effect.mapError((error) => new ReleaseInvalid({ location, reason: firstProblem(error) }))
    )

/** The JSON text of a `release.json`, as `update-repo` writes it. */
export const encodeReleaseFile = (file: ReleaseFile): string =>
  JSON.stringify(Schema.encodeSync(ReleaseFile)(file), null, 2) + "\n"

/** A release as a source offers it: everything the updater needs to fetch, verify and install it. */
export class Release extends Schema.Class<Release>("effect-omaha/updater/Release")({
  version: Schema.String,
  /** Go's OS name (`linux`) the binary is for. */
  os: Schema.String,
  /** Go's architecture name (`amd64`) the binary is for. */
  arch: Schema.String,
  /** The payload's file name; with its first bytes it decides the compression. */
  name: Schema.String,
  /** Where the payload is: an http(s) URL or a local path. */
  location: Schema.String,
  /** SHA-256 hex of the binary as installed (after decompression), or of the payload as served (see `hashOf`). */
  sha256: Sha256Hex,
  /** The binary's size as installed (or the payload's as served), when the source announces it; it then also caps the download. */
  size: Schema.optional(Schema.NonNegativeInt),
  /** The release's ed25519 signature, base64. */
  signature: Schema.optional(Schema.String),
  /**
   * How the payload is encoded, when the source says; otherwise its name and
   * first bytes decide (the first bytes alone when `hashOf` is `payload`).
   */
  compression: Schema.optional(Compression),
  /**
   * What `sha256`, `sha1` and `size` describe: the binary as installed
   * (choria's `release.json`; the default), or the payload as served (an
   * Omaha package), which is checked before what it decodes to is installed.
   */
  hashOf: Schema.optional(Schema.Literal("binary", "payload")),
  /** SHA-1 hex of the payload as served (an Omaha package's `hash`), checked too when present. */
  sha1: Schema.optional(Schema.String.pipe(
    Schema.pattern(/^[0-9a-f]{40}$/, { message: () => "expected a SHA-1 digest in lowercase hex (40 digits)" })
  ))
}) {}
