/**
 * A fleet of a given size for the dashboard's screenshots and load
 * benchmark: Flatcar with three groups on one channel, a rollout from
 * 3815.2.0 to 3815.2.1 under way in the largest (most machines complete,
 * some downloading, some held by the policy, a few failed with real
 * update_engine codes), a month of status history behind it, and activity.
 * The configuration goes through the API; the machines are written
 * straight into the database, in a few set-based statements, since
 * checking ten thousand machines in through Omaha is not what is measured.
 */
import { Effect } from "effect"
import * as Fleet from "./fleet.js"

/** The seeded application. */
export const appId = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

/** The seeded groups and their share of the fleet. */
export const groups = [
  { name: "stable", share: 0.8, description: "Production hosts" },
  { name: "beta", share: 0.15, description: "Staging hosts, a week ahead" },
  { name: "alpha", share: 0.05, description: "The team's own machines" }
] as const

const must = (what: string, answer: { status: number; json: unknown }) =>
  answer.status < 300 ? Effect.void : Effect.die(`${what}: ${answer.status} ${JSON.stringify(answer.json)}`)

/** Seeds `instances` machines (see the module header); returns one machine that failed. */
export const seed = (fleet: Fleet.Fleet, instances: number) =>
  Effect.gen(function*() {
    const path = Fleet.appPath(appId)
    yield* must("app", yield* Fleet.call(fleet, "POST", "/api/apps", { id: appId, name: "Flatcar Container Linux", description: "Stable channel, amd64" }))
    for (const version of ["3760.2.0", "3815.2.0", "3815.2.1"]) {
      const payload = new TextEncoder().encode(`Flatcar ${version} update payload\n`.repeat(20_000))
      yield* must("package", yield* Fleet.call(fleet, "PUT", `${path}/packages/${version}?arch=amd64&name=flatcar_production_update.gz`, payload))
    }
    yield* must("channel", yield* Fleet.call(fleet, "POST", `${path}/channels`, { name: "stable", arch: "amd64", package: "3815.2.1", color: "#16a34a" }))
    yield* must("channel", yield* Fleet.call(fleet, "POST", `${path}/channels`, { name: "beta", arch: "amd64", package: "3815.2.1", color: "#d97706" }))
    yield* must("floor", yield* Fleet.call(fleet, "PUT", `${path}/channels/stable/floors/3815.2.0?arch=amd64`, { reason: "new partition layout" }))
    yield* must("block", yield* Fleet.call(fleet, "PUT", `${path}/channels/stable/blocklist/3760.2.0?arch=amd64`))
    const ids: Record<string, string> = {}
    for (const group of groups) {
      const created = yield* Fleet.call(fleet, "POST", `${path}/groups`, {
        name: group.name,
        description: group.description,
        channel: group.name === "stable" ? "stable" : "beta",
        policy: {
          maxUpdatesPerPeriod: group.name === "stable" ? 200 : 50,
          periodSeconds: 3600,
          safeMode: group.name === "stable",
          rolloutPercent: group.name === "stable" ? 75 : 100,
          failureBrake: { ratio: 0.1, minAttempts: 20 },
          windows: group.name === "stable"
            ? [{ days: ["mon", "tue", "wed", "thu"], start: "08:00", end: "18:00", timeZone: "Europe/Berlin" }]
            : []
        }
      })
      yield* must("group", created)
      ids[group.name] = (created.json as { id: string }).id
    }
    const now = Date.now()
    const sql = fleet.sql
    // Machines: their facts, when they were first seen (up to 35 days ago) and their last check (the last 30 min).
    yield* sql`
      INSERT INTO instances (id, alias, ip, oem, oem_version, aleph_version, created_at, last_seen)
      SELECT md5(format('machine %s', n)),
        format('node-%s', lpad(n::text, 5, '0')), format('10.%s.%s.%s', n / 65536, (n / 256) % 256, n % 256),
        CASE WHEN n % 3 = 0 THEN 'ami' WHEN n % 3 = 1 THEN 'qemu' ELSE 'packet' END, '1.0', '3510.2.0',
        ${new Date(now)}::timestamptz - make_interval(secs => 86400 * 30 + (n % 5) * 86400 + n % 3600),
        ${new Date(now)}::timestamptz - make_interval(secs => n % 1800)
      FROM generate_series(1, ${instances}) AS n`
    // Their state: which group, and where the stable group's rollout has each of them.
    const stable = Math.round(instances * groups[0].share)
    const beta = Math.round(instances * groups[1].share)
    yield* sql`
      INSERT INTO instance_apps (instance_id, app_id, group_id, track, arch, version, status, hold, error_code,
        last_check, last_grant, granted_version)
      SELECT i.id, ${appId}, g.group_id::uuid, g.track, 'amd64', s.version, s.status, s.hold, s.error_code,
        i.last_seen, CASE WHEN s.status <> 'undefined' AND s.status <> 'onHold' THEN i.last_seen - interval '2 hours' END,
        CASE WHEN s.status <> 'undefined' AND s.status <> 'onHold' THEN '3815.2.1' END
      FROM (SELECT id, last_seen, row_number() OVER (ORDER BY id) AS n FROM instances) i
      CROSS JOIN LATERAL (SELECT
          CASE WHEN i.n <= ${stable} THEN ${ids["stable"]!} WHEN i.n <= ${stable + beta} THEN ${ids["beta"]!} ELSE ${ids["alpha"]!} END AS group_id,
          CASE WHEN i.n <= ${stable} THEN 'stable' WHEN i.n <= ${stable + beta} THEN 'beta' ELSE 'alpha' END AS track) g
      CROSS JOIN LATERAL (SELECT
          CASE
            WHEN i.n > ${stable} OR i.n % 100 < 58 THEN 'complete'
            WHEN i.n % 100 < 62 THEN 'downloading'
            WHEN i.n % 100 < 63 THEN 'installed'
            WHEN i.n % 100 < 64 THEN 'granted'
            WHEN i.n % 100 < 65 THEN 'error'
            WHEN i.n % 100 < 90 THEN 'onHold'
            ELSE 'undefined'
          END AS status) st
      CROSS JOIN LATERAL (SELECT st.status,
          CASE WHEN st.status = 'complete' THEN '3815.2.1' ELSE '3815.2.0' END AS version,
          CASE WHEN st.status <> 'onHold' THEN NULL
            WHEN i.n % 100 < 80 THEN 'on hold: outside the rollout percentage (75 %)'
            WHEN i.n % 100 < 87 THEN 'on hold: 200 of 200 updates in the last 1 h'
            ELSE 'on hold: outside the maintenance windows' END AS hold,
          CASE WHEN st.status = 'error' THEN (ARRAY[10, 9, 44, 2404])[1 + (i.n / 100) % 4] END AS error_code) s`
    // A month of history: last month's rollout to 3815.2.0 for everyone, this week's to 3815.2.1.
    yield* sql`
      INSERT INTO instance_status_history (instance_id, app_id, group_id, status, version, error_code, created_at)
      SELECT ia.instance_id, ${appId}, ia.group_id, h.status, h.version, NULL, h.at
      FROM (SELECT *, row_number() OVER (ORDER BY instance_id) AS n FROM instance_apps WHERE app_id = ${appId}) ia
      CROSS JOIN LATERAL (VALUES
        ('granted', '3815.2.0', ${new Date(now)}::timestamptz - interval '28 days' + make_interval(secs => (ia.n * 97) % 172800)),
        ('downloading', '3815.2.0', ${new Date(now)}::timestamptz - interval '28 days' + make_interval(secs => (ia.n * 97) % 172800 + 60)),
        ('installed', '3815.2.0', ${new Date(now)}::timestamptz - interval '28 days' + make_interval(secs => (ia.n * 97) % 172800 + 600)),
        ('complete', '3815.2.0', ${new Date(now)}::timestamptz - interval '28 days' + make_interval(secs => (ia.n * 97) % 172800 + 900))
      ) AS h(status, version, at)`
    yield* sql`
      INSERT INTO instance_status_history (instance_id, app_id, group_id, status, version, error_code, created_at)
      SELECT ia.instance_id, ${appId}, ia.group_id, h.status, '3815.2.1', h.error_code, h.at
      FROM (SELECT *, row_number() OVER (ORDER BY instance_id) AS n FROM instance_apps WHERE app_id = ${appId} AND status <> 'undefined' AND status <> 'onHold') ia
      CROSS JOIN LATERAL (SELECT ${new Date(now)}::timestamptz - make_interval(secs => 300 + (ia.n * 131) % 518400) AS t0) t
      CROSS JOIN LATERAL (VALUES
        ('granted', NULL::int, t.t0, true),
        ('downloading', NULL, t.t0 + interval '1 minute', ia.status <> 'granted'),
        ('downloaded', NULL, t.t0 + interval '4 minutes', ia.status IN ('installed', 'complete', 'error')),
        ('installed', NULL, t.t0 + interval '5 minutes', ia.status IN ('installed', 'complete')),
        ('error', ia.error_code, t.t0 + interval '5 minutes', ia.status = 'error'),
        ('complete', NULL, t.t0 + interval '12 minutes', ia.status = 'complete')
      ) AS h(status, error_code, at, happened)
      WHERE h.happened AND h.at < ${new Date(now)}`
    // The 3/2 events that finished the updates, saying which version they came from.
    yield* sql`
      INSERT INTO events (instance_id, app_id, event_type, event_result, error_code, previous_version, created_at)
      SELECT instance_id, app_id, 3, CASE WHEN status = 'complete' THEN 2 ELSE 0 END, error_code,
        CASE WHEN status = 'complete' THEN CASE WHEN version = '3815.2.0' THEN '3760.2.0' ELSE '3815.2.0' END END, created_at
      FROM instance_status_history WHERE app_id = ${appId} AND status IN ('complete', 'error')`
    yield* sql`
      INSERT INTO events (instance_id, app_id, event_type, event_result, created_at)
      SELECT instance_id, app_id, CASE status WHEN 'downloading' THEN 13 WHEN 'downloaded' THEN 14 ELSE 3 END, 1, created_at
      FROM instance_status_history WHERE app_id = ${appId} AND status IN ('downloading', 'downloaded', 'installed')`
    const [failed] = yield* sql<{ readonly id: string; readonly alias: string; readonly code: number }>`
      SELECT ia.instance_id AS id, i.alias, ia.error_code AS code FROM instance_apps ia JOIN instances i ON i.id = ia.instance_id
      WHERE ia.app_id = ${appId} AND ia.status = 'error' AND ia.error_code = 10 ORDER BY ia.instance_id LIMIT 1`
    const failure = `${failed!.alias} failed to update to 3815.2.1: PayloadHashMismatchError (10)`
    yield* sql`
      INSERT INTO activity (app_id, group_id, channel, kind, severity, version, message, created_at) VALUES
      (${appId}, NULL, 'stable', 'channelMoved', 'info', '3815.2.1', 'channel stable (amd64) moved from 3815.2.0 to 3815.2.1', ${new Date(now - 6.2 * 86400_000)}),
      (${appId}, ${ids["alpha"]!}::uuid, NULL, 'rolloutStarted', 'info', '3815.2.1', 'alpha: rollout of 3815.2.1 started', ${new Date(now - 6.1 * 86400_000)}),
      (${appId}, ${ids["alpha"]!}::uuid, NULL, 'rolloutFinished', 'info', '3815.2.1', 'alpha: every machine runs 3815.2.1', ${new Date(now - 5.4 * 86400_000)}),
      (${appId}, ${ids["beta"]!}::uuid, NULL, 'rolloutStarted', 'info', '3815.2.1', 'beta: rollout of 3815.2.1 started', ${new Date(now - 5.9 * 86400_000)}),
      (${appId}, ${ids["stable"]!}::uuid, NULL, 'rolloutStarted', 'info', '3815.2.1', 'stable: rollout of 3815.2.1 started', ${new Date(now - 5.9 * 86400_000)}),
      (${appId}, ${ids["stable"]!}::uuid, NULL, 'rolloutPaused', 'warning', '3815.2.1', 'stable: paused by an operator: waiting for the kernel fix', ${new Date(now - 3 * 86400_000)}),
      (${appId}, ${ids["stable"]!}::uuid, NULL, 'rolloutResumed', 'info', '3815.2.1', 'stable: resumed', ${new Date(now - 2.5 * 86400_000)}),
      (${appId}, ${ids["stable"]!}::uuid, NULL, 'instanceFailed', 'error', '3815.2.1', ${failure}, ${new Date(now - 40 * 60_000)}),
      (${appId}, ${ids["beta"]!}::uuid, NULL, 'rolloutFinished', 'info', '3815.2.1', 'beta: every machine runs 3815.2.1', ${new Date(now - 20 * 60_000)})`
    // The entries the API wrote while the fleet was set up, back when that was.
    yield* sql`UPDATE activity SET created_at = ${new Date(now - 7 * 86400_000)} WHERE created_at > ${new Date(now - 3600_000)}
      AND kind = 'channelMoved'`
    // The packages as old as the releases, the channels as moved when the feed says.
    yield* sql`UPDATE packages SET created_at = CASE version
        WHEN '3760.2.0' THEN ${new Date(now - 60 * 86400_000)}::timestamptz
        WHEN '3815.2.0' THEN ${new Date(now - 29 * 86400_000)}::timestamptz
        ELSE ${new Date(now - 6.3 * 86400_000)}::timestamptz END
      WHERE app_id = ${appId}`
    yield* sql`UPDATE channels SET updated_at = ${new Date(now - 6.2 * 86400_000)} WHERE app_id = ${appId}`
    // What autovacuum would do within a minute of such a load: the planner's statistics.
    yield* sql`ANALYZE`
    return { failedMachine: failed!.id }
  }).pipe(Effect.orDie)
