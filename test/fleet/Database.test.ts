import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Stream } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Pg from "pg"
import * as Database from "../../src/fleet/Database.js"
import { migrations } from "../../src/fleet/migrations/index.js"
import { describePostgres, describeStores, freshDatabase, truncateAll, withDatabase } from "./support.js"

// Every table of the first migration.
const fleetTables = [
  "activity",
  "applications",
  "channel_blocklist",
  "channel_floors",
  "channels",
  "events",
  "grants",
  "groups",
  "instance_apps",
  "instance_status_history",
  "instances",
  "packages",
  "tokens",
  "webhooks"
]

const publicTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ readonly name: string }>`
    SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`
  return rows.map((row) => row.name)
})

// Real time, whatever clock the test runs on: how long a blocked statement is given to show it is blocked.
const realSleep = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

/** The next `n` payloads of a subscription, or what arrived if they take longer than a (real) second. */
const nextPayloads = (stream: Stream.Stream<string>, n: number) =>
  stream.pipe(
    Stream.take(n),
    Stream.interruptWhen(realSleep(1_000)),
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray)
  )

describe("migrations", () => {
  it("records every migration file of src/fleet/migrations, so a bundled command runs them all", () => {
    const files = Fs.readdirSync(new URL("../../src/fleet/migrations/", import.meta.url))
      .filter((name) => /^\d+_.+\.ts$/.test(name))
      .map((name) => name.replace(/\.ts$/, ""))
    expect(files.length).toBeGreaterThan(0)
    expect(Object.keys(migrations).sort()).toEqual(files.sort())
  })
})

describeStores("Database", (it, backend) => {
  it.effect("has run the migrations once: every table, one record per migration", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      expect(yield* publicTables).toEqual([...fleetTables, Database.migrationsTable].sort())
      const ran = yield* sql<{ readonly migration_id: number; readonly name: string }>`
        SELECT migration_id, name FROM fleet_migrations ORDER BY migration_id`
      expect(ran).toEqual([{ migration_id: 1, name: "fleet" }, { migration_id: 2, name: "webhooks" }])
    }))

  it.effect("returns values alike: int8 numbers, numeric strings, timestamptz Dates, parsed JSON", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql`
        SELECT 9007199254740991::int8 AS big, 42::int4 AS int, 1.5::float8 AS float, 12.3400::numeric AS exact,
          '2024-05-06T07:08:09.123Z'::timestamptz AS at, '2024-05-06'::date AS day, '1 day 02:00:00'::interval AS span,
          '{"a": [1, 2]}'::jsonb AS doc, '[1, "x"]'::json AS list, ARRAY[1, 2]::int8[] AS ids,
          ARRAY['a', 'b,c']::text[] AS names, ARRAY[1.50]::numeric[] AS exacts,
          ARRAY['2024-05-06T07:08:09Z'::timestamptz] AS ats, true AS yes, NULL::text AS nothing,
          'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, count(*) AS n`
      expect(row).toEqual({
        big: 9007199254740991,
        int: 42,
        float: 1.5,
        exact: "12.3400",
        at: new Date("2024-05-06T07:08:09.123Z"),
        day: "2024-05-06",
        span: "1 day 02:00:00",
        doc: { a: [1, 2] },
        list: [1, "x"],
        ids: [1, 2],
        names: ["a", "b,c"],
        exacts: ["1.50"],
        ats: [new Date("2024-05-06T07:08:09Z")],
        yes: true,
        nothing: null,
        id: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        n: 1
      })
    }))

  it.effect("reads a timestamptz as the same instant whatever the session's time zone", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`SET LOCAL TIME ZONE 'Asia/Kolkata'`
        return yield* sql<{ readonly at: Date; readonly text: string }>`
          SELECT '2024-05-06T07:08:09.123Z'::timestamptz AS at, '2024-05-06T07:08:09.123Z'::timestamptz::text AS text`
      }))
      expect(row!.text).toBe("2024-05-06 12:38:09.123+05:30")
      expect(row!.at).toEqual(new Date("2024-05-06T07:08:09.123Z"))
    }))

  it.effect("binds parameters alike: dates, numbers and bigints into int8, booleans, nulls, arrays, JSON text", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO applications (id, name) VALUES ('app', 'App')`
      const at = new Date("2024-01-02T03:04:05.678Z")
      yield* sql`
        INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256, url, is_delta, extra_files, created_at)
        VALUES ('app', '1.0.0', 'amd64', 'update.gz', ${2 ** 40}, 'sha1', 'sha256', ${null}, ${true},
          ${JSON.stringify([{ name: "a", size: 1 }])}::jsonb, ${at})`
      yield* sql`
        INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
        VALUES ('app', '1.0.1', 'amd64', 'update.gz', ${BigInt(7)}, 'sha1', 'sha256')`
      const rows = yield* sql`
        SELECT version, size, url, is_delta, extra_files, created_at FROM packages
        WHERE version = ANY(${["1.0.0", "1.0.1"]}::text[]) ORDER BY version`
      expect(rows).toEqual([
        { version: "1.0.0", size: 2 ** 40, url: null, is_delta: true, extra_files: [{ name: "a", size: 1 }], created_at: at },
        expect.objectContaining({ version: "1.0.1", size: 7, url: null, is_delta: false, extra_files: [] })
      ])
    }))

  it.effect("upserts a batch with one unnest statement", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const upsert = (ids: ReadonlyArray<string>, seen: Date) =>
        sql`
          INSERT INTO instances (id, ip, last_seen)
          SELECT id, ip, ${seen} FROM unnest(${ids}::text[], ${ids.map((id) => `10.0.0.${id.length}`)}::text[]) AS t (id, ip)
          ON CONFLICT (id) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen`
      const ids = Array.from({ length: 1000 }, (_, i) => `machine-${i}`)
      yield* upsert(ids, new Date("2024-01-01T00:00:00Z"))
      yield* upsert(ids.slice(0, 10), new Date("2024-01-02T00:00:00Z"))
      const counts = yield* sql<{ readonly seen: Date; readonly n: number }>`
        SELECT last_seen AS seen, count(*) AS n FROM instances GROUP BY last_seen ORDER BY last_seen`
      expect(counts).toEqual([
        { seen: new Date("2024-01-01T00:00:00Z"), n: 990 },
        { seen: new Date("2024-01-02T00:00:00Z"), n: 10 }
      ])
    }))

  it.effect("runs a statement of several commands without parameters, answering one row list per command", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const results = yield* sql.unsafe(`
        CREATE TEMP TABLE scratch (n int);
        INSERT INTO scratch VALUES (1), (2);
        SELECT sum(n) AS total FROM scratch;
        DROP TABLE scratch`)
      expect(results).toEqual([[], [], [{ total: 3 }], []])
    }))

  it.effect("fails a statement with an SqlError carrying PostgreSQL's SQLSTATE", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* sql`INSERT INTO applications (id, name) VALUES ('app', 'App')`
      const duplicate = yield* Effect.flip(sql`INSERT INTO applications (id, name) VALUES ('app', 'Again')`)
      expect(duplicate._tag).toBe("SqlError")
      expect(Database.sqlState(duplicate)).toBe("23505")
      const missing = yield* Effect.flip(sql`INSERT INTO packages (app_id, version, arch, name, size, sha1, sha256)
        VALUES ('nope', '1', 'amd64', 'u', 1, 'a', 'b')`)
      expect(Database.sqlState(missing)).toBe("23503")
      if (backend === "pglite") {
        expect(duplicate.message).toBe("duplicate key value violates unique constraint \"applications_pkey\"")
      }
      // The session is usable after a failure.
      expect(yield* sql`SELECT count(*) AS n FROM applications`).toEqual([{ n: 1 }])
    }))

  it.effect("commits or rolls back a transaction whole; a nested one is a savepoint", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const insert = (id: string) => sql`INSERT INTO applications (id, name) VALUES (${id}, ${id})`
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* insert("kept")
        const inner = yield* Effect.exit(sql.withTransaction(Effect.zipRight(insert("undone"), Effect.fail("inner"))))
        expect(Exit.isFailure(inner)).toBe(true)
        yield* insert("kept too")
      }))
      const outer = yield* Effect.exit(sql.withTransaction(Effect.zipRight(insert("lost"), Effect.fail("outer"))))
      expect(Exit.isFailure(outer)).toBe(true)
      const ids = yield* sql<{ readonly id: string }>`SELECT id FROM applications ORDER BY id`
      expect(ids.map((row) => row.id)).toEqual(["kept", "kept too"])
    }))

  it.effect("keeps other fibers' statements out of a transaction: its rollback does not undo them", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const begun = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const transaction = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql`INSERT INTO applications (id, name) VALUES ('inside', 'inside')`
        yield* Deferred.succeed(begun, undefined)
        yield* Deferred.await(gate)
        return yield* Effect.fail("roll back")
      })).pipe(Effect.exit, Effect.fork)
      yield* Deferred.await(begun)
      const outside = yield* Effect.fork(sql`INSERT INTO applications (id, name) VALUES ('outside', 'outside')`)
      yield* realSleep(200)
      // PGlite has one session: the statement waits for the transaction. A server runs it beside.
      expect(Option.isSome(yield* Fiber.poll(outside))).toBe(backend === "postgres")
      yield* Deferred.succeed(gate, undefined)
      expect(Exit.isFailure(yield* Fiber.join(transaction))).toBe(true)
      yield* Fiber.join(outside)
      const ids = yield* sql<{ readonly id: string }>`SELECT id FROM applications ORDER BY id`
      expect(ids.map((row) => row.id)).toEqual(["outside"])
    }))

  it.effect("streams the rows of a query", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ readonly n: number }>`SELECT generate_series(1, 300)::int8 AS n`.stream.pipe(
        Stream.runCollect
      )
      expect(Chunk.size(rows)).toBe(300)
      expect(Chunk.unsafeLast(rows)).toEqual({ n: 300 })
    }))

  it.scoped("announces a configuration change on fleet_config, from the table's trigger", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      const notifications = yield* Database.Notifications
      const changes = yield* notifications.subscribe(Database.configChannel)
      yield* sql`INSERT INTO applications (id, name) VALUES ('app', 'App')`
      yield* sql`INSERT INTO groups (app_id, name, track, channel) VALUES ('app', 'beta', 'beta', 'beta')`
      yield* sql`INSERT INTO instances (id) VALUES ('not configuration')`
      expect(yield* nextPayloads(changes, 3)).toEqual(["applications", "groups"])
    }))

  it.scoped("delivers a notification made in a transaction when it commits, and never when it rolls back", () =>
    Effect.gen(function*() {
      const notifications = yield* Database.Notifications
      const sql = yield* SqlClient.SqlClient
      const changes = yield* notifications.subscribe("fleet_test")
      const other = yield* notifications.subscribe("fleet_other")
      yield* Effect.exit(sql.withTransaction(
        Effect.zipRight(notifications.notify("fleet_test", "rolled back"), Effect.fail("no"))
      ))
      yield* sql.withTransaction(notifications.notify("fleet_test", "committed"))
      yield* notifications.notify("fleet_test", "plain")
      expect(yield* nextPayloads(changes, 3)).toEqual(["committed", "plain"])
      expect(yield* nextPayloads(other, 1)).toEqual([])
    }))

  it.scoped("stops listening when the subscription's scope closes, and listens again", () =>
    Effect.gen(function*() {
      const notifications = yield* Database.Notifications
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const changes = yield* notifications.subscribe("fleet_again")
        yield* notifications.notify("fleet_again", "one")
        return yield* nextPayloads(changes, 1)
      }))
      expect(first).toEqual(["one"])
      const collected = yield* notifications.listen("fleet_again").pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.fork
      )
      // listen() starts listening when the stream runs: notify until it hears.
      const heard = yield* Effect.gen(function*() {
        for (let attempt = 0; attempt < 50; attempt++) {
          yield* notifications.notify("fleet_again", "two")
          yield* realSleep(20)
          const done = yield* Fiber.poll(collected)
          if (Option.isSome(done)) return done.value
        }
        return yield* Effect.die("never heard")
      })
      expect(Exit.map(heard, Chunk.toReadonlyArray)).toEqual(Exit.succeed(["two"]))
    }))
})

describe("layerPostgres without a server", () => {
  it.effect("refuses a URL that is not PostgreSQL's, without repeating it", () =>
    Effect.gen(function*() {
      for (const url of ["not a url", "mysql://root:hunter2@db/fleet", "postgres://u:hunter2@host:99999/db"]) {
        const error = yield* Effect.flip(Layer.build(Database.layerPostgres({ url })).pipe(Effect.scoped))
        expect(error._tag).toBe("DatabaseUrlInvalid")
        expect(error.message).toMatch(/^invalid database URL: [^\n]+$/)
        expect(error.message).not.toContain("hunter2")
      }
    }))

  it.live("fails at once on an unreachable server with user@host:port/database, never the password", () =>
    Effect.gen(function*() {
      // A port nothing listens on: bound, then closed.
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const server = Net.createServer().listen(0, "127.0.0.1", () => {
            const { port } = server.address() as Net.AddressInfo
            server.close(() => resolve(port))
          })
        })
      )
      const url = `postgres://fleet:hunter2@127.0.0.1:${port}/fleet`
      const error = yield* Effect.flip(Layer.build(Database.layerPostgres({ url })).pipe(Effect.scoped))
      expect(error._tag).toBe("DatabaseUnavailable")
      expect(error.message).toBe(
        `cannot connect to PostgreSQL at fleet@127.0.0.1:${port}/fleet: connect ECONNREFUSED 127.0.0.1:${port}`
      )
    }))
})

describePostgres("Database on one PostgreSQL server", (url) => {
  it.live("two layers starting at once on a fresh database both migrate it, once", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase(url)
      const replica = Database.layerPostgres({ url: database, maxConnections: 2 })
      const [tables, ran] = yield* Effect.all(
        [Layer.build(replica), Layer.build(replica)].map((build) =>
          Effect.flatMap(build, (context) =>
            Effect.provide(
              Effect.all([publicTables, Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT * FROM fleet_migrations`)]),
              context
            ))
        ),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((results) => results[0]!))
      expect(tables).toEqual([...fleetTables, Database.migrationsTable].sort())
      expect(ran).toHaveLength(Object.keys(migrations).length)
    }).pipe(Effect.scoped), 60_000)

  it.live("a write through one client reaches a listener of another within a second", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase(url)
      const writer = yield* Layer.build(Database.layerPostgres({ url: database }))
      const reader = yield* Layer.build(Database.layerPostgres({ url: database }))
      const changes = yield* Effect.flatMap(Database.Notifications, (n) => n.subscribe(Database.configChannel)).pipe(
        Effect.provide(reader)
      )
      const started = Date.now()
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO applications (id, name) VALUES ('a', 'A')`).pipe(
        Effect.provide(writer)
      )
      expect(yield* nextPayloads(changes, 1)).toEqual(["applications"])
      expect(Date.now() - started).toBeLessThan(1_000)
    }).pipe(Effect.scoped), 60_000)

  it.live("listens again after its connection drops, and says notifications may have been missed", () =>
    Effect.gen(function*() {
      const database = yield* freshDatabase(url)
      const logged: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => logged.push(`${logLevel.label} ${String(message)}`))
      const context = yield* Layer.build(Database.layerPostgres({ url: database, applicationName: "drop-test" })).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const notifications = Database.Notifications.pipe(Effect.provide(context))
      const changes = yield* Effect.flatMap(notifications, (n) => n.subscribe("fleet_test"))
      // Another connection ends ours, as a server restart or an administrator would.
      const admin = new Pg.Client({ connectionString: withDatabase(url, "postgres") })
      yield* Effect.acquireRelease(Effect.promise(() => admin.connect()), () => Effect.promise(() => admin.end()))
      const terminated = yield* Effect.promise(() =>
        admin.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
          [database.replace(/.*\//, ""), "drop-test notifications"]
        )
      )
      expect(terminated.rowCount).toBe(1)
      // Until it is back, notifications are lost; the empty payload says so.
      const restored = yield* nextPayloads(changes, 1)
      expect(restored).toEqual([""])
      yield* Effect.flatMap(notifications, (n) => n.notify("fleet_test", "after"))
      expect(yield* nextPayloads(changes, 1)).toEqual(["after"])
      expect(logged).toEqual([
        expect.stringMatching(/^WARN database notifications: connection lost \(terminating connection due to administrator command\); reconnecting$/),
        "INFO database notifications: connection restored"
      ])
    }).pipe(Effect.scoped, Effect.timeout(Duration.seconds(30))), 60_000)
})
