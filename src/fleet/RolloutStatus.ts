/**
 * A group's rollout in numbers, over `SqlClient`: where its machines stand
 * now (by status, by version, why those on hold are held, which error codes
 * those that failed reported) and a timeline of versions and statuses over
 * a window, rebuilt from the status history.
 *
 * The timeline counts, at each of its evenly spaced times, every machine now
 * in the group that had been seen by then, once. Its status is that of its
 * last status change at or before the time (`undefined` before its first);
 * its version is the one named by its last `complete` change (the version
 * it updated to), before that the version its first completed update came
 * from (`previousversion` of the 3/2 event, when the machine sent one, else
 * `""`), and for a machine that never completed an update the version it
 * reports now. Holds are not status changes: a machine on hold shows its
 * last recorded status, except at the timeline's last point, which is the
 * group as it stands now.
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Option } from "effect"
import * as Version from "../protocol/Version.js"
import {
  ErrorCount,
  GroupStatus,
  HoldCount,
  type Status,
  type StatusCounts,
  Timeline,
  TimelinePoint,
  type TimelineWindow,
  VersionCount
} from "./Model.js"
import { NotFound } from "./Store.js"

/** How each window is sampled: the number of points and the seconds between them. */
export const sampling: Readonly<Record<TimelineWindow, { readonly points: number; readonly stepSeconds: number }>> = {
  "1h": { points: 61, stepSeconds: 60 },
  "1d": { points: 97, stepSeconds: 900 },
  "7d": { points: 85, stepSeconds: 7200 },
  "30d": { points: 121, stepSeconds: 21600 }
}

const zeroCounts = (): Record<Status, number> => ({
  undefined: 0,
  granted: 0,
  downloading: 0,
  downloaded: 0,
  installed: 0,
  complete: 0,
  error: 0,
  onHold: 0
})

// Newest first; versions that do not parse after those that do, as text.
const byVersionDescending = (a: string, b: string): number => {
  const va = Version.parseOption(a)
  const vb = Version.parseOption(b)
  if (Option.isSome(va) && Option.isSome(vb)) return Version.compare(vb.value, va.value)
  if (Option.isSome(va)) return -1
  if (Option.isSome(vb)) return 1
  return a < b ? 1 : a > b ? -1 : 0
}

/** The rollout reads (see the module header). */
export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const groupId = (appId: string, name: string) =>
    Effect.gen(function*() {
      const rows = yield* sql<{ readonly id: string }>`SELECT id::text AS id FROM groups WHERE app_id = ${appId} AND name = ${name}`
      if (rows[0] !== undefined) return rows[0].id
      const apps = yield* sql<{ readonly id: string }>`SELECT id FROM applications WHERE id = ${appId}`
      return yield* apps.length === 0
        ? new NotFound({ subject: "application", key: JSON.stringify(appId) })
        : new NotFound({ subject: "group", key: `${JSON.stringify(name)} of ${JSON.stringify(appId)}` })
    })

  /** Where a group's machines stand now. */
  const groupStatus = Effect.fn("RolloutStatus.groupStatus")(function*(appId: string, name: string) {
    const id = yield* groupId(appId, name)
    const at = new Date(yield* Clock.currentTimeMillis)
    const [cells, holds, errors] = yield* Effect.all([
      sql<{ readonly version: string; readonly status: Status; readonly n: unknown }>`
        SELECT version, status, count(*) AS n FROM instance_apps
        WHERE app_id = ${appId} AND group_id = ${id}::uuid GROUP BY version, status`,
      sql<{ readonly reason: string; readonly n: unknown }>`
        SELECT hold AS reason, count(*) AS n FROM instance_apps
        WHERE app_id = ${appId} AND group_id = ${id}::uuid AND status = 'onHold' AND hold IS NOT NULL
        GROUP BY hold ORDER BY count(*) DESC, hold`,
      sql<{ readonly code: unknown; readonly n: unknown }>`
        SELECT error_code AS code, count(*) AS n FROM instance_apps
        WHERE app_id = ${appId} AND group_id = ${id}::uuid AND status = 'error' AND error_code IS NOT NULL
        GROUP BY error_code ORDER BY count(*) DESC, error_code`
    ])
    const statuses = zeroCounts()
    const versions = new Map<string, Record<Status, number>>()
    let total = 0
    for (const cell of cells) {
      const n = Number(cell.n)
      total += n
      statuses[cell.status] += n
      const counts = versions.get(cell.version) ?? zeroCounts()
      counts[cell.status] += n
      versions.set(cell.version, counts)
    }
    return new GroupStatus({
      appId,
      group: name,
      total,
      statuses: statuses satisfies StatusCounts,
      versions: [...versions.keys()].sort(byVersionDescending).map((version) => {
        const counts = versions.get(version)!
        return new VersionCount({ version, count: Object.values(counts).reduce((a, b) => a + b, 0), statuses: counts })
      }),
      holds: holds.map((h) => new HoldCount({ reason: h.reason, count: Number(h.n) })),
      errors: errors.map((e) => new ErrorCount({ code: Number(e.code), count: Number(e.n) })),
      at
    })
  })

  /** A group's versions and statuses over a window ending now. */
  const timeline = Effect.fn("RolloutStatus.timeline")(function*(appId: string, name: string, window: TimelineWindow) {
    const id = yield* groupId(appId, name)
    const end = yield* Clock.currentTimeMillis
    const { points, stepSeconds } = sampling[window]
    const start = end - (points - 1) * stepSeconds * 1000
    // The points before the last come from the history. Each status change
    // holds from its time until the machine's next change, and a machine is
    // `undefined` from when it was first seen until its first change; each
    // completed update names the version from its time until the next one,
    // and before the first a machine runs the version it came from. Only
    // what holds at the window's start (one probe per machine into the
    // history's index) and the changes inside the window are read. Every
    // span covers a run of points, counted as +1 where it starts and -1
    // after it ends, so the database returns a few rows per series however
    // many machines and changes there are.
    const last = points - 2
    const from = new Date(start)
    const [deltas, now] = yield* Effect.all([
      sql<{ readonly kind: "status" | "version"; readonly key: string; readonly k: number; readonly d: unknown }>`
        WITH members AS (
          SELECT ia.instance_id AS id, ia.version, i.created_at AS since
          FROM instance_apps ia JOIN instances i ON i.id = ia.instance_id
          WHERE ia.app_id = ${appId} AND ia.group_id = ${id}::uuid
        ), recent AS (
          SELECT h.id AS hid, h.instance_id AS id, h.status, h.version, h.created_at AS at
          FROM instance_status_history h JOIN members m ON m.id = h.instance_id
          WHERE h.app_id = ${appId} AND h.created_at > ${from} AND h.created_at <= ${new Date(end)}
        ), firsts AS (
          SELECT id, min(at) AS status_at, min(at) FILTER (WHERE status = 'complete') AS complete_at FROM recent GROUP BY id
        ), opening AS (
          SELECT m.id, m.since, m.version AS current, s.status, s.at AS status_at,
            CASE WHEN s.status = 'complete' THEN s.version ELSE c.version END AS complete_version,
            CASE WHEN s.status = 'complete' THEN s.at ELSE c.at END AS complete_at,
            f.status_at AS next_status_at, f.complete_at AS next_complete_at
          FROM members m
          LEFT JOIN LATERAL (
            SELECT status, version, created_at AS at FROM instance_status_history h
            WHERE h.instance_id = m.id AND h.app_id = ${appId} AND h.created_at <= ${from}
            ORDER BY h.created_at DESC LIMIT 1
          ) s ON true
          -- Most machines' last change is a completed update: only the others look further back.
          LEFT JOIN LATERAL (
            SELECT version, created_at AS at FROM instance_status_history h
            WHERE s.status <> 'complete' AND h.instance_id = m.id AND h.app_id = ${appId} AND h.created_at <= ${from}
              AND h.status = 'complete'
            ORDER BY h.created_at DESC LIMIT 1
          ) c ON true
          LEFT JOIN firsts f ON f.id = m.id
        ), spans AS (
          SELECT 'status' AS kind, status AS key, at AS a, lead(at) OVER (PARTITION BY id ORDER BY at, hid) AS b FROM recent
          UNION ALL
          SELECT 'status', coalesce(status, 'undefined'), coalesce(status_at, since), next_status_at FROM opening
          UNION ALL
          SELECT 'version', version, at, lead(at) OVER (PARTITION BY id ORDER BY at, hid) FROM recent WHERE status = 'complete'
          UNION ALL
          SELECT 'version',
            CASE
              WHEN o.complete_version IS NOT NULL THEN o.complete_version
              WHEN o.next_complete_at IS NULL THEN o.current
              ELSE coalesce((
                SELECT previous_version FROM events e
                WHERE e.instance_id = o.id AND e.app_id = ${appId} AND e.created_at = o.next_complete_at
                  AND e.event_type = 3 AND e.event_result = 2
                LIMIT 1
              ), '')
            END,
            coalesce(o.complete_at, o.since), o.next_complete_at
          FROM opening o
        ), ranges AS (
          SELECT kind, key,
            greatest(0, ceil((date_part('epoch', a) - ${start / 1000}) / ${stepSeconds}))::int AS lo,
            CASE WHEN b IS NULL THEN ${last}
              ELSE least(${last}, ceil((date_part('epoch', b) - ${start / 1000}) / ${stepSeconds})::int - 1) END AS hi
          FROM spans
        )
        SELECT kind, key, k, sum(d) AS d FROM (
          SELECT kind, key, lo AS k, 1 AS d FROM ranges WHERE lo <= hi
          UNION ALL
          SELECT kind, key, hi + 1, -1 FROM ranges WHERE lo <= hi AND hi < ${last}
        ) x
        GROUP BY kind, key, k`,
      sql<{ readonly status: Status; readonly version: string; readonly n: unknown }>`
        SELECT status, version, count(*) AS n FROM instance_apps
        WHERE app_id = ${appId} AND group_id = ${id}::uuid GROUP BY status, version`
    ])
    const series = { status: new Map<string, Array<number>>(), version: new Map<string, Array<number>>() }
    for (const row of deltas) {
      const map = series[row.kind]
      const counts = map.get(row.key) ?? new Array<number>(points).fill(0)
      counts[Number(row.k)]! += Number(row.d)
      map.set(row.key, counts)
    }
    for (const map of [series.status, series.version]) {
      for (const counts of map.values()) for (let k = 1; k <= last; k++) counts[k]! += counts[k - 1]!
    }
    const current = { status: new Map<string, number>(), version: new Map<string, number>() }
    for (const row of now) {
      current.status.set(row.status, (current.status.get(row.status) ?? 0) + Number(row.n))
      current.version.set(row.version, (current.version.get(row.version) ?? 0) + Number(row.n))
    }
    const at = (kind: "status" | "version", k: number): Record<string, number> =>
      k === points - 1
        ? Object.fromEntries(current[kind])
        : Object.fromEntries([...series[kind]].flatMap(([key, counts]) => (counts[k]! > 0 ? [[key, counts[k]!]] : [])))
    return new Timeline({
      appId,
      group: name,
      window,
      stepSeconds,
      points: Array.from({ length: points }, (_, k) =>
        new TimelinePoint({
          at: new Date(start + k * stepSeconds * 1000),
          statuses: at("status", k),
          versions: at("version", k)
        }))
    })
  })

  return { groupStatus, timeline } as const
})

/** The rollout reads as a service; `RolloutStatus.Default` needs a `SqlClient`. */
export class RolloutStatus extends Effect.Service<RolloutStatus>()("effect-omaha/fleet/RolloutStatus", { effect: make }) {}
