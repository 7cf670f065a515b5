/**
 * `fleet-server`: the fleet update server. `serve` runs the Omaha endpoint,
 * hosted payloads and the admin API on one listener, over the embedded
 * database in a data directory (`--data`, default `./fleet-data`) or a
 * PostgreSQL server (`--database-url`); `token create` makes an API token
 * and prints it once (only its hash is stored). The admin commands (`apply`,
 * `app`, `group`, `rollout`, ...) are in `FleetAdmin.ts`. `fleet-server
 * --help` shows the way from nothing to a machine updating.
 */
import { type CliApp, Command, Options } from "@effect/cli"
import { HttpMiddleware, HttpServer, type HttpServerError } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Config, Console, Context, Effect, Layer, Match, Option, Redacted, Schema } from "effect"
import * as NodeOs from "node:os"
import * as Path from "node:path"
import * as Auth from "../fleet/Auth.js"
import * as OmahaClient from "../client/OmahaClient.js"
import * as Database from "../fleet/Database.js"
import * as FleetUpdater from "../fleet/FleetUpdater.js"
import type { Role } from "../fleet/Model.js"
import * as Payloads from "../fleet/Payloads.js"
import * as Retention from "../fleet/Retention.js"
import * as Server from "../fleet/Server.js"
import { Store } from "../fleet/Store.js"
import * as Sync from "../fleet/Sync.js"
import { packageVersion } from "../internal/version.js"
import * as OmahaHandler from "../server/OmahaHandler.js"
import * as FleetAdmin from "./FleetAdmin.js"
import * as CommandLine from "./internal/commandLine.js"
import { type ExitStatusRow, exitStatusHelp } from "./internal/exitStatusHelp.js"
import { integerAtLeast, withDefault } from "./internal/flags.js"
import { formatBytes } from "./internal/format.js"
import * as LogLines from "./internal/logLines.js"
import * as Upstream from "./internal/upstream.js"
import { type Ending, ExitStatus } from "./internal/runCommand.js"
import { CannotListen, describeServeError, InvalidListenAddress, parseListenAddress } from "./ServePackage.js"

/** A size that is not a number of bytes with an optional K, M or G. */
export class InvalidSize extends Schema.TaggedError<InvalidSize>()("InvalidSize", {
  flag: Schema.String,
  value: Schema.String
}) {
  override get message(): string {
    return `invalid ${this.flag} ${JSON.stringify(this.value)}: give bytes, or a number with K, M or G (e.g. 4G)`
  }
}

/** A command line that names no known subcommand. */
export class UnknownCommand extends Schema.TaggedError<UnknownCommand>()("UnknownCommand", {
  command: Schema.String
}) {
  override get message(): string {
    return this.command === ""
      ? "say what to do: serve, token create, apply, or an admin command; see fleet-server --help"
      : `unknown command ${JSON.stringify(this.command)}: use serve, token create, apply, or an admin command; see fleet-server --help`
  }
}

const sizePattern = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i
const sizeUnits: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Reads `4G`, `512M`, `1048576`: binary units, bytes without one. */
export const parseSize = (flag: string, value: string): Effect.Effect<number, InvalidSize> => {
  const m = sizePattern.exec(value.trim())
  const bytes = m === null ? Number.NaN : Math.floor(Number(m[1]) * sizeUnits[m[2]!.toLowerCase()]!)
  return Number.isSafeInteger(bytes) && bytes > 0 ? Effect.succeed(bytes) : Effect.fail(new InvalidSize({ flag, value }))
}

/** Exit statuses of fleet-server (also in `--help` and the README). */
export const Exit = {
  ...ExitStatus,
  /** The database cannot be reached, refuses us, or cannot be migrated. */
  Database: 3,
  /** The listen address is in use, not local, or needs privileges. */
  CannotListen: 4,
  /** The data directory is in use by another process, or cannot be created or written. */
  DataDirectory: 5,
  ...FleetAdmin.AdminExit
} as const

/** Every failure fleet-server can end with. */
export type FleetServerError =
  | Database.DatabaseError
  | InvalidListenAddress
  | OmahaHandler.InvalidBaseUrl
  | InvalidSize
  | CannotListen
  | Payloads.PayloadStorageFailed
  | UnknownCommand
  | DatabaseFailed
  | Sync.InvalidSyncChannel
  | Sync.InvalidSyncApp
  | OmahaClient.InvalidServerUrl
  | FleetAdmin.AdminError

/** A statement failed while a command ran (not at start: the database went away, say). */
export class DatabaseFailed extends Schema.TaggedError<DatabaseFailed>()("DatabaseFailed", {
  reason: Schema.String
}) {
  override get message(): string {
    return `the database failed: ${this.reason}`
  }
}

/** The exit status of each failure. */
export const exitStatus: (error: FleetServerError) => number = Match.type<FleetServerError>().pipe(
  Match.tagsExhaustive({
    DatabaseUrlInvalid: () => Exit.Usage,
    InvalidListenAddress: () => Exit.Usage,
    InvalidBaseUrl: () => Exit.Usage,
    InvalidSize: () => Exit.Usage,
    UnknownCommand: () => Exit.Usage,
    InvalidSyncChannel: () => Exit.Usage,
    InvalidSyncApp: () => Exit.Usage,
    InvalidServerUrl: () => Exit.Usage,
    DatabaseUnavailable: () => Exit.Database,
    MigrationFailed: () => Exit.Database,
    DatabaseFailed: () => Exit.Database,
    CannotListen: () => Exit.CannotListen,
    DataDirectoryLocked: () => Exit.DataDirectory,
    DataDirectoryUnusable: () => Exit.DataDirectory,
    PayloadStorageFailed: () => Exit.DataDirectory,
    ...FleetAdmin.adminExitCases
  })
)

/** How fleet-server ends: a stop by SIGINT or SIGTERM is a normal end. */
export const ending: Ending<FleetServerError> = { name: "fleet-server", exitStatus, interrupted: Exit.Ok }

const exitCodes: ReadonlyArray<ExitStatusRow> = [
  [Exit.Ok, "stopped by SIGINT/SIGTERM (serve), or done"],
  [Exit.Unexpected, "unexpected error"],
  [Exit.Usage, "invalid command line (flags, listen address, base URL, database URL, size, sync URL, channel or app)"],
  [Exit.Database, "the database cannot be reached, refuses the connection, or cannot be migrated"],
  [Exit.CannotListen, "cannot listen on the address (in use, not local, or a privileged port)"],
  [Exit.DataDirectory, "the data directory is in use by another process, or cannot be created or written"],
  ...FleetAdmin.adminExitCodes
]

/** The `--help` footer of every fleet-server command. */
export const footer = exitStatusHelp(exitCodes)

/** The default data directory. */
export const defaultDataDir = "./fleet-data"

/** The default listen address: this machine only (`0.0.0.0:8000` serves the network). */
export const defaultListenAddress = "localhost:8000"

// -- where the data is --------------------------------------------------------

const dataOption = Options.directory("data", { exists: "either" }).pipe(
  Options.withPseudoName("DIR"),
  Options.withDescription(
    "The data directory: the embedded database (DIR/pgdata, one process at a time) and the hosted payloads (DIR/payloads)."
  ),
  withDefault(defaultDataDir)
)

const databaseUrlOption = Options.redacted("database-url").pipe(
  Options.withPseudoName("URL"),
  Options.withFallbackConfig(Config.redacted("FLEET_DATABASE_URL")),
  Options.optional,
  Options.withDescription(
    "A PostgreSQL server (postgres://user:password@host:5432/db; or the FLEET_DATABASE_URL environment variable, " +
      "which keeps the password out of the process list) instead of the embedded database. Replicas share it."
  )
)

interface Storage {
  readonly data: string
  readonly databaseUrl: Option.Option<Redacted.Redacted<string>>
}

const databaseLayer = (storage: Storage) =>
  Option.match(storage.databaseUrl, {
    onNone: () => Database.layerPglite({ dataDir: storage.data }),
    onSome: (url) => Database.layerPostgres({ url, applicationName: "fleet-server" })
  })

const describeDatabase = (storage: Storage) =>
  Option.match(storage.databaseUrl, {
    onNone: () => Effect.succeed(`embedded, in ${Database.dataDirPaths(storage.data).database}`),
    onSome: (url) => Effect.map(Database.describeUrl(Redacted.value(url)), (where) => `PostgreSQL at ${where}`)
  })

const databaseFailed = (error: { readonly message: string }) => new DatabaseFailed({ reason: error.message })

// -- serve --------------------------------------------------------------------

const urlHost = (host: string) => (host.includes(":") ? `[${host}]` : host)

interface ServeSettings extends Storage {
  readonly listenAddress: string
  readonly baseUrl: Option.Option<string>
  readonly trustedProxies: ReadonlyArray<string>
  readonly maxUploadSize: string
  readonly shutdownGrace: number
  readonly logFormat: LogLines.LogFormat
  readonly metricsOpen: boolean
  readonly syncFrom: Option.Option<string>
  readonly syncChannels: ReadonlyArray<string>
  readonly syncApp: string
  readonly syncInterval: number
  readonly syncHostPayloads: boolean
  readonly retainInstancesDays: number
  readonly retainHistoryDays: number
}

/** Opens the database, starts the server, says where it is, and serves until interrupted. */
export const serve = (settings: ServeSettings) =>
  Effect.gen(function*() {
    const listen = yield* parseListenAddress(settings.listenAddress)
    const baseUrl = Option.isSome(settings.baseUrl)
      ? Option.some(yield* OmahaHandler.parseBaseUrl(settings.baseUrl.value))
      : Option.none<string>()
    const maxUploadBytes = yield* parseSize("--max-upload-size", settings.maxUploadSize)
    const database = yield* describeDatabase(settings)
    const payloadDirectory = Path.join(settings.data, "payloads")
    const syncFrom = Option.isSome(settings.syncFrom)
      ? Option.some(yield* OmahaClient.parseServerUrl(settings.syncFrom.value))
      : Option.none<string>()
    const syncChannels = yield* Effect.forEach(
      settings.syncChannels.length === 0 ? ["stable"] : settings.syncChannels,
      Sync.parseSyncChannel
    )
    const syncApp = yield* Sync.parseSyncApp(settings.syncApp)

    const server = Server.layer({
      host: listen.host,
      port: listen.port,
      payloadDirectory,
      maxUploadBytes,
      trustedProxies: settings.trustedProxies,
      shutdownGrace: settings.shutdownGrace * 1000,
      metricsOpen: settings.metricsOpen,
      ...(Option.isSome(baseUrl) ? { publicBaseUrl: baseUrl.value } : {})
    })
    const sync = Option.match(syncFrom, {
      onNone: () => Layer.empty,
      onSome: (url) =>
        Sync.layer({
          appId: syncApp,
          channels: syncChannels,
          hostPayloads: settings.syncHostPayloads,
          interval: `${settings.syncInterval} seconds`
        }).pipe(Layer.provide(Upstream.layer({ url })))
    })
    const retention = Retention.layer({
      instanceDays: settings.retainInstancesDays,
      historyDays: settings.retainHistoryDays
    })
    const all = Layer.mergeAll(sync, retention).pipe(
      Layer.provideMerge(server),
      Layer.provide(FleetUpdater.layer()),
      Layer.provideMerge(Server.layerOperations()),
      Layer.provide(NodeHttpClient.layer),
      Layer.provideMerge(databaseLayer(settings)),
      // Nothing exports traces from this command, so request spans would only cost time.
      HttpMiddleware.withTracerDisabledWhen(() => true)
    )
    const context = yield* Layer.build(all).pipe(
      Effect.catchTags({
        ServeError: (e: HttpServerError.ServeError) =>
          Effect.fail(new CannotListen({ address: settings.listenAddress, reason: describeServeError(e) })),
        SqlError: (e) => Effect.fail(databaseFailed(e))
      })
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    const port = address._tag === "TcpAddress" ? address.port : listen.port
    const wildcard = listen.host === "0.0.0.0" || listen.host === "::"
    const origin = Option.getOrElse(baseUrl, () => `http://${urlHost(wildcard ? NodeOs.hostname() : listen.host)}:${port}/`)
    yield* Console.error(
      `fleet-server: listening on ${urlHost(listen.host)}:${port}; dashboard at ${origin}; ` +
        `API at ${new URL("api/", origin).href}; ` +
        `database ${database}; payloads in ${payloadDirectory} (uploads up to ${formatBytes(maxUploadBytes)}); ` +
        `metrics at ${new URL("metrics", origin).href}${settings.metricsOpen ? " (open)" : " (viewer token)"}`
    )
    if (Option.isSome(syncFrom)) {
      yield* Console.error(
        `fleet-server: syncing ${syncChannels.map((c) => `${c.channel}:${c.arch}`).join(", ")} from ${syncFrom.value} ` +
          `every ${settings.syncInterval} s${settings.syncHostPayloads ? ", payloads hosted here" : ""}`
      )
    }
    const tokens = yield* Context.get(context, Store).listTokens().pipe(Effect.mapError(databaseFailed))
    if (tokens.length === 0) {
      yield* Console.error(
        "fleet-server: no API token yet: stop the server and run `fleet-server token create --role admin` " +
          "with the same --data or --database-url"
      )
    }
    yield* Console.log(`# Put these lines in /etc/flatcar/update.conf on the machines to update (GROUP: a group's track):`)
    yield* Console.log(`SERVER=${new URL("v1/update/", origin).href}`)
    yield* Console.log(`GROUP=stable`)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(LogLines.layer(settings.logFormat))
  )

const serveCommand = Command.make("serve", {
  listenAddress: Options.text("listen-address").pipe(
    Options.withPseudoName("HOST:PORT"),
    Options.withDescription("host:port to listen on. The default serves this machine only; 0.0.0.0:8000 serves the network."),
    withDefault(defaultListenAddress)
  ),
  data: dataOption,
  databaseUrl: databaseUrlOption,
  baseUrl: Options.text("base-url").pipe(
    Options.withPseudoName("URL"),
    Options.optional,
    Options.withDescription(
      "The URL machines reach this server at (behind a proxy); payload URLs are built from it instead of the request's Host."
    )
  ),
  trustedProxies: Options.text("trusted-proxy").pipe(
    Options.withPseudoName("ADDRESS"),
    Options.repeated,
    Options.withDescription(
      "A proxy address whose X-Forwarded-For, -Proto and -Host headers are believed; repeat for several."
    )
  ),
  maxUploadSize: Options.text("max-upload-size").pipe(
    Options.withPseudoName("SIZE"),
    Options.withDescription("The largest payload upload (K, M and G are powers of 1024); larger ones are refused with 413."),
    withDefault("4G", "4G (4 GiB)")
  ),
  shutdownGrace: integerAtLeast("shutdown-grace", 0).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription("Seconds a stop waits for downloads in progress."),
    withDefault(30)
  ),
  logFormat: Options.choice("log-format", ["logfmt", "json"]).pipe(
    Options.withDescription("Format of the log on stderr."),
    withDefault("logfmt" as const)
  ),
  metricsOpen: Options.boolean("metrics-open").pipe(
    Options.withDescription("Serve /metrics without a token (by default a viewer or admin token is needed).")
  ),
  syncFrom: Options.text("sync-from").pipe(
    Options.withPseudoName("URL"),
    Options.optional,
    Options.withDescription(
      "Mirror channels of an upstream Omaha server (Flatcar's public one, another fleet-server, a serve-package): " +
        "new packages with their floors, and the channel moved."
    )
  ),
  syncChannels: Options.text("sync-channel").pipe(
    Options.withPseudoName("NAME[:ARCH][=TRACK]"),
    Options.repeated,
    Options.withDescription(
      "A channel to mirror (ARCH amd64 or arm64, default amd64), following the upstream track TRACK (default NAME); " +
        "repeat for several. Default: stable."
    )
  ),
  syncApp: Options.text("sync-app").pipe(
    Options.withPseudoName("APP_ID"),
    Options.withDescription("The application whose channels are mirrored (created when missing)."),
    withDefault(Sync.flatcarAppId, "Flatcar's")
  ),
  syncInterval: integerAtLeast("sync-interval", 60).pipe(
    Options.withPseudoName("SECONDS"),
    Options.withDescription("Seconds between syncs, fuzzed by 10 %; the first runs 5 s after start."),
    withDefault(3600)
  ),
  syncHostPayloads: Options.boolean("sync-host-payloads").pipe(
    Options.withDescription(
      "Download mirrored payloads into DIR/payloads (verified against the upstream's size and hashes), so machines fetch them here."
    )
  ),
  retainInstancesDays: integerAtLeast("retain-instances-days", 0).pipe(
    Options.withPseudoName("DAYS"),
    Options.withDescription("Forget machines not seen for this many days (0 keeps them)."),
    withDefault(Retention.defaultInstanceDays)
  ),
  retainHistoryDays: integerAtLeast("retain-history-days", 0).pipe(
    Options.withPseudoName("DAYS"),
    Options.withDescription("Remove status history, events and activity older than this many days (0 keeps them)."),
    withDefault(Retention.defaultHistoryDays)
  )
}, serve).pipe(Command.withDescription(
  "Serve Omaha update checks at /v1/update/, hosted payloads at /packages/, and the admin API at /api/ " +
    "(OpenAPI document at /api/openapi.json, /health without a token), until SIGINT or SIGTERM."
))

// -- token create -------------------------------------------------------------

interface TokenSettings extends Storage {
  readonly role: Role
  readonly name: Option.Option<string>
}

/** Creates a token, prints it once on stdout, and says on stderr what was stored. */
export const createToken = (settings: TokenSettings) =>
  Effect.gen(function*() {
    const { stored, token } = yield* Auth.createToken({ role: settings.role, name: Option.getOrUndefined(settings.name) }).pipe(
      Effect.catchAll((e) => (e._tag === "SqlError" ? Effect.fail(databaseFailed(e)) : Effect.die(e)))
    )
    yield* Console.log(token)
    yield* Console.error(
      `fleet-server: created ${stored.role} token ${stored.id}${stored.name === "" ? "" : ` (${stored.name})`}; ` +
        "it is shown this once: only its SHA-256 is stored"
    )
  }).pipe(
    Effect.provide(Store.Default.pipe(Layer.provide(databaseLayer(settings)))),
    Effect.provide(LogLines.layer("logfmt"))
  )

const tokenCreateCommand = Command.make("create", {
  role: Options.choice("role", ["admin", "viewer"]).pipe(
    Options.withDescription("admin may change everything; viewer may only read.")
  ),
  name: Options.text("name").pipe(
    Options.withPseudoName("NAME"),
    Options.optional,
    Options.withDescription("What the token is for (shown in GET /api/tokens).")
  ),
  data: dataOption,
  databaseUrl: databaseUrlOption
}, createToken).pipe(Command.withDescription(
  "Create an API token and print it on stdout; only its SHA-256 is stored. With the embedded database, run it " +
    "while the server is stopped (the data directory is one process's); more tokens can be made through POST /api/tokens."
))

// -- the overview -------------------------------------------------------------

/** `fleet-server --help`: what it is, its commands, and the way from nothing to a machine updating. */
export const overview = `fleet-server ${packageVersion}

An Omaha update server for a fleet (Flatcar Container Linux or any Omaha client):
applications, channels, groups with rollout policies, packages, and a record of every machine.

USAGE
  fleet-server serve [options]                       serve updates, payloads and the admin API
  fleet-server token create --role admin|viewer      make an API token (printed once)
  fleet-server serve --help, fleet-server token create --help    their options

ADMIN COMMANDS (they talk to a running server's API: --server URL or FLEET_SERVER, default
http://localhost:8000; the token from FLEET_TOKEN or --token-file FILE; tables, or --json)
  fleet-server apply FILE [--dry-run]                make the server match a fleet file (JSON or YAML)
  fleet-server app|channel|group|package|instance list|show|create|update|delete
  fleet-server floor list|set|delete, fleet-server blocklist list|add|delete    a channel's floors and blocks
  fleet-server package add FILE --version V --app A [--channel C]    upload a payload
  fleet-server rollout pause|resume|status GROUP     stop, restart, or watch a group's rollout
  fleet-server activity                              the activity feed, newest first
  fleet-server NOUN --help, fleet-server NOUN VERB --help            their verbs and options

FROM NOTHING TO A MACHINE UPDATING
  # 1. A token (before serve: the embedded database is one process's), then the server:
  fleet-server token create --role admin --name me > admin.token
  fleet-server serve --listen-address 0.0.0.0:8000 &
  until curl -fs http://localhost:8000/health; do sleep 1; done

  # 2. The application, the payload, a channel and a group (Flatcar's app id; GROUP=stable machines):
  api() { curl -fsS -H "Authorization: Bearer $(cat admin.token)" -H 'Content-Type: application/json' "$@"; echo; }
  APP=http://localhost:8000/api/apps/%7Be96281a6-d1af-4bde-9a0a-97b76e56dc57%7D
  api -d '{"id": "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", "name": "Flatcar"}' http://localhost:8000/api/apps
  api -T flatcar_production_update.gz "$APP/packages/3815.2.1?arch=amd64&name=update.gz"
  api -d '{"name": "stable", "arch": "amd64", "package": "3815.2.1"}' "$APP/channels"
  api -d '{"name": "production", "track": "stable", "channel": "stable"}' "$APP/groups"

  # 3. On each machine, /etc/flatcar/update.conf (SERVER is what serve prints), then check:
  SERVER=http://<this host>:8000/v1/update/
  GROUP=stable
  update_engine_client -update

  Watch it: the dashboard at http://localhost:8000/ (sign in with the token), or api "$APP/instances";
  the whole API: http://localhost:8000/api/openapi.json;
  Prometheus metrics at /metrics (a viewer token, or serve --metrics-open).

MIRRORING AN UPSTREAM (Flatcar's public server, another fleet-server, a serve-package)
  fleet-server serve --sync-from URL --sync-channel stable:amd64 --sync-host-payloads

EXIT STATUS
${exitCodes.map(([status, meaning]) => `${String(status).padStart(5)}  ${meaning}`).join("\n")}
`

// -- the program ----------------------------------------------------------------

/**
 * The program for `argv` (as `process.argv`): `serve` and `token create` are
 * dispatched here, each its own @effect/cli command with its own help.
 */
export const program = (argv: ReadonlyArray<string>) => {
  const [node = "node", script = "fleet-server", first = "", second = ""] = argv
  const admin = FleetAdmin.dispatch(argv, footer)
  const run: Effect.Effect<void, FleetServerError | CommandLine.UsageError, CliApp.CliApp.Environment> =
    Option.isSome(admin)
      ? admin.value
      : first === "serve"
      ? CommandLine.run(serveCommand, { name: "fleet-server serve", version: packageVersion, footer })([
        node,
        script,
        ...argv.slice(3)
      ])
      : first === "token" && second === "create"
      ? CommandLine.run(tokenCreateCommand, { name: "fleet-server token create", version: packageVersion, footer })([
        node,
        script,
        ...argv.slice(4)
      ])
      : first === "--help" || first === "-h" || first === "help"
      ? Console.log(overview.trimEnd())
      : first === "--version"
      ? Console.log(packageVersion)
      : Effect.fail(new UnknownCommand({ command: first === "token" ? `token ${second}`.trim() : first }))
  return run.pipe(Effect.provide(NodeContext.layer))
}
