/**
 * Hosted payloads: an upload is hashed while it streams (size, SHA-1,
 * SHA-256) into a temporary file in the payload directory, synced, renamed
 * to `<sha256-hex>` and the directory synced, and only then registered as a
 * package. An upload cut off midway (the client goes away, the body runs
 * over the size limit, the disk fails) removes its temporary file and
 * registers nothing. External payloads are registered by URL with the facts
 * the caller gives. `resolve` answers the payload server's lookups of
 * `/packages/<sha256-hex>/<name>`, and deleting a package (or an
 * application) removes a hosted file once no package uses it.
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Clock, Context, Effect, Exit, Layer, Option, Schema, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import * as Package from "../protocol/Package.js"
import { describeFileError, InvalidPackageName, isValidName } from "../server/PackageFiles.js"
import type { Arch, Package as StoredPackage, PostinstallAction } from "./Model.js"
import { Conflict, type NewPackage, Store, type StoreError } from "./Store.js"

/** The default largest upload: 4 GiB, well above a Flatcar update payload (about 0.5 GiB). */
export const defaultMaxUploadBytes = 4 * 1024 * 1024 * 1024

/** Temporary upload files carry this prefix; the payload names never do. */
export const tempPrefix = ".upload-"

/** Temporary files older than this are left from a crash and removed at start. */
export const staleTempMillis = 60 * 60 * 1000

/** Where payloads live and how large an upload may be. */
export interface Options {
  /** The payload directory (`<data>/payloads`); created when missing. */
  readonly directory: string
  /** The largest upload in bytes; default `defaultMaxUploadBytes`. */
  readonly maxUploadBytes?: number
}

/** An upload over the size limit. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit: Schema.Number
}) {
  override get message(): string {
    return `the payload is over the ${this.limit}-byte upload limit (--max-upload-size)`
  }
}

/** The payload directory cannot be written or read. */
export class PayloadStorageFailed extends Schema.TaggedError<PayloadStorageFailed>()("PayloadStorageFailed", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot store the payload in ${this.path}: ${this.reason}`
  }
}

/** An external payload whose URL is not an absolute http(s) URL. */
export class InvalidPayloadUrl extends Schema.TaggedError<InvalidPayloadUrl>()("InvalidPayloadUrl", {
  url: Schema.String
}) {
  override get message(): string {
    return `invalid payload URL ${JSON.stringify(this.url)}: give an absolute http:// or https:// URL ending in the file name`
  }
}

/** What an upload is: the package's key, its file name and update_engine action, and the bytes. */
export interface Upload<E> {
  readonly appId: string
  readonly version: string
  readonly arch: Arch
  readonly name: string
  readonly action?: Partial<PostinstallAction> | undefined
  readonly body: Stream.Stream<Uint8Array, E>
}

/** What the payload server needs for one hosted file. */
export interface Resolved {
  readonly path: string
  readonly size: number
  /** The SHA-256 in hex: the same bytes always have the same tag. */
  readonly etag: string
}

/** The hosted-payload service. */
export interface PayloadsService {
  /** The largest upload in bytes. */
  readonly maxUploadBytes: number
  /** Streams a payload into the directory and registers it; nothing is left behind when it fails. */
  readonly upload: <E>(
    upload: Upload<E>
  ) => Effect.Effect<StoredPackage, E | StoreError | PayloadTooLarge | PayloadStorageFailed | InvalidPackageName>
  /** Registers an external payload (by URL). */
  readonly register: (
    input: NewPackage & { readonly url: string }
  ) => Effect.Effect<StoredPackage, StoreError | InvalidPayloadUrl | InvalidPackageName>
  /** Deletes a package, and its hosted file when no other package uses it. */
  readonly remove: (appId: string, version: string, arch?: Arch) => Effect.Effect<StoredPackage, StoreError>
  /** Deletes an application, and the hosted files no other package uses. */
  readonly removeApplication: (appId: string) => Effect.Effect<void, StoreError>
  /** The file for `<sha256-hex>/<name>` below `/packages/`, when a hosted package has that payload and name. */
  readonly resolve: (path: string) => Effect.Effect<Option.Option<Resolved>, StoreError>
  /** The file a hosted payload is kept in, by its base64 SHA-256. */
  readonly pathOf: (sha256: string) => string
}

/** The hosted-payload service. */
export class Payloads extends Context.Tag("effect-omaha/fleet/Payloads")<Payloads, PayloadsService>() {}

const hexOf = (sha256: string) => Buffer.from(sha256, "base64").toString("hex")
const resolvable = /^([0-9a-f]{64})\/([^/]+)$/

/** Builds the service over the store and a payload directory. */
export const make = (options: Options): Effect.Effect<PayloadsService, PayloadStorageFailed, Store | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const store = yield* Store
    const directory = Path.resolve(options.directory)
    const maxUploadBytes = options.maxUploadBytes ?? defaultMaxUploadBytes
    const storageFailed = (path: string) => (e: PlatformError) => new PayloadStorageFailed({ path, reason: describeFileError(e) })

    yield* fs.makeDirectory(directory, { recursive: true }).pipe(Effect.mapError(storageFailed(directory)))
    yield* sweep(fs, directory)

    const pathOf = (sha256: string) => Path.join(directory, hexOf(sha256))

    const syncDirectory = Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync)).pipe(
      Effect.mapError(storageFailed(directory))
    )

    // Removes a hosted file unless a package still uses it; the caller holds its payload lock.
    const release = (sha256: string) =>
      Effect.flatMap(store.payloadInUse(sha256), (used) =>
        used ? Effect.void : fs.remove(pathOf(sha256)).pipe(
          Effect.catchAll((e) =>
            e._tag === "SystemError" && e.reason === "NotFound"
              ? Effect.void
              : Effect.logWarning(`could not remove unused payload ${pathOf(sha256)}: ${describeFileError(e)}`)
          )
        ))

    const upload = <E>(input: Upload<E>) =>
      Effect.gen(function*() {
        if (!isValidName(input.name)) return yield* new InvalidPackageName({ name: input.name })
        // Refused before a byte is read, when it can be told already.
        yield* store.getApplication(input.appId)
        const existing = yield* store.getPackage(input.appId, input.version, input.arch).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none()))
        )
        if (Option.isSome(existing)) {
          return yield* new Conflict({
            subject: "package",
            key: `${input.version} (${input.arch}) of ${JSON.stringify(input.appId)}`,
            reason: "already exists"
          })
        }

        const temp = Path.join(directory, `${tempPrefix}${Crypto.randomBytes(12).toString("hex")}`)
        const facts = yield* Effect.scoped(Effect.gen(function*() {
          const file = yield* fs.open(temp, { flag: "wx", mode: 0o644 }).pipe(Effect.mapError(storageFailed(temp)))
          const written = Stream.tap(input.body, (chunk) => Effect.mapError(file.writeAll(chunk), storageFailed(temp)))
          const facts = yield* Package.fromStream(written)
          yield* Effect.mapError(file.sync, storageFailed(temp))
          return facts
        })).pipe(
          Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.ignore(fs.remove(temp)) : Effect.void)
        )

        // The body is complete: finish even if the client goes away now, so a
        // renamed file always gets its package row (or is removed again).
        // Under the payload's lock, a package deleted elsewhere cannot take
        // the file away between the rename and the row.
        const target = pathOf(facts.sha256)
        return yield* Effect.uninterruptible(store.withPayloadLocks(
          [facts.sha256],
          Effect.gen(function*() {
            yield* fs.rename(temp, target).pipe(Effect.mapError(storageFailed(target)))
            yield* syncDirectory
            return yield* store.createPackage({
              appId: input.appId,
              version: input.version,
              arch: input.arch,
              name: input.name,
              size: facts.size,
              sha1: facts.sha1,
              sha256: facts.sha256,
              action: input.action
            }).pipe(Effect.tapError(() => Effect.ignore(release(facts.sha256))))
          })
        )).pipe(Effect.tapError(() => Effect.ignore(fs.remove(temp))))
      }).pipe(Effect.withSpan("Payloads.upload"))

    const register = (input: NewPackage & { readonly url: string }) =>
      Effect.gen(function*() {
        if (!isValidName(input.name)) return yield* new InvalidPackageName({ name: input.name })
        const url = URL.canParse(input.url) ? new URL(input.url) : undefined
        if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
          return yield* new InvalidPayloadUrl({ url: input.url })
        }
        return yield* store.createPackage(input)
      }).pipe(Effect.withSpan("Payloads.register"))

    const remove = (appId: string, version: string, arch?: Arch) =>
      Effect.gen(function*() {
        const found = yield* store.getPackage(appId, version, arch)
        return yield* store.withPayloadLocks(
          found.url === undefined ? [found.sha256] : [],
          Effect.gen(function*() {
            const deleted = yield* store.deletePackage(appId, found.version, found.arch)
            if (deleted.url === undefined) yield* release(deleted.sha256)
            return deleted
          })
        )
      }).pipe(Effect.withSpan("Payloads.remove"))

    const removeApplication = (appId: string) =>
      Effect.gen(function*() {
        const hosted = yield* store.hostedPayloads(appId)
        yield* store.withPayloadLocks(
          hosted,
          Effect.zipRight(store.deleteApplication(appId), Effect.forEach(hosted, release, { discard: true }))
        )
      }).pipe(Effect.withSpan("Payloads.removeApplication"))

    const resolve = (path: string) =>
      Effect.gen(function*() {
        const m = resolvable.exec(path)
        if (m === null) return Option.none<Resolved>()
        const [, hex, name] = m
        const found = yield* store.hostedPackage(hex!, name!)
        return Option.map(found, (pkg): Resolved => ({ path: Path.join(directory, hex!), size: pkg.size, etag: hex! }))
      })

    return { maxUploadBytes, upload, register, remove, removeApplication, resolve, pathOf } satisfies PayloadsService
  })

// Temporary files a crashed upload left behind; recent ones may be uploads
// in progress on another replica sharing the directory, and are kept.
const sweep = (fs: FileSystem.FileSystem, directory: string) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const names = yield* fs.readDirectory(directory).pipe(Effect.orElseSucceed(() => []))
    for (const name of names) {
      if (!name.startsWith(tempPrefix)) continue
      const path = Path.join(directory, name)
      const info = yield* fs.stat(path).pipe(Effect.option)
      const mtime = Option.flatMap(info, (i) => i.mtime)
      if (Option.isSome(mtime) && now - mtime.value.getTime() > staleTempMillis) {
        yield* Effect.ignore(fs.remove(path))
        yield* Effect.logInfo(`removed ${path}, left by an upload that did not finish`)
      }
    }
  })

/** The service as a layer. */
export const layer = (options: Options): Layer.Layer<Payloads, PayloadStorageFailed, Store | FileSystem.FileSystem> =>
  Layer.effect(Payloads, make(options))
