/**
 * `update-repo`: publishes a binary into a repository in choria's layout
 * (`<repo>/<version>/<os>/<arch>/<name>-<os>-<arch>-<version>.bz2` and
 * `release.json`), optionally signed, and `update-repo keygen` makes the
 * ed25519 key pair for signing.
 */
import { Args, type CliApp, Command, Options } from "@effect/cli"
import type { CommandExecutor } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Match, Option } from "effect"
import type * as Version from "../protocol/Version.js"
import * as Compression from "../updater/Compression.js"
import * as Platform from "../protocol/Platform.js"
import * as Publish from "../updater/Publish.js"
import * as Signature from "../updater/Signature.js"
import { packageVersion } from "../internal/version.js"
import * as CommandLine from "./internal/commandLine.js"
import { type ExitStatusRow, exitStatusHelp } from "./internal/exitStatusHelp.js"
import { withDefault } from "./internal/flags.js"
import { type Ending, ExitStatus } from "./internal/runCommand.js"
import { releaseVersion, withReleaseVersion } from "./internal/versionArgument.js"

/** Every failure `update-repo` can end with. */
export type UpdateRepoError =
  | Publish.PublishError
  | Version.InvalidVersion
  | Signature.KeyFileInvalid
  | Signature.KeyFileExists
  | Signature.KeyPathsSame

/** The exit status of each failure (also listed in `--help` and the README). */
export const exitStatus: (error: UpdateRepoError) => number = Match.type<UpdateRepoError>().pipe(
  Match.tagsExhaustive({
    ReleaseExists: () => 3,
    KeyFileExists: () => 3,
    KeyPathsSame: () => ExitStatus.Usage,
    BinaryUnavailable: () => 4,
    InvalidName: () => 5,
    InvalidVersion: () => 5,
    KeyFileInvalid: () => 6,
    WriteFailed: () => 7,
    Bzip2Unavailable: () => 8,
    CompressFailed: () => 8,
    PublishVerifyFailed: () => 9
  })
)

/** How `update-repo` ends. */
export const ending: Ending<UpdateRepoError> = { name: "update-repo", exitStatus, interrupted: 130 }

const exitCodes: ReadonlyArray<ExitStatusRow> = [
  [ExitStatus.Ok, "published (or keys written)"],
  [ExitStatus.Unexpected, "unexpected error"],
  [ExitStatus.Usage, "usage error (also: keygen given one file for both keys)"],
  [3, "the release or key file exists (use --force; a file holding a private key never gets the public key)"],
  [4, "the binary cannot be read"],
  [5, "invalid version, OS, architecture or binary name"],
  [6, "unreadable or wrong signing key"],
  [7, "the repository or a key file cannot be written"],
  [8, "compression failed (bzip2 missing: install it, or use --compression gzip)"],
  [9, "what was written does not read back as the release"],
  [130, "interrupted; nothing half-written is left"]
]

const footer = exitStatusHelp(exitCodes)

const publish = Command.make("update-repo", {
  binary: Args.text({ name: "binary" }).pipe(Args.withDescription("the binary to publish")),
  version: Options.text(releaseVersion).pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("the release's version (also given as --version VERSION)")
  ),
  os: Options.text("os").pipe(
    Options.withPseudoName("OS"),
    Options.withDescription("Go's OS name (linux, darwin, windows, ...)"),
    withDefault(Platform.goOs(), `this machine's, ${Platform.goOs()}`)
  ),
  arch: Options.text("arch").pipe(
    Options.withPseudoName("ARCH"),
    Options.withDescription("Go's architecture name (amd64, arm64, ...)"),
    withDefault(Platform.goArch(), `this machine's, ${Platform.goArch()}`)
  ),
  repo: Options.text("repo").pipe(
    Options.withPseudoName("DIR"),
    Options.withDescription("the repository directory"),
    withDefault("./repo")
  ),
  force: Options.boolean("force").pipe(Options.withDescription("overwrite an existing release")),
  signKey: Options.text("sign-key").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("ed25519 private key (PEM, from update-repo keygen) to sign with"),
    Options.optional
  ),
  compression: Options.choice("compression", ["bz2", "gzip", "none"] as const).pipe(
    Options.withDescription(
      "payload compression (bz2 needs the bzip2 command); choria's own updater applies bz2 only, " +
        "so gzip and none releases are for update-self"
    ),
    withDefault("bz2" as Compression.Compression)
  )
}, (o) =>
  Effect.gen(function*() {
    const signKey = Option.isSome(o.signKey) ? yield* Signature.readPrivateKey(o.signKey.value) : undefined
    const published = yield* Publish.publish({
      binary: o.binary,
      version: o.version,
      os: o.os,
      arch: o.arch,
      repo: o.repo,
      force: o.force,
      compression: o.compression,
      signKey
    })
    yield* Console.log(`published ${published.payload} (${published.size} bytes, sha256 ${published.sha256}${published.signed ? ", signed" : ""})`)
  })).pipe(Command.withDescription(
    "Publish a binary into a repository in choria's layout. `update-repo keygen --help` makes signing keys."
  ))

const keygen = Command.make("keygen", {
  privateKey: Options.text("private-key").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("where to write the private key (mode 0600)")
  ),
  publicKey: Options.text("public-key").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("where to write the public key")
  ),
  force: Options.boolean("force").pipe(Options.withDescription("overwrite existing key files"))
}, (o) =>
  Effect.gen(function*() {
    yield* Signature.writeKeyPair(o)
    yield* Console.log(`wrote ${o.privateKey} and ${o.publicKey}`)
  })).pipe(Command.withDescription("Make an ed25519 key pair for signing releases."))

/** The `update-repo` command (publish) and its `keygen` subcommand. */
export const commands = { publish, keygen }

/**
 * The command's program for `argv` (as `process.argv`), with every service it
 * needs. `keygen` is dispatched here rather than as an @effect/cli
 * subcommand, which would demand the publishing command's own arguments too.
 */
export const program = (argv: ReadonlyArray<string>) => {
  const [node = "node", script = "update-repo", first, ...rest] = argv
  const run: Effect.Effect<
    void,
    UpdateRepoError | CommandLine.UsageError,
    CliApp.CliApp.Environment | CommandExecutor.CommandExecutor
  > = first === "keygen"
    ? CommandLine.run(keygen, { name: "update-repo keygen", version: packageVersion, footer })([node, script, ...rest])
    : CommandLine.run(publish, { name: "update-repo", version: packageVersion, footer })(withReleaseVersion(argv))
  return run.pipe(Effect.provide(NodeContext.layer))
}
