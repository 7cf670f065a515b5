/**
 * Keeping the database bounded for a fleet that churns hosts: machines not
 * seen for `instanceDays` are forgotten (with their per-app state, status
 * history and events), and status history, events, activity and the grants
 * of rollouts that are over, older than `historyDays`, are removed.
 *
 * A background job prunes once shortly after start and then every
 * `interval`, in batches of `batchSize` rows, each its own short statement,
 * so no hot table is locked for long and the update checks' writes go on
 * between batches. Replicas may all run it: the deletes are idempotent.
 *
 * What is kept whatever its age: the grants of any version a channel still
 * targets or has as a floor (the rollout limits, safe mode and the failure
 * brake count them), and each group's latest `rolloutBraked` entry (the
 * attempts of a rollout are counted from it). Times come from Effect's
 * `Clock`.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Layer, Schedule } from "effect"

/** How long rows are kept and how the job runs. */
export interface Options {
  /** Machines not seen for this many days are removed; 0 keeps them. Default {@link defaultInstanceDays}. */
  readonly instanceDays?: number
  /** History, events, activity and finished rollouts' grants older than this many days are removed; 0 keeps them. Default {@link defaultHistoryDays}. */
  readonly historyDays?: number
  /** Rows per statement, at most. Default 1,000. */
  readonly batchSize?: number
  /** Time between runs of the job. Default 1 hour. */
  readonly interval?: Duration.DurationInput
  /** Time from start to the first run. Default 1 minute. */
  readonly firstRun?: Duration.DurationInput
}

/** The default days an unseen machine is kept. */
export const defaultInstanceDays = 30

/** The default days history is kept. */
export const defaultHistoryDays = 90

/** What one pass removed. */
export interface Pruned {
  readonly instances: number
  readonly history: number
  readonly events: number
  readonly activity: number
  readonly grants: number
}

const dayMillis = 24 * 60 * 60 * 1000

const describe = (pruned: Pruned, options: { readonly instanceDays: number; readonly historyDays: number }): string => {
  const parts: Array<string> = []
  if (pruned.instances > 0) parts.push(`${pruned.instances} machines not seen for ${options.instanceDays} days`)
  const old = [
    [pruned.history, "status changes"],
    [pruned.events, "events"],
    [pruned.activity, "activity entries"],
    [pruned.grants, "grants of finished rollouts"]
  ].filter(([n]) => (n as number) > 0).map(([n, what]) => `${n} ${what}`)
  if (old.length > 0) parts.push(`${old.join(", ")} older than ${options.historyDays} days`)
  return `retention: removed ${parts.join("; ")}`
}

/** One pass over every table, in batches; `now` is the Clock's. */
export const prune = (options: Options = {}): Effect.Effect<Pruned, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const instanceDays = options.instanceDays ?? defaultInstanceDays
    const historyDays = options.historyDays ?? defaultHistoryDays
    const batch = Math.max(1, options.batchSize ?? 1000)
    const now = yield* Clock.currentTimeMillis

    // Deletes a batch at a time until a batch comes back short.
    const drain = (statement: (cutoff: Date) => Effect.Effect<ReadonlyArray<unknown>, SqlError>, days: number) =>
      Effect.gen(function*() {
        if (days <= 0) return 0
        const cutoff = new Date(now - days * dayMillis)
        let total = 0
        for (;;) {
          const removed = (yield* statement(cutoff)).length
          total += removed
          if (removed < batch) return total
          // Others' statements (check-ins, grants) go between batches.
          yield* Effect.yieldNow()
        }
      })

    const instances = yield* drain(
      (cutoff) =>
        sql`DELETE FROM instances WHERE id IN (
          SELECT id FROM instances WHERE last_seen < ${cutoff} ORDER BY last_seen LIMIT ${batch}) RETURNING 1`,
      instanceDays
    )
    const history = yield* drain(
      (cutoff) =>
        sql`DELETE FROM instance_status_history WHERE id IN (
          SELECT id FROM instance_status_history WHERE created_at < ${cutoff} LIMIT ${batch}) RETURNING 1`,
      historyDays
    )
    const events = yield* drain(
      (cutoff) =>
        sql`DELETE FROM events WHERE id IN (
          SELECT id FROM events WHERE created_at < ${cutoff} LIMIT ${batch}) RETURNING 1`,
      historyDays
    )
    const activity = yield* drain(
      (cutoff) =>
        sql`DELETE FROM activity WHERE id IN (
          SELECT id FROM activity WHERE created_at < ${cutoff}
            AND id NOT IN (SELECT max(id) FROM activity WHERE kind = 'rolloutBraked' AND group_id IS NOT NULL GROUP BY group_id)
          LIMIT ${batch}) RETURNING 1`,
      historyDays
    )
    const grants = yield* drain(
      (cutoff) =>
        sql`DELETE FROM grants WHERE id IN (
          SELECT g.id FROM grants g WHERE g.granted_at < ${cutoff}
            AND NOT EXISTS (
              SELECT 1 FROM channels c JOIN packages p ON p.id = c.package_id
              WHERE c.app_id = g.app_id AND p.version = g.version)
            AND NOT EXISTS (
              SELECT 1 FROM channels c JOIN channel_floors f ON f.channel_id = c.id JOIN packages p ON p.id = f.package_id
              WHERE c.app_id = g.app_id AND p.version = g.version)
          LIMIT ${batch}) RETURNING 1`,
      historyDays
    )
    return { instances, history, events, activity, grants }
  }).pipe(Effect.withSpan("Retention.prune"))

/**
 * The job: a pass `firstRun` after start, then every `interval`, logging
 * what it removed; a pass that fails is logged and the next one tries again.
 */
export const run = (options: Options = {}): Effect.Effect<never, never, SqlClient.SqlClient> => {
  const instanceDays = options.instanceDays ?? defaultInstanceDays
  const historyDays = options.historyDays ?? defaultHistoryDays
  const pass = prune(options).pipe(
    Effect.flatMap((pruned) =>
      Object.values(pruned).some((n) => n > 0) ? Effect.logInfo(describe(pruned, { instanceDays, historyDays })) : Effect.void
    ),
    Effect.catchAllCause((cause) => Effect.logWarning("retention: pruning failed; trying again at the next run", cause))
  )
  return Effect.sleep(options.firstRun ?? Duration.minutes(1)).pipe(
    Effect.zipRight(Effect.repeat(pass, Schedule.spaced(options.interval ?? Duration.hours(1)))),
    Effect.zipRight(Effect.never)
  )
}

/** The job for the layer's lifetime (nothing runs when both kinds of retention are off). */
export const layer = (options: Options = {}): Layer.Layer<never, never, SqlClient.SqlClient> =>
  (options.instanceDays ?? defaultInstanceDays) <= 0 && (options.historyDays ?? defaultHistoryDays) <= 0
    ? Layer.empty
    : Layer.scopedDiscard(Effect.forkScoped(run(options)))
