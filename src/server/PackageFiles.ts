/**
 * Payload hosting: GET and HEAD below `/packages/`, with Content-Length,
 * ETag, Last-Modified, single byte ranges (206 / 416), If-Range and
 * If-None-Match, never content-encoded. Payloads are either a fixed set of
 * files registered at start (`make`) or looked up per request by a resolver
 * (`fromResolver`), after the path was checked so that no request can name
 * another file. A file whose size (or, when registered, modification time)
 * changed since it was registered or resolved is refused (503) rather than
 * served under the old hashes.
 *
 * Each download holds one open file and one 512 KiB buffer, both released
 * when it ends however it ends, a connection closed by the client included:
 * a request pipelined behind another waits for its turn before it opens
 * anything, and everything it holds goes when its connection does.
 */
import { FileSystem, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { Effect, Option, Runtime, Schema } from "effect"
import * as Http from "node:http"
import * as FileError from "../internal/fileError.js"
import { BufferPool } from "./internal/BufferPool.js"
import { sendChunk, whileConnected } from "./internal/NodeResponse.js"

/** A file to serve and the name it is served under. */
export interface Entry {
  readonly name: string
  readonly path: string
}

/**
 * What a resolver found for a path: the file, the size it must have, and
 * optionally its entity tag without quotes (a content hash, say); without
 * one, the tag is made from the size and modification time.
 */
export interface Payload {
  readonly path: string
  readonly size: number
  readonly etag?: string
}

/**
 * Looks up the payload for a path below `/packages/` (decoded and checked
 * by `isValidPath`), per request: `Option.none()` answers 404, a failure 503.
 */
export type Resolver<E = never, R = never> = (path: string) => Effect.Effect<Option.Option<Payload>, E, R>

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

/** A file-system failure in a few words (`no such file`, `too many open files (EMFILE)`, ...). */
export const describeFileError: (error: PlatformError) => string = FileError.describeFileError

/** The URL path prefix payloads are served under. */
export const prefix = "/packages/"

/** True for names that may be served: a plain file name, not starting with a dot. */
export const isValidName = (name: string): boolean =>
  name.length > 0 && name.length <= 255 && !name.startsWith(".") && !/[/\\\u0000-\u001f\u007f]/.test(name)

/**
 * True for paths a resolver may be asked about: one name, or two joined by
 * one `/` (`<sha256-hex>/update.gz`), each a valid name; so no `..`, empty
 * segment, dot-file, backslash or control character ever reaches it.
 */
export const isValidPath = (path: string): boolean => {
  const segments = path.split("/")
  return segments.length <= 2 && segments.every(isValidName)
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

/** Payloads served under `/packages/`, on Node's HTTP server or an @effect/platform router. */
export interface PackageFiles {
  /**
   * A Node `request` listener for paths below `/packages/`, running on the
   * runtime it is built in (whose logger gets the request log lines).
   */
  readonly listener: Effect.Effect<(request: Http.IncomingMessage, response: Http.ServerResponse) => void>
  /** The same as an HttpApp, for an @effect/platform router on `NodeHttpServer`. */
  readonly app: Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>
  /** Downloads whose body is still being sent. */
  readonly inFlight: Effect.Effect<number>
}

/** PackageFiles over a fixed set of files registered at start. */
export interface Registered extends PackageFiles {
  readonly names: ReadonlyArray<string>
  /** The size in bytes of a registered payload, as registered. */
  readonly size: (name: string) => number | undefined
}

// What a request is served from once its path is looked up.
interface Found {
  readonly path: string
  readonly size: number
  readonly etag: string | undefined
  /** Set for registered files, whose modification time must not change either. */
  readonly mtimeMs: number | undefined
}

type Lookup = (path: string) => Effect.Effect<Option.Option<Found>, "unavailable">

// 512 KiB reads: 256 KiB reached only 0.7 of a bare node:http server on
// loopback. A download reads one chunk and waits until the socket has taken
// all of it before it reads the next, so it holds one buffer at a time; 32
// such buffers (16 MiB) are kept for reuse, and a chunk read while all are
// out, by many slow clients say, goes into a 64 KiB buffer of its own.
const chunkSize = 512 * 1024
const pooledBuffers = 32
const smallChunkSize = 64 * 1024

const quoteTag = (tag: string): string | undefined => /^[\x21\x23-\x7e]+$/.test(tag) ? `"${tag}"` : undefined

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

const decodePath = (encoded: string): string | undefined => {
  try {
    return decodeURIComponent(encoded)
  } catch {
    return undefined
  }
}

const header = (request: Http.IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const plain = (response: Http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}) => {
  const body = text + "\n"
  response.writeHead(status, {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body)
  })
  response.end(body)
}

// Serves requests from what `lookup` finds.
const serveFrom = (fs: FileSystem.FileSystem, lookup: Lookup) => {
  let inFlight = 0
  const pool = new BufferPool(chunkSize, pooledBuffers, smallChunkSize)

  // The bytes [start, start + length) of an open file, one chunk at a time.
  const sendBody = (file: FileSystem.File, response: Http.ServerResponse, start: number, length: number, path: string) =>
    Effect.acquireUseRelease(
      Effect.sync(() => inFlight++),
      () => sendChunks(file, response, start, length, path),
      () => Effect.sync(() => inFlight--)
    )

  const sendChunks = (file: FileSystem.File, response: Http.ServerResponse, start: number, length: number, path: string) =>
    Effect.gen(function*() {
      yield* file.seek(start, "start")
      let remaining = length
      while (remaining > 0) {
        const lease = pool.take()
        const buffer = lease.buffer
        // Uninterruptible, so the file is never closed under a read in flight.
        const read = Number(yield* Effect.uninterruptible(file.read(buffer.subarray(0, Math.min(buffer.length, remaining)))))
        if (read === 0) {
          lease.release()
          return yield* new PackageFileUnavailable({ path, reason: "the file became shorter while it was served" })
        }
        remaining -= read
        yield* sendChunk(response, buffer.subarray(0, read), lease)
      }
      response.end()
    })

  const serve = (request: Http.IncomingMessage, response: Http.ServerResponse): Effect.Effect<void> =>
    Effect.gen(function*() {
      const method = request.method ?? "GET"
      const url = pathOf(request.url ?? "/")
      const decoded = url.startsWith(prefix) ? decodePath(url.slice(prefix.length)) : undefined
      const name = decoded !== undefined && isValidPath(decoded) ? decoded : undefined
      const looked = name === undefined ? undefined : yield* Effect.either(lookup(name))
      if (looked?._tag === "Left") {
        return plain(response, 503, "payloads cannot be looked up right now; try again later", { "retry-after": "10" })
      }
      if (looked === undefined || Option.isNone(looked.right)) return plain(response, 404, "not found")
      const file = looked.right.value
      if (method !== "GET" && method !== "HEAD") {
        return plain(response, 405, `method ${method} not allowed`, { allow: "GET, HEAD" })
      }
      const now = yield* fs.stat(file.path).pipe(Effect.option)
      const mtime = Option.isSome(now) ? Option.getOrElse(now.value.mtime, () => new Date(0)) : new Date(0)
      if (
        Option.isNone(now) || now.value.type !== "File" || Number(now.value.size) !== file.size ||
        (file.mtimeMs !== undefined && mtime.getTime() !== file.mtimeMs)
      ) {
        // Registered files are checked at start; resolved ones were recorded when stored.
        const since = file.mtimeMs !== undefined ? "since the server started" : "since it was stored"
        yield* Effect.logError(`payload ${file.path} changed or vanished ${since}; refusing to serve it`)
        return plain(
          response,
          503,
          file.mtimeMs !== undefined
            ? "the payload changed on disk since the server started; restart the server"
            : "the payload changed on disk since it was stored"
        )
      }
      const etag = file.etag ?? `"${file.size.toString(16)}-${mtime.getTime().toString(16)}"`
      const lastModified = mtime.toUTCString()
      const headers: Record<string, string> = {
        "accept-ranges": "bytes",
        "etag": etag,
        "last-modified": lastModified,
        "cache-control": "no-transform"
      }
      const ifNoneMatch = header(request, "if-none-match")
      if (ifNoneMatch !== undefined && (ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((t) => t.trim() === etag))) {
        response.writeHead(304, headers)
        return response.end()
      }
      const ifRange = header(request, "if-range")
      const rangeApplies = ifRange === undefined || ifRange.trim() === etag || ifRange.trim() === lastModified
      const range = rangeApplies ? parseRange(header(request, "range"), file.size) : { _tag: "Whole" as const }
      if (range._tag === "Unsatisfiable") {
        return plain(response, 416, "requested range not satisfiable", { ...headers, "content-range": `bytes */${file.size}` })
      }
      const [status, start, length] = range._tag === "Part"
        ? [206, range.start, range.end - range.start + 1]
        : [200, 0, file.size]
      if (range._tag === "Part") headers["content-range"] = `bytes ${range.start}-${range.end}/${file.size}`
      headers["content-length"] = String(length)
      headers["content-type"] = "application/octet-stream"
      const log = Effect.annotateLogs({
        method,
        name,
        status,
        bytes: length,
        range: headers["content-range"] ?? "whole"
      })
      if (method === "HEAD" || length === 0) {
        yield* log(Effect.logInfo("package"))
        response.writeHead(status, headers)
        return response.end()
      }
      // Opened before the status goes out, so a file that cannot be opened
      // (too many open files, say) is a 503 the client can retry, not a 200
      // without its body.
      yield* Effect.scoped(Effect.gen(function*() {
        const opened = yield* Effect.either(fs.open(file.path, { flag: "r" }))
        if (opened._tag === "Left") {
          yield* log(Effect.logError(`cannot open payload ${file.path}: ${describeFileError(opened.left)}`))
          return plain(response, 503, "the payload cannot be read right now; try again later", { "retry-after": "10" })
        }
        yield* log(Effect.logInfo("package"))
        response.writeHead(status, headers)
        yield* sendBody(opened.right, response, start, length, file.path).pipe(
          Effect.catchAll((error) =>
            Effect.zipRight(
              log(Effect.logError(`payload ${file.path} failed while it was served: ${
                error._tag === "PackageFileUnavailable" ? error.reason : describeFileError(error)
              }; connection closed`)),
              // Cutting the connection tells the client the body is incomplete.
              Effect.sync(() => response.destroy())
            )
          )
        )
      }))
    }).pipe(
      Effect.catchAllDefect((defect) =>
        Effect.zipRight(
          Effect.logError("payload request failed", defect),
          Effect.sync(() => response.headersSent ? response.destroy() : plain(response, 500, "internal server error"))
        )
      ),
      // A request pipelined behind another starts when the response before it
      // is done, and everything stops when the connection closes: Node gives
      // no other sign to a response still waiting for its turn.
      whileConnected(request, response)
    )

  const listener = Effect.map(Effect.runtime<never>(), (runtime) => {
    const run = Runtime.runFork(runtime)
    return (request: Http.IncomingMessage, response: Http.ServerResponse): void => {
      run(serve(request, response))
    }
  })

  const app = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const source = request.source
    if (!(source instanceof Http.IncomingMessage)) {
      return Effect.as(
        Effect.logError("PackageFiles.app needs NodeHttpServer"),
        HttpServerResponse.text("internal server error\n", { status: 500 })
      )
    }
    const response = NodeHttpServerRequest.toServerResponse(request)
    // Answered here; the server sees an ended response and writes nothing more.
    return serve(source, response).pipe(
      Effect.ensuring(Effect.sync(() => {
        if (!response.writableEnded) {
          response.destroy()
          response.end()
        }
      })),
      Effect.as(HttpServerResponse.empty())
    )
  })

  return { listener, app, inFlight: Effect.sync(() => inFlight) } satisfies PackageFiles
}

/** Registers files (checking names and that each is a readable regular file) and serves them. */
export const make = (entries: ReadonlyArray<Entry>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files = new Map<string, Found>()
    for (const entry of entries) {
      if (!isValidName(entry.name)) return yield* new InvalidPackageName({ name: entry.name })
      const unavailable = (reason: string) => new PackageFileUnavailable({ path: entry.path, reason })
      const info = yield* fs.stat(entry.path).pipe(Effect.mapError((e) => unavailable(describeFileError(e))))
      if (info.type !== "File") return yield* unavailable(`not a regular file (${info.type.toLowerCase()})`)
      // Opening proves readability now rather than at the first download.
      yield* Effect.scoped(fs.open(entry.path, { flag: "r" })).pipe(
        Effect.mapError((e) => unavailable(describeFileError(e)))
      )
      files.set(entry.name, {
        path: entry.path,
        size: Number(info.size),
        etag: undefined,
        mtimeMs: Option.getOrElse(info.mtime, () => new Date(0)).getTime()
      })
    }
    const served = serveFrom(fs, (name) => Effect.succeed(Option.fromNullable(files.get(name))))
    return {
      ...served,
      names: [...files.keys()],
      size: (name) => files.get(name)?.size
    } satisfies Registered
  })

/**
 * Serves whatever `resolve` finds for each request's path (see `Resolver`),
 * a file that does not have the size it gave refused with 503. The
 * resolver runs with the context this is built in.
 */
export const fromResolver = <E, R>(resolve: Resolver<E, R>): Effect.Effect<PackageFiles, never, FileSystem.FileSystem | R> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const context = yield* Effect.context<R>()
    const lookup: Lookup = (path) =>
      resolve(path).pipe(
        Effect.provide(context),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(Option.none<Found>()),
          onSome: (payload) => {
            const etag = payload.etag === undefined ? undefined : quoteTag(payload.etag)
            return payload.etag !== undefined && etag === undefined
              ? Effect.dieMessage(`the resolver gave ${path} an entity tag that cannot be sent: ${JSON.stringify(payload.etag)}`)
              : Effect.succeed(Option.some<Found>({ path: payload.path, size: payload.size, etag, mtimeMs: undefined }))
          }
        })),
        Effect.catchAll((error) =>
          Effect.zipRight(Effect.logError(`cannot look up payload ${path}`, error), Effect.fail("unavailable" as const))
        )
      )
    return serveFrom(fs, lookup)
  })
