/**
 * `serve-package`: serves one update payload over Omaha so that a real
 * update_engine (or any Omaha client) updates from it. It hashes the payload
 * before listening, prints the `SERVER=` line for /etc/flatcar/update.conf,
 * logs one line per request on stderr, and stops gracefully on SIGINT or
 * SIGTERM.
 */
import { Command, Options } from "@effect/cli"
import { HttpMiddleware, HttpServer, type HttpServerError } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Clock, Console, Context, Effect, Layer, Match, Option, Schema } from "effect"
import * as NodeOs from "node:os"
import * as Package from "../protocol/Package.js"
import * as Platform from "../protocol/Platform.js"
import * as Version from "../protocol/Version.js"
import * as OmahaHandler from "../server/OmahaHandler.js"
import * as OmahaServer from "../server/OmahaServer.js"
import * as PackageFiles from "../server/PackageFiles.js"
import * as TrivialUpdater from "../server/TrivialUpdater.js"
import * as Signature from "../updater/Signature.js"
import * as CommandLine from "./internal/commandLine.js"
import { type ExitStatusRow, exitStatusHelp } from "./internal/exitStatusHelp.js"
import { integerAtLeast, withDefault } from "./internal/flags.js"
import { formatBytes } from "./internal/format.js"
import * as LogLines from "./internal/logLines.js"
import { ExitStatus, runCommand } from "./internal/runCommand.js"
import { packageVersion } from "../internal/version.js"

/** A `--listen-address` that is not `host:port`. */
export class InvalidListenAddress extends Schema.TaggedError<InvalidListenAddress>()("InvalidListenAddress", {
  address: Schema.String
}) {
  override get message(): string {
    return `invalid listen address ${JSON.stringify(this.address)}: use host:port, e.g. localhost:8000, 0.0.0.0:8000 or [::1]:8000`
  }
}

/** The server could not listen where it was asked to. */
export class CannotListen extends Schema.TaggedError<CannotListen>()("CannotListen", {
  address: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
}

/** Where to listen. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

const listenPattern = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/

/**
 * Reads `host:port`, `[v6]:port` or `:port` (every interface). `localhost`
 * means 127.0.0.1: listening on the name would bind whichever of 127.0.0.1
 * and ::1 the resolver lists first, and clients may try the other.
 */
export const parseListenAddress = (address: string): Effect.Effect<ListenAddress, InvalidListenAddress> => {
  const m = listenPattern.exec(address.trim())
  const port = m === null ? Number.NaN : Number(m[3])
  if (m === null || port > 65535) return Effect.fail(new InvalidListenAddress({ address }))
  const name = m[1] ?? m[2] ?? ""
  const host = name === "" ? "0.0.0.0" : name.toLowerCase() === "localhost" ? "127.0.0.1" : name
  return Effect.succeed({ host, port })
}

/** Exit statuses of serve-package (also listed in `--help` and the README). */
export const Exit = {
  ...ExitStatus,
  /** The payload file is missing, not a regular file, or unreadable. */
  PayloadUnavailable: 3,
  /** The listen address is in use, not local, or needs privileges. */
  CannotListen: 4
} as const

type Failure =
  | Version.InvalidVersion
  | InvalidListenAddress
  | OmahaHandler.InvalidBaseUrl
  | PackageFiles.InvalidPackageName
  | PackageFiles.PackageFileUnavailable
  | CannotListen
  | Signature.KeyFileInvalid

const exitStatus = Match.type<Failure>().pipe(
  Match.tagsExhaustive({
    InvalidVersion: () => Exit.Usage,
    InvalidListenAddress: () => Exit.Usage,
    InvalidBaseUrl: () => Exit.Usage,
    InvalidPackageName: () => Exit.Usage,
    PackageFileUnavailable: () => Exit.PayloadUnavailable,
    CannotListen: () => Exit.CannotListen,
    KeyFileInvalid: () => Exit.Usage
  })
)

const listenErrors: Record<string, string> = {
  EADDRINUSE: "the address is already in use (is another server running there?); choose another --listen-address",
  EACCES: "permission denied (ports below 1024 need privileges); choose a port above 1023",
  EADDRNOTAVAIL: "the address is not one of this machine's; use 127.0.0.1, 0.0.0.0 or a local address",
  ENOTFOUND: "no such host; use an IP address or a name this machine resolves",
  EAI_AGAIN: "the name cannot be resolved now (DNS); use an IP address"
}

/** Why listening failed, in words a user can act on. */
export const describeServeError = (error: HttpServerError.ServeError): string => {
  const code = (error.cause as { readonly code?: string } | undefined)?.code
  return (code === undefined ? undefined : listenErrors[code]) ?? String((error.cause as Error | undefined)?.message ?? error.cause)
}

// Progress for hashing large payloads: a line rewritten in place on a TTY,
// a line every few seconds otherwise; nothing for small files.
const hashProgress = (name: string, total: number): Package.Progress | undefined => {
  if (total < 64 * 1024 * 1024) return undefined
  const tty = process.stderr.isTTY === true
  let last = 0
  return (done) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (done < total && now - last < (tty ? 200 : 5000)) return Effect.void
      last = now
      const line = `hashing ${name}: ${Math.floor((done / total) * 100)}% (${formatBytes(done)} of ${formatBytes(total)})`
      return Effect.sync(() => process.stderr.write(tty ? `\r${line}${done >= total ? "\n" : ""}` : `${line}\n`))
    })
}

const urlHost = (host: string) => (host.includes(":") ? `[${host}]` : host)

interface Settings {
  readonly packageFile: string
  readonly packageVersion: string
  readonly listenAddress: string
  readonly packageName: string
  readonly baseUrl: Option.Option<string>
  readonly trustedProxies: ReadonlyArray<string>
  readonly shutdownGrace: number
  readonly logFormat: LogLines.LogFormat
  readonly signKey: Option.Option<string>
  readonly os: Option.Option<string>
  readonly arch: Option.Option<string>
}

/** Hashes the payload, starts the server, prints where it is, and serves until interrupted. */
export const serve = (settings: Settings) =>
  Effect.gen(function*() {
    const version = yield* Version.parseSemver(settings.packageVersion)
    const listen = yield* parseListenAddress(settings.listenAddress)
    const baseUrl = Option.isSome(settings.baseUrl)
      ? Option.some(yield* OmahaHandler.parseBaseUrl(settings.baseUrl.value))
      : Option.none<string>()
    // Read before the payload is hashed, so that a bad key costs no time and prints nothing else.
    const signKey = yield* Effect.transposeMapOption(settings.signKey, Signature.readPrivateKey)
    const files = yield* PackageFiles.make([{ name: settings.packageName, path: settings.packageFile }])
    const size = files.size(settings.packageName) ?? 0
    const onProgress = hashProgress(settings.packageName, size)
    const facts = yield* Package.fromFile(settings.packageFile, onProgress === undefined ? {} : { onProgress }).pipe(
      Effect.mapError((e) =>
        new PackageFiles.PackageFileUnavailable({ path: settings.packageFile, reason: PackageFiles.describeFileError(e) })
      )
    )
    const signature = Option.getOrUndefined(Option.map(signKey, (key) =>
      Signature.sign(key, {
        version: version.text,
        os: Option.getOrElse(settings.os, () => Platform.goOs()),
        arch: Option.getOrElse(settings.arch, () => Platform.goArch()),
        sha256: facts.sha256Hex
      })))

    const server = OmahaServer.layer({
      host: listen.host,
      port: listen.port,
      packages: files,
      trustedProxies: settings.trustedProxies,
      shutdownGrace: settings.shutdownGrace * 1000,
      ...(Option.isSome(baseUrl) ? { publicBaseUrl: baseUrl.value } : {})
    }).pipe(
      Layer.provide(TrivialUpdater.layer({
        name: settings.packageName,
        version,
        facts,
        ...(signature === undefined ? {} : { signature })
      })),
      // Nothing exports traces from this command, so request spans would only cost time.
      HttpMiddleware.withTracerDisabledWhen(() => true)
    )
    const context = yield* Layer.build(server).pipe(
      Effect.catchTag("ServeError", (e) =>
        Effect.fail(new CannotListen({ address: settings.listenAddress, reason: describeServeError(e) })))
    )
    // Said once listening, so that a failure to listen is the only line printed.
    yield* Console.error(
      `serve-package: ${settings.packageName} is ${settings.packageFile}, version ${version.text}, ` +
        `${formatBytes(facts.size)}, sha256 ${facts.sha256}`
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    const port = address._tag === "TcpAddress" ? address.port : listen.port
    const wildcard = listen.host === "0.0.0.0" || listen.host === "::"
    const origin = Option.getOrElse(baseUrl, () => `http://${urlHost(wildcard ? NodeOs.hostname() : listen.host)}:${port}/`)
    yield* Console.error(
      `serve-package: listening on ${urlHost(listen.host)}:${port}; payload at ${new URL(`packages/${encodeURIComponent(settings.packageName)}`, origin).href}` +
        (wildcard && Option.isNone(baseUrl) ? ` (clients must resolve ${NodeOs.hostname()}; or pass --base-url)` : "")
    )
    yield* Console.log(`# Put this line in /etc/flatcar/update.conf on the machines to update:`)
    yield* Console.log(`SERVER=${new URL("v1/update/", origin).href}`)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(LogLines.layer(settings.logFormat))
  )

const options = {
  packageFile: Options.text("package-file").pipe(
    Options.withPseudoName("FILE"),
    Options.withDescription("The update payload to serve (for Flatcar, the update.gz of a release).")
  ),
  packageVersion: Options.text("package-version").pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("The payload's version, a semantic version (e.g. 3815.2.1). Clients with a lower version are offered the update.")
  ),
  listenAddress: Options.text("listen-address").pipe(
    Options.withPseudoName("HOST:PORT"),
    Options.withDescription("host:port to listen on. The default serves this machine only; 0.0.0.0:8000 serves the network."),
    withDefault("localhost:8000")
  ),
  packageName: Options.text("package-name").pipe(
    Options.withPseudoName("NAME"),
    Options.withDescription("The name the payload is served under, /packages/<name>."),
    withDefault("update.gz")
  ),
  baseUrl: Options.text("base-url").pipe(
    Options.withPseudoName("URL"),
    Options.optional,
    Options.withDescription("The URL clients reach this server at (e.g. behind a proxy); codebases are built from it instead of the request's Host.")
  ),
  trustedProxies: Options.text("trusted-proxy").pipe(
    Options.withPseudoName("ADDRESS"),
    Options.repeated,
    Options.withDescription("A proxy address whose X-Forwarded-Proto and X-Forwarded-Host headers are believed; repeat for several.")
  ),
  shutdownGrace: integerAtLeast("shutdown-grace", 0).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription("Seconds a stop waits for downloads in progress."),
    withDefault(30)
  ),
  logFormat: Options.choice("log-format", ["logfmt", "json"]).pipe(
    Options.withDescription("Format of the request log on stderr."),
    withDefault("logfmt" as const)
  ),
  signKey: Options.text("sign-key").pipe(
    Options.withPseudoName("FILE"),
    Options.optional,
    Options.withDescription(
      "An ed25519 private key (from update-repo keygen): the package then carries a release signature " +
        "that update-self --public-key checks, bound to the version, --os, --arch and the payload's hash."
    )
  ),
  os: Options.text("os").pipe(
    Options.withPseudoName("OS"),
    Options.optional,
    Options.withDescription("With --sign-key: Go's OS name of the payload binary (default: this machine's).")
  ),
  arch: Options.text("arch").pipe(
    Options.withPseudoName("ARCH"),
    Options.optional,
    Options.withDescription("With --sign-key: Go's architecture name of the payload binary (default: this machine's).")
  )
}

/** The command line of serve-package. */
export const command = Command.make("serve-package", options, serve).pipe(
  Command.withDescription(
    "Serve one update payload over the Omaha protocol, for Flatcar's update_engine or any Omaha client."
  )
)

const exitCodes: ReadonlyArray<ExitStatusRow> = [
  [Exit.Ok, "stopped by SIGINT or SIGTERM"],
  [Exit.Unexpected, "unexpected error"],
  [Exit.Usage, "invalid command line (missing or malformed flags, a version that is not semantic, a bad address or URL, an unreadable --sign-key)"],
  [Exit.PayloadUnavailable, "payload missing or unreadable"],
  [Exit.CannotListen, "cannot listen on the address (in use, not local, or a privileged port)"]
]

/** Runs serve-package with the process's arguments. */
export const main = (argv: ReadonlyArray<string>): void =>
  runCommand(
    { name: "serve-package", exitStatus, interrupted: Exit.Ok },
    CommandLine.run(command, { name: "serve-package", version: packageVersion, footer: exitStatusHelp(exitCodes) })(argv)
      .pipe(Effect.provide(NodeContext.layer))
  )
