/**
 * The configuration tables read into the model, for the update path: the
 * whole configuration in a few statements (the cache's load), and one
 * group's row (read again, locked, inside a grant). A row the model refuses
 * (a window with a time zone this runtime does not know, say) is left out
 * with a reason, rather than taking the whole configuration down with it.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, ParseResult, Schema } from "effect"
import { Application, Channel, Group, Package } from "../Model.js"
import { Config } from "../Rollout.js"

const iso = (value: unknown): unknown => (value instanceof Date ? value.toISOString() : value)

// jsonb comes back parsed; a JSON text is read too, whoever wrote it.
const json = (value: unknown): unknown => {
  if (typeof value !== "string") return value
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

const optional = <K extends string>(name: K, value: unknown): { readonly [P in K]?: unknown } =>
  (value === null || value === undefined ? {} : { [name]: value }) as { readonly [P in K]?: unknown }

const decodeApplication = Schema.decodeUnknownEither(Application)
const decodePackage = Schema.decodeUnknownEither(Package)
const decodeChannel = Schema.decodeUnknownEither(Channel)
const decodeGroup = Schema.decodeUnknownEither(Group)

/** The columns of `groups` that {@link groupFromRow} reads. */
export const groupColumns = `id::text AS id, app_id, name, description, track, channel, updates_enabled, safe_mode,
  max_updates_per_period, max_concurrent_updates, period_seconds, update_timeout_seconds, rollout_percent,
  allow_downgrade, failure_brake, windows, paused, paused_reason, created_at`

/** A `groups` row (read with {@link groupColumns}) as a `Group`. */
export const groupFromRow = (row: any): Either.Either<Group, ParseResult.ParseError> =>
  decodeGroup({
    id: row.id,
    appId: row.app_id,
    name: row.name,
    description: row.description,
    track: row.track,
    channel: row.channel,
    policy: {
      updatesEnabled: row.updates_enabled,
      maxUpdatesPerPeriod: Number(row.max_updates_per_period),
      periodSeconds: Number(row.period_seconds),
      ...optional("maxConcurrentUpdates", row.max_concurrent_updates === null ? null : Number(row.max_concurrent_updates)),
      updateTimeoutSeconds: Number(row.update_timeout_seconds),
      safeMode: row.safe_mode,
      rolloutPercent: Number(row.rollout_percent),
      allowDowngrade: row.allow_downgrade,
      ...optional("failureBrake", json(row.failure_brake)),
      windows: json(row.windows) ?? []
    },
    paused: row.paused,
    ...optional("pausedReason", row.paused_reason),
    createdAt: iso(row.created_at)
  })

const packageFromRow = (row: any) =>
  decodePackage({
    appId: row.app_id,
    version: row.version,
    arch: row.arch,
    name: row.name,
    size: Number(row.size),
    sha1: row.sha1,
    sha256: row.sha256,
    ...optional("url", row.url),
    action: {
      isDelta: row.is_delta,
      needsAdmin: row.needs_admin,
      disablePayloadBackoff: row.disable_payload_backoff,
      ...optional("metadataSignatureRsa", row.metadata_signature_rsa),
      ...optional("metadataSize", row.metadata_size),
      ...optional("deadline", row.deadline),
      ...optional("chromeOsVersion", row.chromeos_version)
    },
    extraFiles: json(row.extra_files) ?? [],
    createdAt: iso(row.created_at)
  })

/** The configuration, and what was left out of it and why. */
export interface Loaded {
  readonly config: Config
  readonly skipped: ReadonlyArray<string>
}

/** Reads every application, package, channel (with floors and blocklist) and group. */
export const loadConfig: Effect.Effect<Loaded, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [apps, packages, channels, floors, blocked, groups] = yield* Effect.all([
    sql.unsafe<any>(`SELECT id, name, description, created_at FROM applications`),
    sql.unsafe<any>(`SELECT * FROM packages`),
    sql.unsafe<any>(
      `SELECT c.id::text AS id, c.app_id, c.name, c.arch, c.color, p.version AS package, c.updated_at
       FROM channels c LEFT JOIN packages p ON p.id = c.package_id`
    ),
    sql.unsafe<any>(
      `SELECT f.channel_id::text AS channel_id, p.version, f.reason
       FROM channel_floors f JOIN packages p ON p.id = f.package_id`
    ),
    sql.unsafe<any>(
      `SELECT b.channel_id::text AS channel_id, p.version
       FROM channel_blocklist b JOIN packages p ON p.id = b.package_id`
    ),
    sql.unsafe<any>(`SELECT ${groupColumns} FROM groups`)
  ])
  const skipped: Array<string> = []
  const keep = <A>(what: string, decoded: Either.Either<A, ParseResult.ParseError>): Array<A> => {
    if (Either.isRight(decoded)) return [decoded.right]
    skipped.push(`${what}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
    return []
  }
  const floorsOf = new Map<string, Array<{ version: string; reason: string }>>()
  for (const row of floors) {
    const list = floorsOf.get(row.channel_id) ?? []
    list.push({ version: row.version, reason: row.reason })
    floorsOf.set(row.channel_id, list)
  }
  const blockedOf = new Map<string, Array<string>>()
  for (const row of blocked) blockedOf.set(row.channel_id, [...(blockedOf.get(row.channel_id) ?? []), row.version])
  return {
    config: new Config({
      applications: apps.flatMap((row) =>
        keep(`application ${row.id}`, decodeApplication({ ...row, createdAt: iso(row.created_at) }))
      ),
      packages: packages.flatMap((row) => keep(`package ${row.app_id} ${row.version} ${row.arch}`, packageFromRow(row))),
      channels: channels.flatMap((row) =>
        keep(
          `channel ${row.app_id} ${row.name} ${row.arch}`,
          decodeChannel({
            appId: row.app_id,
            name: row.name,
            arch: row.arch,
            color: row.color,
            ...optional("package", row.package),
            floors: floorsOf.get(row.id) ?? [],
            blocklist: blockedOf.get(row.id) ?? [],
            updatedAt: iso(row.updated_at)
          })
        )
      ),
      groups: groups.flatMap((row) => keep(`group ${row.app_id} ${row.name}`, groupFromRow(row)))
    }),
    skipped
  }
})
