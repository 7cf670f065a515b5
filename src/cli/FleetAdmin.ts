/**
 * `fleet-server`'s admin commands: they talk to a running server's admin API
 * (`--server URL`, else `FLEET_SERVER`, else http://localhost:8000) with a
 * token from `--token-file FILE` or `FLEET_TOKEN`. `app`, `channel`,
 * `group`, `package`, `floor` and `instance` list, show, create, update and
 * delete what the API has; `package add` streams a payload with its
 * progress on stderr and may point a channel at it; `rollout` pauses,
 * resumes and reports a group's rollout; `activity` lists the feed; `apply`
 * makes a server match a fleet file (see `FleetFile.ts`). Tables for
 * people by default, the API's JSON with `--json`; a failure is one line
 * with the API's reason and a documented exit status.
 */
import { Args, type CliApp, Command, type HelpDoc, Options } from "@effect/cli"
import { FileSystem, type HttpClient } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Config, ConfigError, Console, Effect, Either, Match, Option, Redacted, Schema, Stream } from "effect"
import * as Path from "node:path"
import * as ExitCode from "../client/ExitCode.js"
import * as ApiClient from "../fleet/ApiClient.js"
import * as FleetFile from "../fleet/FleetFile.js"
import {
  type Activity,
  Arch,
  type Channel,
  FailureBrake,
  type Group,
  type GroupStatus,
  type InstanceDetail,
  type InstanceItem,
  MaintenanceWindow,
  type Package,
  type Policy,
  Status,
  type StatusCounts,
  statusNames,
  Weekday
} from "../fleet/Model.js"
import { describeFileError } from "../internal/fileError.js"
import { packageVersion } from "../internal/version.js"
import * as Progress from "../updater/Progress.js"
import * as CommandLine from "./internal/commandLine.js"
import type { ExitStatusRow } from "./internal/exitStatusHelp.js"
import { integerAtLeast, withDefault } from "./internal/flags.js"
import { formatBytes } from "./internal/format.js"
import * as Help from "./internal/help.js"
import { ExitStatus } from "./internal/runCommand.js"
import * as Table from "./internal/table.js"
import { withReleaseVersion } from "./internal/versionArgument.js"

// -- exit statuses and failures -------------------------------------------------

/** Exit statuses of the admin commands (beside `serve`'s 3 to 5; also in `--help` and the README). */
export const AdminExit = {
  /** The API refused the request (its reason and HTTP status are printed). */
  Refused: 6,
  /** The server cannot be reached, or what answered is not a fleet server. */
  Unreachable: 7,
  /** No token, an unreadable token file, or the server refused the token (401, 403). */
  Auth: 8,
  /** A file given (a fleet file, a payload) cannot be read, or the fleet file is not valid. */
  File: 9
} as const

/** The rows of the admin commands in the EXIT STATUS table. */
export const adminExitCodes: ReadonlyArray<ExitStatusRow> = [
  [AdminExit.Refused, "the API refused the request (the line says why, with the HTTP status)"],
  [AdminExit.Unreachable, "the server cannot be reached, or does not answer as a fleet server"],
  [AdminExit.Auth, "no API token (FLEET_TOKEN or --token-file), or the server refused it (401, 403)"],
  [AdminExit.File, "a file cannot be read, or the fleet file is not valid (its line and field are said)"]
]

/** No token was given. */
export class NoToken extends Schema.TaggedError<NoToken>()("NoToken", {}) {
  override get message(): string {
    return "no API token: set FLEET_TOKEN or give --token-file FILE (fleet-server token create --role admin makes one)"
  }
}

/** The token file cannot be read, or holds no token. */
export class TokenFileUnreadable extends Schema.TaggedError<TokenFileUnreadable>()("TokenFileUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read the token file ${this.path}: ${this.reason}`
  }
}

/** A file a command reads (a payload, a fleet file) cannot be read. */
export class FileUnreadable extends Schema.TaggedError<FileUnreadable>()("FileUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read ${this.path}: ${this.reason}`
  }
}

/** `apply` stopped at a change the server did not make; the changes before it were made. */
export class ApplyStopped extends Schema.TaggedError<ApplyStopped>()("ApplyStopped", {
  change: Schema.String,
  done: Schema.Number,
  cause: Schema.Union(ApiClient.Refused, ApiClient.Unreachable, ApiClient.UnexpectedAnswer)
}) {
  override get message(): string {
    return `apply stopped after ${this.done} change${this.done === 1 ? "" : "s"}, at ${this.change}: ${this.cause.message}`
  }
}

/** Every failure of an admin command. */
export type AdminError =
  | ApiClient.ClientError
  | ApiClient.InvalidApiUrl
  | NoToken
  | TokenFileUnreadable
  | FileUnreadable
  | FleetFile.FleetFileInvalid
  | ApplyStopped

const clientErrorStatus = (error: ApiClient.ClientError): number =>
  error._tag === "Refused"
    ? error.status === 401 || error.status === 403 ? AdminExit.Auth : AdminExit.Refused
    : AdminExit.Unreachable

/** The exit status of each admin failure, by tag (for `fleet-server`'s exhaustive match). */
export const adminExitCases: { readonly [K in AdminError["_tag"]]: (error: Extract<AdminError, { _tag: K }>) => number } = {
  Refused: clientErrorStatus,
  Unreachable: clientErrorStatus,
  UnexpectedAnswer: clientErrorStatus,
  InvalidApiUrl: () => ExitStatus.Usage,
  NoToken: () => AdminExit.Auth,
  TokenFileUnreadable: () => AdminExit.Auth,
  FileUnreadable: () => AdminExit.File,
  FleetFileInvalid: () => AdminExit.File,
  ApplyStopped: (e) => clientErrorStatus(e.cause)
}

/** The exit status of an admin failure. */
export const adminExitStatus: (error: AdminError) => number = Match.type<AdminError>().pipe(Match.tagsExhaustive(adminExitCases))

// -- shared options -------------------------------------------------------------

/** An environment variable for a flag's fallback; set but empty counts as not set. */
const fromEnv = (name: string) =>
  Config.string(name).pipe(
    Config.mapOrFail((value) =>
      value.trim() === "" ? Either.left(ConfigError.MissingData([name], `${name} is empty`)) : Either.right(value.trim())
    )
  )

/** The server a command talks to when neither `--server` nor `FLEET_SERVER` says. */
export const defaultServer = "http://localhost:8000"

const connection = {
  server: Options.text("server").pipe(
    Options.withPseudoName("URL"),
    Options.withDescription("The fleet server (its API is at URL/api/)."),
    Options.withFallbackConfig(fromEnv("FLEET_SERVER")),
    withDefault(defaultServer, `$FLEET_SERVER, else ${defaultServer}`)
  ),
  tokenFile: Options.text("token-file").pipe(
    Options.withPseudoName("FILE"),
    Options.optional,
    Options.withDescription(
      "A file holding the API token (fleet-server token create > FILE); without it, the FLEET_TOKEN environment variable."
    )
  )
}

const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("Print the API's JSON instead of a table, for scripts.")
)

const appOption = Options.text("app").pipe(
  Options.withPseudoName("APP"),
  Options.withFallbackConfig(fromEnv("FLEET_APP")),
  Options.withDescription("The application's id (Flatcar's is {e96281a6-d1af-4bde-9a0a-97b76e56dc57}); or FLEET_APP.")
)

const archOption = Options.choice("arch", Arch.literals).pipe(
  Options.optional,
  Options.withDescription("Which arch, when the name exists for several.")
)

interface Connection {
  readonly server: string
  readonly tokenFile: Option.Option<string>
}

const readToken = (connection: Connection) =>
  Effect.gen(function*() {
    if (Option.isSome(connection.tokenFile)) {
      const path = connection.tokenFile.value
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(path).pipe(
        Effect.mapError((e) => new TokenFileUnreadable({ path, reason: describeFileError(e) }))
      )
      const token = text.trim()
      if (token === "" || /\s/.test(token)) {
        return yield* new TokenFileUnreadable({ path, reason: token === "" ? "it is empty" : "it holds more than one word" })
      }
      return Redacted.make(token)
    }
    const fromEnv = yield* Config.option(Config.redacted("FLEET_TOKEN")).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isNone(fromEnv) || Redacted.value(fromEnv.value).trim() === "") return yield* new NoToken()
    return Redacted.make(Redacted.value(fromEnv.value).trim())
  })

/** The client for a command's connection options. */
const connect = (connection: Connection) =>
  Effect.gen(function*() {
    // A URL that cannot be used is a usage error even before the token is looked for.
    yield* ApiClient.parseServerUrl(connection.server)
    const token = yield* readToken(connection)
    return yield* ApiClient.make({ server: connection.server, token })
  })

/** A call with its failures as the commands report them. */
const call = <A, E, R>(client: ApiClient.Client, effect: Effect.Effect<A, E, R>) =>
  ApiClient.normalize(client.server)(effect)

const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))

const print = (text: string) => Console.log(text.replace(/\n$/, ""))

// -- formatting -----------------------------------------------------------------

/** A time for a table: `2024-05-01 12:00:00Z`. */
export const formatTime = (date: Date | undefined): string =>
  date === undefined ? "-" : date.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z")

/** Seconds for people: `45 s`, `15 min`, `1 h`, `1 h 30 min`, `2 d`. */
export const formatSeconds = (seconds: number): string => {
  if (seconds < 60 || seconds % 60 !== 0) return `${seconds} s`
  const minutes = seconds / 60
  if (minutes < 60) return `${minutes} min`
  if (minutes % (24 * 60) === 0) return `${minutes / (24 * 60)} d`
  const hours = Math.floor(minutes / 60)
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`
}

const quote = (text: string) => JSON.stringify(text)

const channelLabel = (channel: Pick<Channel, "name" | "arch">) => `${quote(channel.name)} (${channel.arch})`

const windowText = (w: Policy["windows"][number]) => `${w.days.join(",")} ${w.start}-${w.end} ${w.timeZone}`

const policyLines = (policy: Policy): Array<readonly [string, string]> => [
  ["updates", policy.updatesEnabled ? "enabled" : "disabled"],
  ["limit", `${policy.maxUpdatesPerPeriod} per ${formatSeconds(policy.periodSeconds)}`],
  ["concurrent", policy.maxConcurrentUpdates === undefined ? "as the limit" : String(policy.maxConcurrentUpdates)],
  ["update timeout", formatSeconds(policy.updateTimeoutSeconds)],
  ["safe mode", policy.safeMode ? "on" : "off"],
  ["rollout", `${policy.rolloutPercent}%`],
  ["downgrade", policy.allowDowngrade ? "allowed" : "no"],
  [
    "failure brake",
    policy.failureBrake === undefined
      ? "none"
      : `pause when over ${policy.failureBrake.ratio * 100}% of at least ${policy.failureBrake.minAttempts} finished attempts failed`
  ],
  ["windows", policy.windows.length === 0 ? "any time" : policy.windows.map(windowText).join("; ")]
]

// -- parsing flag values ----------------------------------------------------------

const usage = (command: string, reason: string) => new CommandLine.UsageError({ command, reason })

const durationPattern = /^(\d+)\s*(s|m|min|h|d)?$/i
const durationUnits: Record<string, number> = { "": 1, s: 1, m: 60, min: 60, h: 3600, d: 86400 }

/** `900`, `15m`, `1h`, `2d` as seconds. */
export const parseSeconds = (command: string, flag: string, text: string) => {
  const m = durationPattern.exec(text.trim())
  const seconds = m === null ? Number.NaN : Number(m[1]) * durationUnits[(m[2] ?? "").toLowerCase()]!
  return Number.isSafeInteger(seconds) && seconds >= 1
    ? Effect.succeed(seconds)
    : Effect.fail(usage(command, `${flag}: ${quote(text)} is not a duration (900, 15m, 1h, 2d)`))
}

const onOff = (flag: string) =>
  Options.choice(flag, ["on", "off"]).pipe(Options.map((v) => v === "on"), Options.optional)

const dayIndex = (day: string) => Weekday.literals.indexOf(day.toLowerCase() as Weekday)

/** `mon-fri 22:00-04:00 Europe/Berlin` (days as a range or a comma list, or `daily`; the zone UTC when left out). */
export const parseWindow = (command: string, text: string) =>
  Effect.suspend(() => {
    const fail = (why: string) =>
      Effect.fail(usage(command, `--window ${quote(text)}: ${why} (e.g. "mon-fri 22:00-04:00 Europe/Berlin")`))
    const m = /^\s*(\S+)\s+(\d\d:\d\d)-(\d\d:\d\d)(?:\s+(\S+))?\s*$/.exec(text)
    if (m === null) return fail("write DAYS HH:MM-HH:MM [TIME ZONE]")
    const days: Array<Weekday> = []
    for (const part of m[1]!.toLowerCase() === "daily" ? ["mon-sun"] : m[1]!.split(",")) {
      const [from, to = from] = part.split("-")
      const a = dayIndex(from!)
      const b = dayIndex(to!)
      if (a < 0 || b < 0 || b < a) return fail(`${quote(part)} is not a day or a range of days (mon to sun)`)
      for (let d = a; d <= b; d++) if (!days.includes(Weekday.literals[d]!)) days.push(Weekday.literals[d]!)
    }
    const time = /^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/
    if (!time.test(m[2]!) || !time.test(m[3]!)) return fail("times are HH:MM, 00:00 to 24:00")
    const timeZone = m[4] ?? "UTC"
    try {
      new Intl.DateTimeFormat("en", { timeZone })
    } catch {
      return fail(`unknown time zone ${quote(timeZone)}`)
    }
    return Effect.succeed(MaintenanceWindow.make({ days, start: m[2]!, end: m[3]!, timeZone }))
  })

/** `0.2:5` or `20%:5` (pause when over 20 % of at least 5 finished attempts failed), or `off`. */
export const parseBrake = (command: string, text: string) => {
  if (text === "off") return Effect.succeed(null)
  const m = /^\s*(\d+(?:\.\d+)?)(%?)\s*:\s*(\d+)\s*$/.exec(text)
  const ratio = m === null ? Number.NaN : Number(m[1]) / (m[2] === "%" ? 100 : 1)
  const minAttempts = m === null ? Number.NaN : Number(m[3])
  return ratio >= 0 && ratio <= 1 && Number.isSafeInteger(minAttempts) && minAttempts >= 1
    ? Effect.succeed(FailureBrake.make({ ratio, minAttempts }))
    : Effect.fail(usage(command, `--failure-brake ${quote(text)}: write RATIO:ATTEMPTS (0.2:5 or 20%:5), or off`))
}

const policyOptions = {
  updates: onOff("updates").pipe(Options.withDescription("Whether the group's machines get updates at all.")),
  maxUpdates: integerAtLeast("max-updates", 0).pipe(
    Options.withPseudoName("N"),
    Options.optional,
    Options.withDescription("Grants per period, at most (a new group: 2).")
  ),
  period: Options.text("period").pipe(
    Options.withPseudoName("DURATION"),
    Options.optional,
    Options.withDescription("The period of --max-updates: seconds, or 15m, 1h, 1d (a new group: 15m).")
  ),
  maxConcurrent: Options.text("max-concurrent").pipe(
    Options.withPseudoName("N|none"),
    Options.optional,
    Options.withDescription("Updates in progress at once, at most; none: as many as --max-updates.")
  ),
  updateTimeout: Options.text("update-timeout").pipe(
    Options.withPseudoName("DURATION"),
    Options.optional,
    Options.withDescription("How long a granted update counts as in progress (a new group: 1h).")
  ),
  safeMode: onOff("safe-mode").pipe(
    Options.withDescription("One update at a time until the first attempt of a rollout finished (a new group: on).")
  ),
  rolloutPercent: Options.float("rollout-percent").pipe(
    Options.withPseudoName("PERCENT"),
    Options.optional,
    Options.withDescription("The share of the group's machines a rollout reaches, 0 to 100 (a new group: 100).")
  ),
  allowDowngrade: onOff("allow-downgrade").pipe(
    Options.withDescription("Whether a channel pointing to an older package brings machines back to it.")
  ),
  failureBrake: Options.text("failure-brake").pipe(
    Options.withPseudoName("RATIO:ATTEMPTS|off"),
    Options.optional,
    Options.withDescription("Pause the rollout when over RATIO of at least ATTEMPTS finished attempts failed (0.2:5).")
  ),
  windows: Options.text("window").pipe(
    Options.withPseudoName("WINDOW"),
    Options.repeated,
    Options.withDescription(
      "When grants may happen: \"mon-fri 22:00-04:00 Europe/Berlin\" (repeat for several; they replace the group's)."
    )
  ),
  noWindows: Options.boolean("no-windows").pipe(Options.withDescription("Grants at any time (clears the windows)."))
}

type PolicyFlags = Command.Command.ParseConfig<typeof policyOptions>

/** The policy fields the flags set, as the API's requests take them. */
const policyFromFlags = (command: string, flags: PolicyFlags) =>
  Effect.gen(function*() {
    const policy: Record<string, unknown> = {}
    if (Option.isSome(flags.updates)) policy["updatesEnabled"] = flags.updates.value
    if (Option.isSome(flags.maxUpdates)) policy["maxUpdatesPerPeriod"] = flags.maxUpdates.value
    if (Option.isSome(flags.period)) policy["periodSeconds"] = yield* parseSeconds(command, "--period", flags.period.value)
    if (Option.isSome(flags.maxConcurrent)) {
      const text = flags.maxConcurrent.value
      if (text === "none") policy["maxConcurrentUpdates"] = null
      else if (/^\d+$/.test(text)) policy["maxConcurrentUpdates"] = Number(text)
      else return yield* usage(command, `--max-concurrent: ${quote(text)} is not a number or none`)
    }
    if (Option.isSome(flags.updateTimeout)) {
      policy["updateTimeoutSeconds"] = yield* parseSeconds(command, "--update-timeout", flags.updateTimeout.value)
    }
    if (Option.isSome(flags.safeMode)) policy["safeMode"] = flags.safeMode.value
    if (Option.isSome(flags.rolloutPercent)) {
      const percent = flags.rolloutPercent.value
      if (!(percent >= 0 && percent <= 100)) return yield* usage(command, `--rollout-percent must be 0 to 100, not ${percent}`)
      policy["rolloutPercent"] = percent
    }
    if (Option.isSome(flags.allowDowngrade)) policy["allowDowngrade"] = flags.allowDowngrade.value
    if (Option.isSome(flags.failureBrake)) policy["failureBrake"] = yield* parseBrake(command, flags.failureBrake.value)
    if (flags.noWindows && flags.windows.length > 0) return yield* usage(command, "--window and --no-windows cannot be used together")
    if (flags.noWindows) policy["windows"] = []
    if (flags.windows.length > 0) policy["windows"] = yield* Effect.forEach(flags.windows, (w) => parseWindow(command, w))
    return policy as FleetFile.PolicyRequest
  })

// -- the commands -----------------------------------------------------------------

/** An admin command: its words (`group create`) and its @effect/cli command. */
interface AdminCommand {
  readonly words: string
  readonly command: Command.Command<string, HttpClient.HttpClient | FileSystem.FileSystem, AdminError | CommandLine.UsageError, unknown>
}

const commands: Array<AdminCommand> = []

const define = <const Config extends Command.Command.Config>(
  words: string,
  description: string,
  config: Config,
  handler: (
    args: Command.Command.ParseConfig<Config>,
    name: string
  ) => Effect.Effect<void, AdminError | CommandLine.UsageError, HttpClient.HttpClient | FileSystem.FileSystem>
) => {
  const name = `fleet-server ${words}`
  const command = Command.make(words.split(" ").at(-1)!, config, (args) => handler(args as never, name)).pipe(
    Command.withDescription(description)
  )
  commands.push({ words, command: command as never })
}

// -- app

const appRows = (apps: ReadonlyArray<{ id: string; name: string; description: string; createdAt: Date }>) =>
  Table.render(
    ["id", "name", "description", "created"],
    apps.map((a) => [a.id, a.name, Table.cell(a.description), formatTime(a.createdAt)]),
    "no applications"
  )

const appFacts = (a: { id: string; name: string; description: string; createdAt: Date }) =>
  Table.facts([["id", a.id], ["name", a.name], ["description", a.description], ["created", formatTime(a.createdAt)]])

define("app list", "List the applications.", { ...connection, json: jsonOption }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const apps = yield* call(client, client.apps.listApps())
    yield* o.json ? printJson(apps) : print(appRows(apps))
  }))

const appArg = Args.text({ name: "APP" }).pipe(Args.withDescription("The application's id."))

define("app show", "Show an application.", { ...connection, json: jsonOption, app: appArg }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const app = yield* call(client, client.apps.getApp({ path: { app: o.app } }))
    yield* o.json ? printJson(app) : print(appFacts(app))
  }))

define("app create", "Create an application.", {
  ...connection,
  json: jsonOption,
  id: Options.text("id").pipe(
    Options.withPseudoName("APP"),
    Options.withDescription("The Omaha app id machines send ({e96281a6-d1af-4bde-9a0a-97b76e56dc57} for Flatcar).")
  ),
  name: Options.text("name").pipe(Options.withPseudoName("NAME"), Options.withDescription("What people call it.")),
  description: Options.text("description").pipe(Options.withPseudoName("TEXT"), Options.optional)
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const app = yield* call(
      client,
      client.apps.createApp({
        payload: { id: o.id, name: o.name, ...Option.match(o.description, { onNone: () => ({}), onSome: (description) => ({ description }) }) }
      })
    )
    yield* o.json ? printJson(app) : Console.log(`created application ${app.id} (${quote(app.name)})`)
  }))

define("app update", "Change an application's name or description.", {
  ...connection,
  json: jsonOption,
  app: appArg,
  name: Options.text("name").pipe(Options.withPseudoName("NAME"), Options.optional),
  description: Options.text("description").pipe(Options.withPseudoName("TEXT"), Options.optional)
}, (o, name) =>
  Effect.gen(function*() {
    if (Option.isNone(o.name) && Option.isNone(o.description)) return yield* usage(name, "say what to change: --name or --description")
    const client = yield* connect(o)
    const app = yield* call(
      client,
      client.apps.updateApp({
        path: { app: o.app },
        payload: {
          ...Option.match(o.name, { onNone: () => ({}), onSome: (name) => ({ name }) }),
          ...Option.match(o.description, { onNone: () => ({}), onSome: (description) => ({ description }) })
        }
      })
    )
    yield* o.json ? printJson(app) : Console.log(`updated application ${app.id} (${quote(app.name)})`)
  }))

define("app delete", "Delete an application with its packages, channels, groups and instances.", {
  ...connection,
  app: appArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    yield* call(client, client.apps.deleteApp({ path: { app: o.app } }))
    yield* Console.log(`deleted application ${o.app}`)
  }))

// -- channel

const channelArg = Args.text({ name: "CHANNEL" }).pipe(Args.withDescription("The channel's name."))

const channelRows = (channels: ReadonlyArray<Channel>) =>
  Table.render(
    ["name", "arch", "package", "color", { header: "floors", align: "right" }, "blocked", "updated"],
    channels.map((c) => [
      c.name,
      c.arch,
      Table.cell(c.package),
      Table.cell(c.color),
      String(c.floors.length),
      Table.cell(c.blocklist.join(",")),
      formatTime(c.updatedAt)
    ]),
    "no channels"
  )

const channelText = (c: Channel) =>
  Table.facts([
    ["channel", c.name],
    ["arch", c.arch],
    ["package", c.package ?? "none"],
    ["color", c.color],
    ["blocked", c.blocklist.length === 0 ? "none" : c.blocklist.join(", ")],
    ["updated", formatTime(c.updatedAt)]
  ]) + "\n" + Table.render(["floor", "reason"], c.floors.map((f) => [f.version, Table.cell(f.reason)]), "no floors")

const archParam = (arch: Option.Option<Arch>) => Option.match(arch, { onNone: () => ({}), onSome: (arch) => ({ arch }) })

define("channel list", "List an application's channels.", { ...connection, json: jsonOption, app: appOption }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channels = yield* call(client, client.channels.listChannels({ path: { app: o.app } }))
    yield* o.json ? printJson(channels) : print(channelRows(channels))
  }))

define("channel show", "Show a channel with its floors and blocklist.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: channelArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.getChannel({ path: { app: o.app, name: o.channel }, urlParams: archParam(o.arch) })
    )
    yield* o.json ? printJson(channel) : print(channelText(channel))
  }))

const packageOption = Options.text("package").pipe(
  Options.withPseudoName("VERSION"),
  Options.optional,
  Options.withDescription("The version of the package the channel points to (uploaded with package add).")
)
const colorOption = Options.text("color").pipe(Options.withPseudoName("COLOR"), Options.optional)

define("channel create", "Create a channel for one arch.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: Options.choice("arch", Arch.literals).pipe(
    Options.withDescription("The arch of the machines it serves; all serves every arch.")
  ),
  package: packageOption,
  color: colorOption,
  channel: channelArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.createChannel({
        path: { app: o.app },
        payload: {
          name: o.channel,
          arch: o.arch,
          ...Option.match(o.package, { onNone: () => ({}), onSome: (p) => ({ package: p }) }),
          ...Option.match(o.color, { onNone: () => ({}), onSome: (color) => ({ color }) })
        }
      })
    )
    yield* o.json
      ? printJson(channel)
      : Console.log(`created channel ${channelLabel(channel)}${channel.package === undefined ? "" : ` on ${channel.package}`}`)
  }))

define("channel update", "Point a channel at another package, or change its colour.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  package: packageOption,
  noPackage: Options.boolean("no-package").pipe(Options.withDescription("Point the channel at no package.")),
  color: colorOption,
  channel: channelArg
}, (o, name) =>
  Effect.gen(function*() {
    if (Option.isSome(o.package) && o.noPackage) return yield* usage(name, "--package and --no-package cannot be used together")
    if (Option.isNone(o.package) && !o.noPackage && Option.isNone(o.color)) {
      return yield* usage(name, "say what to change: --package, --no-package or --color")
    }
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.updateChannel({
        path: { app: o.app, name: o.channel },
        urlParams: archParam(o.arch),
        payload: {
          ...(o.noPackage ? { package: null } : Option.match(o.package, { onNone: () => ({}), onSome: (p) => ({ package: p }) })),
          ...Option.match(o.color, { onNone: () => ({}), onSome: (color) => ({ color }) })
        }
      })
    )
    yield* o.json
      ? printJson(channel)
      : Console.log(`channel ${channelLabel(channel)} points to ${channel.package ?? "no package"}`)
  }))

define("channel delete", "Delete a channel (refused while it is the last of its name a group follows).", {
  ...connection,
  app: appOption,
  arch: archOption,
  channel: channelArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    yield* call(client, client.channels.deleteChannel({ path: { app: o.app, name: o.channel }, urlParams: archParam(o.arch) }))
    yield* Console.log(`deleted channel ${quote(o.channel)}${Option.match(o.arch, { onNone: () => "", onSome: (a) => ` (${a})` })}`)
  }))

// -- floor

const floorChannel = Options.text("channel").pipe(Options.withPseudoName("CHANNEL"), Options.withDescription("The channel."))
const versionArg = Args.text({ name: "VERSION" })

define("floor list", "List a channel's floors.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: floorChannel
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.getChannel({ path: { app: o.app, name: o.channel }, urlParams: archParam(o.arch) })
    )
    yield* o.json
      ? printJson(channel.floors)
      : print(Table.render(["version", "reason"], channel.floors.map((f) => [f.version, Table.cell(f.reason)]), "no floors"))
  }))

define(
  "floor set",
  "Make a version a floor of a channel (machines pass through it on the way up), or change its reason.",
  {
    ...connection,
    json: jsonOption,
    app: appOption,
    arch: archOption,
    channel: floorChannel,
    reason: Options.text("reason").pipe(Options.withPseudoName("TEXT"), Options.optional),
    version: versionArg
  },
  (o) =>
    Effect.gen(function*() {
      const client = yield* connect(o)
      const channel = yield* call(
        client,
        client.channels.setFloor({
          path: { app: o.app, name: o.channel, version: o.version },
          urlParams: archParam(o.arch),
          payload: { reason: Option.getOrElse(o.reason, () => "") }
        })
      )
      yield* o.json ? printJson(channel) : Console.log(`${o.version} is a floor of channel ${channelLabel(channel)}`)
    })
)

define("floor delete", "Remove a floor from a channel.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: floorChannel,
  version: versionArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.removeFloor({ path: { app: o.app, name: o.channel, version: o.version }, urlParams: archParam(o.arch) })
    )
    yield* o.json ? printJson(channel) : Console.log(`${o.version} is no longer a floor of channel ${channelLabel(channel)}`)
  }))

// -- blocklist

define("blocklist list", "List the versions blocked on a channel (never offered there).", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: floorChannel
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.getChannel({ path: { app: o.app, name: o.channel }, urlParams: archParam(o.arch) })
    )
    yield* o.json
      ? printJson(channel.blocklist)
      : print(Table.render(["version"], channel.blocklist.map((v) => [v]), "no versions blocked"))
  }))

define("blocklist add", "Block a version on a channel: machines following it are never offered that package.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: floorChannel,
  version: versionArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.blockVersion({ path: { app: o.app, name: o.channel, version: o.version }, urlParams: archParam(o.arch) })
    )
    yield* o.json ? printJson(channel) : Console.log(`${o.version} is blocked on channel ${channelLabel(channel)}`)
  }))

define("blocklist delete", "Unblock a version on a channel.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  arch: archOption,
  channel: floorChannel,
  version: versionArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const channel = yield* call(
      client,
      client.channels.unblockVersion({ path: { app: o.app, name: o.channel, version: o.version }, urlParams: archParam(o.arch) })
    )
    yield* o.json ? printJson(channel) : Console.log(`${o.version} is no longer blocked on channel ${channelLabel(channel)}`)
  }))

// -- group

const groupArg = Args.text({ name: "GROUP" }).pipe(Args.withDescription("The group's name."))

const groupRows = (groups: ReadonlyArray<Group>) =>
  Table.render(
    ["name", "track", "channel", "updates", "limit", { header: "rollout", align: "right" }],
    groups.map((g) => [
      g.name,
      g.track,
      g.channel,
      g.paused ? "paused" : g.policy.updatesEnabled ? "enabled" : "disabled",
      `${g.policy.maxUpdatesPerPeriod} per ${formatSeconds(g.policy.periodSeconds)}`,
      `${g.policy.rolloutPercent}%`
    ]),
    "no groups"
  )

const groupText = (g: Group) =>
  Table.facts([
    ["group", g.name],
    ["track", g.track],
    ["channel", g.channel],
    ["description", g.description],
    ["paused", g.paused ? `yes${g.pausedReason === undefined ? "" : `: ${g.pausedReason}`}` : "no"],
    ...policyLines(g.policy),
    ["created", formatTime(g.createdAt)]
  ])

define("group list", "List an application's groups.", { ...connection, json: jsonOption, app: appOption }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const groups = yield* call(client, client.groups.listGroups({ path: { app: o.app } }))
    yield* o.json ? printJson(groups) : print(groupRows(groups))
  }))

define("group show", "Show a group and its rollout policy.", { ...connection, json: jsonOption, app: appOption, group: groupArg }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const group = yield* call(client, client.groups.getGroup({ path: { app: o.app, name: o.group } }))
    yield* o.json ? printJson(group) : print(groupText(group))
  }))

const descriptionOption = Options.text("description").pipe(Options.withPseudoName("TEXT"), Options.optional)
const trackOption = Options.text("track").pipe(
  Options.withPseudoName("TRACK"),
  Options.optional,
  Options.withDescription("What the group's machines send (GROUP= in Flatcar's update.conf); a new group: its name.")
)

define("group create", "Create a group of machines with its rollout policy.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  channel: Options.text("channel").pipe(Options.withPseudoName("CHANNEL"), Options.withDescription("The channel it follows.")),
  track: trackOption,
  description: descriptionOption,
  ...policyOptions,
  group: groupArg
}, (o, name) =>
  Effect.gen(function*() {
    const policy = yield* policyFromFlags(name, o)
    const client = yield* connect(o)
    const group = yield* call(
      client,
      client.groups.createGroup({
        path: { app: o.app },
        payload: {
          name: o.group,
          channel: o.channel,
          ...Option.match(o.track, { onNone: () => ({}), onSome: (track) => ({ track }) }),
          ...Option.match(o.description, { onNone: () => ({}), onSome: (description) => ({ description }) }),
          ...(Object.keys(policy).length === 0 ? {} : { policy })
        }
      })
    )
    yield* o.json
      ? printJson(group)
      : Console.log(`created group ${quote(group.name)} (track ${quote(group.track)}, channel ${quote(group.channel)})`)
  }))

define("group update", "Change a group; what is not given keeps its value, policy fields included.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  newName: Options.text("new-name").pipe(Options.withPseudoName("NAME"), Options.optional),
  channel: Options.text("channel").pipe(Options.withPseudoName("CHANNEL"), Options.optional),
  track: trackOption,
  description: descriptionOption,
  ...policyOptions,
  group: groupArg
}, (o, name) =>
  Effect.gen(function*() {
    const policy = yield* policyFromFlags(name, o)
    const patch = {
      ...Option.match(o.newName, { onNone: () => ({}), onSome: (name) => ({ name }) }),
      ...Option.match(o.channel, { onNone: () => ({}), onSome: (channel) => ({ channel }) }),
      ...Option.match(o.track, { onNone: () => ({}), onSome: (track) => ({ track }) }),
      ...Option.match(o.description, { onNone: () => ({}), onSome: (description) => ({ description }) }),
      ...(Object.keys(policy).length === 0 ? {} : { policy })
    }
    if (Object.keys(patch).length === 0) return yield* usage(name, "say what to change (see --help)")
    const client = yield* connect(o)
    const group = yield* call(client, client.groups.updateGroup({ path: { app: o.app, name: o.group }, payload: patch }))
    yield* o.json ? printJson(group) : Console.log(`updated group ${quote(group.name)}`)
  }))

define("group delete", "Delete a group (its machines keep their records).", { ...connection, app: appOption, group: groupArg }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    yield* call(client, client.groups.deleteGroup({ path: { app: o.app, name: o.group } }))
    yield* Console.log(`deleted group ${quote(o.group)}`)
  }))

// -- rollout

define("rollout pause", "Pause a group's rollout: no grants until it is resumed.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  reason: Options.text("reason").pipe(Options.withPseudoName("TEXT"), Options.optional),
  group: groupArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const group = yield* call(
      client,
      client.groups.pauseGroup({
        path: { app: o.app, name: o.group },
        payload: Option.match(o.reason, { onNone: () => null, onSome: (reason) => ({ reason }) })
      })
    )
    yield* o.json
      ? printJson(group)
      : Console.log(`paused group ${quote(group.name)}${group.pausedReason === undefined ? "" : `: ${group.pausedReason}`}`)
  }))

define("rollout resume", "Resume a paused group (paused by an operator or by the failure brake).", {
  ...connection,
  json: jsonOption,
  app: appOption,
  group: groupArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const group = yield* call(client, client.groups.resumeGroup({ path: { app: o.app, name: o.group } }))
    yield* o.json ? printJson(group) : Console.log(`resumed group ${quote(group.name)}`)
  }))

/** A group's machines in the words of a rollout: statuses folded into granted, in progress, complete, failed, on hold, idle. */
export const rolloutColumns = (s: StatusCounts) => ({
  granted: s.granted,
  inProgress: s.downloading + s.downloaded + s.installed,
  complete: s.complete,
  failed: s.error,
  onHold: s.onHold,
  idle: s.undefined
})

const rolloutText = (group: Group, status: GroupStatus) => {
  const c = rolloutColumns(status.statuses)
  const s = status.statuses
  const progress = [["downloading", s.downloading], ["downloaded", s.downloaded], ["installed", s.installed]] as const
  const detail = progress.filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`).join(", ")
  const facts = Table.facts([
    ["group", `${group.name} (track ${quote(group.track)}, channel ${quote(group.channel)})`],
    ["rollout", group.paused
      ? `paused${group.pausedReason === undefined ? "" : `: ${group.pausedReason}`}`
      : !group.policy.updatesEnabled
      ? "updates disabled"
      : `${group.policy.rolloutPercent}% of the group, ${group.policy.maxUpdatesPerPeriod} per ${formatSeconds(group.policy.periodSeconds)}`],
    ["machines", String(status.total)],
    ["granted", String(c.granted)],
    ["in progress", `${c.inProgress}${detail === "" ? "" : ` (${detail})`}`],
    ["complete", String(c.complete)],
    ["failed", String(c.failed)],
    ["on hold", String(c.onHold)],
    ["idle", String(c.idle)],
    ["at", formatTime(status.at)]
  ])
  const right = (header: string) => ({ header, align: "right" as const })
  const versions = Table.render(
    ["version", right("machines"), right("granted"), right("in progress"), right("complete"), right("failed"), right("on hold"), right("idle")],
    status.versions.map((v) => {
      const r = rolloutColumns(v.statuses)
      return [v.version, v.count, r.granted, r.inProgress, r.complete, r.failed, r.onHold, r.idle].map(String)
    }),
    "no machines have checked in"
  )
  const holds = status.holds.length === 0
    ? ""
    : "\n" + Table.render(["hold", right("machines")], status.holds.map((h) => [h.reason, String(h.count)]))
  const errors = status.errors.length === 0
    ? ""
    : "\n" + Table.render(
      ["error", right("machines")],
      status.errors.map((e) => [ExitCode.describe(e.code), String(e.count)])
    )
  return `${facts}\n${versions}${holds}${errors}`
}

define("rollout status", "Where a group's rollout stands: its machines granted, in progress, complete, failed, on hold, by version.", {
  ...connection,
  json: Options.boolean("json").pipe(Options.withDescription("Print the API's group status JSON, for scripts.")),
  app: appOption,
  group: groupArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const path = { path: { app: o.app, name: o.group } }
    if (o.json) return yield* printJson(yield* call(client, client.groups.groupStatus(path)))
    const [group, status] = yield* Effect.all([
      call(client, client.groups.getGroup(path)),
      call(client, client.groups.groupStatus(path))
    ], { concurrency: 2 })
    yield* print(rolloutText(group, status))
  }))

// -- package

const packageRows = (packages: ReadonlyArray<Package>) =>
  Table.render(
    ["version", "arch", "name", { header: "size", align: "right" }, "sha256", "where", "created"],
    packages.map((p) => [
      p.version,
      p.arch,
      p.name,
      formatBytes(p.size),
      p.sha256,
      p.url === undefined ? "hosted" : p.url,
      formatTime(p.createdAt)
    ]),
    "no packages"
  )

const packageText = (p: Package) =>
  Table.facts([
    ["version", p.version],
    ["arch", p.arch],
    ["name", p.name],
    ["size", `${p.size} bytes (${formatBytes(p.size)})`],
    ["sha1", p.sha1],
    ["sha256", p.sha256],
    ["where", p.url ?? "hosted by the server"],
    ["delta", p.action.isDelta ? "yes" : "no"],
    ["needs admin", p.action.needsAdmin ? "yes" : "no"],
    ["payload backoff", p.action.disablePayloadBackoff ? "disabled" : "enabled"],
    ...(p.action.metadataSize === undefined ? [] : [["metadata size", p.action.metadataSize] as const]),
    ...(p.extraFiles.length === 0 ? [] : [["extra files", p.extraFiles.map((f) => f.name).join(", ")] as const]),
    ["created", formatTime(p.createdAt)]
  ])

define("package list", "List an application's packages.", { ...connection, json: jsonOption, app: appOption }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const packages = yield* call(client, client.packages.listPackages({ path: { app: o.app } }))
    yield* o.json ? printJson(packages) : print(packageRows(packages))
  }))

define("package show", "Show a package.", { ...connection, json: jsonOption, app: appOption, arch: archOption, version: versionArg }, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const found = yield* call(
      client,
      client.packages.getPackage({ path: { app: o.app, version: o.version }, urlParams: archParam(o.arch) })
    )
    yield* o.json ? printJson(found) : print(packageText(found))
  }))

/** Where upload progress goes: stderr, a bar on a terminal, a line per 10 % otherwise. */
const stderrProgress = (label: string) =>
  Effect.sync(() =>
    Progress.make(label, {
      write: (text) => process.stderr.write(text),
      isTTY: process.stderr.isTTY === true,
      columns: process.stderr.columns
    })
  )

define("package add", "Upload a payload file as a package (hashed by the server as it streams in).", {
  ...connection,
  json: jsonOption,
  app: appOption,
  version: Options.text("release-version").pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("The package's version (also given as --version VERSION).")
  ),
  arch: Options.choice("arch", Arch.literals).pipe(
    Options.withDescription("The arch of the machines it is for; all serves every arch."),
    withDefault("amd64" as Arch)
  ),
  name: Options.text("name").pipe(
    Options.withPseudoName("NAME"),
    Options.optional,
    Options.withDescription("The payload's name in manifests and in its URL; default: the file's name.")
  ),
  channel: Options.text("channel").pipe(
    Options.withPseudoName("CHANNEL"),
    Options.optional,
    Options.withDescription("Then point this channel (of the package's arch) at the new package.")
  ),
  delta: Options.boolean("delta").pipe(Options.withDescription("The payload is a delta (update_engine's IsDeltaPayload).")),
  metadataSize: Options.text("metadata-size").pipe(
    Options.withPseudoName("BYTES"),
    Options.optional,
    Options.withDescription("update_engine's MetadataSize of the payload.")
  ),
  metadataSignature: Options.text("metadata-signature").pipe(
    Options.withPseudoName("BASE64"),
    Options.optional,
    Options.withDescription("update_engine's MetadataSignatureRsa of the payload.")
  ),
  file: Args.text({ name: "FILE" }).pipe(Args.withDescription("The payload (Flatcar's flatcar_production_update.gz)."))
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const name = Option.getOrElse(o.name, () => Path.basename(o.file))
    const progress = yield* stderrProgress(`uploading ${name}`)
    const unreadable = (e: PlatformError) => new FileUnreadable({ path: o.file, reason: describeFileError(e) })
    const file = yield* ApiClient.fileBody(o.file, (sent, total) => progress.onProgress({ received: sent, total }))
      .pipe(Effect.mapError(unreadable))
    const body = Stream.mapError(file.body, unreadable)
    const size = file.size
    const stored = yield* client.upload({
      app: o.app,
      version: o.version,
      arch: o.arch,
      name,
      body,
      size,
      action: {
        ...(o.delta ? { isDelta: true } : {}),
        ...Option.match(o.metadataSize, { onNone: () => ({}), onSome: (metadataSize) => ({ metadataSize }) }),
        ...Option.match(o.metadataSignature, { onNone: () => ({}), onSome: (metadataSignatureRsa) => ({ metadataSignatureRsa }) })
      }
    }).pipe(Effect.ensuring(progress.done))
    yield* o.json
      ? printJson(stored)
      : Console.log(
        `uploaded ${stored.version} (${stored.arch}) as ${stored.name}: ${formatBytes(stored.size)}, sha256 ${stored.sha256}`
      )
    if (Option.isSome(o.channel)) {
      const channel = yield* call(
        client,
        client.channels.updateChannel({
          path: { app: o.app, name: o.channel.value },
          urlParams: stored.arch === "all" ? {} : { arch: stored.arch },
          payload: { package: stored.version }
        })
      )
      const line = `channel ${channelLabel(channel)} points to ${stored.version}`
      yield* o.json ? Console.error(`fleet-server: ${line}`) : Console.log(line)
    }
  }))

define("package register", "Register a payload hosted elsewhere (a web server, an object store, a CDN) by its URL and facts.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  version: Options.text("release-version").pipe(
    Options.withPseudoName("VERSION"),
    Options.withDescription("The package's version (also given as --version VERSION).")
  ),
  arch: Options.choice("arch", Arch.literals).pipe(
    Options.withDescription("The arch of the machines it is for; all serves every arch."),
    withDefault("amd64" as Arch)
  ),
  url: Options.text("url").pipe(Options.withPseudoName("URL"), Options.withDescription("Where machines download it.")),
  name: Options.text("name").pipe(
    Options.withPseudoName("NAME"),
    Options.optional,
    Options.withDescription("The payload's name in manifests; default: the URL's last segment.")
  ),
  size: integerAtLeast("size", 0).pipe(Options.withPseudoName("BYTES"), Options.withDescription("Its size in bytes.")),
  sha1: Options.text("sha1").pipe(Options.withPseudoName("BASE64"), Options.withDescription("Its SHA-1, base64.")),
  sha256: Options.text("sha256").pipe(Options.withPseudoName("BASE64"), Options.withDescription("Its SHA-256, base64."))
}, (o, name) =>
  Effect.gen(function*() {
    const payloadName = Option.getOrElse(o.name, () => (URL.canParse(o.url) ? Path.posix.basename(new URL(o.url).pathname) : ""))
    if (payloadName === "") return yield* usage(name, `--url ${quote(o.url)} names no file: give --name`)
    const client = yield* connect(o)
    const stored = yield* call(
      client,
      client.packages.registerPackage({
        path: { app: o.app },
        payload: { version: o.version, arch: o.arch, name: payloadName, url: o.url, size: o.size, sha1: o.sha1, sha256: o.sha256 }
      })
    )
    yield* o.json ? printJson(stored) : Console.log(`registered ${stored.version} (${stored.arch}) at ${stored.url ?? o.url}`)
  }))

define("package delete", "Delete a package (and its payload, once no package uses it).", {
  ...connection,
  app: appOption,
  arch: archOption,
  version: versionArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    yield* call(client, client.packages.deletePackage({ path: { app: o.app, version: o.version }, urlParams: archParam(o.arch) }))
    yield* Console.log(`deleted package ${o.version}`)
  }))

// -- instance

const instanceRows = (items: ReadonlyArray<InstanceItem>) =>
  Table.render(
    ["machine", "alias", "version", "status", "group", "last check", "hold"],
    items.map((i) => [
      i.machineId,
      Table.cell(i.alias),
      i.version,
      statusNames[i.status],
      Table.cell(i.group),
      formatTime(i.lastCheck),
      Table.cell(i.hold)
    ]),
    "no instances"
  )

const instanceText = (i: InstanceDetail) =>
  Table.facts([
    ["machine", i.machineId],
    ["alias", i.alias],
    ["ip", i.ip],
    ["version", i.version],
    ["status", statusNames[i.status]],
    ["group", i.group ?? "none"],
    ["track", i.track],
    ["arch", i.arch],
    ...(i.hold === undefined ? [] : [["hold", i.hold] as const]),
    ...(i.errorCode === undefined ? [] : [["error code", String(i.errorCode)] as const]),
    ...(i.grantedVersion === undefined ? [] : [["granted", `${i.grantedVersion} at ${formatTime(i.lastGrant)}`] as const]),
    ["oem", `${i.oem} ${i.oemVersion}`.trim()],
    ["first seen", formatTime(i.firstSeen)],
    ["last check", formatTime(i.lastCheck)]
  ]) + "\n" +
  Table.render(
    ["at", "status", "version", "error"],
    i.history.map((h) => [formatTime(h.at), statusNames[h.status], h.version, Table.cell(h.errorCode)]),
    "no history"
  )

define("instance list", "List an application's machines, newest check first.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  group: Options.text("group").pipe(Options.withPseudoName("GROUP"), Options.optional),
  status: Options.choice("status", Status.literals).pipe(Options.optional),
  version: Options.text("release-version").pipe(
    Options.withPseudoName("VERSION"),
    Options.optional,
    Options.withDescription("Only machines on this version (also given as --version VERSION).")
  ),
  page: integerAtLeast("page", 1).pipe(Options.withPseudoName("N"), withDefault(1)),
  perPage: integerAtLeast("per-page", 1).pipe(Options.withPseudoName("N"), withDefault(100))
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const page = yield* call(
      client,
      client.instances.listInstances({
        path: { app: o.app },
        urlParams: {
          ...Option.match(o.group, { onNone: () => ({}), onSome: (group) => ({ group }) }),
          ...Option.match(o.status, { onNone: () => ({}), onSome: (status) => ({ status }) }),
          ...Option.match(o.version, { onNone: () => ({}), onSome: (version) => ({ version }) }),
          page: o.page,
          perPage: o.perPage
        }
      })
    )
    if (o.json) return yield* printJson(page)
    yield* print(instanceRows(page.items))
    const pages = Math.max(1, Math.ceil(page.total / o.perPage))
    if (page.total > page.items.length) {
      yield* Console.log(
        `page ${o.page} of ${pages} (${page.total} instances)${o.page < pages ? `; --page ${o.page + 1} for more` : ""}`
      )
    }
  }))

const machineArg = Args.text({ name: "MACHINE" }).pipe(Args.withDescription("The machine id."))

define("instance show", "Show a machine with its status history.", {
  ...connection,
  json: jsonOption,
  app: appOption,
  machine: machineArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const instance = yield* call(client, client.instances.getInstance({ path: { app: o.app, machineId: o.machine } }))
    yield* o.json ? printJson(instance) : print(instanceText(instance))
  }))

define("instance delete", "Delete a machine's record (it is made again if the machine checks in).", {
  ...connection,
  app: appOption,
  machine: machineArg
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    yield* call(client, client.instances.deleteInstance({ path: { app: o.app, machineId: o.machine } }))
    yield* Console.log(`deleted instance ${o.machine}`)
  }))

// -- activity

define("activity", "List the activity feed, newest first: rollouts started, finished and paused, failures, channel moves.", {
  ...connection,
  json: jsonOption,
  app: Options.text("app").pipe(
    Options.withPseudoName("APP"),
    Options.withFallbackConfig(fromEnv("FLEET_APP")),
    Options.optional,
    Options.withDescription("Only this application's entries (or FLEET_APP).")
  ),
  limit: integerAtLeast("limit", 1).pipe(Options.withPseudoName("N"), withDefault(50))
}, (o) =>
  Effect.gen(function*() {
    const client = yield* connect(o)
    const entries: ReadonlyArray<Activity> = yield* call(
      client,
      client.admin.listActivity({
        urlParams: { ...Option.match(o.app, { onNone: () => ({}), onSome: (app) => ({ app }) }), limit: o.limit }
      })
    )
    yield* o.json ? printJson(entries) : print(
      Table.render(
        ["at", "severity", "kind", "group", "message"],
        entries.map((e) => [formatTime(e.at), e.severity, e.kind, Table.cell(e.group), e.message]),
        "no activity"
      )
    )
  }))

// -- apply

/** Reads and checks a fleet file. */
export const readFleetFile = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => new FileUnreadable({ path, reason: describeFileError(e) }))
    )
    return yield* Either.match(FleetFile.parse(path, text), { onLeft: Effect.fail, onRight: Effect.succeed })
  })

define(
  "apply",
  "Make the server match a fleet file (JSON or YAML): create or update its applications, channels, floors, " +
    "blocklists and groups, and print each change. Run again, it changes nothing. What the file does not list is " +
    "left alone; packages are uploaded with package add.",
  {
    ...connection,
    json: Options.boolean("json").pipe(Options.withDescription("Print the changes as JSON, for scripts.")),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print the changes without making them.")),
    file: Args.text({ name: "FILE" }).pipe(Args.withDescription("The fleet file (see fixtures/fleet/fleet.yaml)."))
  },
  (o) =>
    Effect.gen(function*() {
      const parsed = yield* readFleetFile(o.file)
      const client = yield* connect(o)
      const state = yield* FleetFile.fetchState(client, parsed.file)
      const plan = FleetFile.plan(parsed.file, state)
      if (plan.problems.length > 0) return yield* FleetFile.invalid(parsed, plan.problems)
      const done: Array<FleetFile.Change> = []
      const report = Effect.suspend(() =>
        printJson({ server: client.server, file: o.file, dryRun: o.dryRun, changes: plan.changes.map(FleetFile.toJson) })
      )
      // Changes are said under their application's id, as they are made.
      let shownApp: string | undefined = undefined
      const say = (change: FleetFile.Change) =>
        Effect.suspend(() => {
          const header = change.app === shownApp ? [] : [`${change.app}:`]
          shownApp = change.app
          return Console.log([...header, `  ${FleetFile.describe(change, false)}`].join("\n"))
        })
      for (const change of plan.changes) {
        if (!o.dryRun) {
          yield* FleetFile.makeChange(client, change).pipe(
            Effect.mapError((cause) => new ApplyStopped({ change: FleetFile.describe(change), done: done.length, cause }))
          )
          done.push(change)
        }
        if (!o.json) yield* say(change)
      }
      if (o.json) return yield* report
      const count = plan.changes.length
      const changes = `${count} change${count === 1 ? "" : "s"}`
      yield* Console.log(
        count === 0
          ? `no changes: ${client.server} matches ${o.file}`
          : o.dryRun
          ? `${changes} to make (dry run: nothing was changed)`
          : `made ${changes} on ${client.server}`
      )
    })
)

// -- dispatch -----------------------------------------------------------------------

/** The words of every admin command, as `fleet-server` dispatches them. */
export const adminCommands: ReadonlyArray<AdminCommand> = commands

/** What each noun's commands are about, for its help. */
const nounTopics: Readonly<Record<string, string>> = {
  app: "applications (Omaha app ids)",
  channel: "channels: for one arch, the package a group's machines are brought to",
  floor: "floors: versions every machine passes through on its way to a channel's package",
  group: "groups of machines: the track they send, the channel they follow, the rollout policy",
  package: "packages: payloads for a version and arch, hosted by the server or registered by URL",
  instance: "instances: the machines that checked in, with their status and history",
  rollout: "a group's rollout: pause, resume, and where it stands",
  blocklist: "versions never offered on a channel"
}

/** The nouns of the admin commands (`app`, `group`, ...) and their verbs. */
export const nouns: ReadonlyMap<string, ReadonlyArray<string>> = commands.reduce((map, c) => {
  const [noun, verb] = c.words.split(" ")
  if (verb !== undefined) map.set(noun!, [...(map.get(noun!) ?? []), verb])
  return map
}, new Map<string, Array<string>>())

const nounHelp = (noun: string) =>
  [
    `fleet-server ${noun}: ${nounTopics[noun] ?? noun}`,
    "",
    "USAGE",
    ...commands.filter((c) => c.words.startsWith(`${noun} `)).flatMap((c) =>
      Help.usageLines(c.command.descriptor, `fleet-server ${c.words}`).map((line) => `  ${line}`)
    ),
    "",
    `fleet-server ${noun} VERB --help shows a command's options. Every command takes --server URL and`,
    "--token-file FILE (or FLEET_SERVER and FLEET_TOKEN), and --app APP where it needs one (or FLEET_APP)."
  ].join("\n")

// Commands whose `--version V` is the package's version, not the program's.
const takesVersion = new Set(["package add", "package register", "instance list"])

/**
 * The program for an admin command line (`argv` as `process.argv`), or none
 * when its first word is no admin command. `footer` is the help's footer
 * (the exit statuses).
 */
export const dispatch = (argv: ReadonlyArray<string>, footer: HelpDoc.HelpDoc) => {
  const [node = "node", script = "fleet-server", first = "", second = ""] = argv
  const verbs = nouns.get(first)
  const single = commands.find((c) => c.words === first)
  if (verbs === undefined && single === undefined) return Option.none()
  const run = (command: AdminCommand, rest: ReadonlyArray<string>) =>
    CommandLine.run(command.command, { name: `fleet-server ${command.words}`, version: packageVersion, footer })(
      [node, script, ...(takesVersion.has(command.words) ? withReleaseVersion(rest) : rest)]
    )
  const program: Effect.Effect<
    void,
    AdminError | CommandLine.UsageError,
    HttpClient.HttpClient | FileSystem.FileSystem | CliApp.CliApp.Environment
  > = single !== undefined
    ? run(single, argv.slice(3))
    : second === "--help" || second === "-h" || second === "help"
    ? Console.log(nounHelp(first))
    : Option.match(Option.fromNullable(commands.find((c) => c.words === `${first} ${second}`)), {
      onSome: (command) => run(command, argv.slice(4)),
      onNone: () =>
        Effect.fail(
          new CommandLine.UsageError({
            command: `fleet-server ${first}`,
            reason: second === ""
              ? `say what to do with ${first}: ${verbs!.join(", ")}`
              : `unknown command ${quote(`${first} ${second}`)}: ${first} takes ${verbs!.join(", ")}`
          })
        )
    })
  return Option.some(program.pipe(Effect.provide(NodeHttpClient.layer)))
}
