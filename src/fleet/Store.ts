/**
 * The fleet's configuration store over `SqlClient`: applications, packages,
 * channels with their floors and blocklists, groups with their policy, API
 * tokens and the activity feed, plus the instance reads the admin API needs
 * (a filtered, paged list; one machine with its history and events). It
 * returns the classes of `Model.ts` and fails with typed errors: `NotFound`,
 * `Conflict` (a unique key taken, or a row still in use), `MissingReference`
 * (a channel pointing to a package that does not exist), `AmbiguousArch`
 * and `InvalidInput`. Writes that belong together run in one transaction;
 * the database's triggers announce every configuration change on
 * `fleet_config`, so the Omaha side's caches follow without help from here.
 * Times come from Effect's `Clock`.
 */
import { SqlClient, type SqlError } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"
import { Array as Arr, Clock, Effect, Option, Schema } from "effect"
import * as Version from "../protocol/Version.js"
import { sqlState } from "./Database.js"
import {
  Activity,
  type ActivityKind,
  ApiToken,
  Application,
  type Arch,
  Channel,
  defaultPolicy,
  ExtraFile,
  FailureBrake,
  Floor,
  Group,
  InstanceDetail,
  InstanceEvent,
  InstanceItem,
  InstancePage,
  MaintenanceWindow,
  Package,
  Policy,
  PostinstallAction,
  type Role,
  type Status,
  StatusChange
} from "./Model.js"

/** What a store error is about. */
export const Subject = Schema.Literal(
  "application",
  "package",
  "channel",
  "floor",
  "blocklist entry",
  "group",
  "instance",
  "token"
)
export type Subject = typeof Subject.Type

/** Something addressed by key does not exist. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  subject: Subject,
  key: Schema.String
}) {
  override get message(): string {
    return `no ${this.subject} ${this.key}`
  }
}

/** A write that would break a rule: a key already taken, or a row other rows still depend on. */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", {
  subject: Subject,
  key: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.subject} ${this.key} ${this.reason}`
  }
}

/** A write that refers to something that does not exist (a channel pointing to a missing package version). */
export class MissingReference extends Schema.TaggedError<MissingReference>()("MissingReference", {
  /** What is written. */
  from: Schema.String,
  subject: Subject,
  key: Schema.String
}) {
  override get message(): string {
    return `${this.from}: no ${this.subject} ${this.key}`
  }
}

/** A package or channel named without its arch, when it exists for several arches. */
export class AmbiguousArch extends Schema.TaggedError<AmbiguousArch>()("AmbiguousArch", {
  subject: Subject,
  key: Schema.String,
  arches: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `${this.subject} ${this.key} exists for ${this.arches.join(", ")}: say which arch`
  }
}

/** A value the store cannot keep (a merged policy out of range, an empty name). */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

/** Every way a store call can fail. */
export type StoreError = NotFound | Conflict | MissingReference | AmbiguousArch | InvalidInput | SqlError.SqlError

/** A new application. */
export interface NewApplication {
  readonly id: string
  readonly name: string
  readonly description?: string | undefined
}

/** Changes to an application; what is left out keeps its value. */
export interface ApplicationPatch {
  readonly name?: string | undefined
  readonly description?: string | undefined
}

/** A new package: its facts, and `url` for an external payload (none for a hosted one). */
export interface NewPackage {
  readonly appId: string
  readonly version: string
  readonly arch: Arch
  readonly name: string
  readonly size: number
  readonly sha1: string
  readonly sha256: string
  readonly url?: string | undefined
  readonly action?: Partial<PostinstallAction> | undefined
  readonly extraFiles?: ReadonlyArray<ExtraFile> | undefined
}

/** A new channel; `package` is a version of the application. */
export interface NewChannel {
  readonly appId: string
  readonly name: string
  readonly arch: Arch
  readonly color?: string | undefined
  readonly package?: string | undefined
}

/** Changes to a channel; `package: null` points it at nothing. */
export interface ChannelPatch {
  readonly package?: string | null | undefined
  readonly color?: string | undefined
}

/** A channel by application, name and, when several arches share the name, arch. */
export interface ChannelKey {
  readonly appId: string
  readonly name: string
  readonly arch?: Arch | undefined
}

/** Changes to a policy: what is left out keeps its value; `null` clears an optional field. */
export interface PolicyPatch {
  readonly updatesEnabled?: boolean | undefined
  readonly maxUpdatesPerPeriod?: number | undefined
  readonly periodSeconds?: number | undefined
  readonly maxConcurrentUpdates?: number | null | undefined
  readonly updateTimeoutSeconds?: number | undefined
  readonly safeMode?: boolean | undefined
  readonly rolloutPercent?: number | undefined
  readonly allowDowngrade?: boolean | undefined
  readonly failureBrake?: FailureBrake | null | undefined
  readonly windows?: ReadonlyArray<MaintenanceWindow> | undefined
}

/** A new group; `track` defaults to its name, the policy to `defaultPolicy` with `policy`'s fields over it. */
export interface NewGroup {
  readonly appId: string
  readonly name: string
  readonly description?: string | undefined
  readonly track?: string | undefined
  readonly channel: string
  readonly policy?: PolicyPatch | undefined
}

/** Changes to a group; policy fields merge into the current policy. */
export interface GroupPatch {
  readonly name?: string | undefined
  readonly description?: string | undefined
  readonly track?: string | undefined
  readonly channel?: string | undefined
  readonly policy?: PolicyPatch | undefined
}

/** How to filter and page an application's instances. */
export interface InstanceQuery {
  readonly group?: string | undefined
  readonly status?: Status | undefined
  readonly version?: string | undefined
  /** Only machines whose id, alias or address contains this text, in any case. */
  readonly search?: string | undefined
  /** The column to sort by; default `lastCheck`. */
  readonly sort?: InstanceSort | undefined
  /** Default ascending, but descending for `lastCheck`. */
  readonly order?: "asc" | "desc" | undefined
  /** Only machines whose last check was at or after this time. */
  readonly lastCheckAfter?: Date | undefined
  /** Only machines whose last check was before this time. */
  readonly lastCheckBefore?: Date | undefined
  /** From 1; default 1. */
  readonly page?: number | undefined
  /** Default 50, at most `maxPerPage`. */
  readonly perPage?: number | undefined
}

/** The columns the instance list sorts by. */
export type InstanceSort = "machineId" | "alias" | "group" | "version" | "status" | "lastCheck"

// Each sort column, ties broken by machine id. Versions sort by their
// numeric parts (3815.10.0 after 3815.2.0): each part left-padded.
const instanceOrder: Readonly<Record<InstanceSort, string>> = {
  machineId: "ia.instance_id",
  alias: "i.alias",
  group: "ig.name",
  version: "(SELECT array_agg(lpad(part, 12, '0') ORDER BY n) FROM regexp_split_to_table(ia.version, '[.+-]') WITH ORDINALITY AS p(part, n))",
  status: "ia.status",
  lastCheck: "ia.last_check"
}

// A LIKE pattern matching `text` anywhere, its wildcards taken literally.
const containing = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

/** The largest page of instances. */
export const maxPerPage = 1000

/** How many history entries and events an instance read returns, newest first. */
export const instanceHistoryLimit = 100

/** An entry for the activity feed. */
export interface NewActivity {
  readonly kind: ActivityKind
  readonly severity: Activity["severity"]
  readonly appId?: string | undefined
  readonly groupId?: string | undefined
  readonly channel?: string | undefined
  readonly version?: string | undefined
  readonly message: string
}

/** Which part of the activity feed to read. */
export interface ActivityQuery {
  readonly appId?: string | undefined
  /** Only entries older than this id (the next page of a feed read newest first). */
  readonly before?: number | undefined
  /** Default 100, at most 1000. */
  readonly limit?: number | undefined
}

const quote = (text: string) => JSON.stringify(text)
const packageKey = (version: string, arch: string) => `${version} (${arch})`
const channelLabel = (name: string, arch: string) => `${quote(name)} (${arch})`

const uniqueViolation = "23505"

/** Fails a unique violation of `effect` with `conflict`, leaving other errors as they are. */
const onUnique = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  conflict: () => Conflict
): Effect.Effect<A, E | Conflict, R> =>
  Effect.catchIf(
    effect,
    (e: E) => (e as { _tag?: unknown })._tag === "SqlError" && sqlState(e as SqlError.SqlError) === uniqueViolation,
    () => Effect.fail(conflict())
  )

const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

const asDate = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)))
const asJson = (value: unknown): unknown => (typeof value === "string" ? JSON.parse(value) : value)
const optional = <K extends string, V>(key: K, value: V | null | undefined): { [P in K]?: V } =>
  (value === null || value === undefined ? {} : { [key]: value }) as { [P in K]?: V }

// Versions sorted as versions (unparseable ones last, by text).
const byVersion = (a: string, b: string) =>
  Option.getOrElse(Version.compareText(a, b), () => (a < b ? -1 : a > b ? 1 : 0))

const decodeExtraFiles = Schema.decodeUnknown(Schema.Array(ExtraFile))
const decodeWindows = Schema.decodeUnknown(Schema.Array(MaintenanceWindow))
const decodeBrake = Schema.decodeUnknown(FailureBrake)

// -- rows ---------------------------------------------------------------------

const applicationColumns = `id, name, description, created_at AS "createdAt"`

interface ApplicationRow {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly createdAt: unknown
}
const toApplication = (row: ApplicationRow) =>
  new Application({ id: row.id, name: row.name, description: row.description, createdAt: asDate(row.createdAt) })

const packageColumns = `p.id, p.app_id AS "appId", p.version, p.arch, p.name, p.size, p.sha1, p.sha256, p.url,
  p.is_delta AS "isDelta", p.needs_admin AS "needsAdmin", p.disable_payload_backoff AS "disablePayloadBackoff",
  p.metadata_signature_rsa AS "metadataSignatureRsa", p.metadata_size AS "metadataSize", p.deadline,
  p.chromeos_version AS "chromeOsVersion", p.extra_files AS "extraFiles", p.created_at AS "createdAt"`

interface PackageRow {
  readonly id: unknown
  readonly appId: string
  readonly version: string
  readonly arch: Arch
  readonly name: string
  readonly size: unknown
  readonly sha1: string
  readonly sha256: string
  readonly url: string | null
  readonly isDelta: boolean
  readonly needsAdmin: boolean
  readonly disablePayloadBackoff: boolean
  readonly metadataSignatureRsa: string | null
  readonly metadataSize: string | null
  readonly deadline: string | null
  readonly chromeOsVersion: string | null
  readonly extraFiles: unknown
  readonly createdAt: unknown
}
const toPackage = (row: PackageRow) =>
  Effect.map(Effect.orDie(decodeExtraFiles(asJson(row.extraFiles))), (extraFiles) =>
    new Package({
      appId: row.appId,
      version: row.version,
      arch: row.arch,
      name: row.name,
      size: Number(row.size),
      sha1: row.sha1,
      sha256: row.sha256,
      ...optional("url", row.url),
      action: new PostinstallAction({
        isDelta: row.isDelta,
        needsAdmin: row.needsAdmin,
        disablePayloadBackoff: row.disablePayloadBackoff,
        ...optional("metadataSignatureRsa", row.metadataSignatureRsa),
        ...optional("metadataSize", row.metadataSize),
        ...optional("deadline", row.deadline),
        ...optional("chromeOsVersion", row.chromeOsVersion)
      }),
      extraFiles,
      createdAt: asDate(row.createdAt)
    }))

const channelColumns = `c.id, c.app_id AS "appId", c.name, c.arch, c.color, cp.version AS "package",
  c.updated_at AS "updatedAt",
  (SELECT json_agg(json_build_object('version', fp.version, 'reason', f.reason))
     FROM channel_floors f JOIN packages fp ON fp.id = f.package_id WHERE f.channel_id = c.id) AS floors,
  (SELECT json_agg(bp.version)
     FROM channel_blocklist b JOIN packages bp ON bp.id = b.package_id WHERE b.channel_id = c.id) AS blocklist`
const channelFrom = `channels c LEFT JOIN packages cp ON cp.id = c.package_id`

interface ChannelRow {
  readonly id: unknown
  readonly appId: string
  readonly name: string
  readonly arch: Arch
  readonly color: string
  readonly package: string | null
  readonly updatedAt: unknown
  readonly floors: unknown
  readonly blocklist: unknown
}
const toChannel = (row: ChannelRow) => {
  const floors = (asJson(row.floors) ?? []) as ReadonlyArray<{ version: string; reason: string }>
  const blocklist = (asJson(row.blocklist) ?? []) as ReadonlyArray<string>
  return new Channel({
    appId: row.appId,
    name: row.name,
    arch: row.arch,
    color: row.color,
    ...optional("package", row.package),
    floors: [...floors].sort((a, b) => byVersion(a.version, b.version)).map((f) => new Floor(f)),
    blocklist: [...blocklist].sort(byVersion),
    updatedAt: asDate(row.updatedAt)
  })
}

const groupColumns = `g.id::text AS id, g.app_id AS "appId", g.name, g.description, g.track, g.channel,
  g.updates_enabled AS "updatesEnabled", g.safe_mode AS "safeMode",
  g.max_updates_per_period AS "maxUpdatesPerPeriod", g.max_concurrent_updates AS "maxConcurrentUpdates",
  g.period_seconds AS "periodSeconds", g.update_timeout_seconds AS "updateTimeoutSeconds",
  g.rollout_percent AS "rolloutPercent", g.allow_downgrade AS "allowDowngrade",
  g.failure_brake AS "failureBrake", g.windows, g.paused, g.paused_reason AS "pausedReason",
  g.created_at AS "createdAt"`

interface GroupRow {
  readonly id: string
  readonly appId: string
  readonly name: string
  readonly description: string
  readonly track: string
  readonly channel: string
  readonly updatesEnabled: boolean
  readonly safeMode: boolean
  readonly maxUpdatesPerPeriod: unknown
  readonly maxConcurrentUpdates: unknown
  readonly periodSeconds: unknown
  readonly updateTimeoutSeconds: unknown
  readonly rolloutPercent: unknown
  readonly allowDowngrade: boolean
  readonly failureBrake: unknown
  readonly windows: unknown
  readonly paused: boolean
  readonly pausedReason: string | null
  readonly createdAt: unknown
}
const toGroup = (row: GroupRow) =>
  Effect.gen(function*() {
    const windows = yield* Effect.orDie(decodeWindows(asJson(row.windows) ?? []))
    const brakeJson = asJson(row.failureBrake)
    const failureBrake = brakeJson === null || brakeJson === undefined
      ? undefined
      : yield* Effect.orDie(decodeBrake(brakeJson))
    return new Group({
      id: row.id,
      appId: row.appId,
      name: row.name,
      description: row.description,
      track: row.track,
      channel: row.channel,
      policy: new Policy({
        updatesEnabled: row.updatesEnabled,
        maxUpdatesPerPeriod: Number(row.maxUpdatesPerPeriod),
        periodSeconds: Number(row.periodSeconds),
        ...optional("maxConcurrentUpdates", row.maxConcurrentUpdates === null ? null : Number(row.maxConcurrentUpdates)),
        updateTimeoutSeconds: Number(row.updateTimeoutSeconds),
        safeMode: row.safeMode,
        rolloutPercent: Number(row.rolloutPercent),
        allowDowngrade: row.allowDowngrade,
        ...optional("failureBrake", failureBrake),
        windows
      }),
      paused: row.paused,
      ...optional("pausedReason", row.pausedReason),
      createdAt: asDate(row.createdAt)
    })
  })

const tokenColumns = `id, role, name, created_at AS "createdAt", last_used AS "lastUsed"`

interface TokenRow {
  readonly id: unknown
  readonly role: Role
  readonly name: string
  readonly createdAt: unknown
  readonly lastUsed: unknown
}
const toToken = (row: TokenRow) =>
  new ApiToken({
    id: Number(row.id),
    role: row.role,
    name: row.name,
    createdAt: asDate(row.createdAt),
    ...optional("lastUsed", row.lastUsed === null ? null : asDate(row.lastUsed))
  })

interface ActivityRow {
  readonly id: unknown
  readonly kind: ActivityKind
  readonly severity: Activity["severity"]
  readonly appId: string | null
  readonly group: string | null
  readonly channel: string | null
  readonly version: string | null
  readonly message: string
  readonly at: unknown
}
const toActivity = (row: ActivityRow) =>
  new Activity({
    id: Number(row.id),
    kind: row.kind,
    severity: row.severity,
    ...optional("appId", row.appId),
    ...optional("group", row.group),
    ...optional("channel", row.channel),
    ...optional("version", row.version),
    message: row.message,
    at: asDate(row.at)
  })

const instanceColumns = `ia.instance_id AS "machineId", i.alias, i.ip, ia.version, ia.status, ig.name AS "group",
  ia.track, ia.arch, ia.hold, ia.error_code AS "errorCode", ia.last_check AS "lastCheck",
  ia.last_grant AS "lastGrant", ia.granted_version AS "grantedVersion"`
const instanceFrom = `instance_apps ia JOIN instances i ON i.id = ia.instance_id LEFT JOIN groups ig ON ig.id = ia.group_id`

interface InstanceRow {
  readonly machineId: string
  readonly alias: string
  readonly ip: string
  readonly version: string
  readonly status: Status
  readonly group: string | null
  readonly track: string
  readonly arch: string
  readonly hold: string | null
  readonly errorCode: number | null
  readonly lastCheck: unknown
  readonly lastGrant: unknown
  readonly grantedVersion: string | null
}
const instanceFields = (row: InstanceRow) => ({
  machineId: row.machineId,
  alias: row.alias,
  ip: row.ip,
  version: row.version,
  status: row.status,
  ...optional("group", row.group),
  track: row.track,
  arch: row.arch,
  ...optional("hold", row.hold),
  ...optional("errorCode", row.errorCode),
  lastCheck: asDate(row.lastCheck),
  ...optional("lastGrant", row.lastGrant === null ? null : asDate(row.lastGrant)),
  ...optional("grantedVersion", row.grantedVersion)
})

// -- policy -------------------------------------------------------------------

/** `policy` with `patch`'s fields over it, checked as a whole. */
export const mergePolicy = (policy: Policy, patch: PolicyPatch | undefined): Effect.Effect<Policy, InvalidInput> => {
  if (patch === undefined) return Effect.succeed(policy)
  const merged: Record<string, unknown> = { ...policy }
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue
    if (value === null) delete merged[key]
    else merged[key] = value
  }
  return Schema.decodeUnknown(Policy)(merged).pipe(
    Effect.mapError((e) => new InvalidInput({ reason: `invalid policy: ${e.message.split("\n").join(" ")}` }))
  )
}

// -- the store ----------------------------------------------------------------

/** The store (see the module header). */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  // -- applications

  const findApplication = (id: string) =>
    Effect.flatMap(
      sql<ApplicationRow>`SELECT ${sql.literal(applicationColumns)} FROM applications WHERE id = ${id}`,
      (rows) => rows.length === 0 ? Effect.fail(new NotFound({ subject: "application", key: quote(id) })) : Effect.succeed(rows[0]!)
    )
  const requireApplication = (id: string) => Effect.asVoid(findApplication(id))

  const createApplication = Effect.fn("Store.createApplication")(function*(input: NewApplication) {
    const at = yield* now
    const rows = yield* onUnique(
      sql<ApplicationRow>`INSERT INTO applications (id, name, description, created_at)
        VALUES (${input.id}, ${input.name}, ${input.description ?? ""}, ${at})
        RETURNING ${sql.literal(applicationColumns)}`,
      () => new Conflict({ subject: "application", key: quote(input.id), reason: "already exists" })
    )
    return toApplication(rows[0]!)
  })

  const listApplications = Effect.fn("Store.listApplications")(function*() {
    const rows = yield* sql<ApplicationRow>`SELECT ${sql.literal(applicationColumns)} FROM applications ORDER BY id`
    return rows.map(toApplication)
  })

  const getApplication = Effect.fn("Store.getApplication")(function*(id: string) {
    return toApplication(yield* findApplication(id))
  })

  const updateApplication = Effect.fn("Store.updateApplication")(function*(id: string, patch: ApplicationPatch) {
    const sets: Array<Fragment> = []
    if (patch.name !== undefined) sets.push(sql`name = ${patch.name}`)
    if (patch.description !== undefined) sets.push(sql`description = ${patch.description}`)
    if (sets.length === 0) return toApplication(yield* findApplication(id))
    const rows = yield* sql<ApplicationRow>`UPDATE applications SET ${sql.csv(sets)} WHERE id = ${id}
      RETURNING ${sql.literal(applicationColumns)}`
    if (rows.length === 0) return yield* new NotFound({ subject: "application", key: quote(id) })
    return toApplication(rows[0]!)
  })

  /** The SHA-256s (base64) of an application's hosted payloads. */
  const hostedPayloads = Effect.fn("Store.hostedPayloads")(function*(appId: string) {
    const rows = yield* sql<{ readonly sha256: string }>`SELECT DISTINCT sha256 FROM packages WHERE app_id = ${appId} AND url IS NULL`
    return rows.map((r) => r.sha256)
  })

  /** Deletes an application and everything of it; answers the SHA-256s of its hosted payloads. */
  const deleteApplication = Effect.fn("Store.deleteApplication")(function*(id: string) {
    const rows = yield* sql<{ readonly sha256: string }>`WITH hosted AS (
        SELECT sha256 FROM packages WHERE app_id = ${id} AND url IS NULL
      ), gone AS (
        DELETE FROM applications WHERE id = ${id} RETURNING id
      )
      SELECT gone.id, hosted.sha256 FROM gone LEFT JOIN hosted ON true`
    if (rows.length === 0) return yield* new NotFound({ subject: "application", key: quote(id) })
    return Arr.dedupe(rows.flatMap((r) => (r.sha256 === null ? [] : [r.sha256])))
  })

  // -- packages

  const selectPackage = (appId: string, version: string, arch: Arch | undefined) =>
    Effect.gen(function*() {
      const rows = yield* sql<PackageRow>`SELECT ${sql.literal(packageColumns)} FROM packages p
        WHERE p.app_id = ${appId} AND p.version = ${version} ${arch === undefined ? sql`` : sql`AND p.arch = ${arch}`}
        ORDER BY p.arch`
      if (rows.length === 0) {
        yield* requireApplication(appId)
        return yield* new NotFound({
          subject: "package",
          key: `${arch === undefined ? version : packageKey(version, arch)} of ${quote(appId)}`
        })
      }
      if (rows.length > 1) return yield* new AmbiguousArch({ subject: "package", key: version, arches: rows.map((r) => r.arch) })
      return rows[0]!
    })

  const createPackage = Effect.fn("Store.createPackage")(function*(input: NewPackage) {
    const at = yield* now
    const action = input.action ?? {}
    const extraFiles = yield* Schema.encode(Schema.Array(ExtraFile))(input.extraFiles ?? []).pipe(
      Effect.mapError((e) => new InvalidInput({ reason: `invalid extra files: ${e.message.split("\n").join(" ")}` }))
    )
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* requireApplication(input.appId)
      const rows = yield* onUnique(
        sql<PackageRow>`INSERT INTO packages AS p (app_id, version, arch, name, size, sha1, sha256, url,
            is_delta, needs_admin, disable_payload_backoff, metadata_signature_rsa, metadata_size, deadline,
            chromeos_version, extra_files, created_at)
          VALUES (${input.appId}, ${input.version}, ${input.arch}, ${input.name}, ${input.size}, ${input.sha1},
            ${input.sha256}, ${input.url ?? null}, ${action.isDelta ?? false}, ${action.needsAdmin ?? false},
            ${action.disablePayloadBackoff ?? true}, ${action.metadataSignatureRsa ?? null},
            ${action.metadataSize ?? null}, ${action.deadline ?? null}, ${action.chromeOsVersion ?? null},
            ${JSON.stringify(extraFiles)}::jsonb, ${at})
          RETURNING ${sql.literal(packageColumns)}`,
        () =>
          new Conflict({
            subject: "package",
            key: `${packageKey(input.version, input.arch)} of ${quote(input.appId)}`,
            reason: "already exists"
          })
      )
      return yield* toPackage(rows[0]!)
    }))
  })

  const listPackages = Effect.fn("Store.listPackages")(function*(appId: string) {
    yield* requireApplication(appId)
    const rows = yield* sql<PackageRow>`SELECT ${sql.literal(packageColumns)} FROM packages p
      WHERE p.app_id = ${appId} ORDER BY p.created_at, p.id`
    const packages = yield* Effect.forEach(rows, toPackage)
    return [...packages].sort((a, b) => byVersion(a.version, b.version) || (a.arch < b.arch ? -1 : a.arch > b.arch ? 1 : 0))
  })

  const getPackage = Effect.fn("Store.getPackage")(function*(appId: string, version: string, arch?: Arch) {
    return yield* toPackage(yield* selectPackage(appId, version, arch))
  })

  /**
   * Deletes a package no channel points to and no channel has as a floor
   * (a floor silently dropped would let machines skip a required step).
   */
  const deletePackage = Effect.fn("Store.deletePackage")(function*(appId: string, version: string, arch?: Arch) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const row = yield* selectPackage(appId, version, arch)
      const key = `${packageKey(row.version, row.arch)} of ${quote(appId)}`
      const users = yield* sql<{ readonly name: string; readonly arch: string; readonly use: string }>`
        SELECT name, arch, 'package' AS use FROM channels WHERE package_id = ${row.id}
        UNION ALL
        SELECT c.name, c.arch, 'floor' AS use FROM channel_floors f JOIN channels c ON c.id = f.channel_id
          WHERE f.package_id = ${row.id}`
      if (users.length > 0) {
        const uses = users.map((u) =>
          u.use === "package" ? `the package of channel ${channelLabel(u.name, u.arch)}` : `a floor of channel ${channelLabel(u.name, u.arch)}`
        )
        return yield* new Conflict({ subject: "package", key, reason: `is ${uses.join(" and ")}` })
      }
      yield* sql`DELETE FROM packages WHERE id = ${row.id}`
      return yield* toPackage(row)
    }))
  })

  /** The hosted package (no URL) whose payload has this SHA-256 (hex) and this name, if any. */
  const hostedPackage = Effect.fn("Store.hostedPackage")(function*(sha256Hex: string, name: string) {
    const sha256 = Buffer.from(sha256Hex, "hex").toString("base64")
    const rows = yield* sql<PackageRow>`SELECT ${sql.literal(packageColumns)} FROM packages p
      WHERE p.sha256 = ${sha256} AND p.name = ${name} AND p.url IS NULL ORDER BY p.id LIMIT 1`
    return rows.length === 0 ? Option.none<Package>() : Option.some(yield* toPackage(rows[0]!))
  })

  /**
   * Runs `effect` in a transaction holding a lock on each of these payloads
   * (base64 SHA-256s), across every process on the database: putting a file
   * in place with its package row, and removing an unused file after its
   * last row, then never interleave.
   */
  const withPayloadLocks = <A, E, R>(sha256s: ReadonlyArray<string>, effect: Effect.Effect<A, E, R>) =>
    sql.withTransaction(
      Effect.zipRight(
        Effect.forEach(
          [...new Set(sha256s)].sort(),
          (sha256) => sql`SELECT pg_advisory_xact_lock(hashtextextended(${`fleet-payload:${sha256}`}, 0))`,
          { discard: true }
        ),
        effect
      )
    )

  /** Whether any hosted package still uses the payload with this SHA-256 (base64). */
  const payloadInUse = Effect.fn("Store.payloadInUse")(function*(sha256: string) {
    const rows = yield* sql<{ readonly n: unknown }>`SELECT count(*) AS n FROM packages WHERE sha256 = ${sha256} AND url IS NULL`
    return Number(rows[0]?.n ?? 0) > 0
  })

  // -- channels

  interface ChannelId {
    readonly id: unknown
    readonly name: string
    readonly arch: Arch
    readonly packageId: unknown
    readonly package: string | null
  }

  const findChannel = (key: ChannelKey, lock = false) =>
    Effect.gen(function*() {
      const rows = yield* sql<ChannelId>`SELECT c.id, c.name, c.arch, c.package_id AS "packageId", cp.version AS "package"
        FROM ${sql.literal(channelFrom)}
        WHERE c.app_id = ${key.appId} AND c.name = ${key.name}
        ${key.arch === undefined ? sql`` : sql`AND c.arch = ${key.arch}`}
        ORDER BY c.arch ${lock ? sql`FOR UPDATE OF c` : sql``}`
      if (rows.length === 0) {
        yield* requireApplication(key.appId)
        return yield* new NotFound({
          subject: "channel",
          key: `${key.arch === undefined ? quote(key.name) : channelLabel(key.name, key.arch)} of ${quote(key.appId)}`
        })
      }
      if (rows.length > 1) {
        return yield* new AmbiguousArch({ subject: "channel", key: quote(key.name), arches: rows.map((r) => r.arch) })
      }
      return rows[0]!
    })

  const readChannel = (id: unknown) =>
    Effect.map(
      sql<ChannelRow>`SELECT ${sql.literal(channelColumns)} FROM ${sql.literal(channelFrom)} WHERE c.id = ${id}`,
      (rows) => toChannel(rows[0]!)
    )

  // The package a channel of `arch` means by `version`: the one of its arch, else one for all arches.
  const packageFor = (appId: string, version: string, arch: Arch, from: string) =>
    Effect.flatMap(
      sql<{ readonly id: unknown }>`SELECT id FROM packages
        WHERE app_id = ${appId} AND version = ${version} AND arch IN (${arch}, 'all')
        ORDER BY (arch = ${arch}) DESC LIMIT 1`,
      (rows) =>
        rows.length === 0
          ? Effect.fail(
            new MissingReference({
              from,
              subject: "package",
              key: arch === "all" ? `${version} for all arches` : `${version} for ${arch} (or all arches)`
            })
          )
          : Effect.succeed(rows[0]!.id)
    )

  const createChannel = Effect.fn("Store.createChannel")(function*(input: NewChannel) {
    const at = yield* now
    const label = `channel ${channelLabel(input.name, input.arch)}`
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* requireApplication(input.appId)
      const packageId = input.package === undefined
        ? null
        : yield* packageFor(input.appId, input.package, input.arch, label)
      const rows = yield* onUnique(
        sql<{ readonly id: unknown }>`INSERT INTO channels (app_id, name, arch, color, package_id, updated_at)
          VALUES (${input.appId}, ${input.name}, ${input.arch}, ${input.color ?? ""}, ${packageId}, ${at})
          RETURNING id`,
        () =>
          new Conflict({
            subject: "channel",
            key: `${channelLabel(input.name, input.arch)} of ${quote(input.appId)}`,
            reason: "already exists"
          })
      )
      if (input.package !== undefined) {
        yield* recordActivityAt(at, {
          kind: "channelMoved",
          severity: "info",
          appId: input.appId,
          channel: input.name,
          version: input.package,
          message: `channel ${channelLabel(input.name, input.arch)} created on ${input.package}`
        })
      }
      return yield* readChannel(rows[0]!.id)
    }))
  })

  const listChannels = Effect.fn("Store.listChannels")(function*(appId: string) {
    yield* requireApplication(appId)
    const rows = yield* sql<ChannelRow>`SELECT ${sql.literal(channelColumns)} FROM ${sql.literal(channelFrom)}
      WHERE c.app_id = ${appId} ORDER BY c.name, c.arch`
    return rows.map(toChannel)
  })

  const getChannel = Effect.fn("Store.getChannel")(function*(key: ChannelKey) {
    return yield* readChannel((yield* findChannel(key)).id)
  })

  /** Changes a channel; a change of package is recorded in the activity feed. */
  const updateChannel = Effect.fn("Store.updateChannel")(function*(key: ChannelKey, patch: ChannelPatch) {
    const at = yield* now
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const label = channelLabel(channel.name, channel.arch)
      const sets: Array<Fragment> = []
      if (patch.color !== undefined) sets.push(sql`color = ${patch.color}`)
      const moved = patch.package !== undefined && patch.package !== channel.package
      if (patch.package !== undefined) {
        const packageId = patch.package === null
          ? null
          : yield* packageFor(key.appId, patch.package, channel.arch, `channel ${label}`)
        sets.push(sql`package_id = ${packageId}`)
      }
      if (sets.length > 0) {
        sets.push(sql`updated_at = ${at}`)
        yield* sql`UPDATE channels SET ${sql.csv(sets)} WHERE id = ${channel.id}`
      }
      if (moved) {
        const from = channel.package ?? "no package"
        const to = patch.package ?? "no package"
        yield* recordActivityAt(at, {
          kind: "channelMoved",
          severity: "info",
          appId: key.appId,
          channel: channel.name,
          ...optional("version", patch.package),
          message: `channel ${label} moved from ${from} to ${to}`
        })
      }
      return yield* readChannel(channel.id)
    }))
  })

  /** Deletes a channel, unless it is the last of its name and a group follows that name. */
  const deleteChannel = Effect.fn("Store.deleteChannel")(function*(key: ChannelKey) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const deleted = yield* readChannel(channel.id)
      const followers = yield* sql<{ readonly name: string }>`SELECT g.name FROM groups g
        WHERE g.app_id = ${key.appId} AND g.channel = ${channel.name}
          AND NOT EXISTS (SELECT 1 FROM channels o WHERE o.app_id = g.app_id AND o.name = g.channel AND o.id <> ${channel.id})
        ORDER BY g.name`
      if (followers.length > 0) {
        return yield* new Conflict({
          subject: "channel",
          key: channelLabel(channel.name, channel.arch),
          reason: `is followed by group${followers.length > 1 ? "s" : ""} ${followers.map((f) => quote(f.name)).join(", ")}`
        })
      }
      yield* sql`DELETE FROM channels WHERE id = ${channel.id}`
      return deleted
    }))
  })

  /** Adds a floor to a channel, or changes its reason. */
  const setFloor = Effect.fn("Store.setFloor")(function*(key: ChannelKey, version: string, reason: string) {
    const at = yield* now
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const label = `floor ${version} of channel ${channelLabel(channel.name, channel.arch)}`
      const packageId = yield* packageFor(key.appId, version, channel.arch, label)
      yield* sql`INSERT INTO channel_floors (channel_id, package_id, reason) VALUES (${channel.id}, ${packageId}, ${reason})
        ON CONFLICT (channel_id, package_id) DO UPDATE SET reason = EXCLUDED.reason`
      yield* sql`UPDATE channels SET updated_at = ${at} WHERE id = ${channel.id}`
      return yield* readChannel(channel.id)
    }))
  })

  const removeFloor = Effect.fn("Store.removeFloor")(function*(key: ChannelKey, version: string) {
    const at = yield* now
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const rows = yield* sql`DELETE FROM channel_floors f USING packages p
        WHERE f.channel_id = ${channel.id} AND f.package_id = p.id AND p.version = ${version} RETURNING f.package_id`
      if (rows.length === 0) {
        return yield* new NotFound({ subject: "floor", key: `${version} of channel ${channelLabel(channel.name, channel.arch)}` })
      }
      yield* sql`UPDATE channels SET updated_at = ${at} WHERE id = ${channel.id}`
      return yield* readChannel(channel.id)
    }))
  })

  /** Blocks a version on a channel: machines are never offered it there. */
  const blockVersion = Effect.fn("Store.blockVersion")(function*(key: ChannelKey, version: string) {
    const at = yield* now
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const label = `blocklist of channel ${channelLabel(channel.name, channel.arch)}`
      const packageId = yield* packageFor(key.appId, version, channel.arch, label)
      yield* sql`INSERT INTO channel_blocklist (channel_id, package_id) VALUES (${channel.id}, ${packageId})
        ON CONFLICT DO NOTHING`
      yield* sql`UPDATE channels SET updated_at = ${at} WHERE id = ${channel.id}`
      return yield* readChannel(channel.id)
    }))
  })

  const unblockVersion = Effect.fn("Store.unblockVersion")(function*(key: ChannelKey, version: string) {
    const at = yield* now
    return yield* sql.withTransaction(Effect.gen(function*() {
      const channel = yield* findChannel(key, true)
      const rows = yield* sql`DELETE FROM channel_blocklist b USING packages p
        WHERE b.channel_id = ${channel.id} AND b.package_id = p.id AND p.version = ${version} RETURNING b.package_id`
      if (rows.length === 0) {
        return yield* new NotFound({
          subject: "blocklist entry",
          key: `${version} of channel ${channelLabel(channel.name, channel.arch)}`
        })
      }
      yield* sql`UPDATE channels SET updated_at = ${at} WHERE id = ${channel.id}`
      return yield* readChannel(channel.id)
    }))
  })

  // -- groups

  const findGroup = (appId: string, name: string, lock = false) =>
    Effect.gen(function*() {
      const rows = yield* sql<GroupRow>`SELECT ${sql.literal(groupColumns)} FROM groups g
        WHERE g.app_id = ${appId} AND g.name = ${name} ${lock ? sql`FOR UPDATE` : sql``}`
      if (rows.length === 0) {
        yield* requireApplication(appId)
        return yield* new NotFound({ subject: "group", key: `${quote(name)} of ${quote(appId)}` })
      }
      return yield* toGroup(rows[0]!)
    })

  const requireChannelName = (appId: string, channel: string, from: string) =>
    Effect.flatMap(
      sql`SELECT 1 FROM channels WHERE app_id = ${appId} AND name = ${channel} LIMIT 1`,
      (rows) =>
        rows.length === 0
          ? Effect.fail(new MissingReference({ from, subject: "channel", key: `${quote(channel)} of ${quote(appId)}` }))
          : Effect.void
    )

  // The group of the application that already has this name or track, if another.
  const groupClash = (appId: string, name: string, track: string, except: string | undefined) =>
    Effect.flatMap(
      sql<{ readonly name: string; readonly track: string }>`SELECT name, track FROM groups
        WHERE app_id = ${appId} AND (name = ${name} OR track = ${track})
        ${except === undefined ? sql`` : sql`AND id <> ${except}::uuid`} LIMIT 1`,
      (rows) => {
        const clash = rows[0]
        if (clash === undefined) return Effect.void
        return Effect.fail(
          clash.name === name
            ? new Conflict({ subject: "group", key: `${quote(name)} of ${quote(appId)}`, reason: "already exists" })
            : new Conflict({ subject: "group", key: quote(clash.name), reason: `already has track ${quote(track)}` })
        )
      }
    )

  const policyColumns = (policy: Policy) =>
    [
      sql`updates_enabled = ${policy.updatesEnabled}`,
      sql`safe_mode = ${policy.safeMode}`,
      sql`max_updates_per_period = ${policy.maxUpdatesPerPeriod}`,
      sql`max_concurrent_updates = ${policy.maxConcurrentUpdates ?? null}`,
      sql`period_seconds = ${policy.periodSeconds}`,
      sql`update_timeout_seconds = ${policy.updateTimeoutSeconds}`,
      sql`rollout_percent = ${policy.rolloutPercent}`,
      sql`allow_downgrade = ${policy.allowDowngrade}`,
      sql`failure_brake = ${policy.failureBrake === undefined ? null : JSON.stringify(policy.failureBrake)}::jsonb`,
      sql`windows = ${JSON.stringify(policy.windows)}::jsonb`
    ]

  const createGroup = Effect.fn("Store.createGroup")(function*(input: NewGroup) {
    const at = yield* now
    const policy = yield* mergePolicy(defaultPolicy, input.policy)
    const track = input.track ?? input.name
    const groupKey = `${quote(input.name)} of ${quote(input.appId)}`
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* requireApplication(input.appId)
      yield* requireChannelName(input.appId, input.channel, `group ${quote(input.name)}`)
      yield* groupClash(input.appId, input.name, track, undefined)
      const rows = yield* onUnique(
        sql<{ readonly id: string }>`INSERT INTO groups (app_id, name, description, track, channel, created_at)
          VALUES (${input.appId}, ${input.name}, ${input.description ?? ""}, ${track}, ${input.channel}, ${at})
          RETURNING id::text AS id`,
        () => new Conflict({ subject: "group", key: groupKey, reason: "already exists (by name or track)" })
      )
      const id = rows[0]!.id
      yield* sql`UPDATE groups SET ${sql.csv(policyColumns(policy))} WHERE id = ${id}::uuid`
      return yield* findGroup(input.appId, input.name)
    }))
  })

  const listGroups = Effect.fn("Store.listGroups")(function*(appId: string) {
    yield* requireApplication(appId)
    const rows = yield* sql<GroupRow>`SELECT ${sql.literal(groupColumns)} FROM groups g WHERE g.app_id = ${appId} ORDER BY g.name`
    return yield* Effect.forEach(rows, toGroup)
  })

  const getGroup = Effect.fn("Store.getGroup")(function*(appId: string, name: string) {
    return yield* findGroup(appId, name)
  })

  /** Changes a group: fields left out keep their values, policy fields included. */
  const updateGroup = Effect.fn("Store.updateGroup")(function*(appId: string, name: string, patch: GroupPatch) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const group = yield* findGroup(appId, name, true)
      const policy = yield* mergePolicy(group.policy, patch.policy)
      const newName = patch.name ?? group.name
      const track = patch.track ?? group.track
      const channel = patch.channel ?? group.channel
      if (channel !== group.channel) yield* requireChannelName(appId, channel, `group ${quote(newName)}`)
      yield* groupClash(appId, newName, track, group.id)
      const sets = [
        sql`name = ${newName}`,
        sql`description = ${patch.description ?? group.description}`,
        sql`track = ${track}`,
        sql`channel = ${channel}`,
        ...policyColumns(policy)
      ]
      yield* onUnique(
        sql`UPDATE groups SET ${sql.csv(sets)} WHERE id = ${group.id}::uuid`,
        () => new Conflict({ subject: "group", key: quote(newName), reason: "clashes with another group's name or track" })
      )
      return yield* findGroup(appId, newName)
    }))
  })

  const setPaused = (appId: string, name: string, paused: boolean, reason: string | undefined) =>
    Effect.gen(function*() {
      const at = yield* now
      return yield* sql.withTransaction(Effect.gen(function*() {
        const group = yield* findGroup(appId, name, true)
        if (group.paused === paused && (!paused || reason === undefined || reason === group.pausedReason)) return group
        yield* sql`UPDATE groups SET paused = ${paused}, paused_reason = ${paused ? reason ?? null : null}
          WHERE id = ${group.id}::uuid`
        yield* recordActivityAt(at, {
          kind: paused ? "rolloutPaused" : "rolloutResumed",
          severity: paused ? "warning" : "info",
          appId,
          groupId: group.id,
          channel: group.channel,
          message: paused
            ? `group ${quote(name)} paused${reason === undefined ? "" : `: ${reason}`}`
            : `group ${quote(name)} resumed${group.pausedReason === undefined ? "" : ` (was paused: ${group.pausedReason})`}`
        })
        return yield* findGroup(appId, name)
      }))
    })

  /** Pauses a group's rollout (no grants until resumed), with an activity entry. */
  const pauseGroup = Effect.fn("Store.pauseGroup")(function*(appId: string, name: string, reason?: string) {
    return yield* setPaused(appId, name, true, reason)
  })

  /** Resumes a paused group (by an operator or by the failure brake), with an activity entry. */
  const resumeGroup = Effect.fn("Store.resumeGroup")(function*(appId: string, name: string) {
    return yield* setPaused(appId, name, false, undefined)
  })

  const deleteGroup = Effect.fn("Store.deleteGroup")(function*(appId: string, name: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const group = yield* findGroup(appId, name, true)
      yield* sql`DELETE FROM groups WHERE id = ${group.id}::uuid`
      return group
    }))
  })

  // -- tokens

  /** Stores a token's hash (SHA-256 hex); the token itself is never stored. */
  const createToken = Effect.fn("Store.createToken")(function*(input: { readonly hash: string; readonly role: Role; readonly name: string }) {
    const at = yield* now
    const rows = yield* onUnique(
      sql<TokenRow>`INSERT INTO tokens (hash, role, name, created_at) VALUES (${input.hash}, ${input.role}, ${input.name}, ${at})
        RETURNING ${sql.literal(tokenColumns)}`,
      () => new Conflict({ subject: "token", key: quote(input.name), reason: "has a hash already stored" })
    )
    return toToken(rows[0]!)
  })

  /** The token with this hash, marking it used (at most once a minute, to spare writes). */
  const useToken = Effect.fn("Store.useToken")(function*(hash: string) {
    const rows = yield* sql<TokenRow>`SELECT ${sql.literal(tokenColumns)} FROM tokens WHERE hash = ${hash}`
    const row = rows[0]
    if (row === undefined) return Option.none<ApiToken>()
    const at = yield* now
    const token = toToken(row)
    if (token.lastUsed === undefined || at.getTime() - token.lastUsed.getTime() >= 60_000) {
      yield* sql`UPDATE tokens SET last_used = ${at} WHERE id = ${row.id}`
    }
    return Option.some(token)
  })

  const listTokens = Effect.fn("Store.listTokens")(function*() {
    const rows = yield* sql<TokenRow>`SELECT ${sql.literal(tokenColumns)} FROM tokens ORDER BY id`
    return rows.map(toToken)
  })

  const deleteToken = Effect.fn("Store.deleteToken")(function*(id: number) {
    const rows = yield* sql<TokenRow>`DELETE FROM tokens WHERE id = ${id} RETURNING ${sql.literal(tokenColumns)}`
    if (rows.length === 0) return yield* new NotFound({ subject: "token", key: String(id) })
    return toToken(rows[0]!)
  })

  // -- activity

  const recordActivityAt = (at: Date, entry: NewActivity) =>
    sql`INSERT INTO activity (app_id, group_id, channel, kind, severity, version, message, created_at)
      VALUES (${entry.appId ?? null}, ${entry.groupId ?? null}::uuid, ${entry.channel ?? null}, ${entry.kind},
        ${entry.severity}, ${entry.version ?? null}, ${entry.message}, ${at})`.pipe(Effect.asVoid)

  /** Adds an entry to the activity feed, timed by the Clock. */
  const recordActivity = Effect.fn("Store.recordActivity")(function*(entry: NewActivity) {
    yield* recordActivityAt(yield* now, entry)
  })

  /** The activity feed, newest first. */
  const listActivity = Effect.fn("Store.listActivity")(function*(query: ActivityQuery = {}) {
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1000)
    const where: Array<Fragment> = []
    if (query.appId !== undefined) where.push(sql`a.app_id = ${query.appId}`)
    if (query.before !== undefined) where.push(sql`a.id < ${query.before}`)
    const rows = yield* sql<ActivityRow>`SELECT a.id, a.kind, a.severity, a.app_id AS "appId", g.name AS "group",
        a.channel, a.version, a.message, a.created_at AS at
      FROM activity a LEFT JOIN groups g ON g.id = a.group_id
      WHERE ${sql.and(where)} ORDER BY a.id DESC LIMIT ${limit}`
    return rows.map(toActivity)
  })

  // -- instances (reads)

  /** An application's instances, filtered, newest check first, one page and the total. */
  const listInstances = Effect.fn("Store.listInstances")(function*(appId: string, query: InstanceQuery = {}) {
    yield* requireApplication(appId)
    const perPage = Math.min(Math.max(query.perPage ?? 50, 1), maxPerPage)
    const page = Math.max(query.page ?? 1, 1)
    const where: Array<Fragment> = [sql`ia.app_id = ${appId}`]
    if (query.group !== undefined) where.push(sql`ig.name = ${query.group}`)
    if (query.status !== undefined) where.push(sql`ia.status = ${query.status}`)
    if (query.version !== undefined) where.push(sql`ia.version = ${query.version}`)
    if (query.search !== undefined && query.search.trim() !== "") {
      const pattern = containing(query.search.trim())
      where.push(sql`(ia.instance_id ILIKE ${pattern} OR i.alias ILIKE ${pattern} OR i.ip ILIKE ${pattern})`)
    }
    if (query.lastCheckAfter !== undefined) where.push(sql`ia.last_check >= ${query.lastCheckAfter}`)
    if (query.lastCheckBefore !== undefined) where.push(sql`ia.last_check < ${query.lastCheckBefore}`)
    const filter = sql.and(where)
    const sort = query.sort ?? "lastCheck"
    const order = (query.order ?? (sort === "lastCheck" ? "desc" : "asc")) === "desc" ? "DESC" : "ASC"
    const orderBy = `${instanceOrder[sort]} ${order} NULLS LAST, ia.instance_id ${order}`
    const [counted, rows] = yield* Effect.all([
      sql<{ readonly n: unknown }>`SELECT count(*) AS n FROM ${sql.literal(instanceFrom)} WHERE ${filter}`,
      sql<InstanceRow>`SELECT ${sql.literal(instanceColumns)} FROM ${sql.literal(instanceFrom)} WHERE ${filter}
        ORDER BY ${sql.literal(orderBy)} LIMIT ${perPage} OFFSET ${(page - 1) * perPage}`
    ])
    return new InstancePage({
      items: rows.map((row) => new InstanceItem(instanceFields(row))),
      total: Number(counted[0]?.n ?? 0)
    })
  })

  /** One machine of an application, with its latest status changes and events. */
  const getInstance = Effect.fn("Store.getInstance")(function*(appId: string, machineId: string) {
    const rows = yield* sql<InstanceRow & { readonly oem: string; readonly oemVersion: string; readonly alephVersion: string; readonly firstSeen: unknown }>`
      SELECT ${sql.literal(instanceColumns)}, i.oem, i.oem_version AS "oemVersion", i.aleph_version AS "alephVersion",
        i.created_at AS "firstSeen"
      FROM ${sql.literal(instanceFrom)} WHERE ia.app_id = ${appId} AND ia.instance_id = ${machineId}`
    const row = rows[0]
    if (row === undefined) {
      yield* requireApplication(appId)
      return yield* new NotFound({ subject: "instance", key: `${quote(machineId)} of ${quote(appId)}` })
    }
    const history = yield* sql<{ readonly status: Status; readonly version: string; readonly errorCode: number | null; readonly at: unknown }>`
      SELECT status, version, error_code AS "errorCode", created_at AS at FROM instance_status_history
      WHERE instance_id = ${machineId} AND app_id = ${appId} ORDER BY created_at DESC, id DESC LIMIT ${instanceHistoryLimit}`
    const events = yield* sql<{
      readonly eventType: number
      readonly eventResult: number
      readonly errorCode: number | null
      readonly previousVersion: string | null
      readonly nextVersion: string | null
      readonly at: unknown
    }>`SELECT event_type AS "eventType", event_result AS "eventResult", error_code AS "errorCode",
        previous_version AS "previousVersion", next_version AS "nextVersion", created_at AS at
      FROM events WHERE instance_id = ${machineId} AND app_id = ${appId} ORDER BY created_at DESC, id DESC LIMIT ${instanceHistoryLimit}`
    return new InstanceDetail({
      ...instanceFields(row),
      oem: row.oem,
      oemVersion: row.oemVersion,
      alephVersion: row.alephVersion,
      firstSeen: asDate(row.firstSeen),
      history: history.map((h) =>
        new StatusChange({ status: h.status, version: h.version, ...optional("errorCode", h.errorCode), at: asDate(h.at) })
      ),
      events: events.map((e) =>
        new InstanceEvent({
          eventType: Number(e.eventType),
          eventResult: Number(e.eventResult),
          ...optional("errorCode", e.errorCode),
          ...optional("previousVersion", e.previousVersion),
          ...optional("nextVersion", e.nextVersion),
          at: asDate(e.at)
        })
      )
    })
  })

  /** Forgets a machine for one application (and the machine itself when no other application knows it). */
  const deleteInstance = Effect.fn("Store.deleteInstance")(function*(appId: string, machineId: string) {
    return yield* sql.withTransaction(Effect.gen(function*() {
      const instance = yield* getInstance(appId, machineId)
      yield* sql`DELETE FROM instance_apps WHERE app_id = ${appId} AND instance_id = ${machineId}`
      yield* sql`DELETE FROM instance_status_history WHERE app_id = ${appId} AND instance_id = ${machineId}`
      yield* sql`DELETE FROM events WHERE app_id = ${appId} AND instance_id = ${machineId}`
      yield* sql`DELETE FROM instances i WHERE i.id = ${machineId}
        AND NOT EXISTS (SELECT 1 FROM instance_apps ia WHERE ia.instance_id = i.id)`
      return instance
    }))
  })

  /** Whether the database answers (for `/health`). */
  const ping = sql`SELECT 1`.pipe(Effect.asVoid, Effect.withSpan("Store.ping"))

  return {
    createApplication,
    listApplications,
    getApplication,
    updateApplication,
    deleteApplication,
    hostedPayloads,
    createPackage,
    listPackages,
    getPackage,
    deletePackage,
    hostedPackage,
    withPayloadLocks,
    payloadInUse,
    createChannel,
    listChannels,
    getChannel,
    updateChannel,
    deleteChannel,
    setFloor,
    removeFloor,
    blockVersion,
    unblockVersion,
    createGroup,
    listGroups,
    getGroup,
    updateGroup,
    pauseGroup,
    resumeGroup,
    deleteGroup,
    createToken,
    useToken,
    listTokens,
    deleteToken,
    recordActivity,
    listActivity,
    listInstances,
    getInstance,
    deleteInstance,
    ping
  } as const
})

/** The store as a service; `Store.Default` needs a `SqlClient`. */
export class Store extends Effect.Service<Store>()("effect-omaha/fleet/Store", { effect: make }) {}
