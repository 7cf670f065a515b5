/**
 * `update-self`: replaces a binary with a release from a repository (an HTTP
 * URL or a directory in choria's layout), verified, optionally signed and
 * health-checked, rolled back on failure. The source is chosen by
 * {@link sourceOptions} and {@link sourceLayer}, the one place a new kind of
 * source (an Omaha server) is added; a `--watch` mode would run the same
 * `Apply.apply` on a schedule instead of once.
 */
import { Command, Options } from "@effect/cli"
import type { FileSystem, HttpClient } from "@effect/platform"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Layer, Match, Option } from "effect"
import * as Apply from "../updater/Apply.js"
import * as Progress from "../updater/Progress.js"
import * as Repository from "../updater/Repository.js"
import * as Signature from "../updater/Signature.js"
import { type ExitStatusRow, exitStatusHelp } from "./internal/exitStatusHelp.js"
import { type Ending, ExitStatus } from "./internal/runCommand.js"
import { releaseVersion, withReleaseVersion } from "./internal/versionArgument.js"

/** Where releases come from, as the command line says. */
export type SourceConfig = {
  readonly _tag: "Repository"
  /** An http(s) URL or a directory. */
  readonly location: string
  readonly version: string
}

/** The source options: `--repo URL|DIR --version V` (an alternative, `--omaha`, joins here with `Options.orElse`). */
export const sourceOptions: Options.Options<SourceConfig> = Options.all({
  location: Options.text("repo").pipe(
    Options.withDescription("the repository: an http(s) URL or a directory in choria's layout")
  ),
  version: Options.text(releaseVersion).pipe(Options.withDescription("the version to install (also given as --version V)"))
}).pipe(Options.map((o) => ({ _tag: "Repository" as const, ...o })))

/** The layer of the release source a configuration names. */
export const sourceLayer = (
  config: SourceConfig,
  platform: { readonly os: string | undefined; readonly arch: string | undefined; readonly timeouts: Repository.HttpOptions["timeouts"] }
): Layer.Layer<Repository.Repository, never, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Repository.isHttpLocation(config.location)
    ? Repository.layerHttp({ url: config.location, os: platform.os, arch: platform.arch, timeouts: platform.timeouts })
    : Repository.layerDirectory({ path: config.location, os: platform.os, arch: platform.arch })

/** Every failure `update-self` can end with. */
export type UpdateSelfError = Apply.ApplyError | Signature.KeyFileInvalid

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
    RollbackError: (e) => (e.rolledBack ? 11 : 12)
  })
)

/** How `update-self` ends: one line per failure, the status from {@link exitStatus}, 130 when stopped. */
export const ending: Ending<UpdateSelfError> = { name: "update-self", exitStatus, interrupted: 130 }

const exitCodes: ReadonlyArray<ExitStatusRow> = [
  [ExitStatus.Ok, "updated, or already up to date"],
  [ExitStatus.Unexpected, "unexpected error"],
  [ExitStatus.Usage, "usage error"],
  [3, "another update of the target is running"],
  [4, "no such release (release.json missing or not HTTP 200)"],
  [5, "repository unreachable or download failed (network, timeout, HTTP status)"],
  [6, "invalid release.json, version or platform"],
  [7, "payload failed verification (hash, size, corrupt or oversized data)"],
  [8, "signature missing or invalid, or unreadable public key"],
  [9, "downgrade refused"],
  [10, "target missing or its directory not writable"],
  [11, "health check failed; the previous binary was restored"],
  [12, "health check failed and restoring the previous binary failed"],
  [130, "interrupted (SIGINT/SIGTERM); the target was left or put back as it was"]
]

/** The exit statuses as help text. */
export const exitCodesHelp = exitStatusHelp(exitCodes)

const options = {
  target: Options.text("target").pipe(Options.withDescription("the binary to replace")),
  source: sourceOptions,
  currentVersion: Options.text("current-version").pipe(
    Options.withDescription("the installed version (without it, a target with the release's hash is up to date)"),
    Options.optional
  ),
  os: Options.text("os").pipe(Options.withDescription("Go's OS name (default: this machine's)"), Options.optional),
  arch: Options.text("arch").pipe(Options.withDescription("Go's architecture name (default: this machine's)"), Options.optional),
  publicKey: Options.text("public-key").pipe(
    Options.withDescription("ed25519 public key (PEM); releases without a valid signature are refused"),
    Options.optional
  ),
  allowDowngrade: Options.boolean("allow-downgrade").pipe(Options.withDescription("allow installing an older version")),
  check: Options.text("check").pipe(
    Options.withDescription("shell command run after the swap; non-zero exit or timeout restores the old binary"),
    Options.optional
  ),
  checkTimeout: Options.integer("check-timeout").pipe(
    Options.withDescription("seconds the check may take"),
    Options.withDefault(30)
  ),
  maxSize: Options.integer("max-size").pipe(
    Options.withDescription("largest binary accepted, in MiB, when the release does not say its size"),
    Options.withDefault(1024)
  ),
  connectTimeout: Options.integer("connect-timeout").pipe(
    Options.withDescription("seconds to wait for a server's answer"),
    Options.withDefault(30)
  ),
  idleTimeout: Options.integer("idle-timeout").pipe(
    Options.withDescription("seconds a download may go without data"),
    Options.withDefault(90)
  )
}

/** The `update-self` command. */
export const command = Command.make("update-self", options, (o) =>
  Effect.gen(function*() {
    const publicKey = Option.isSome(o.publicKey) ? yield* Signature.readPublicKey(o.publicKey.value) : undefined
    const progress = Progress.make(`downloading ${o.source.version}`, {
      write: (text) => process.stderr.write(text),
      isTTY: process.stderr.isTTY === true,
      columns: process.stderr.columns
    })
    const os = Option.getOrUndefined(o.os)
    const arch = Option.getOrUndefined(o.arch)
    const outcome = yield* Apply.apply({
      target: o.target,
      version: o.source.version,
      currentVersion: Option.getOrUndefined(o.currentVersion),
      os,
      arch,
      publicKey,
      allowDowngrade: o.allowDowngrade,
      check: Option.getOrUndefined(Option.map(o.check, (command) => ({ command, timeout: `${o.checkTimeout} seconds` }))),
      maxBytes: o.maxSize * 1024 * 1024,
      onProgress: progress.onProgress
    }).pipe(
      Effect.ensuring(progress.done),
      Effect.provide(sourceLayer(o.source, {
        os,
        arch,
        timeouts: { connect: `${o.connectTimeout} seconds`, idle: `${o.idleTimeout} seconds` }
      }))
    )
    yield* outcome._tag === "Updated"
      ? Console.log(`updated ${o.target} to ${outcome.release.version} (${outcome.size} bytes)`)
      : Console.log(`${o.target} is up to date${outcome.version === undefined ? "" : ` (${outcome.version})`}`)
  })).pipe(Command.withDescription("Replace a binary with a verified release, with rollback."))

/** The command's program for `argv` (as `process.argv`), with every service it needs. */
export const program = (argv: ReadonlyArray<string>) =>
  Command.run(command, { name: "update-self", version: "0.1.0", footer: exitCodesHelp })(withReleaseVersion(argv)).pipe(
    Effect.provide(Layer.mergeAll(NodeContext.layer, NodeHttpClient.layer))
  )
