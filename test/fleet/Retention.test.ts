import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Effect, Layer, TestClock, TestServices } from "effect"
import * as Retention from "../../src/fleet/Retention.js"
import { describeStores, truncateAll } from "./support.js"

const day = 24 * 60 * 60 * 1000
const now = Date.UTC(2026, 5, 1, 12)
const ago = (days: number, minutes = 0) => new Date(now - days * day + minutes * 60_000)
const group = "00000000-0000-4000-8000-000000000001"

// A fleet with rows on both sides of each cutoff (30 days for machines, 90 for history).
const seed = Effect.gen(function*() {
  yield* truncateAll
  yield* TestClock.setTime(now)
  const sql = yield* SqlClient.SqlClient
  yield* sql`INSERT INTO applications (id, name) VALUES ('a', 'A')`
  yield* sql`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256) VALUES
    ('a', '1.0.0', 'amd64', 'u.gz', 1, 'x', 'y'), ('a', '2.0.0', 'amd64', 'u.gz', 1, 'x', 'y'), ('a', '1.5.0', 'amd64', 'u.gz', 1, 'x', 'y')`
  yield* sql`INSERT INTO channels (app_id, name, arch, package_id) SELECT 'a', 'stable', 'amd64', id FROM packages WHERE version = '2.0.0'`
  yield* sql`INSERT INTO channel_floors (channel_id, package_id)
    SELECT c.id, p.id FROM channels c, packages p WHERE p.version = '1.5.0'`
  yield* sql`INSERT INTO groups (id, app_id, name, track, channel) VALUES (${group}, 'a', 'g', 'g', 'stable')`
  for (const [id, seen] of [["stale", ago(31)], ["edge", ago(30, 1)], ["fresh", ago(1)]] as const) {
    yield* sql`INSERT INTO instances (id, created_at, last_seen) VALUES (${id}, ${ago(200)}, ${seen})`
    yield* sql`INSERT INTO instance_apps (instance_id, app_id, group_id, last_check) VALUES (${id}, 'a', ${group}, ${seen})`
    yield* sql`INSERT INTO instance_status_history (instance_id, app_id, status, created_at) VALUES (${id}, 'a', 'granted', ${ago(31)})`
    yield* sql`INSERT INTO events (instance_id, app_id, event_type, event_result, created_at) VALUES (${id}, 'a', 3, 2, ${ago(31)})`
  }
  yield* sql`INSERT INTO instance_status_history (instance_id, app_id, status, created_at) VALUES
    ('fresh', 'a', 'downloading', ${ago(91)}), ('fresh', 'a', 'complete', ${ago(90, 1)})`
  yield* sql`INSERT INTO events (instance_id, app_id, event_type, event_result, created_at) VALUES
    ('fresh', 'a', 13, 1, ${ago(91)}), ('fresh', 'a', 14, 1, ${ago(90, 1)})`
  yield* sql`INSERT INTO activity (app_id, group_id, kind, message, created_at) VALUES
    ('a', NULL, 'channelMoved', 'old move', ${ago(100)}),
    ('a', ${group}, 'rolloutBraked', 'older brake', ${ago(120)}),
    ('a', ${group}, 'rolloutBraked', 'last brake', ${ago(100)}),
    ('a', ${group}, 'rolloutStarted', 'recent', ${ago(10)})`
  yield* sql`INSERT INTO grants (group_id, instance_id, app_id, version, granted_at, finished_at, outcome) VALUES
    (${group}, 'gone', 'a', '1.0.0', ${ago(100)}, ${ago(100)}, 'complete'),
    (${group}, 'gone', 'a', '2.0.0', ${ago(100)}, ${ago(100)}, 'complete'),
    (${group}, 'gone', 'a', '1.5.0', ${ago(100)}, ${ago(100)}, 'complete'),
    (${group}, 'fresh', 'a', '1.0.0', ${ago(10)}, NULL, NULL)`
})

const tables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const ids = (rows: ReadonlyArray<Record<string, unknown>>) => rows.map((r) => Object.values(r).join(" "))
  return {
    instances: ids(yield* sql`SELECT id FROM instances ORDER BY id`),
    apps: ids(yield* sql`SELECT instance_id FROM instance_apps ORDER BY instance_id`),
    history: ids(yield* sql`SELECT instance_id, status FROM instance_status_history ORDER BY instance_id, created_at`),
    events: ids(yield* sql`SELECT instance_id, event_type FROM events ORDER BY instance_id, created_at`),
    activity: ids(yield* sql`SELECT message FROM activity ORDER BY created_at`),
    grants: ids(yield* sql`SELECT instance_id, version FROM grants ORDER BY granted_at, version`)
  }
})

// Waits for the job's statements, which run on real I/O after the TestClock wakes the job.
const waitFor = <A>(read: Effect.Effect<A, unknown, SqlClient.SqlClient>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const value = yield* read
      if (done(value)) return value
      yield* TestServices.provideLive(Effect.sleep(10))
    }
    return yield* Effect.die(new Error("the job did not run"))
  })

describeStores("Retention", (it) => {
  it.effect("removes machines unseen for N days and history older than M days, and nothing newer", () =>
    Effect.gen(function*() {
      yield* seed
      const pruned = yield* Retention.prune({ instanceDays: 30, historyDays: 90 })
      expect(pruned).toEqual({ instances: 1, history: 1, events: 1, activity: 2, grants: 1 })
      expect(yield* tables).toEqual({
        // "stale" with its app state, history and events; "edge" is 1 minute inside 30 days.
        instances: ["edge", "fresh"],
        apps: ["edge", "fresh"],
        history: ["edge granted", "fresh complete", "fresh granted"],
        events: ["edge 3", "fresh 14", "fresh 3"],
        // The group's last brake stays: its rollout's attempts are counted from it.
        activity: ["last brake", "recent"],
        // 2.0.0 is the channel's target and 1.5.0 its floor: their grants stay, however old.
        grants: ["gone 1.5.0", "gone 2.0.0", "fresh 1.0.0"]
      })
      // A second pass finds nothing more.
      expect(yield* Retention.prune({ instanceDays: 30, historyDays: 90 })).toEqual({
        instances: 0,
        history: 0,
        events: 0,
        activity: 0,
        grants: 0
      })
    }))

  it.effect("0 days keeps that kind of row, and batches remove everything past the cutoff", () =>
    Effect.gen(function*() {
      yield* seed
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO events (instance_id, app_id, event_type, event_result, created_at)
        SELECT 'fresh', 'a', 13, 1, ${ago(200)}::timestamptz - n * interval '1 minute' FROM generate_series(1, 25) n`
      const pruned = yield* Retention.prune({ instanceDays: 0, historyDays: 90, batchSize: 4 })
      expect(pruned).toMatchObject({ instances: 0, events: 26 })
      expect((yield* tables).instances).toEqual(["edge", "fresh", "stale"])
      expect((yield* tables).events).toEqual(["edge 3", "fresh 14", "fresh 3", "stale 3"])
    }))

  it.effect("the job prunes a minute after start and then every hour, by the Clock", () =>
    Effect.scoped(Effect.gen(function*() {
      yield* seed
      const sql = yield* SqlClient.SqlClient
      yield* Layer.build(Retention.layer({ instanceDays: 30, historyDays: 90 }))
      yield* TestClock.adjust("59 seconds")
      expect((yield* tables).instances).toEqual(["edge", "fresh", "stale"])
      yield* TestClock.adjust("1 second")
      yield* waitFor(tables, (t) => t.instances.length === 2)
      // The pass is over once the job sleeps until the next one.
      yield* waitFor(TestClock.sleeps(), (sleeps) => sleeps.length === 1)
      // An hour later "edge" is past 30 days too.
      yield* TestClock.adjust("1 hour")
      const after = yield* waitFor(tables, (t) => t.instances.length === 1)
      expect(after.instances).toEqual(["fresh"])
      expect(yield* sql`SELECT count(*)::int AS n FROM instance_apps WHERE instance_id = 'edge'`).toEqual([{ n: 0 }])
    })))
})
