/**
 * Streaming download of a release: the payload flows from its source through
 * the decoder and SHA-256 into the output file, in one pass and in bounded
 * memory. The raw bytes received are appended to a partial file named after
 * the expected hash, so a transfer cut off (in this run, or by a killed
 * process) resumes with an HTTP Range request instead of starting over. An
 * uncompressed payload is the binary itself: its partial file becomes the
 * output by rename once verified, so only one copy is ever on disk.
 */
import { FileSystem, HttpClient, HttpClientRequest } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Clock, Duration, Effect, Exit, Option, Schedule, Schema, Stream } from "effect"
import * as Crypto from "node:crypto"
import { describeFileError } from "../internal/fileError.js"
import { PackageHashMismatch, PackageSizeMismatch } from "../protocol/Package.js"
import * as Compression from "./Compression.js"
import type { Release } from "./Release.js"

/** Fetching the payload failed: no connection, a timeout, or an HTTP status other than 200/206. */
export class DownloadFailed extends Schema.TaggedError<DownloadFailed>()("DownloadFailed", {
  /** The URL or path being fetched. */
  location: Schema.String,
  reason: Schema.String,
  /** The HTTP status, when the server answered. */
  status: Schema.optional(Schema.Number),
  /** Whether trying again may help (network errors, timeouts, 408, 429, 5xx). */
  retryable: Schema.Boolean
}) {
  override get message(): string {
    return `download of ${this.location} failed: ${this.reason}`
  }
}

/** A file next to the target could not be created, written, synced, renamed or removed. */
export class WriteFailed extends Schema.TaggedError<WriteFailed>()("WriteFailed", {
  path: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.reason}`
  }
}

/** Maps a platform error on `path` to {@link WriteFailed}. */
export const writeFailed = (path: string, operation: string) => (error: { readonly message: string }) =>
  new WriteFailed({ path, operation, reason: isPlatformError(error) ? describeFileError(error) : error.message })

/** A payload stream from a source, starting at byte `start` of the payload. */
export interface Body {
  readonly start: number
  /** The payload's whole size in bytes, when the source knows it (for progress). */
  readonly total: number | undefined
  readonly stream: Stream.Stream<Uint8Array, DownloadFailed>
}

/** Opens a payload from byte `offset` on (a source may start earlier, never later). */
export type Fetch = (offset: number) => Effect.Effect<Body, DownloadFailed>

/** Timeouts of an HTTP transfer. */
export interface Timeouts {
  /** From the request until the response headers (connecting included). */
  readonly connect: Duration.DurationInput
  /** Longest wait for the next bytes of the body. */
  readonly idle: Duration.DurationInput
}

/** update_engine's choices: 30 s to connect, 90 s without progress. */
export const defaultTimeouts: Timeouts = { connect: "30 seconds", idle: "90 seconds" }

const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500

/**
 * GETs `url` from byte `offset` (a Range request when offset > 0). A 200
 * answer to a Range request starts at 0, which {@link toFile} skips over.
 */
export const fetchHttp = (
  url: string,
  offset: number,
  timeouts: Timeouts = defaultTimeouts
): Effect.Effect<Body, DownloadFailed, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const failed = (reason: string, retryable: boolean, status?: number) =>
      new DownloadFailed({ location: url, reason, retryable, ...(status === undefined ? {} : { status }) })
    // Repositories often sit behind a CDN or object store that redirects; update_engine follows up to 10.
    // Each Location must be an http(s) URL: following anything else, the platform's client throws.
    const client = HttpClient.followRedirects(
      HttpClient.transform(yield* HttpClient.HttpClient, (response, request) =>
        Effect.flatMap(response, (answer) => {
          const location = answer.headers.location
          if (answer.status < 300 || answer.status >= 400 || location === undefined) return Effect.succeed(answer)
          const next = URL.canParse(location, request.url) ? new URL(location, request.url).protocol : ""
          return next === "http:" || next === "https:"
            ? Effect.succeed(answer)
            : Effect.fail(failed(`redirected to ${location}, which is not an http or https URL`, false))
        })),
      10
    )
    const request = HttpClientRequest.get(url).pipe(
      offset > 0 ? HttpClientRequest.setHeader("range", `bytes=${offset}-`) : (r) => r,
      HttpClientRequest.setHeader("accept-encoding", "identity")
    )
    const response = yield* client.execute(request).pipe(
      Effect.timeoutFail({
        duration: timeouts.connect,
        onTimeout: () => failed(`no response within ${Duration.format(timeouts.connect)}`, true)
      }),
      Effect.catchTag("RequestError", "ResponseError", (e) => Effect.fail(failed(causeMessage(e), true)))
    )
    const length = Number(response.headers["content-length"] ?? NaN)
    let start = 0
    if (response.status === 206) {
      const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers["content-range"] ?? "")
      if (range === null || Number(range[1]) !== offset) {
        return yield* failed(`server answered range ${offset}- with ${response.headers["content-range"] ?? "nothing"}`, false, 206)
      }
      start = offset
    } else if (response.status !== 200) {
      return yield* failed(`HTTP status ${response.status}`, retryableStatus(response.status), response.status)
    }
    const stream = response.stream.pipe(
      Stream.timeoutFail(() => failed(`no data for ${Duration.format(timeouts.idle)}`, true), timeouts.idle),
      Stream.catchTag("ResponseError", (e) => Stream.fail(failed(causeMessage(e), true)))
    )
    return { start, total: Number.isFinite(length) ? start + length : undefined, stream }
  })

const causeMessage = (error: { readonly message: string; readonly cause?: unknown }): string => {
  const cause = error.cause
  const detail = cause instanceof globalThis.Error
    ? (cause as NodeJS.ErrnoException).code ?? cause.message
    : undefined
  return detail === undefined ? error.message : `${error.message} (${detail})`
}

/** Progress of a transfer: raw bytes received so far, of `total` when known. */
export interface Progress {
  readonly received: number
  readonly total: number | undefined
}

/** What a transfer is waiting for, told while it waits (for a program to show). */
export type Waiting =
  | {
    /** No bytes (or no answer) for `silent`, during attempt `attempt` of `attempts`. */
    readonly _tag: "NoData"
    readonly location: string
    readonly attempt: number
    readonly attempts: number
    readonly silent: Duration.Duration
  }
  | {
    /** The last attempt failed; attempt `attempt` of `attempts` starts after `delay`. */
    readonly _tag: "Retrying"
    readonly location: string
    readonly error: DownloadFailed
    readonly attempt: number
    readonly attempts: number
    readonly delay: Duration.Duration
  }

const seconds = (duration: Duration.Duration): string => `${Number((Duration.toMillis(duration) / 1000).toFixed(2))} s`

/** One line for a wait: `waiting for data from URL (attempt 2 of 4, 30 s without data)`. */
export const describeWaiting = (waiting: Waiting): string =>
  waiting._tag === "NoData"
    ? `waiting for data from ${waiting.location} (attempt ${waiting.attempt} of ${waiting.attempts}, ${
      seconds(waiting.silent)
    } without data)`
    : `${waiting.error.message}; retrying in ${seconds(waiting.delay)} (attempt ${waiting.attempt} of ${waiting.attempts})`

/** Attempts at a transfer in all, the first included, unless a caller says otherwise. */
export const defaultAttempts = 4

/** How often a transfer that receives nothing says so, unless a caller says otherwise. */
export const defaultNoticeEvery: Duration.Duration = Duration.seconds(10)

/** What {@link toFile} needs. */
export interface Options {
  readonly release: Release
  readonly fetch: Fetch
  /**
   * Where the verified binary goes, beside the partial file: created
   * exclusively (0600) for a compressed payload, the partial file renamed
   * there for an uncompressed one. Closed when {@link toFile} ends, and
   * removed when it fails.
   */
  readonly outputPath: string
  /** The partial file of raw bytes, in the target's directory; resumed from when present. */
  readonly partPath: string
  /** The cap on the decoded size when the release announces none. */
  readonly maxBytes: number
  /** Attempts at the transfer in all (the first included); {@link defaultAttempts} by default. */
  readonly attempts?: number | undefined
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
  /** Told while the transfer waits: each `noticeEvery` without data, and before each retry. */
  readonly onWait?: ((waiting: Waiting) => Effect.Effect<void>) | undefined
  /** {@link defaultNoticeEvery} by default. */
  readonly noticeEvery?: Duration.DurationInput | undefined
}

/** The decoded binary's size and SHA-256 (hex), verified against the release. */
export interface Written {
  readonly size: number
  readonly sha256: string
}

const chunkSize = 64 * 1024

/** The partial-download file for a release's hash in a directory: `.<target>.<sha256>.part`. */
export const partName = (targetName: string, sha256: string): string => `.${targetName}.${sha256.toLowerCase()}.part`

/**
 * Downloads, decodes and hashes a release into `outputPath`, then checks its
 * size and SHA-256: of the decoded binary, or for a release whose hashes are
 * of the payload as served (`hashOf: "payload"`), of the raw bytes received
 * (and their SHA-1 when the release has one). The partial file is removed when this ends in any way a
 * process can observe (or becomes the output); only a killed process leaves
 * it, for the next run.
 */
export const toFile = (options: Options): Effect.Effect<
  Written,
  | DownloadFailed
  | WriteFailed
  | Compression.CorruptPayload
  | Compression.PayloadTooLarge
  | PackageHashMismatch
  | PackageSizeMismatch,
  FileSystem.FileSystem
> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { outputPath, partPath, release } = options
    const location = release.location
    // Hashes and size of the payload as served (an Omaha package) are checked on the raw bytes;
    // what they decode to is capped at maxBytes.
    const ofPayload = release.hashOf === "payload"
    const limit = ofPayload ? options.maxBytes : release.size ?? options.maxBytes
    // Compressed data can be slightly larger than what it decodes to; anything far beyond is not a release.
    const transferLimit = ofPayload && release.size !== undefined
      ? release.size
      : limit + Math.ceil(limit / 64) + 1024 * 1024
    const attempts = Math.max(1, options.attempts ?? defaultAttempts)
    const onProgress = options.onProgress ?? (() => Effect.void)
    const onWait = options.onWait ?? (() => Effect.void)
    const noticeEvery = Math.max(1, Duration.toMillis(options.noticeEvery ?? defaultNoticeEvery))

    // Registered first, so it runs after every descriptor below is closed.
    yield* Effect.addFinalizer((exit) =>
      Exit.isFailure(exit) ? fs.remove(outputPath, { force: true }).pipe(Effect.ignore) : Effect.void
    )
    const part = yield* Effect.acquireRelease(
      fs.open(partPath, { flag: "a+", mode: 0o600 }).pipe(Effect.mapError(writeFailed(partPath, "create"))),
      () => fs.remove(partPath, { force: true }).pipe(Effect.ignore)
    )
    const kept = Number((yield* Effect.mapError(part.stat, writeFailed(partPath, "stat"))).size)
    let received = kept
    let total: number | undefined = undefined

    const local = kept === 0 ? Stream.empty : fs.stream(partPath, { chunkSize, bytesToRead: kept }).pipe(
      Stream.mapError(writeFailed(partPath, "read"))
    )
    // Says so each `noticeEvery` that an attempt goes without bytes (from its start: waiting for an answer counts).
    const noticingSilence = <E>(attempt: number, stream: Stream.Stream<Uint8Array, E>) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        let last = yield* Clock.currentTimeMillis
        let told = 0
        yield* Effect.forkScoped(Effect.repeat(
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const periods = Math.floor((now - last) / noticeEvery)
            if (periods <= told) return Effect.void
            told = periods
            return onWait({ _tag: "NoData", location, attempt, attempts, silent: Duration.millis(periods * noticeEvery) })
          }),
          Schedule.spaced(Duration.millis(Math.min(noticeEvery, 1000)))
        ))
        return stream.pipe(Stream.tap(() =>
          Effect.map(Clock.currentTimeMillis, (now) => {
            last = now
            told = 0
          })
        ))
      }))
    const remote = (attempt: number): Stream.Stream<Uint8Array, DownloadFailed | WriteFailed> =>
      noticingSilence(attempt, Stream.unwrap(Effect.map(options.fetch(received), (body) => {
        total = body.total ?? total
        let skip = received - body.start
        return body.stream.pipe(
          // A server that ignored the Range header sends the bytes we already have first.
          Stream.map((bytes) => {
            if (skip <= 0) return bytes
            const rest = bytes.subarray(Math.min(skip, bytes.byteLength))
            skip -= bytes.byteLength
            return rest
          }),
          Stream.filter((bytes) => bytes.byteLength > 0),
          Stream.tap((bytes) =>
            part.writeAll(bytes).pipe(
              Effect.mapError(writeFailed(partPath, "write")),
              Effect.zipRight(Effect.suspend(() => {
                received += bytes.byteLength
                return onProgress({ received, total })
              }))
            )
          )
        )
      }))).pipe(Stream.catchAll((error) => {
        if (error._tag !== "DownloadFailed" || !error.retryable || attempt >= attempts) return Stream.fail(error)
        const delay = Duration.millis(250 * 2 ** (attempt - 1))
        return Stream.unwrap(
          onWait({ _tag: "Retrying", location, error, attempt: attempt + 1, attempts, delay }).pipe(
            Effect.zipRight(Effect.sleep(delay)),
            Effect.as(remote(attempt + 1))
          )
        )
      }))

    // A decoder handed cut-off input reports corrupt data; the transfer's own failure is the truer one.
    let transferFailure: Option.Option<
      DownloadFailed | WriteFailed | PackageSizeMismatch | Compression.PayloadTooLarge
    > = Option.none()
    const served = ofPayload ? { sha256: Crypto.createHash("sha256"), sha1: Crypto.createHash("sha1"), size: 0 } : undefined
    const transfer = Stream.concat(local, remote(1)).pipe(
      Compression.capBytes(transferLimit, (seen) =>
        ofPayload && release.size !== undefined
          ? new PackageSizeMismatch({ name: location, expected: release.size, actual: seen })
          : new Compression.PayloadTooLarge({ location, limit: transferLimit })),
      Stream.tap((bytes) =>
        Effect.sync(() => {
          if (served === undefined) return
          served.sha256.update(bytes)
          served.sha1.update(bytes)
          served.size += bytes.byteLength
        })
      ),
      Stream.tapError((error) => Effect.sync(() => (transferFailure = Option.some(error))))
    )
    const opened = yield* Compression.open(transfer, {
      location,
      name: release.name,
      maxBytes: limit,
      compression: release.compression,
      byMagic: ofPayload
    })
    // Uncompressed, the partial file already holds the binary: nothing more to write.
    const output = opened.compression === "none"
      ? undefined
      : yield* fs.open(outputPath, { flag: "wx", mode: 0o600 }).pipe(Effect.mapError(writeFailed(outputPath, "create")))

    const hash = Crypto.createHash("sha256")
    let size = 0
    yield* Stream.runForEachChunk(opened.stream, (chunk) =>
      Effect.forEach(chunk, (bytes) => {
        hash.update(bytes)
        size += bytes.byteLength
        return output === undefined ? Effect.void : output.writeAll(bytes)
      }, { discard: true }).pipe(Effect.mapError(writeFailed(outputPath, "write")))).pipe(
      Effect.catchTag("CorruptPayload", (corrupt) => Effect.fail(Option.getOrElse(transferFailure, () => corrupt)))
    )
    const sha256 = hash.digest("hex")
    const checked = served === undefined
      ? { size, sha256, sha1: undefined }
      : { size: served.size, sha256: served.sha256.digest("hex"), sha1: served.sha1.digest("hex") }
    if (release.size !== undefined && checked.size !== release.size) {
      return yield* new PackageSizeMismatch({ name: location, expected: release.size, actual: checked.size })
    }
    if (checked.sha256 !== release.sha256.toLowerCase()) {
      return yield* new PackageHashMismatch({ name: location, algorithm: "sha256", expected: release.sha256, actual: checked.sha256 })
    }
    if (release.sha1 !== undefined && checked.sha1 !== undefined && checked.sha1 !== release.sha1) {
      return yield* new PackageHashMismatch({ name: location, algorithm: "sha1", expected: release.sha1, actual: checked.sha1 })
    }
    if (output === undefined) {
      yield* fs.rename(partPath, outputPath).pipe(Effect.mapError(writeFailed(outputPath, "create")))
    }
    return { size, sha256 }
  }))

/** Opens a payload in a local file from byte `offset` on. */
export const fetchFile = (path: string, offset: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const failed = (e: PlatformError) => new DownloadFailed({ location: path, reason: describeFileError(e), retryable: false })
    const info = yield* Effect.mapError(fs.stat(path), failed)
    const total = Number(info.size)
    const body: Body = {
      start: Math.min(offset, total),
      total,
      stream: fs.stream(path, { chunkSize, offset: Math.min(offset, total) }).pipe(Stream.mapError(failed))
    }
    return body
  })
