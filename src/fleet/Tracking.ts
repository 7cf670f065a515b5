/**
 * The instance writes of the update path:
 *
 * - check-ins (last seen, reported version, address, alias, OEM, track,
 *   arch, group, and the hold reason of the last check) are queued in memory,
 *   one entry per machine and app, and written every `flushInterval` or
 *   every `maxBatch` entries with one `unnest` upsert, so the common "no
 *   update" answer costs no database round trip; closing the scope (a
 *   graceful stop) writes what is queued;
 * - events are applied at once, in a transaction: recorded, the machine's
 *   status moved (`Rollout.eventTransition`) with its status history, the
 *   grant finished, and the failure brake checked (pausing the group, with an
 *   activity entry);
 * - a grant is one transaction that locks the group's row
 *   (`SELECT ... FOR NO KEY UPDATE`), so grants of a group take turns across
 *   every replica on the database, counts the group's grants, asks `Rollout.admit`,
 *   and writes the grant and the machine's new state before it commits: the
 *   limits hold exactly under concurrent checks, and a grant is stored
 *   before its answer leaves.
 *
 * Every time comes from the caller (Effect's `Clock`), never from the
 * database's `now()`. The attempts of a rollout are the group's grants of
 * the channel's target and floors (`Rollout.rolloutVersions`) since the last
 * automatic stop of the group (the failure brake, or safe mode turning
 * updates off), so that a group resumed by an operator starts counting
 * afresh.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Either, Layer, Queue, type Scope } from "effect"
import type { EventRequest } from "../protocol/Request.js"
import { groupColumns, groupFromRow } from "./internal/configRows.js"
import type { Status } from "./Model.js"
import * as Rollout from "./Rollout.js"

/** What a machine's check tells about it. */
export interface CheckIn {
  readonly machineId: string
  readonly appId: string
  /** Epoch ms. */
  readonly at: number
  readonly ip: string
  readonly alias: string
  readonly oem: string
  readonly oemVersion: string
  readonly alephVersion: string
  readonly track: string
  readonly arch: string
  /** The group the machine's track names, if any. */
  readonly groupId: string | undefined
  /** The version the machine reports. */
  readonly version: string
  /**
   * The outcome of the check: a hold reason (the machine is on hold), null
   * (it is not), or undefined for a ping without a check (leave it as it is).
   */
  readonly hold?: string | null | undefined
}

/** A machine that needs an update and passed the policy rules that need no database. */
export interface GrantRequest {
  readonly checkIn: CheckIn
  readonly groupId: string
  /** What it needs (from `Rollout.target`). */
  readonly steps: Rollout.Steps
  /** The versions whose grants count as this rollout's (`Rollout.rolloutVersions`). */
  readonly rolloutVersions: ReadonlyArray<string>
  /** The machine's place in the rollout (`Rollout.bucket`). */
  readonly bucket: number
}

/** The outcome of a grant transaction. */
export type GrantOutcome =
  /** The update is granted and stored. */
  | {
    readonly _tag: "Granted"
    readonly grantId: number
    readonly version: string
    /** The group's first grant of this rollout: its start is recorded in the activity feed. */
    readonly rolloutStarted: boolean
  }
  /** Granted before and not yet installed: answer the same package again. */
  | { readonly _tag: "Again"; readonly grantedVersion: string }
  /**
   * On hold, with the reason (recorded on the machine). `until` is set when
   * the period's grants are used up: the time the oldest of them leaves the
   * period, before which no machine of the group can be granted.
   */
  | { readonly _tag: "Held"; readonly reason: string; readonly until?: number }

/** An event a machine reported, with what its request says about it. */
export interface EventReport {
  readonly checkIn: CheckIn
  readonly event: Pick<EventRequest, "eventType" | "eventResult" | "errorCode" | "previousVersion" | "nextVersion">
  /** The versions whose grants count as the rollout's, for the failure brake. */
  readonly rolloutVersions: ReadonlyArray<string>
}

/** What an event did. */
export interface EventOutcome {
  /** The status change, if the event moved the machine. */
  readonly transition: Rollout.Transition | undefined
  /** Why the failure brake paused the group, if this event tripped it. */
  readonly braked: string | undefined
  /** The version the machine's update was to, when the event moved it. */
  readonly version: string | undefined
  /**
   * Whether this completion finished the rollout: it was to the channel's
   * target, and every machine of the group that checked in since the
   * rollout started is on it (recorded once in the activity feed).
   */
  readonly rolloutFinished: boolean
}

/** The instance writes of the update path (see the module header). */
export interface TrackingService {
  /** Queues a check-in (no I/O; a later check-in of the same machine and app replaces it). */
  readonly checkIn: (checkIn: CheckIn) => Effect.Effect<void>
  /** Writes the queued check-ins now. */
  readonly flush: Effect.Effect<void, SqlError>
  /** Applies an event at once. */
  readonly event: (report: EventReport) => Effect.Effect<EventOutcome, SqlError>
  /** A machine's update state for an app, as `Rollout.resume` reads it (one statement, no lock). */
  readonly state: (machineId: string, appId: string) => Effect.Effect<Rollout.InstanceState | undefined, SqlError>
  /** The grant transaction; a hold it answers is queued as the machine's check-in. */
  readonly grant: (request: GrantRequest) => Effect.Effect<GrantOutcome, SqlError>
  /** How many check-ins are queued. */
  readonly pending: Effect.Effect<number>
}

/** The instance writes of the update path. */
export class Tracking extends Context.Tag("effect-omaha/fleet/Tracking")<Tracking, TrackingService>() {}

/** How check-ins are batched. */
export interface Options {
  /** The longest a check-in waits before it is written; 250 ms by default. */
  readonly flushInterval?: Duration.DurationInput
  /** Check-ins written per statement, at most; reaching it starts a write at once. 2,000 by default. */
  readonly maxBatch?: number
}

const keyOf = (machineId: string, appId: string) => `${machineId}\u0000${appId}`

const merge = (before: CheckIn | undefined, next: CheckIn): CheckIn =>
  before === undefined || next.hold !== undefined || before.hold === undefined
    ? next
    : { ...next, hold: before.hold }

const inProgressList = "('granted', 'downloading', 'downloaded', 'installed')"

// One statement for a batch: the machines, then their per-app state. With
// `holds`, every row carries the outcome of a check (a hold or none);
// without, the rows are pings and leave status and hold alone. A hold never
// overwrites the status of an update in progress.
const upsertSql = (holds: boolean) => `
WITH r AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::uuid[], $12::text[], $13::text[])
    AS r(instance_id, app_id, at, ip, alias, oem, oem_version, aleph_version, track, arch, group_id, version, hold)
), i AS (
  INSERT INTO instances AS t (id, alias, ip, oem, oem_version, aleph_version, created_at, last_seen)
  SELECT DISTINCT ON (instance_id) instance_id, alias, ip, oem, oem_version, aleph_version, at, at
  FROM r ORDER BY instance_id, at DESC
  ON CONFLICT (id) DO UPDATE SET alias = EXCLUDED.alias, ip = EXCLUDED.ip, oem = EXCLUDED.oem,
    oem_version = EXCLUDED.oem_version, aleph_version = EXCLUDED.aleph_version,
    last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen)
)
INSERT INTO instance_apps AS t (instance_id, app_id, group_id, track, arch, version, status, hold, last_check)
SELECT instance_id, app_id, group_id, track, arch, version,
  ${holds ? "CASE WHEN hold IS NULL THEN 'undefined' ELSE 'onHold' END" : "'undefined'"},
  ${holds ? "hold" : "NULL"}, at
FROM r
ON CONFLICT (instance_id, app_id) DO UPDATE SET
  group_id = EXCLUDED.group_id, track = EXCLUDED.track, arch = EXCLUDED.arch,
  version = CASE WHEN EXCLUDED.last_check >= t.last_check THEN EXCLUDED.version ELSE t.version END,
  last_check = GREATEST(t.last_check, EXCLUDED.last_check)${
  holds
    ? `,
  status = CASE WHEN t.status IN ${inProgressList} THEN t.status
    WHEN EXCLUDED.hold IS NOT NULL THEN 'onHold'
    WHEN t.status = 'onHold' THEN 'undefined'
    ELSE t.status END,
  hold = CASE WHEN t.status IN ${inProgressList} THEN t.hold ELSE EXCLUDED.hold END`
    : ""
}`

const columnsOf = (rows: ReadonlyArray<CheckIn>) => [
  rows.map((r) => r.machineId),
  rows.map((r) => r.appId),
  rows.map((r) => new Date(r.at).toISOString()),
  rows.map((r) => r.ip),
  rows.map((r) => r.alias),
  rows.map((r) => r.oem),
  rows.map((r) => r.oemVersion),
  rows.map((r) => r.alephVersion),
  rows.map((r) => r.track),
  rows.map((r) => r.arch),
  rows.map((r) => r.groupId ?? null),
  rows.map((r) => r.version),
  rows.map((r) => r.hold ?? null)
]

/** The time of the group's last automatic stop: the start of the current count of its rollout's attempts. */
const sinceLastStop = `(SELECT coalesce(max(created_at), '-infinity'::timestamptz) FROM activity
  WHERE group_id = $1::uuid AND kind = 'rolloutBraked')`

const stateOf = (row: any): Rollout.InstanceState => ({
  status: row.status as Status,
  grantedVersion: row.granted_version ?? undefined,
  lastGrant: row.last_grant === null || row.last_grant === undefined ? undefined : new Date(row.last_grant).getTime()
})

/** Builds the service; the batch writer runs for the scope, and closing the scope writes what is queued. */
export const make = (options: Options = {}): Effect.Effect<TrackingService, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const flushInterval = Duration.decode(options.flushInterval ?? Duration.millis(250))
    const maxBatch = Math.max(1, options.maxBatch ?? 2000)
    let queued = new Map<string, CheckIn>()
    const wake = yield* Queue.sliding<void>(1)
    const writing = yield* Effect.makeSemaphore(1)

    const write = (rows: ReadonlyArray<CheckIn>) =>
      Effect.gen(function*() {
        const checks = rows.filter((r) => r.hold !== undefined)
        const pings = rows.filter((r) => r.hold === undefined)
        for (let i = 0; i < checks.length; i += maxBatch) {
          yield* sql.unsafe(upsertSql(true), columnsOf(checks.slice(i, i + maxBatch)))
        }
        for (let i = 0; i < pings.length; i += maxBatch) {
          yield* sql.unsafe(upsertSql(false), columnsOf(pings.slice(i, i + maxBatch)))
        }
      })

    // Takes what is queued and writes it; on failure the rows go back to the
    // queue, behind any newer check-in of the same machine.
    const flush = writing.withPermits(1)(Effect.uninterruptible(Effect.gen(function*() {
      if (queued.size === 0) return
      const batch = queued
      queued = new Map()
      yield* write(Array.from(batch.values())).pipe(
        Effect.tapError(() =>
          Effect.sync(() => {
            for (const [key, row] of batch) if (!queued.has(key)) queued.set(key, row)
          })
        )
      )
    })))

    const checkIn = (row: CheckIn) =>
      Effect.sync(() => {
        const key = keyOf(row.machineId, row.appId)
        queued.set(key, merge(queued.get(key), row))
        if (queued.size >= maxBatch) wake.unsafeOffer(undefined)
      })

    // A database that is down is said once, and again when it is back.
    let failing = false
    yield* Effect.raceFirst(Effect.sleep(flushInterval), Queue.take(wake)).pipe(
      Effect.zipRight(flush),
      Effect.matchEffect({
        onFailure: (error) =>
          Effect.zipRight(
            failing ? Effect.void : Effect.zipRight(
              Effect.sync(() => (failing = true)),
              Effect.logWarning(`writing check-ins failed, keeping them for the next try: ${error.message}`, error.cause)
            ),
            // A full batch would otherwise retry at once, on every check-in.
            Effect.sleep(flushInterval)
          ),
        onSuccess: () =>
          failing
            ? Effect.zipRight(Effect.sync(() => (failing = false)), Effect.logInfo("writing check-ins works again"))
            : Effect.void
      }),
      Effect.forever,
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() =>
      flush.pipe(Effect.catchAll((error) => Effect.logError(`writing the last check-ins failed: ${error.message}`)))
    )

    // The machine's facts for a write inside a transaction: what its request
    // says, with the hold of a queued check-in it does not itself settle. The
    // queued check-in stays queued: writing it again later is harmless.
    const factsOf = (row: CheckIn): CheckIn => merge(queued.get(keyOf(row.machineId, row.appId)), row)

    const event = (report: EventReport) =>
      sql.withTransaction(Effect.gen(function*() {
        const facts = factsOf(report.checkIn)
        const at = new Date(facts.at)
        const { event } = report
        const finishing = (event.eventResult ?? 0) === 0 || (event.eventType === 3 && event.eventResult === 2)
        // Grants lock the group before the machine: so does an event that may
        // finish one, before its first write to the machine's row (the upsert
        // below locks that row), or the two could wait on each other.
        const locked = finishing && facts.groupId !== undefined
          ? (yield* sql.unsafe<any>(`SELECT ${groupColumns} FROM groups WHERE id = $1::uuid FOR NO KEY UPDATE`, [facts.groupId]))[0]
          : undefined
        yield* sql.unsafe(upsertSql(facts.hold !== undefined), columnsOf([facts]))
        const [state] = yield* sql.unsafe<any>(
          `SELECT status, version, granted_version, grant_id, group_id::text AS group_id FROM instance_apps
           WHERE instance_id = $1 AND app_id = $2 FOR UPDATE`,
          [facts.machineId, facts.appId]
        )
        const transition = state === undefined
          ? undefined
          : Rollout.eventTransition({
            status: state.status as Status,
            version: state.version,
            grantedVersion: state.granted_version ?? undefined
          }, event)
        yield* sql.unsafe(
          `INSERT INTO events (instance_id, app_id, event_type, event_result, error_code, previous_version, next_version, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            facts.machineId,
            facts.appId,
            event.eventType,
            event.eventResult ?? 0,
            event.errorCode ?? null,
            event.previousVersion ?? null,
            event.nextVersion ?? null,
            at
          ]
        )
        if (transition === undefined) return { transition, braked: undefined, version: undefined, rolloutFinished: false }
        const historyVersion = state.granted_version ?? transition.version
        yield* sql.unsafe(
          `WITH a AS (
             UPDATE instance_apps SET status = $3, version = $4, error_code = $5, hold = NULL
             WHERE instance_id = $1 AND app_id = $2
           ), g AS (
             UPDATE grants SET finished_at = $7, outcome = $8, error_code = $5
             WHERE id = $9::bigint AND finished_at IS NULL AND $8::text IS NOT NULL
           )
           INSERT INTO instance_status_history (instance_id, app_id, group_id, status, version, error_code, created_at)
           VALUES ($1, $2, $10::uuid, $3, $6, $5, $7)`,
          [
            facts.machineId,
            facts.appId,
            transition.status,
            transition.version,
            transition.errorCode ?? null,
            historyVersion,
            at,
            transition.outcome ?? null,
            state.grant_id ?? null,
            state.group_id ?? null
          ]
        )
        if (transition.outcome === "error") {
          yield* sql.unsafe(
            `INSERT INTO activity (app_id, group_id, kind, severity, version, message, created_at)
             VALUES ($1, $2::uuid, 'instanceFailed', 'error', $3, $4, $5)`,
            [
              facts.appId,
              state.group_id ?? null,
              historyVersion,
              `${facts.machineId} failed to update to ${historyVersion}${
                transition.errorCode === undefined ? "" : ` (error ${transition.errorCode}${transition.rollback ? ", rolled back" : ""})`
              }`,
              at
            ]
          )
        }
        const done = { transition, braked: undefined, version: historyVersion, rolloutFinished: false }
        if (transition.outcome === undefined || locked === undefined) return done
        const group = groupFromRow(locked)
        if (transition.outcome === "complete") {
          // Under the group's lock: one replica records the end, once.
          const target = report.rolloutVersions[0]
          if (target !== historyVersion || Either.isLeft(group)) return done
          const [finished] = yield* sql.unsafe<any>(
            `WITH s AS (SELECT max(created_at) AS t FROM activity WHERE group_id = $1::uuid AND kind = 'rolloutStarted' AND version = $3),
             f AS (
               INSERT INTO activity (app_id, group_id, kind, severity, version, message, created_at)
               SELECT $2, $1::uuid, 'rolloutFinished', 'info', $3, $4, $5 FROM s
               WHERE s.t IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM instance_apps WHERE app_id = $2 AND group_id = $1::uuid AND version <> $3
                   AND last_check >= s.t)
                 AND NOT EXISTS (SELECT 1 FROM activity WHERE group_id = $1::uuid AND kind = 'rolloutFinished' AND version = $3
                   AND created_at >= s.t)
               RETURNING 1
             )
             SELECT count(*)::int AS n FROM f`,
            [group.right.id, group.right.appId, target, `${group.right.name}: rollout of ${target} finished`, at]
          )
          return { ...done, rolloutFinished: Number(finished.n) > 0 }
        }
        if (Either.isLeft(group) || group.right.paused || group.right.policy.failureBrake === undefined) return done
        const [counts] = yield* sql.unsafe<any>(
          `SELECT count(*)::int AS finished, count(*) FILTER (WHERE outcome = 'error')::int AS failed
           FROM grants WHERE group_id = $1::uuid AND version = ANY($2::text[]) AND finished_at IS NOT NULL
             AND granted_at > ${sinceLastStop}`,
          [group.right.id, report.rolloutVersions]
        )
        const braked = Rollout.brakeTrips(group.right.policy.failureBrake, {
          finished: Number(counts.finished),
          failed: Number(counts.failed)
        })
        if (braked !== undefined) {
          yield* sql.unsafe(
            `WITH g AS (UPDATE groups SET paused = true, paused_reason = $2 WHERE id = $1::uuid)
             INSERT INTO activity (app_id, group_id, kind, severity, version, message, created_at)
             VALUES ($3, $1::uuid, 'rolloutBraked', 'warning', $4, $5, $6)`,
            [group.right.id, braked, group.right.appId, historyVersion, `${group.right.name}: ${braked}; rollout paused`, at]
          )
        }
        return { ...done, braked }
      }))

    const grantTransaction = (request: GrantRequest) =>
      sql.withTransaction(Effect.gen(function*() {
        const facts = request.checkIn
        const now = facts.at
        const at = new Date(now)
        // NO KEY UPDATE: grants take turns on it, while check-ins, which
        // reference the group (a KEY SHARE lock), go on being written.
        const [row] = yield* sql.unsafe<any>(`SELECT ${groupColumns} FROM groups WHERE id = $1::uuid FOR NO KEY UPDATE`, [
          request.groupId
        ])
        const decoded = row === undefined ? undefined : groupFromRow(row)
        if (decoded === undefined || Either.isLeft(decoded)) {
          return { _tag: "Held", reason: "on hold: the group is gone" } as const
        }
        const group = decoded.right
        const policy = group.policy
        // A new statement: it sees every grant committed before the lock was ours.
        const [s] = yield* sql.unsafe<any>(
          `WITH since AS (SELECT ${sinceLastStop} AS t),
           s AS (
             SELECT
               count(*) FILTER (WHERE granted_at > $2)::int AS granted_in_period,
               min(granted_at) FILTER (WHERE granted_at > $2) AS period_oldest,
               count(*) FILTER (WHERE finished_at IS NULL AND granted_at > $3)::int AS in_progress,
               count(*) FILTER (WHERE mine AND finished_at IS NOT NULL)::int AS rollout_finished,
               count(*) FILTER (WHERE mine AND outcome = 'error')::int AS rollout_failed,
               count(*) FILTER (WHERE mine AND finished_at IS NULL AND granted_at > $3)::int AS rollout_in_progress,
               count(*) FILTER (WHERE mine AND finished_at IS NULL AND granted_at <= $3)::int AS rollout_timed_out
             FROM (
               SELECT grants.*, version = ANY($4::text[]) AND granted_at > since.t AS mine FROM grants, since
               WHERE group_id = $1::uuid
             ) g
           )
           SELECT s.*, ia.status, ia.granted_version, ia.last_grant
           FROM s LEFT JOIN instance_apps ia ON ia.instance_id = $5 AND ia.app_id = $6`,
          [
            group.id,
            new Date(now - policy.periodSeconds * 1000),
            new Date(now - policy.updateTimeoutSeconds * 1000),
            request.rolloutVersions,
            facts.machineId,
            facts.appId
          ]
        )
        const resumed = Rollout.resume(
          s.status === null || s.status === undefined ? undefined : stateOf(s),
          policy,
          now,
          facts.version
        )
        if (resumed._tag === "Again") return resumed
        if (resumed._tag === "InProgress") return { _tag: "Held", reason: resumed.reason } as const
        const stats: Rollout.Stats = {
          grantedInPeriod: s.granted_in_period,
          inProgress: s.in_progress,
          rolloutFinished: s.rollout_finished,
          rolloutFailed: s.rollout_failed,
          rolloutInProgress: s.rollout_in_progress,
          rolloutTimedOut: s.rollout_timed_out
        }
        const decision = Rollout.admit({ group, stats, now, bucket: request.bucket })
        const targetVersion = request.steps.target.version
        if (decision._tag === "Hold") {
          if (decision.disableUpdates) {
            yield* sql.unsafe(
              `WITH g AS (UPDATE groups SET updates_enabled = false WHERE id = $1::uuid)
               INSERT INTO activity (app_id, group_id, kind, severity, version, message, created_at)
               VALUES ($2, $1::uuid, 'rolloutBraked', 'warning', $3, $4, $5)`,
              [
                group.id,
                group.appId,
                targetVersion,
                `${group.name}: safe mode turned updates off after ${stats.rolloutTimedOut} updates timed out`,
                at
              ]
            )
          }
          const full = stats.grantedInPeriod >= policy.maxUpdatesPerPeriod && s.period_oldest !== null
          return full
            ? { _tag: "Held", reason: decision.reason, until: new Date(s.period_oldest).getTime() + policy.periodSeconds * 1000 } as const
            : { _tag: "Held", reason: decision.reason } as const
        }
        const version = Rollout.grantedVersionOf(request.steps)
        const first = stats.rolloutFinished + stats.rolloutInProgress + stats.rolloutTimedOut === 0
        const [granted] = yield* sql.unsafe<any>(
          `WITH i AS (
             INSERT INTO instances AS t (id, alias, ip, oem, oem_version, aleph_version, created_at, last_seen)
             VALUES ($1, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (id) DO UPDATE SET alias = EXCLUDED.alias, ip = EXCLUDED.ip, oem = EXCLUDED.oem,
               oem_version = EXCLUDED.oem_version, aleph_version = EXCLUDED.aleph_version,
               last_seen = GREATEST(t.last_seen, EXCLUDED.last_seen)
           ), g AS (
             INSERT INTO grants (group_id, instance_id, app_id, version, granted_at)
             VALUES ($9::uuid, $1, $2, $10, $8) RETURNING id
           ), a AS (
             INSERT INTO instance_apps AS t (instance_id, app_id, group_id, track, arch, version, status, hold,
               last_check, last_grant, granted_version, grant_id, error_code)
             SELECT $1, $2, $9::uuid, $11, $12, $13, 'granted', NULL, $8, $8, $10, g.id, NULL FROM g
             ON CONFLICT (instance_id, app_id) DO UPDATE SET group_id = EXCLUDED.group_id, track = EXCLUDED.track,
               arch = EXCLUDED.arch, version = EXCLUDED.version, status = 'granted', hold = NULL,
               last_check = GREATEST(t.last_check, EXCLUDED.last_check), last_grant = EXCLUDED.last_grant,
               granted_version = EXCLUDED.granted_version, grant_id = EXCLUDED.grant_id, error_code = NULL
           ), h AS (
             INSERT INTO instance_status_history (instance_id, app_id, group_id, status, version, created_at)
             VALUES ($1, $2, $9::uuid, 'granted', $10, $8)
           ), r AS (
             INSERT INTO activity (app_id, group_id, kind, severity, version, message, created_at)
             SELECT $2, $9::uuid, 'rolloutStarted', 'info', $14, $15, $8 WHERE $16::boolean
           )
           SELECT id::int AS id FROM g`,
          [
            facts.machineId,
            facts.appId,
            facts.alias,
            facts.ip,
            facts.oem,
            facts.oemVersion,
            facts.alephVersion,
            at,
            group.id,
            version,
            facts.track,
            facts.arch,
            facts.version,
            targetVersion,
            `${group.name}: rollout of ${targetVersion} started`,
            first
          ]
        )
        return { _tag: "Granted", grantId: Number(granted.id), version, rolloutStarted: first } as const
      }))

    // A hold is recorded on the machine with its next batch.
    const grant = (request: GrantRequest) =>
      Effect.tap(
        grantTransaction(request),
        (outcome) => checkIn({ ...request.checkIn, hold: outcome._tag === "Held" ? outcome.reason : null })
      )

    const state = (machineId: string, appId: string) =>
      Effect.map(
        sql.unsafe<any>(`SELECT status, granted_version, last_grant FROM instance_apps WHERE instance_id = $1 AND app_id = $2`, [
          machineId,
          appId
        ]),
        ([row]): Rollout.InstanceState | undefined => row === undefined ? undefined : stateOf(row)
      )

    return {
      checkIn,
      flush,
      event,
      grant,
      state,
      pending: Effect.sync(() => queued.size)
    } satisfies TrackingService
  })

/** {@link make} as a layer. */
export const layer = (options: Options = {}): Layer.Layer<Tracking, never, SqlClient.SqlClient> =>
  Layer.scoped(Tracking, make(options))
