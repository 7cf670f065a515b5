/**
 * Payload hosting: GET and HEAD of `/packages/<name>` for a fixed set of
 * registered files, with Content-Length, ETag, Last-Modified, single byte
 * ranges (206 / 416), If-Range and If-None-Match. Only registered names are
 * served, so no request can reach another path; bodies are never
 * content-encoded and stream in 1 MiB chunks with backpressure, in constant
 * memory. A file that changed on disk since it was registered is refused
 * (503) rather than served under the old hashes.
 */
import { FileSystem, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, Schema, Stream } from "effect"
import * as FileError from "../internal/fileError.js"

/** A file to serve and the name it is served under. */
export interface Entry {
  readonly name: string
  readonly path: string
}

/** A package name that is not a plain file name (or starts with a dot). */
export class InvalidPackageName extends Schema.TaggedError<InvalidPackageName>()("InvalidPackageName", {
  name: Schema.String
}) {
  override get message(): string {
    return `invalid package name ${JSON.stringify(this.name)}: use a plain file name such as update.gz, not starting with "."`
  }
}

/** A payload that cannot be served: missing, not a regular file, or unreadable. */
export class PackageFileUnavailable extends Schema.TaggedError<PackageFileUnavailable>()("PackageFileUnavailable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot serve ${this.path}: ${this.reason}`
  }
}

/** A file-system failure in a few words (`no such file`, `permission denied`, ...). */
export const describeFileError: (error: PlatformError) => string = FileError.describeFileError

/** The URL path prefix payloads are served under. */
export const prefix = "/packages/"

/** True for names that may be served: a plain file name, not starting with a dot. */
export const isValidName = (name: string): boolean =>
  name.length > 0 && name.length <= 255 && !name.startsWith(".") && !/[/\\\u0000-\u001f\u007f]/.test(name)

interface Registered {
  readonly path: string
  readonly size: number
  readonly mtimeMs: number
  readonly etag: string
  readonly lastModified: string
}

/** What a byte-range request asks for, against a file of a given size. */
export type RangeRequest =
  | { readonly _tag: "Whole" }
  | { readonly _tag: "Part"; readonly start: number; readonly end: number }
  | { readonly _tag: "Unsatisfiable" }

const rangePattern = /^bytes=(\d*)-(\d*)$/

/**
 * Reads a `Range` header: one range (`a-b`, `a-`, `-n`) is served; a header
 * that is malformed or asks for several ranges is ignored (the whole file, as
 * RFC 9110 allows); a range starting past the end is unsatisfiable.
 */
export const parseRange = (header: string | undefined, size: number): RangeRequest => {
  if (header === undefined) return { _tag: "Whole" }
  const m = rangePattern.exec(header.trim())
  if (m === null) return { _tag: "Whole" }
  const [, first = "", last = ""] = m
  if (first === "" && last === "") return { _tag: "Whole" }
  if (first === "") {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return { _tag: "Unsatisfiable" }
    return { _tag: "Part", start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (start >= size) return { _tag: "Unsatisfiable" }
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1)
  if (end < start) return { _tag: "Whole" }
  return { _tag: "Part", start, end }
}

// Each download reads into a ring of four 512 KiB buffers it reuses, so
// serving costs the same memory whatever the payload's size and leaves no
// garbage behind (256 KiB chunks reached only 0.7 of a bare node:http server
// on loopback, 512 KiB about 0.87). A chunk is larger than a socket's
// high-water mark (16 KiB on Node 20, 64 KiB on Node 22), so writing it
// always reports backpressure and the response waits for 'drain' (the chunk
// flushed to the kernel) before it pulls the next one; a ring of four leaves
// a wide margin on top of that.
const chunkSize = 512 * 1024
const ringSize = 4

/** A file's bytes [start, start + length), read into reused buffers. */
const fileBody = (fs: FileSystem.FileSystem, path: string, start: number, length: number) =>
  Stream.unwrapScoped(
    Effect.gen(function*() {
      const file = yield* fs.open(path, { flag: "r" })
      yield* file.seek(start, "start")
      const ring = Array.from({ length: ringSize }, () => new Uint8Array(chunkSize))
      let remaining = length
      let turn = 0
      return Stream.repeatEffectOption<Uint8Array, PackageFileUnavailable | PlatformError, never>(
        Effect.gen(function*() {
          if (remaining === 0) return yield* Effect.fail(Option.none())
          const buffer = ring[turn++ % ringSize]!.subarray(0, Math.min(chunkSize, remaining))
          const read = Number(yield* Effect.mapError(file.read(buffer), (e) => Option.some<PlatformError | PackageFileUnavailable>(e)))
          if (read === 0) {
            return yield* Effect.fail(
              Option.some<PlatformError | PackageFileUnavailable>(
                new PackageFileUnavailable({ path, reason: "the file became shorter while it was served" })
              )
            )
          }
          remaining -= read
          return buffer.subarray(0, read)
        })
      )
    })
  )

const decodeName = (encoded: string): string | undefined => {
  try {
    return decodeURIComponent(encoded)
  } catch {
    return undefined
  }
}

/** The registered payloads: an HttpApp for `/packages/*` and the number of downloads in progress. */
export interface PackageFiles {
  readonly names: ReadonlyArray<string>
  /** The size in bytes of a registered payload, as registered. */
  readonly size: (name: string) => number | undefined
  readonly app: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
  /** Downloads whose body is still being sent. */
  readonly inFlight: Effect.Effect<number>
}

const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(text + "\n", { status, contentType: "text/plain; charset=utf-8", headers })

/** Registers files (checking names and that each is a readable regular file) and serves them. */
export const make = (entries: ReadonlyArray<Entry>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const stat = (path: string) =>
      fs.stat(path).pipe(
        Effect.mapError((e) => new PackageFileUnavailable({ path, reason: describeFileError(e) })),
        Effect.filterOrFail(
          (info) => info.type === "File",
          (info) => new PackageFileUnavailable({ path, reason: `not a regular file (${info.type.toLowerCase()})` })
        )
      )
    const files = new Map<string, Registered>()
    for (const entry of entries) {
      if (!isValidName(entry.name)) return yield* new InvalidPackageName({ name: entry.name })
      const info = yield* stat(entry.path)
      // Opening proves readability now rather than at the first download.
      yield* Effect.scoped(fs.open(entry.path, { flag: "r" })).pipe(
        Effect.mapError((e) => new PackageFileUnavailable({ path: entry.path, reason: describeFileError(e) }))
      )
      const size = Number(info.size)
      const mtime = Option.getOrElse(info.mtime, () => new Date(0))
      files.set(entry.name, {
        path: entry.path,
        size,
        mtimeMs: mtime.getTime(),
        etag: `"${size.toString(16)}-${mtime.getTime().toString(16)}"`,
        lastModified: mtime.toUTCString()
      })
    }

    let inFlight = 0
    const counted = Stream.acquireRelease(Effect.sync(() => inFlight++), () => Effect.sync(() => inFlight--))

    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = request.url.split("?", 1)[0]!
      const name = path.startsWith(prefix) ? decodeName(path.slice(prefix.length)) : undefined
      const file = name === undefined ? undefined : files.get(name)
      if (file === undefined) return plain(404, "not found")
      if (request.method !== "GET" && request.method !== "HEAD") {
        return plain(405, `method ${request.method} not allowed`, { allow: "GET, HEAD" })
      }
      const now = yield* fs.stat(file.path).pipe(Effect.option)
      if (
        Option.isNone(now) || Number(now.value.size) !== file.size ||
        Option.getOrElse(now.value.mtime, () => new Date(0)).getTime() !== file.mtimeMs
      ) {
        yield* Effect.logError(`payload ${file.path} changed or vanished since it was registered; refusing to serve it`)
        return plain(503, "the payload changed on disk since the server started; restart the server")
      }
      const headers: Record<string, string> = {
        "accept-ranges": "bytes",
        "etag": file.etag,
        "last-modified": file.lastModified,
        "cache-control": "no-transform"
      }
      const ifNoneMatch = request.headers["if-none-match"]
      if (ifNoneMatch !== undefined && (ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((t) => t.trim() === file.etag))) {
        return HttpServerResponse.empty({ status: 304, headers })
      }
      const ifRange = request.headers["if-range"]
      const rangeApplies = ifRange === undefined || ifRange.trim() === file.etag || ifRange.trim() === file.lastModified
      const range = rangeApplies ? parseRange(request.headers["range"], file.size) : { _tag: "Whole" as const }
      if (range._tag === "Unsatisfiable") {
        return plain(416, "requested range not satisfiable", { ...headers, "content-range": `bytes */${file.size}` })
      }
      const [status, start, length] = range._tag === "Part"
        ? [206, range.start, range.end - range.start + 1]
        : [200, 0, file.size]
      if (range._tag === "Part") headers["content-range"] = `bytes ${range.start}-${range.end}/${file.size}`
      headers["content-length"] = String(length)
      yield* Effect.logInfo("package").pipe(
        Effect.annotateLogs({ method: request.method, name, status, bytes: length, range: headers["content-range"] ?? "whole" })
      )
      const contentType = "application/octet-stream"
      if (request.method === "HEAD" || length === 0) {
        return HttpServerResponse.empty({ status, headers: { ...headers, "content-type": contentType } })
      }
      const body = Stream.flatMap(counted, () => fileBody(fs, file.path, start, length))
      return HttpServerResponse.stream(body, {
        status,
        headers,
        contentType,
        contentLength: length
      })
    })

    return {
      names: [...files.keys()],
      size: (name) => files.get(name)?.size,
      app,
      inFlight: Effect.sync(() => inFlight)
    } satisfies PackageFiles
  })
