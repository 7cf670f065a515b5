/**
 * Where releases come from: a port with one release and its bytes per
 * request, plus hooks that tell the source how an update went (an Omaha
 * source turns them into events 13/1, 14/1, 3/1 and 3/0). Two sources live
 * here: an HTTP repository in choria's layout
 * (`<repo>/<version>/<os>/<arch>/release.json`) and the same layout in a
 * local directory, for sites without a network path to a repository.
 *
 * An Omaha source fits the same port: `resolve` is an update check (none on
 * `noupdate`; the first manifest's version, the first package's URL, size
 * and SHA-256), `fetch` is `Download.fetchHttp` of that URL, and `report`
 * sends events 13/1, 14/1, 3/1, and 3/0 with the code of
 * `Apply.updateEngineCode` on failure.
 */
import { FileSystem, HttpClient } from "@effect/platform"
import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import * as Path from "node:path"
import { describeFileError } from "../internal/fileError.js"
import * as Platform from "../protocol/Platform.js"
import * as Version from "../protocol/Version.js"
import * as Download from "./Download.js"
import { decodeReleaseFile, maxReleaseFileBytes, Release, type ReleaseInvalid } from "./Release.js"

/** What the updater asks a source for. */
export interface Wanted {
  /** The version to install; a source that decides versions itself (Omaha) may ignore it. */
  readonly version?: string | undefined
  /** The version installed now, for sources that report it. */
  readonly currentVersion?: string | undefined
  /** Why the check runs, for sources that report it (Omaha's `installsource`: `scheduler`, `ondemandupdate`). */
  readonly installSource?: string | undefined
}

/**
 * The moments of an update a source hears about. Every hook must not fail:
 * reporting is best effort and never changes the outcome of an update.
 */
export interface Reporter {
  /** The download is about to start (Omaha event 13/1). */
  readonly downloadStarted: (release: Release) => Effect.Effect<void>
  /** The payload is downloaded and verified (Omaha event 14/1). */
  readonly downloadFinished: (release: Release) => Effect.Effect<void>
  /** The new binary is in place and passed its health check (Omaha event 3/1). */
  readonly updated: (release: Release) => Effect.Effect<void>
  /** The update failed with an update_engine exit code (Omaha event 3/0 errorcode=N); the release if one was found. */
  readonly failed: (release: Option.Option<Release>, code: number) => Effect.Effect<void>
}

/** A reporter that tells nobody: for sources with nobody to tell. */
export const silent: Reporter = {
  downloadStarted: () => Effect.void,
  downloadFinished: () => Effect.void,
  updated: () => Effect.void,
  failed: () => Effect.void
}

/** No release for the version and platform asked for (release.json absent or not HTTP 200). */
export class ReleaseNotFound extends Schema.TaggedError<ReleaseNotFound>()("ReleaseNotFound", {
  location: Schema.String,
  reason: Schema.String,
  status: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `no release at ${this.location}: ${this.reason}`
  }
}

/** The repository could not be reached (connection refused, timeout, unreadable directory). */
export class RepositoryUnreachable extends Schema.TaggedError<RepositoryUnreachable>()("RepositoryUnreachable", {
  location: Schema.String,
  reason: Schema.String,
  /** The HTTP status, when a server answered with an error. */
  status: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `repository ${this.location} is unreachable: ${this.reason}`
  }
}

/** The errors a source can end a resolve with. */
export type ResolveError = ReleaseNotFound | RepositoryUnreachable | ReleaseInvalid

/** A source of releases. */
export interface Source {
  /** The repository's URL or path, for messages. */
  readonly location: string
  /** The release to install; none when the source says there is no update. */
  readonly resolve: (wanted: Wanted) => Effect.Effect<Option.Option<Release>, ResolveError>
  /** The release's payload from byte `offset` on. */
  readonly fetch: (release: Release, offset: number) => Effect.Effect<Download.Body, Download.DownloadFailed>
  readonly report: Reporter
}

/** The release source the updater uses. */
export class Repository extends Context.Tag("effect-omaha/updater/Repository")<Repository, Source>() {}

/** Options shared by the choria-layout sources. */
export interface LayoutOptions {
  /** Go's OS name; the local one by default. */
  readonly os?: string | undefined
  /** Go's architecture name; the local one by default. */
  readonly arch?: string | undefined
}

/** The release directory of a version and platform, as path segments below the repository. */
const releaseSegments = (location: string, wanted: Wanted, options: LayoutOptions) =>
  Effect.gen(function*() {
    const version = wanted.version
    if (version === undefined) {
      return yield* new ReleaseNotFound({ location, reason: "no version asked for (this repository needs one)" })
    }
    const segments = [version, options.os ?? Platform.goOs(), options.arch ?? Platform.goArch()]
    // A version or platform name is one path segment: nothing that climbs out of the repository.
    if (Option.isNone(Version.parseOption(version)) || segments.some((s) => !/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(s))) {
      return yield* new ReleaseNotFound({ location, reason: `not a version and platform: ${segments.join("/")}` })
    }
    return segments as [string, string, string]
  })

const release = (
  segments: readonly [string, string, string],
  file: { readonly binary: string; readonly hash: string; readonly signature?: string | undefined },
  location: string
) =>
  new Release({
    version: segments[0],
    os: segments[1],
    arch: segments[2],
    name: file.binary,
    location,
    sha256: file.hash.toLowerCase(),
    ...(file.signature === undefined ? {} : { signature: file.signature })
  })

/** Options of an HTTP repository. */
export interface HttpOptions extends LayoutOptions {
  /** The repository's base URL (http or https). */
  readonly url: string
  readonly timeouts?: Download.Timeouts | undefined
}

/** An HTTP repository in choria's layout: `<url>/<version>/<os>/<arch>/release.json`. */
export const makeHttp = (options: HttpOptions): Effect.Effect<Source, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const base = options.url.replace(/\/+$/, "")
    const timeouts = options.timeouts ?? Download.defaultTimeouts
    const fetchHttp = (url: string, offset: number) =>
      Effect.provideService(Download.fetchHttp(url, offset, timeouts), HttpClient.HttpClient, client)
    return {
      location: base,
      resolve: Effect.fn("Repository.Http.resolve")(function*(wanted: Wanted) {
        const segments = yield* releaseSegments(base, wanted, options)
        const url = `${base}/${segments.map(encodeURIComponent).join("/")}/release.json`
        const body = yield* fetchHttp(url, 0).pipe(Effect.catchTag("DownloadFailed", (e) =>
          Effect.fail(
            e.status === undefined
              ? new RepositoryUnreachable({ location: url, reason: e.reason })
              : new ReleaseNotFound({ location: url, reason: e.reason, status: e.status })
          )
        ))
        const bytes = yield* readCapped(body.stream, url)
        const file = yield* decodeReleaseFile(bytes, url)
        return Option.some(release(segments, file, file.uri ?? new URL(file.binary, url).href))
      }),
      fetch: (release, offset) => fetchHttp(release.location, offset),
      report: silent
    } satisfies Source
  })

/** Reads a small body whole; stops one chunk past the release-file cap, for decodeReleaseFile to refuse. */
const readCapped = (stream: Stream.Stream<Uint8Array, Download.DownloadFailed>, location: string) =>
  stream.pipe(
    Stream.runFoldWhile(
      { parts: [] as Array<Uint8Array>, size: 0 },
      (acc) => acc.size <= maxReleaseFileBytes,
      (acc, bytes) => ({ parts: [...acc.parts, bytes], size: acc.size + bytes.byteLength })
    ),
    Effect.map((acc) => Buffer.concat(acc.parts)),
    Effect.mapError((e) => new RepositoryUnreachable({ location, reason: e.reason }))
  )

/** The HTTP repository as the layer of the release source. */
export const layerHttp = (options: HttpOptions): Layer.Layer<Repository, never, HttpClient.HttpClient> =>
  Layer.effect(Repository, makeHttp(options))

/** Options of a directory repository. */
export interface DirectoryOptions extends LayoutOptions {
  /** The repository's root directory. */
  readonly path: string
}

/**
 * A repository in a local directory, same layout as over HTTP. The payload is
 * always the `binary` next to `release.json`: a `uri` is ignored, since a
 * directory copy is made for sites that cannot reach it.
 */
export const makeDirectory = (options: DirectoryOptions): Effect.Effect<Source, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const root = Path.resolve(options.path)
    return {
      location: root,
      resolve: Effect.fn("Repository.Directory.resolve")(function*(wanted: Wanted) {
        const segments = yield* releaseSegments(root, wanted, options)
        const dir = Path.join(root, ...segments)
        const path = Path.join(dir, "release.json")
        const info = yield* fs.stat(path).pipe(Effect.catchAll((e) =>
          Effect.fail(
            e._tag === "SystemError" && e.reason === "NotFound"
              ? new ReleaseNotFound({ location: path, reason: "no such file" })
              : new RepositoryUnreachable({ location: path, reason: describeFileError(e) })
          )
        ))
        if (info.type !== "File") return yield* new ReleaseNotFound({ location: path, reason: "not a file" })
        const bytes = Number(info.size) > maxReleaseFileBytes
          ? new Uint8Array(maxReleaseFileBytes + 1)
          : yield* Effect.mapError(fs.readFile(path), (e) => new RepositoryUnreachable({ location: path, reason: describeFileError(e) }))
        const file = yield* decodeReleaseFile(bytes, path)
        return Option.some(release(segments, file, Path.join(dir, file.binary)))
      }),
      fetch: (release, offset) => Effect.provideService(Download.fetchFile(release.location, offset), FileSystem.FileSystem, fs),
      report: silent
    } satisfies Source
  })

/** The directory repository as the layer of the release source. */
export const layerDirectory = (options: DirectoryOptions): Layer.Layer<Repository, never, FileSystem.FileSystem> =>
  Layer.effect(Repository, makeDirectory(options))

/** True when a `--repo` value names an HTTP repository rather than a directory. */
export const isHttpLocation = (location: string): boolean => /^https?:\/\//i.test(location)
