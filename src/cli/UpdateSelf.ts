/**
 * `update-self`: replaces a binary with a release from a repository (an HTTP
 * URL or a directory in choria's layout) or from an Omaha server, verified,
 * optionally signed and health-checked, rolled back on failure. With
 * `--watch` it keeps running and applies updates on update_engine's check
 * schedule (SIGUSR1 asks for a check at once).
 */
import { Command, Options } from "@effect/cli"
import type { FileSystem, HttpClient } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Console, Duration, Effect, Exit, Layer, Match, Option, Ref, Schema } from "effect"
import * as AppClient from "../client/AppClient.js"
import type * as Machine from "../client/Machine.js"
import * as OmahaClient from "../client/OmahaClient.js"
import * as UpdateSchedule from "../client/UpdateSchedule.js"
import { packageVersion } from "../internal/version.js"
import * as Apply from "../updater/Apply.js"
import * as Download from "../updater/Download.js"
import * as OmahaSource from "../updater/OmahaSource.js"
import * as Progress from "../updater/Progress.js"
import * as Repository from "../updater/Repository.js"
import * as Signature from "../updater/Signature.js"
import * as CommandLine from "./internal/commandLine.js"
import { type ExitStatusRow, exitStatusHelp } from "./internal/exitStatusHelp.js"
import { integerAtLeast, withDefault } from "./internal/flags.js"
import * as LogLines from "./internal/logLines.js"
import { type Ending, ExitStatus } from "./internal/runCommand.js"
import { releaseVersion, withReleaseVersion } from "./internal/versionArgument.js"

/** A line on stderr about what update-self is waiting for. */
const say = (text: string) => Effect.sync(() => void process.stderr.write(`${text}\n`))

/** How long update-self waits, at the end, for its last reports to reach an Omaha server. */
export const reportTimeout = Duration.seconds(10)

/** Where releases come from, as the command line says. */
export type SourceConfig =
  | {
    readonly _tag: "Repository"
    /** An http(s) URL or a directory. */
    readonly location: string
    readonly version: string
  }
  | {
    readonly _tag: "Omaha"
    /** The Omaha server's URL. */
    readonly url: string
    readonly appId: string
    readonly track: Option.Option<string>
    /** The client's user id; the machine id by default. */
    readonly userId: Option.Option<string>
  }

const repositoryOptions = Options.all({
  location: Options.text("repo").pipe(
    Options.withPseudoName("URL|DIR"),
    Options.withDescription("the repository: an http(s) URL or a directory in choria's layout")
  ),
  version: Options.text(releaseVersion).pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("the version to install (also given as --version VERSION)")
  )
}).pipe(Options.map((o) => ({ _tag: "Repository" as const, ...o })))

const omahaOptions = Options.all({
  url: Options.text("omaha").pipe(
    Options.withPseudoName("URL"),
    Options.withDescription(
      "an Omaha server (e.g. serve-package's SERVER= URL); it chooses the version. A request is tried 7 times in all, " +
        "1, 2, 4, 8, 16 and 32 s apart, each up to 90 s, and each wait is announced on stderr"
    )
  ),
  appId: Options.text("app-id").pipe(Options.withPseudoName("ID"), Options.withDescription("the binary's Omaha app id")),
  track: Options.text("track").pipe(
    Options.withPseudoName("TRACK"),
    Options.withDescription("the update track (group) to ask on"),
    Options.optional
  ),
  userId: Options.text("user-id").pipe(
    Options.withPseudoName("ID"),
    Options.withDescription("this client's Omaha user id (default: the machine id, /etc/machine-id)"),
    Options.optional
  )
}).pipe(Options.map((o) => ({ _tag: "Omaha" as const, ...o })))

/** The source options: `--repo URL|DIR --version V`, or `--omaha URL --app-id ID [--track T] [--user-id ID]`. */
export const sourceOptions: Options.Options<SourceConfig> = Options.orElse(repositoryOptions, omahaOptions)

/** No Omaha user id was given and the machine id cannot serve as one. */
export class UserIdUnavailable extends Schema.TaggedError<UserIdUnavailable>()("UserIdUnavailable", {
  reason: Schema.String
}) {
  override get message(): string {
    return `no Omaha user id: ${this.reason}; pass --user-id`
  }
}

/** What building a release source can fail with. */
export type SourceError =
  | OmahaClient.ConfigError
  | OmahaClient.DuplicateAppId
  | AppClient.EmptySetting
  | UserIdUnavailable

/** The layer of the release source a configuration names. */
export const sourceLayer = (
  config: SourceConfig,
  settings: {
    readonly os: string | undefined
    readonly arch: string | undefined
    readonly timeouts: Repository.HttpOptions["timeouts"]
    readonly currentVersion: string | undefined
  }
): Layer.Layer<Repository.Repository, SourceError, HttpClient.HttpClient | FileSystem.FileSystem> => {
  if (config._tag === "Repository") {
    return Repository.isHttpLocation(config.location)
      ? Repository.layerHttp({ url: config.location, os: settings.os, arch: settings.arch, timeouts: settings.timeouts })
      : Repository.layerDirectory({ path: config.location, os: settings.os, arch: settings.arch })
  }
  const clientVersion = `update-self-${packageVersion}`
  // Each wait between tries says why, on a line of its own.
  const onRetry = (retry: OmahaClient.Retrying) => say(OmahaClient.describeRetry(retry))
  const omaha = Option.match(config.userId, {
    onSome: (userId) => OmahaClient.layer({ serverUrl: config.url, userId, clientVersion, onRetry }),
    onNone: () =>
      OmahaClient.layerMachine({ serverUrl: config.url, clientVersion, onRetry }).pipe(
        Layer.catchAll((error: OmahaClient.ConfigError | Machine.IdentityError) =>
          Layer.fail(
            error._tag === "InvalidServerUrl" || error._tag === "MissingUserId"
              ? error
              : new UserIdUnavailable({ reason: error.message })
          )
        )
      )
  })
  // Omaha needs a version for the app; "0.0.0" when unknown, and the target's hash then tells whether it is current.
  const app = AppClient.layer({
    appId: config.appId,
    version: settings.currentVersion ?? "0.0.0",
    ...Option.match(config.track, { onNone: () => ({}), onSome: (track) => ({ track }) })
  })
  return OmahaSource.layer({ os: settings.os, arch: settings.arch, timeouts: settings.timeouts, flushTimeout: reportTimeout }).pipe(
    Layer.provide(app),
    Layer.provide(omaha)
  )
}

/** Every failure `update-self` can end with. */
export type UpdateSelfError = Apply.ApplyError | Signature.KeyFileInvalid | SourceError

/** The exit status of each failure (also listed in `--help` and the README). */
export const exitStatus: (error: UpdateSelfError) => number = Match.type<UpdateSelfError>().pipe(
  Match.tagsExhaustive({
    UpdateLocked: () => 3,
    ReleaseNotFound: () => 4,
    RepositoryUnreachable: () => 5,
    DownloadFailed: () => 5,
    ReleaseInvalid: () => 6,
    InvalidVersion: () => 6,
    PackageHashMismatch: () => 7,
    PackageSizeMismatch: () => 7,
    CorruptPayload: () => 7,
    PayloadTooLarge: () => 7,
    SignatureMissing: () => 8,
    SignatureInvalid: () => 8,
    KeyFileInvalid: () => 8,
    DowngradeRefused: () => 9,
    TargetUnavailable: () => 10,
    WriteFailed: () => 10,
    RollbackError: (e) => (e.rolledBack ? 11 : 12),
    UpdateTimedOut: () => 5,
    InvalidServerUrl: () => ExitStatus.Usage,
    MissingUserId: () => ExitStatus.Usage,
    UserIdUnavailable: () => ExitStatus.Usage,
    EmptySetting: () => ExitStatus.Usage,
    DuplicateAppId: () => ExitStatus.Unexpected
  })
)

/** How `update-self` ends: one line per failure, the status from {@link exitStatus}, 130 when stopped. */
export const ending: Ending<UpdateSelfError> = { name: "update-self", exitStatus, interrupted: 130 }

/** The ending for a command line: with `--watch`, a stop by signal is how it normally ends (0). */
export const endingFor = (argv: ReadonlyArray<string>): Ending<UpdateSelfError> =>
  argv.includes("--watch") ? { ...ending, interrupted: ExitStatus.Ok } : ending

const exitCodes: ReadonlyArray<ExitStatusRow> = [
  [ExitStatus.Ok, "updated, or already up to date"],
  [ExitStatus.Unexpected, "unexpected error"],
  [ExitStatus.Usage, "usage error (flags; an Omaha URL, app id, track or user id that cannot be used)"],
  [3, "another update of the target is running"],
  [4, "no such release (release.json missing or not HTTP 200)"],
  [5, "repository or Omaha server unreachable, download failed (network, timeout, HTTP status), or --timeout passed"],
  [6, "invalid release.json or Omaha answer, version or platform"],
  [7, "payload failed verification (hash, size, corrupt or oversized data)"],
  [8, "signature missing or invalid, or unreadable public key"],
  [9, "downgrade refused"],
  [10, "target missing or its directory not writable"],
  [11, "health check failed; the previous binary was restored"],
  [12, "health check failed and restoring the previous binary failed"],
  [130, "interrupted (SIGINT/SIGTERM); the target was left or put back as it was (0 with --watch)"]
]

/** The exit statuses as help text. */
export const exitCodesHelp = exitStatusHelp(exitCodes)

const options = {
  target: Options.text("target").pipe(Options.withPseudoName("FILE"), Options.withDescription("the binary to replace")),
  source: sourceOptions,
  currentVersion: Options.text("current-version").pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("the installed version (without it, a target with the release's hash is up to date)"),
    Options.optional
  ),
  os: Options.text("os").pipe(
    Options.withPseudoName("OS"),
    Options.withDescription("Go's OS name (default: this machine's)"),
    Options.optional
  ),
  arch: Options.text("arch").pipe(
    Options.withPseudoName("ARCH"),
    Options.withDescription("Go's architecture name (default: this machine's)"),
    Options.optional
  ),
  publicKey: Options.text("public-key").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("ed25519 public key (PEM); releases without a valid signature are refused"),
    Options.optional
  ),
  allowDowngrade: Options.boolean("allow-downgrade").pipe(Options.withDescription("allow installing an older version")),
  check: Options.text("check").pipe(
    Options.withPseudoName("COMMAND"),
    Options.withDescription("shell command run after the swap; non-zero exit or timeout restores the old binary"),
    Options.optional
  ),
  checkTimeout: integerAtLeast("check-timeout", 1).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription("seconds the check may take"),
    withDefault(30)
  ),
  maxSize: integerAtLeast("max-size", 1).pipe(
    Options.withPseudoName("MIB"),
    Options.withDescription("largest binary accepted, in MiB, when the release does not say its size"),
    withDefault(1024, "1024 (1 GiB)")
  ),
  connectTimeout: integerAtLeast("connect-timeout", 1).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription("seconds to wait for a server's answer"),
    withDefault(30)
  ),
  idleTimeout: integerAtLeast("idle-timeout", 1).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription(
      `seconds a download may go without data; a download is tried ${Download.defaultAttempts} times in all, ` +
        "each resuming where the last stopped, and says every 10 s (or a third of this, if shorter) that it waits"
    ),
    withDefault(90)
  ),
  timeout: integerAtLeast("timeout", 1).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription(
      "seconds one update may take, from the check to the end of the health check (each check with --watch); " +
        "past it update-self stops with status 5 and the previous binary in place"
    ),
    withDefault(1800, "1800 (30 min)")
  ),
  watch: Options.boolean("watch").pipe(
    Options.withDescription(
      "keep running and update on update_engine's schedule (first check after 7 min, then every 45, each +-5; " +
        "an Omaha PollInterval counts); SIGUSR1 checks at once, SIGINT/SIGTERM stop"
    )
  )
}

type Settings = Command.Command.ParseConfig<typeof options>

/** Seconds between "waiting for data" lines: 10, or a third of the idle timeout when that is shorter (at least 1). */
const noticeEvery = (idleTimeout: number) => Math.max(1, Math.min(10, Math.floor(idleTimeout / 3)))

// One apply with the command's settings, reporting how it ended on stdout.
const applyOnce = (o: Settings, currentVersion: string | undefined, installSource: string) =>
  Effect.gen(function*() {
    const publicKey = Option.isSome(o.publicKey) ? yield* Signature.readPublicKey(o.publicKey.value) : undefined
    const progress = Progress.make(
      o.source._tag === "Repository" ? `downloading ${o.source.version}` : "downloading the update",
      {
        write: (text) => process.stderr.write(text),
        isTTY: process.stderr.isTTY === true,
        columns: process.stderr.columns
      }
    )
    const outcome = yield* Apply.apply({
      target: o.target,
      version: o.source._tag === "Repository" ? o.source.version : undefined,
      currentVersion,
      installSource,
      os: Option.getOrUndefined(o.os),
      arch: Option.getOrUndefined(o.arch),
      publicKey,
      allowDowngrade: o.allowDowngrade,
      check: Option.getOrUndefined(Option.map(o.check, (command) => ({ command, timeout: `${o.checkTimeout} seconds` }))),
      maxBytes: o.maxSize * 1024 * 1024,
      onProgress: progress.onProgress,
      onWait: (waiting) => progress.notice(Download.describeWaiting(waiting)),
      noticeEvery: Duration.seconds(noticeEvery(o.idleTimeout)),
      timeout: Duration.seconds(o.timeout)
    }).pipe(Effect.ensuring(progress.done))
    yield* outcome._tag === "Updated"
      ? Console.log(`updated ${o.target} to ${outcome.release.version} (${outcome.size} bytes)`)
      : Console.log(`${o.target} is up to date${outcome.version === undefined ? "" : ` (${outcome.version})`}`)
    return outcome
  })

/** What one watched check ends with: the apply's outcome and the server's poll interval, if it sent one. */
interface Checked {
  readonly outcome: Apply.Outcome
  readonly pollInterval: Option.Option<Duration.Duration>
}

// The schedule's input from how a watched check ended: the poll interval the
// server asked for, or the HTTP status a failure carried (500/503 back off).
const scheduleOutcome = (exit: Exit.Exit<Checked, unknown>): UpdateSchedule.Outcome =>
  Exit.match(exit, {
    onSuccess: ({ pollInterval }) => UpdateSchedule.Outcome.Checked({ pollInterval }),
    onFailure: (cause) =>
      UpdateSchedule.Outcome.Failed({
        httpStatus: Option.flatMap(Cause.failureOption(cause), (error) =>
          typeof error === "object" && error !== null && "status" in error && typeof error.status === "number"
            ? Option.some(error.status)
            : Option.none())
      })
  })

// Applies on the schedule until interrupted; the installed version moves with each update.
const watch = (o: Settings, currentVersion: string | undefined) =>
  Effect.gen(function*() {
    const installed = yield* Ref.make(currentVersion)
    const trigger = yield* UpdateSchedule.Trigger
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGUSR1", trigger.unsafeRequest)),
      () => Effect.sync(() => process.off("SIGUSR1", trigger.unsafeRequest))
    )
    yield* Console.error(`update-self: watching ${o.target}; SIGUSR1 checks now`)
    const check = (installSource: UpdateSchedule.CheckSource) =>
      Effect.gen(function*() {
        const outcome = yield* applyOnce(o, yield* Ref.get(installed), installSource)
        if (outcome._tag === "Updated") yield* Ref.set(installed, outcome.release.version)
        const source = yield* Effect.serviceOption(OmahaSource.OmahaSource)
        const pollInterval = Option.isSome(source) ? yield* source.value.pollInterval : Option.none()
        return { outcome, pollInterval } satisfies Checked
      }).pipe(Effect.tapError((error) => Console.error(`update-self: ${error.message}`)))
    return yield* UpdateSchedule.runPeriodic(check, {
      outcome: (exit) => scheduleOutcome(exit as Exit.Exit<Checked, unknown>)
    })
  }).pipe(Effect.scoped, Effect.provide(UpdateSchedule.Trigger.Default))

/** The `update-self` command. */
export const command = Command.make("update-self", options, (o) =>
  Effect.gen(function*() {
    const currentVersion = Option.getOrUndefined(o.currentVersion)
    const run = o.watch ? watch(o, currentVersion) : Effect.asVoid(applyOnce(o, currentVersion, "ondemandupdate"))
    yield* run.pipe(
      Effect.provide(sourceLayer(o.source, {
        os: Option.getOrUndefined(o.os),
        arch: Option.getOrUndefined(o.arch),
        timeouts: { connect: `${o.connectTimeout} seconds`, idle: `${o.idleTimeout} seconds` },
        currentVersion
      }))
    )
  })).pipe(
    Command.withDescription(
      "Replace a binary with a verified release from a repository or an Omaha server, with rollback."
    )
  )

/** The command's program for `argv` (as `process.argv`), with every service it needs. */
export const program = (argv: ReadonlyArray<string>) =>
  CommandLine.run(command, { name: "update-self", version: packageVersion, footer: exitCodesHelp })(withReleaseVersion(argv)).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, NodeHttpClient.layer, LogLines.layer("logfmt")))
  )
