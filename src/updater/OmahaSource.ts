/**
 * An Omaha server as a release source: the update check is the resolve (the
 * server chooses the version, so none is asked for), the first package of the
 * first manifest is the payload, whose hashes and size are checked on the
 * bytes as served; a gzip or bzip2 payload (by its magic bytes: go-omaha names
 * every payload `update.gz`) is decoded before it is installed, any other is
 * installed as served. The moments of an
 * update go back to the server as update_engine's events: 13/1 when the
 * download starts, 14/1 when it is verified, 3/1 when the new binary is in
 * place, 3/0 with the exit code when an offered update fails. Events go
 * through the Omaha client's queue and are flushed when the source closes.
 */
import { HttpClient } from "@effect/platform"
import { Context, Duration, Effect, Layer, Option, Ref } from "effect"
import * as AppClient from "../client/AppClient.js"
import * as ExitCode from "../client/ExitCode.js"
import { OmahaClient } from "../client/OmahaClient.js"
import type * as Request from "../protocol/Request.js"
import { digestBytes } from "../protocol/Package.js"
import * as Platform from "../protocol/Platform.js"
import * as Download from "./Download.js"
import { Release, ReleaseInvalid } from "./Release.js"
import * as Repository from "./Repository.js"
import { metadataContentType } from "./Signature.js"

/** How the source describes the releases it finds. */
export interface Options {
  /** Go's OS name of the releases; the local one by default. */
  readonly os?: string | undefined
  /** Go's architecture name of the releases; the local one by default. */
  readonly arch?: string | undefined
  readonly timeouts?: Download.Timeouts | undefined
  /** How long closing the source waits for events still queued; default 30 seconds. */
  readonly flushTimeout?: Duration.DurationInput | undefined
}

/** A release source backed by an Omaha server, which also tells the poll interval the server asked for. */
export interface OmahaSourceService extends Repository.Source {
  /** The `PollInterval` of the server's last answer, if it sent one. */
  readonly pollInterval: Effect.Effect<Option.Option<Duration.Duration>>
}

/** The Omaha source, for programs that want its poll interval as well as the release source. */
export class OmahaSource extends Context.Tag("effect-omaha/updater/OmahaSource")<OmahaSource, OmahaSourceService>() {}

// Network trouble (and HTTP errors, whose status the schedule backs off on)
// reads as an unreachable repository; an answer we cannot use as an invalid release.
const resolveError = (location: string, error: AppClient.CheckError | AppClient.EmptySetting): Repository.ResolveError => {
  switch (error._tag) {
    case "NetworkError":
    case "RequestTimeout":
      return new Repository.RepositoryUnreachable({ location, reason: error.message })
    case "HttpStatusError":
      return new Repository.RepositoryUnreachable({ location, reason: error.message, status: error.status })
    default:
      return new ReleaseInvalid({ location, reason: error.message })
  }
}

/** The base64 or hex SHA-256 of the payload as lowercase hex: the package's `hash_sha256`, else the postinstall `sha256`. */
const payloadSha256 = (update: AppClient.UpdateAvailable): string | undefined => {
  const pkg = update.manifest.packages[0]
  const postinstall = update.manifest.actions.find((action) => action.event === "postinstall")
  for (const announced of [pkg?.hashSha256, postinstall?.sha256]) {
    const bytes = announced === undefined ? undefined : digestBytes(announced)
    if (bytes !== undefined && bytes.length === 32) return bytes.toString("hex")
  }
  return undefined
}

/** Builds the source over the `AppClient` of the binary's app. */
export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const app = yield* AppClient.AppClient
    const omaha = yield* OmahaClient
    const client = yield* HttpClient.HttpClient
    const os = options.os ?? Platform.goOs()
    const arch = options.arch ?? Platform.goArch()
    const timeouts = options.timeouts ?? Download.defaultTimeouts
    const lastPollInterval = yield* Ref.make(Option.none<Duration.Duration>())

    // Reporting never fails an update: the event is queued, and its outcome logged by the client.
    const tell = (event: Request.EventRequest) => Effect.asVoid(app.event(event))

    const resolve = Effect.fn("OmahaSource.resolve")(function*(wanted: Repository.Wanted) {
      if (wanted.currentVersion !== undefined) {
        yield* Effect.mapError(app.setVersion(wanted.currentVersion), (e) => resolveError(omaha.url, e))
      }
      const result = yield* app.updateCheck(
        wanted.installSource === undefined ? {} : { installSource: wanted.installSource }
      ).pipe(Effect.mapError((e) => resolveError(omaha.url, e)))
      yield* Ref.set(lastPollInterval, AppClient.pollInterval(result))
      if (result._tag === "NoUpdate") return Option.none<Release>()
      const invalid = (reason: string) =>
        Effect.fail(new ReleaseInvalid({ location: omaha.url, reason: `update ${result.manifest.version}: ${reason}` }))
      const pkg = result.manifest.packages[0]
      if (pkg === undefined || pkg.name === "") return yield* invalid("the manifest has no package")
      const sha256 = payloadSha256(result)
      if (sha256 === undefined) return yield* invalid("no SHA-256 of the package (hash_sha256 or postinstall sha256)")
      const sha1 = pkg.hash === undefined ? undefined : digestBytes(pkg.hash)
      if (sha1 !== undefined && sha1.length !== 20) return yield* invalid(`the package's hash ${pkg.hash} is not a SHA-1`)
      // As update_engine builds it: the codebase, a "/" if it has none, the package name.
      const codebase = result.update.urls.find((url) => url.codebase !== "")?.codebase ?? ""
      const location = codebase.endsWith("/") ? codebase + pkg.name : `${codebase}/${pkg.name}`
      if (!/^https?:\/\//i.test(location) || !URL.canParse(location)) {
        return yield* invalid(`the package URL ${location} is not an http(s) URL`)
      }
      const signature = pkg.metadata?.contentType === metadataContentType ? pkg.metadata.content : undefined
      return Option.some(
        new Release({
          version: result.manifest.version,
          os,
          arch,
          name: pkg.name,
          location,
          sha256,
          ...(pkg.size === undefined ? {} : { size: pkg.size }),
          ...(signature === undefined ? {} : { signature: signature.trim() }),
          ...(sha1 === undefined ? {} : { sha1: sha1.toString("hex") }),
          hashOf: "payload"
        })
      )
    })

    return {
      location: omaha.url,
      resolve,
      fetch: (release, offset) =>
        Effect.provideService(Download.fetchHttp(release.location, offset, timeouts), HttpClient.HttpClient, client),
      report: {
        downloadStarted: () => tell(AppClient.Events.downloadStarted),
        downloadFinished: () => tell(AppClient.Events.downloadFinished),
        updated: () => tell(AppClient.Events.installed),
        // Before a release is offered there is nothing to report: a failed
        // update check already sent its own error event.
        failed: (release, code) => (Option.isSome(release) ? tell(ExitCode.errorEvent(code)) : Effect.void)
      },
      pollInterval: Ref.get(lastPollInterval)
    } satisfies OmahaSourceService
  })

/**
 * The Omaha source as the updater's release source (and as `OmahaSource`).
 * Closing it waits up to `flushTimeout` for the events still queued.
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Repository.Repository | OmahaSource, never, AppClient.AppClient | OmahaClient | HttpClient.HttpClient> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const source = yield* make(options)
      const omaha = yield* OmahaClient
      yield* Effect.addFinalizer(() =>
        omaha.flush.pipe(Effect.timeoutOption(options.flushTimeout ?? Duration.seconds(30)), Effect.asVoid)
      )
      return Context.make(Repository.Repository, source).pipe(Context.add(OmahaSource, source))
    })
  )
