/**
 * A fleet's setup as a file that can live in git: its applications, each
 * with its channels (and their floors and blocklists) and its groups (track,
 * channel, rollout policy), in the admin API's field names, as JSON or YAML.
 *
 * `parse` reads a file against a strict schema: unknown fields are refused,
 * and every problem is reported with its line, column and field. `plan`
 * compares a parsed file with what a server has and lists the changes that
 * make the server match it, as pure data (`describe` says each in a line).
 * `fetchState` asks a server what it has and `makeChange` makes one change,
 * both through the API client; `fleet-server apply` is the three in a row.
 *
 * What the file says about an object is the whole truth about it: a field
 * left out takes its default (an empty description or colour, the group's
 * name as its track, `Model.defaultPolicy` for each policy field, no failure
 * brake, no cap on concurrent updates, no maintenance windows), so deleting
 * a line puts the default back. Release state is the exception: a channel's
 * `package`, `floors` and `blocklist` are changed only when the file names
 * them (releases move channels with `package add --channel`), `package:
 * null` points a channel at nothing, and a list given is the whole list.
 * Objects the file does not list are never changed or deleted, and a
 * group's pause (`rollout pause`) is never touched.
 */
import { Data, Effect, Either, Option, ParseResult, Schema } from "effect"
import * as Yaml from "yaml"
import * as Version from "../protocol/Version.js"
import * as ApiClient from "./ApiClient.js"
import {
  Application,
  Arch,
  Channel,
  defaultPolicy,
  FailureBrake,
  Group,
  MaintenanceWindow,
  type Package,
  Policy
} from "./Model.js"

// -- the file's schema --------------------------------------------------------

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** A version as packages name it (`3815.2.1`, `1.2.0-rc.1`). */
export const VersionText = Schema.String.pipe(
  Schema.filter((s) => Option.isSome(Version.parseOption(s)) || `${JSON.stringify(s)} is not a version (such as 3815.2.1)`)
)

/** A floor of a channel: a version every machine passes through on its way to the channel's package. */
export const FileFloor = Schema.Struct({
  version: VersionText,
  reason: optional(Schema.String.pipe(Schema.maxLength(1000)))
})
export type FileFloor = typeof FileFloor.Type

/** A channel of an application, for one arch. */
export const FileChannel = Schema.Struct({
  name: Channel.fields.name,
  arch: Arch,
  /** The version the channel points to; left out, the channel's package is not changed; `null` points it at nothing. */
  package: optional(Schema.NullOr(VersionText)),
  color: optional(Schema.String.pipe(Schema.maxLength(50))),
  /** When given, the channel's whole list of floors. */
  floors: optional(Schema.Array(FileFloor)),
  /** When given, every version blocked on the channel. */
  blocklist: optional(Schema.Array(VersionText))
})
export type FileChannel = typeof FileChannel.Type

/** A group's rollout policy: each field left out takes its default (`Model.defaultPolicy`). */
export const FilePolicy = Schema.Struct({
  updatesEnabled: optional(Policy.fields.updatesEnabled),
  maxUpdatesPerPeriod: optional(Policy.fields.maxUpdatesPerPeriod),
  periodSeconds: optional(Policy.fields.periodSeconds),
  maxConcurrentUpdates: optional(Schema.NonNegativeInt),
  updateTimeoutSeconds: optional(Policy.fields.updateTimeoutSeconds),
  safeMode: optional(Policy.fields.safeMode),
  rolloutPercent: optional(Policy.fields.rolloutPercent),
  allowDowngrade: optional(Policy.fields.allowDowngrade),
  failureBrake: optional(FailureBrake),
  windows: optional(Schema.Array(MaintenanceWindow))
})
export type FilePolicy = typeof FilePolicy.Type

/** A group of an application's machines. */
export const FileGroup = Schema.Struct({
  name: Group.fields.name,
  description: optional(Schema.String.pipe(Schema.maxLength(2000))),
  /** What machines send (`GROUP=` in Flatcar's update.conf); the group's name when left out. */
  track: optional(Group.fields.track),
  /** The name of the channel the group follows. */
  channel: Group.fields.channel,
  policy: optional(FilePolicy)
})
export type FileGroup = typeof FileGroup.Type

/** An application, by its Omaha app id. */
export const FileApplication = Schema.Struct({
  id: Application.fields.id,
  name: Application.fields.name,
  description: optional(Application.fields.description),
  channels: optional(Schema.Array(FileChannel)),
  groups: optional(Schema.Array(FileGroup))
})
export type FileApplication = typeof FileApplication.Type

/** The whole file. */
export const FleetFile = Schema.Struct({
  apps: Schema.Array(FileApplication)
})
export type FleetFile = typeof FleetFile.Type

// -- problems and where they are ----------------------------------------------

/** A path into the file: keys and list indexes. */
export type Path = ReadonlyArray<string | number>

/** Something wrong with the file, at a field. */
export interface Problem {
  readonly path: Path
  readonly message: string
}

/** A place in the file, 1-based. */
export interface Location {
  readonly line: number
  readonly column: number
}

/** The file cannot be used: its syntax, a field, or what it refers to; the first problem, where it is. */
export class FleetFileInvalid extends Schema.TaggedError<FleetFileInvalid>()("FleetFileInvalid", {
  file: Schema.String,
  line: Schema.optional(Schema.Number),
  column: Schema.optional(Schema.Number),
  /** The field, as `apps[0].groups[1].policy.safeMode`; empty for the file as a whole. */
  field: Schema.String,
  reason: Schema.String,
  /** How many more problems there are. */
  more: Schema.Number
}) {
  override get message(): string {
    const at = this.line === undefined ? this.file : `${this.file}:${this.line}:${this.column ?? 1}`
    const more = this.more === 0 ? "" : ` (and ${this.more} more problem${this.more === 1 ? "" : "s"})`
    return `${at}: ${this.field === "" ? "" : `${this.field}: `}${this.reason}${more}`
  }
}

/** `apps[0].groups[1].policy.safeMode`. */
export const formatPath = (path: Path): string =>
  path.reduce<string>(
    (text, key) => (typeof key === "number" ? `${text}[${key}]` : text === "" ? key : `${text}.${key}`),
    ""
  )

/** A parsed file: its content, and where each of its fields is written. */
export interface Parsed {
  /** The file's name as messages say it. */
  readonly name: string
  readonly file: FleetFile
  /** Where a field is written (its nearest written parent when the field is missing). */
  readonly locate: (path: Path) => Location | undefined
}

/** The error for a list of problems (at least one), the first in the file first. */
export const invalid = (parsed: Pick<Parsed, "name" | "locate">, problems: ReadonlyArray<Problem>): FleetFileInvalid => {
  const located = problems.map((problem) => ({ problem, at: parsed.locate(problem.path) }))
  const sorted = [...located].sort((a, b) =>
    (a.at?.line ?? Infinity) - (b.at?.line ?? Infinity) || (a.at?.column ?? 0) - (b.at?.column ?? 0)
  )
  const first = sorted[0]!
  return new FleetFileInvalid({
    file: parsed.name,
    ...(first.at === undefined ? {} : { line: first.at.line, column: first.at.column }),
    field: formatPath(first.problem.path),
    reason: first.problem.message,
    more: problems.length - 1
  })
}

// -- parsing ------------------------------------------------------------------

const lowerFirst = (text: string) => text.charAt(0).toLowerCase() + text.slice(1)

// Schema's issues in the words of a file's reader: `expected a string, got 1`.
const issueProblems = (error: ParseResult.ParseError): Array<Problem> => {
  const byPath = new Map<string, { path: Path; expected: Array<string>; actual?: string; other: Array<string> }>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = issue.path as Path
    const key = JSON.stringify(path)
    const entry = byPath.get(key) ?? { path, expected: [], other: [] }
    byPath.set(key, entry)
    if (issue._tag === "Unexpected") {
      const known = [...issue.message.matchAll(/"([^"]*)"/g)].map((m) => m[1])
      entry.other.push(`unknown field${known.length === 0 ? "" : ` (known here: ${known.join(", ")})`}`)
    } else if (issue._tag === "Missing") {
      entry.other.push("missing: this field is required")
    } else {
      const m = /^Expected (.+?), actual (.+)$/s.exec(issue.message)
      if (m === null) {
        entry.other.push(lowerFirst(issue.message))
      } else {
        entry.expected.push(m[1]!)
        entry.actual = m[2]!
      }
    }
  }
  return [...byPath.values()].map(({ actual, expected, other, path }) => {
    if (other.length > 0) return { path, message: other[0]! }
    const choices = [...new Set(expected)]
    const what = choices.length === 1
      ? choices[0]!
      : `one of ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`
    return { path, message: `expected ${what}, got ${actual}` }
  })
}

const duplicates = <A>(items: ReadonlyArray<A>, key: (item: A) => string): Array<[index: number, first: number]> => {
  const seen = new Map<string, number>()
  const found: Array<[number, number]> = []
  items.forEach((item, index) => {
    const k = key(item)
    const first = seen.get(k)
    if (first === undefined) seen.set(k, index)
    else found.push([index, first])
  })
  return found
}

/** The effective track of a group of the file. */
export const trackOf = (group: Pick<FileGroup, "name" | "track">): string => group.track ?? group.name

// What the schema cannot say: names used twice.
const duplicateProblems = (file: FleetFile): Array<Problem> => {
  const problems: Array<Problem> = []
  for (const [index, first] of duplicates(file.apps, (a) => a.id)) {
    problems.push({ path: ["apps", index, "id"], message: `application ${JSON.stringify(file.apps[index]!.id)} is already listed at apps[${first}]` })
  }
  file.apps.forEach((app, a) => {
    const channels = app.channels ?? []
    for (const [index, first] of duplicates(channels, (c) => `${c.name}\0${c.arch}`)) {
      const c = channels[index]!
      problems.push({
        path: ["apps", a, "channels", index, "name"],
        message: `channel ${JSON.stringify(c.name)} (${c.arch}) is already listed at apps[${a}].channels[${first}]`
      })
    }
    channels.forEach((channel, c) => {
      for (const [index, first] of duplicates(channel.floors ?? [], (f) => f.version)) {
        problems.push({
          path: ["apps", a, "channels", c, "floors", index, "version"],
          message: `floor ${channel.floors![index]!.version} is already listed at floors[${first}]`
        })
      }
      for (const [index, first] of duplicates(channel.blocklist ?? [], (v) => v)) {
        problems.push({
          path: ["apps", a, "channels", c, "blocklist", index],
          message: `${channel.blocklist![index]} is already listed at blocklist[${first}]`
        })
      }
    })
    const groups = app.groups ?? []
    for (const [index, first] of duplicates(groups, (g) => g.name)) {
      problems.push({
        path: ["apps", a, "groups", index, "name"],
        message: `group ${JSON.stringify(groups[index]!.name)} is already listed at apps[${a}].groups[${first}]`
      })
    }
    for (const [index, first] of duplicates(groups, trackOf)) {
      if (groups[index]!.name === groups[first]!.name) continue
      problems.push({
        path: ["apps", a, "groups", index, groups[index]!.track === undefined ? "name" : "track"],
        message: `track ${JSON.stringify(trackOf(groups[index]!))} is already the track of group ${JSON.stringify(groups[first]!.name)}`
      })
    }
  })
  return problems
}

const locator = (doc: Yaml.Document.Parsed, lines: Yaml.LineCounter) => (path: Path): Location | undefined => {
  for (let length = path.length; length >= 0; length--) {
    const prefix = path.slice(0, length)
    // A field's key is where a reader looks for it; a list item has no key, so its value.
    const parent = prefix.length === 0 ? doc.contents : doc.getIn(prefix.slice(0, -1), true)
    const last = prefix.at(-1)
    let offset: number | undefined = undefined
    if (prefix.length === 0) {
      offset = doc.contents?.range?.[0]
    } else if (Yaml.isMap(parent)) {
      const pair = parent.items.find((item) => Yaml.isScalar(item.key) && item.key.value === last)
      const node = pair === undefined ? undefined : (pair.key as Yaml.Node)
      offset = node?.range?.[0]
    } else if (Yaml.isSeq(parent) && typeof last === "number") {
      const node = parent.items[last]
      offset = Yaml.isNode(node) ? node.range?.[0] : undefined
    }
    if (offset !== undefined) {
      const { col, line } = lines.linePos(offset)
      return { line, column: col }
    }
  }
  return undefined
}

// V8's JSON.parse messages end in `at position N` (or `(line L column C)`).
const jsonProblem = (text: string, error: unknown, name: string): FleetFileInvalid => {
  const message = error instanceof Error ? error.message : String(error)
  const lineColumn = /\(line (\d+) column (\d+)\)/.exec(message)
  const position = /at position (\d+)/.exec(message)
  let line: number | undefined = undefined
  let column: number | undefined = undefined
  if (lineColumn !== null) {
    line = Number(lineColumn[1])
    column = Number(lineColumn[2])
  } else if (position !== null) {
    const before = text.slice(0, Number(position[1]))
    line = before.split("\n").length
    column = before.length - before.lastIndexOf("\n")
  }
  const reason = message.replace(/\s*(?:in JSON )?(?:at position \d+)?\s*(?:\(line \d+ column \d+\))?$/, "")
  return new FleetFileInvalid({
    file: name,
    ...(line === undefined ? {} : { line, column: column ?? 1 }),
    field: "",
    reason: `not valid JSON: ${lowerFirst(reason)}`,
    more: 0
  })
}

/**
 * Reads a fleet file's text: JSON when `name` ends in `.json`, YAML
 * otherwise (one document; JSON is YAML too). The first problem found is
 * the error, with its line and column.
 */
export const parse = (name: string, text: string): Either.Either<Parsed, FleetFileInvalid> => {
  if (/\.json$/i.test(name)) {
    try {
      JSON.parse(text)
    } catch (error) {
      return Either.left(jsonProblem(text, error, name))
    }
  }
  const lines = new Yaml.LineCounter()
  const doc = Yaml.parseDocument(text, { lineCounter: lines, uniqueKeys: true })
  const locate = locator(doc, lines)
  const syntax = doc.errors[0]
  if (syntax !== undefined) {
    const { col, line } = lines.linePos(syntax.pos[0])
    return Either.left(
      new FleetFileInvalid({
        file: name,
        line,
        column: col,
        field: "",
        reason: `not valid YAML: ${lowerFirst(syntax.message.split("\n", 1)[0]!.replace(/ at line \d+, column \d+:?$/, ""))}`,
        more: doc.errors.length - 1
      })
    )
  }
  const content: unknown = doc.toJS({ maxAliasCount: 100 })
  if (content === null || content === undefined) {
    return Either.left(new FleetFileInvalid({ file: name, field: "", reason: "the file is empty: it needs an apps list", more: 0 }))
  }
  const decoded = Schema.decodeUnknownEither(FleetFile)(content, { onExcessProperty: "error", errors: "all" })
  if (Either.isLeft(decoded)) return Either.left(invalid({ name, locate }, issueProblems(decoded.left)))
  const problems = duplicateProblems(decoded.right)
  if (problems.length > 0) return Either.left(invalid({ name, locate }, problems))
  return Either.right({ name, file: decoded.right, locate })
}

// -- what a server has --------------------------------------------------------

/** What a server has of one application the file names; `application` absent when the server has none of that id. */
export interface ServerApplication {
  readonly application?: Pick<Application, "id" | "name" | "description"> | undefined
  readonly channels: ReadonlyArray<Pick<Channel, "name" | "arch" | "color" | "package" | "floors" | "blocklist">>
  readonly groups: ReadonlyArray<Pick<Group, "name" | "description" | "track" | "channel" | "policy">>
  readonly packages: ReadonlyArray<Pick<Package, "version" | "arch">>
}

/** What a server has, by application id, for the applications a file names. */
export type ServerState = ReadonlyMap<string, ServerApplication>

// -- changes ------------------------------------------------------------------

/** One field's value before and after; `from` absent for something created. */
export interface FieldChange {
  readonly field: string
  readonly from?: unknown
  readonly to: unknown
}

/** A policy as the API's requests take it: `null` clears `maxConcurrentUpdates` or `failureBrake`. */
export interface PolicyRequest {
  readonly updatesEnabled?: boolean
  readonly maxUpdatesPerPeriod?: number
  readonly periodSeconds?: number
  readonly maxConcurrentUpdates?: number | null
  readonly updateTimeoutSeconds?: number
  readonly safeMode?: boolean
  readonly rolloutPercent?: number
  readonly allowDowngrade?: boolean
  readonly failureBrake?: FailureBrake | null
  readonly windows?: ReadonlyArray<MaintenanceWindow>
}

/** A change that makes a server match the file, with the request that makes it. */
export type Change = Data.TaggedEnum<{
  CreateApplication: {
    readonly app: string
    readonly body: { readonly id: string; readonly name: string; readonly description: string }
  }
  UpdateApplication: {
    readonly app: string
    readonly patch: { readonly name?: string; readonly description?: string }
    readonly fields: ReadonlyArray<FieldChange>
  }
  CreateChannel: {
    readonly app: string
    readonly channel: string
    readonly arch: Arch
    readonly body: { readonly name: string; readonly arch: Arch; readonly color: string; readonly package?: string }
  }
  UpdateChannel: {
    readonly app: string
    readonly channel: string
    readonly arch: Arch
    readonly patch: { readonly package?: string | null; readonly color?: string }
    readonly fields: ReadonlyArray<FieldChange>
  }
  SetFloor: {
    readonly app: string
    readonly channel: string
    readonly arch: Arch
    readonly version: string
    readonly reason: string
    /** The floor's reason before, when the floor exists. */
    readonly previous: Option.Option<string>
  }
  RemoveFloor: {
    readonly app: string
    readonly channel: string
    readonly arch: Arch
    readonly version: string
  }
  BlockVersion: { readonly app: string; readonly channel: string; readonly arch: Arch; readonly version: string }
  UnblockVersion: { readonly app: string; readonly channel: string; readonly arch: Arch; readonly version: string }
  CreateGroup: {
    readonly app: string
    readonly group: string
    readonly body: {
      readonly name: string
      readonly description: string
      readonly track: string
      readonly channel: string
      readonly policy: PolicyRequest
    }
  }
  UpdateGroup: {
    readonly app: string
    readonly group: string
    readonly patch: {
      readonly description?: string
      readonly track?: string
      readonly channel?: string
      readonly policy?: PolicyRequest
    }
    readonly fields: ReadonlyArray<FieldChange>
  }
}>

/** Constructors and matching for {@link Change}. */
export const Change = Data.taggedEnum<Change>()

// -- planning -----------------------------------------------------------------

// Values compared as their JSON: classes and plain objects alike, keys in order.
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v) ?? "undefined"

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b)

// Plain data for output (a class instance as its fields).
const plain = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)))

const policyKeys = [
  "updatesEnabled",
  "maxUpdatesPerPeriod",
  "periodSeconds",
  "maxConcurrentUpdates",
  "updateTimeoutSeconds",
  "safeMode",
  "rolloutPercent",
  "allowDowngrade",
  "failureBrake",
  "windows"
] as const satisfies ReadonlyArray<keyof Policy>

/** The whole policy a file's group means: its fields over the defaults. */
export const policyOf = (policy: FilePolicy | undefined): Policy =>
  Policy.make({
    updatesEnabled: policy?.updatesEnabled ?? defaultPolicy.updatesEnabled,
    maxUpdatesPerPeriod: policy?.maxUpdatesPerPeriod ?? defaultPolicy.maxUpdatesPerPeriod,
    periodSeconds: policy?.periodSeconds ?? defaultPolicy.periodSeconds,
    ...(policy?.maxConcurrentUpdates === undefined ? {} : { maxConcurrentUpdates: policy.maxConcurrentUpdates }),
    updateTimeoutSeconds: policy?.updateTimeoutSeconds ?? defaultPolicy.updateTimeoutSeconds,
    safeMode: policy?.safeMode ?? defaultPolicy.safeMode,
    rolloutPercent: policy?.rolloutPercent ?? defaultPolicy.rolloutPercent,
    allowDowngrade: policy?.allowDowngrade ?? defaultPolicy.allowDowngrade,
    ...(policy?.failureBrake === undefined ? {} : { failureBrake: policy.failureBrake }),
    windows: policy?.windows ?? defaultPolicy.windows
  })

// The policy fields of `to` that differ from `from`, as a request and as field changes.
const policyDiff = (from: Policy, to: Policy) => {
  const request: Record<string, unknown> = {}
  const fields: Array<FieldChange> = []
  for (const key of policyKeys) {
    if (same(from[key], to[key])) continue
    request[key] = to[key] ?? null
    fields.push({ field: `policy.${key}`, from: plain(from[key]) ?? null, to: plain(to[key]) ?? null })
  }
  return { request: request as PolicyRequest, fields }
}

// A policy as a request: every field it has.
const policyRequest = (policy: Policy): PolicyRequest =>
  Object.fromEntries(policyKeys.flatMap((key) => (policy[key] === undefined ? [] : [[key, policy[key]]]))) as PolicyRequest

const packageExists = (packages: ServerApplication["packages"], version: string, arch: Arch) =>
  packages.some((p) => p.version === version && (p.arch === arch || p.arch === "all"))

const emptyServerApplication: ServerApplication = { channels: [], groups: [], packages: [] }

/** The changes that make a server match the file, or what in the file the server cannot take. */
export interface Plan {
  readonly changes: ReadonlyArray<Change>
  /** References the server cannot satisfy (a package it does not have, a channel no one defines). */
  readonly problems: ReadonlyArray<Problem>
}

/**
 * What makes `server` match `file` (see the module header): for each
 * application in the file's order, the application, then its channels with
 * their floors and blocklists, then its groups, so each change finds what
 * it refers to. Packages are never created: one the file
 * names and the server lacks is a problem, and nothing is planned.
 */
export const plan = (file: FleetFile, server: ServerState): Plan => {
  const changes: Array<Change> = []
  const problems: Array<Problem> = []
  file.apps.forEach((app, a) => {
    const has = server.get(app.id) ?? emptyServerApplication
    const at = (...path: Path): Path => ["apps", a, ...path]
    const description = app.description ?? ""
    if (has.application === undefined) {
      changes.push(Change.CreateApplication({ app: app.id, body: { id: app.id, name: app.name, description } }))
    } else {
      const fields: Array<FieldChange> = []
      if (has.application.name !== app.name) fields.push({ field: "name", from: has.application.name, to: app.name })
      if (has.application.description !== description) {
        fields.push({ field: "description", from: has.application.description, to: description })
      }
      if (fields.length > 0) {
        changes.push(Change.UpdateApplication({
          app: app.id,
          patch: Object.fromEntries(fields.map((f) => [f.field, f.to])) as { name?: string; description?: string },
          fields
        }))
      }
    }

    const missingPackage = (path: Path, version: string, arch: Arch) => {
      if (packageExists(has.packages, version, arch)) return
      const which = arch === "all" ? `${version} for all arches` : `${version} for ${arch} (or all arches)`
      problems.push({
        path,
        message: has.application === undefined
          ? `no package ${which}: the application is new; apply without it, upload the package (fleet-server package add), then apply again`
          : `the server has no package ${which}; upload it first (fleet-server package add)`
      })
    }

    const channels = app.channels ?? []
    channels.forEach((channel, c) => {
      const existing = has.channels.find((e) => e.name === channel.name && e.arch === channel.arch)
      const color = channel.color ?? ""
      if (channel.package !== undefined && channel.package !== null) {
        missingPackage(at("channels", c, "package"), channel.package, channel.arch)
      }
      ;(channel.floors ?? []).forEach((floor, f) => missingPackage(at("channels", c, "floors", f, "version"), floor.version, channel.arch))
      ;(channel.blocklist ?? []).forEach((version, v) => missingPackage(at("channels", c, "blocklist", v), version, channel.arch))
      const key = { app: app.id, channel: channel.name, arch: channel.arch }
      if (existing === undefined) {
        changes.push(Change.CreateChannel({
          ...key,
          body: {
            name: channel.name,
            arch: channel.arch,
            color,
            ...(channel.package === undefined || channel.package === null ? {} : { package: channel.package })
          }
        }))
      } else {
        const fields: Array<FieldChange> = []
        const patch: { package?: string | null; color?: string } = {}
        if (existing.color !== color) {
          fields.push({ field: "color", from: existing.color, to: color })
          patch.color = color
        }
        if (channel.package !== undefined && (existing.package ?? null) !== channel.package) {
          fields.push({ field: "package", from: existing.package ?? null, to: channel.package })
          patch.package = channel.package
        }
        if (fields.length > 0) changes.push(Change.UpdateChannel({ ...key, patch, fields }))
      }
      const floors = existing?.floors ?? []
      if (channel.floors !== undefined) {
        for (const floor of channel.floors) {
          const reason = floor.reason ?? ""
          const now = floors.find((f) => f.version === floor.version)
          if (now === undefined || now.reason !== reason) {
            changes.push(Change.SetFloor({
              ...key,
              version: floor.version,
              reason,
              previous: now === undefined ? Option.none() : Option.some(now.reason)
            }))
          }
        }
        for (const floor of floors) {
          if (!channel.floors.some((f) => f.version === floor.version)) {
            changes.push(Change.RemoveFloor({ ...key, version: floor.version }))
          }
        }
      }
      const blocked = existing?.blocklist ?? []
      if (channel.blocklist !== undefined) {
        for (const version of channel.blocklist) {
          if (!blocked.includes(version)) changes.push(Change.BlockVersion({ ...key, version }))
        }
        for (const version of blocked) {
          if (!channel.blocklist.includes(version)) changes.push(Change.UnblockVersion({ ...key, version }))
        }
      }
    })

    const groups = app.groups ?? []
    const tracks = new Map(
      has.groups.filter((g) => !groups.some((f) => f.name === g.name)).map((g) => [g.track, g.name] as const)
    )
    groups.forEach((group, g) => {
      const existing = has.groups.find((e) => e.name === group.name)
      const track = trackOf(group)
      const description = group.description ?? ""
      const policy = policyOf(group.policy)
      if (!channels.some((c) => c.name === group.channel) && !has.channels.some((c) => c.name === group.channel)) {
        problems.push({
          path: at("groups", g, "channel"),
          message: `no channel ${JSON.stringify(group.channel)}: list it under this application's channels`
        })
      }
      const clash = tracks.get(track)
      if (clash !== undefined) {
        problems.push({
          path: at("groups", g, group.track === undefined ? "name" : "track"),
          message: `track ${JSON.stringify(track)} is the track of group ${JSON.stringify(clash)} on the server`
        })
      }
      if (existing === undefined) {
        changes.push(Change.CreateGroup({
          app: app.id,
          group: group.name,
          // The whole policy, so that the server's own defaults do not matter.
          body: { name: group.name, description, track, channel: group.channel, policy: policyRequest(policy) }
        }))
        return
      }
      const fields: Array<FieldChange> = []
      const patch: { description?: string; track?: string; channel?: string; policy?: PolicyRequest } = {}
      if (existing.description !== description) {
        fields.push({ field: "description", from: existing.description, to: description })
        patch.description = description
      }
      if (existing.track !== track) {
        fields.push({ field: "track", from: existing.track, to: track })
        patch.track = track
      }
      if (existing.channel !== group.channel) {
        fields.push({ field: "channel", from: existing.channel, to: group.channel })
        patch.channel = group.channel
      }
      const diff = policyDiff(existing.policy, policy)
      if (diff.fields.length > 0) {
        fields.push(...diff.fields)
        patch.policy = diff.request
      }
      if (fields.length > 0) changes.push(Change.UpdateGroup({ app: app.id, group: group.name, patch, fields }))
    })
  })
  return problems.length > 0 ? { changes: [], problems } : { changes, problems }
}

// -- saying what changes ------------------------------------------------------

const show = (value: unknown): string => (value === undefined || value === null ? "none" : canonical(value))

const fieldList = (fields: ReadonlyArray<FieldChange>) =>
  fields.map((f) => ("from" in f ? `${f.field} ${show(f.from)} -> ${show(f.to)}` : `${f.field} ${show(f.to)}`)).join(", ")

const channelText = (c: { readonly channel: string; readonly arch: Arch; readonly app: string }, withApp: boolean) =>
  `channel ${JSON.stringify(c.channel)} (${c.arch})${withApp ? ` of ${c.app}` : ""}`

/** The fields a change sets, for `--json` and for {@link describe}. */
export const fieldsOf = (change: Change): ReadonlyArray<FieldChange> =>
  Change.$match(change, {
    CreateApplication: ({ body }) => [
      { field: "name", to: body.name },
      ...(body.description === "" ? [] : [{ field: "description", to: body.description }])
    ],
    UpdateApplication: ({ fields }) => fields,
    CreateChannel: ({ body }) => [
      ...(body.package === undefined ? [] : [{ field: "package", to: body.package }]),
      ...(body.color === "" ? [] : [{ field: "color", to: body.color }])
    ],
    UpdateChannel: ({ fields }) => fields,
    SetFloor: ({ previous, reason }) =>
      Option.match(previous, {
        onNone: () => (reason === "" ? [] : [{ field: "reason", to: reason }]),
        onSome: (from) => [{ field: "reason", from, to: reason }]
      }),
    RemoveFloor: () => [],
    BlockVersion: () => [],
    UnblockVersion: () => [],
    CreateGroup: ({ body }) => [
      { field: "track", to: body.track },
      { field: "channel", to: body.channel },
      ...(body.description === "" ? [] : [{ field: "description", to: body.description }]),
      // Of the policy, what is not the default.
      ...policyDiff(defaultPolicy, Policy.make({ ...defaultPolicy, ...body.policy } as Policy)).fields.map(({ field, to }) => ({
        field,
        to
      }))
    ],
    UpdateGroup: ({ fields }) => fields
  })

/**
 * One line for a change: `+` creates, `~` changes, `-` removes. Without
 * `withApp`, the application is left out (for lines under its id).
 */
export const describe = (change: Change, withApp = true): string => {
  const fields = fieldList(fieldsOf(change))
  const tail = fields === "" ? "" : `: ${fields}`
  const of = withApp ? ` of ${change.app}` : ""
  return Change.$match(change, {
    CreateApplication: ({ app }) => `+ application${withApp ? ` ${app}` : ""}${tail}`,
    UpdateApplication: ({ app }) => `~ application${withApp ? ` ${app}` : ""}${tail}`,
    CreateChannel: (c) => `+ ${channelText(c, withApp)}${tail}`,
    UpdateChannel: (c) => `~ ${channelText(c, withApp)}${tail}`,
    SetFloor: (c) => `${Option.isNone(c.previous) ? "+" : "~"} floor ${c.version} on ${channelText(c, withApp)}${tail}`,
    RemoveFloor: (c) => `- floor ${c.version} on ${channelText(c, withApp)}`,
    BlockVersion: (c) => `+ blocked ${c.version} on ${channelText(c, withApp)}`,
    UnblockVersion: (c) => `- blocked ${c.version} on ${channelText(c, withApp)}`,
    CreateGroup: ({ group }) => `+ group ${JSON.stringify(group)}${of}${tail}`,
    UpdateGroup: ({ group }) => `~ group ${JSON.stringify(group)}${of}${tail}`
  })
}

/** A change as `--json` prints it: what is done to what, and the fields it sets. */
export const toJson = (change: Change) => {
  const action = Change.$match(change, {
    CreateApplication: () => "create",
    UpdateApplication: () => "update",
    CreateChannel: () => "create",
    UpdateChannel: () => "update",
    SetFloor: ({ previous }) => (Option.isNone(previous) ? "create" : "update"),
    RemoveFloor: () => "delete",
    BlockVersion: () => "create",
    UnblockVersion: () => "delete",
    CreateGroup: () => "create",
    UpdateGroup: () => "update"
  })
  const subject = Change.$match(change, {
    CreateApplication: () => "application",
    UpdateApplication: () => "application",
    CreateChannel: () => "channel",
    UpdateChannel: () => "channel",
    SetFloor: () => "floor",
    RemoveFloor: () => "floor",
    BlockVersion: () => "blocklist",
    UnblockVersion: () => "blocklist",
    CreateGroup: () => "group",
    UpdateGroup: () => "group"
  })
  const key = "channel" in change
    ? { channel: change.channel, arch: change.arch, ...("version" in change ? { version: change.version } : {}) }
    : "group" in change
    ? { group: change.group }
    : {}
  return { action, subject, app: change.app, ...key, fields: fieldsOf(change) }
}

// -- talking to a server ------------------------------------------------------

const call = <A, E, R>(client: ApiClient.Client, effect: Effect.Effect<A, E, R>) => ApiClient.normalize(client.server)(effect)

/** What a server has of the applications `file` names, asked through the API client. */
export const fetchState = (client: ApiClient.Client, file: FleetFile): Effect.Effect<ServerState, ApiClient.ClientError> =>
  Effect.forEach(file.apps, (app) =>
    Effect.gen(function*() {
      const found = yield* call(client, client.apps.getApp({ path: { app: app.id } })).pipe(
        Effect.map(Option.some),
        Effect.catchIf((e) => e._tag === "Refused" && e.status === 404, () => Effect.succeed(Option.none()))
      )
      if (Option.isNone(found)) return [app.id, { channels: [], groups: [], packages: [] }] as const
      const path = { path: { app: app.id } }
      const [channels, groups, packages] = yield* Effect.all([
        call(client, client.channels.listChannels(path)),
        call(client, client.groups.listGroups(path)),
        call(client, client.packages.listPackages(path))
      ])
      return [app.id, { application: found.value, channels, groups, packages }] as const
    }), { concurrency: 4 }).pipe(Effect.map((entries) => new Map<string, ServerApplication>(entries)))

/** Makes one change through the API client. */
export const makeChange = (client: ApiClient.Client, change: Change): Effect.Effect<void, ApiClient.ClientError> =>
  call(
    client,
    Change.$match(change, {
      CreateApplication: ({ body }) => client.apps.createApp({ payload: body }),
      UpdateApplication: ({ app, patch }) => client.apps.updateApp({ path: { app }, payload: patch }),
      CreateChannel: ({ app, body }) => client.channels.createChannel({ path: { app }, payload: body }),
      UpdateChannel: ({ app, arch, channel, patch }) =>
        client.channels.updateChannel({ path: { app, name: channel }, urlParams: { arch }, payload: patch }),
      SetFloor: ({ app, arch, channel, reason, version }) =>
        client.channels.setFloor({ path: { app, name: channel, version }, urlParams: { arch }, payload: { reason } }),
      RemoveFloor: ({ app, arch, channel, version }) =>
        client.channels.removeFloor({ path: { app, name: channel, version }, urlParams: { arch } }),
      BlockVersion: ({ app, arch, channel, version }) =>
        client.channels.blockVersion({ path: { app, name: channel, version }, urlParams: { arch } }),
      UnblockVersion: ({ app, arch, channel, version }) =>
        client.channels.unblockVersion({ path: { app, name: channel, version }, urlParams: { arch } }),
      CreateGroup: ({ app, body }) => client.groups.createGroup({ path: { app }, payload: body }),
      UpdateGroup: ({ app, group, patch }) => client.groups.updateGroup({ path: { app, name: group }, payload: patch })
    }) as Effect.Effect<unknown, unknown>
  ).pipe(Effect.asVoid)
