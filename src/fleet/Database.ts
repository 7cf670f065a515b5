/**
 * The fleet's database, as an `@effect/sql` `SqlClient` and a `Notifications`
 * service, on one of two backends that speak the same SQL (PostgreSQL's):
 *
 * - {@link layerPglite}: PGlite, PostgreSQL compiled to WASM, in this process,
 *   in a data directory that one process at a time may use (a lock file
 *   naming the holder; a second process is refused at once);
 * - {@link layerPostgres}: a PostgreSQL server by URL, through `@effect/sql-pg`
 *   (node-postgres), which any number of replicas may share.
 *
 * Both run the migrations at start, under an advisory lock so that replicas
 * starting together take turns, and both return values alike: int8 as a JS
 * number, numeric as a string, timestamptz as a Date, json and jsonb parsed.
 * On PGlite, statements take turns on its single session and a transaction
 * holds it to the end: never wait inside a transaction for a statement that
 * another fiber runs outside it.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { FileSystem } from "@effect/platform"
import { Migrator, SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { PGlite, type PGliteOptions } from "@electric-sql/pglite"
import { Context, Duration, Effect, Layer, Redacted, Runtime, Schema, type Scope, Stream } from "effect"
import * as NodeFs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Path from "node:path"
import * as Pg from "pg"
import * as PidLock from "../internal/PidLock.js"
import { messageOf, reasonOf } from "./internal/messages.js"
import * as PgliteClient from "./internal/PgliteClient.js"
import * as PgListener from "./internal/PgListener.js"
import { pgliteParsers, pgTypes } from "./internal/types.js"
import { migrations } from "./migrations/index.js"

/** Another process (or this one) is using the data directory. */
export class DataDirectoryLocked extends Schema.TaggedError<DataDirectoryLocked>()("DataDirectoryLocked", {
  dataDir: Schema.String,
  pid: Schema.Number,
  host: Schema.String,
  lockFile: Schema.String
}) {
  override get message(): string {
    return `data directory ${this.dataDir} is in use by process ${this.pid} on ${this.host} (lock file ${this.lockFile})`
  }
}

/** The data directory cannot be created, locked or opened as a database. */
export class DataDirectoryUnusable extends Schema.TaggedError<DataDirectoryUnusable>()("DataDirectoryUnusable", {
  dataDir: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot use data directory ${this.dataDir}: ${this.reason}`
  }
}

/** The database URL is not a PostgreSQL URL. The message never repeats the URL (it may hold a password). */
export class DatabaseUrlInvalid extends Schema.TaggedError<DatabaseUrlInvalid>()("DatabaseUrlInvalid", {
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid database URL: ${this.reason}`
  }
}

/** The PostgreSQL server cannot be reached or refuses us; `database` is `user@host:port/database`, without the password. */
export class DatabaseUnavailable extends Schema.TaggedError<DatabaseUnavailable>()("DatabaseUnavailable", {
  database: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot connect to PostgreSQL at ${this.database}: ${this.reason}`
  }
}

/** A migration failed; the pending migrations run in one transaction, so the database is left as it was. */
export class MigrationFailed extends Schema.TaggedError<MigrationFailed>()("MigrationFailed", {
  database: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot migrate the database ${this.database}: ${this.reason}`
  }
}

/** Everything opening a database can fail with. */
export type DatabaseError =
  | DataDirectoryLocked
  | DataDirectoryUnusable
  | DatabaseUrlInvalid
  | DatabaseUnavailable
  | MigrationFailed

/**
 * LISTEN/NOTIFY on either backend. A stream sees what is notified after it
 * listens; notifications made inside a transaction arrive when it commits.
 * An empty payload means notifications may have been missed (the connection
 * to the server dropped and came back): whoever caches, reloads. Subscribe
 * outside transactions (on PGlite, LISTEN is a statement like any other).
 */
export class Notifications extends Context.Tag("effect-omaha/fleet/Database/Notifications")<Notifications, {
  /** Listens on `channel` for the scope; returns once listening, so nothing notified afterwards is missed. */
  readonly subscribe: (channel: string) => Effect.Effect<Stream.Stream<string>, SqlError, Scope.Scope>
  /** The payloads notified on `channel`, listening while the stream runs. */
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
  /** Notifies `channel` (in the caller's transaction, if any). */
  readonly notify: (channel: string, payload: string) => Effect.Effect<void, SqlError>
}>() {}

/** The channel on which every change to the fleet's configuration tables is announced (the payload names the table). */
export const configChannel = "fleet_config"

/** The SQLSTATE of a failed statement (`23505` for a unique violation), on either backend. */
export const sqlState = (error: SqlError): string | undefined => {
  const code = typeof error.cause === "object" && error.cause !== null && "code" in error.cause
    ? error.cause.code
    : undefined
  return typeof code === "string" ? code : undefined
}

const makeNotifications = (
  sql: SqlClient.SqlClient,
  subscribe: (channel: string) => Effect.Effect<Stream.Stream<string>, SqlError, Scope.Scope>
): Context.Tag.Service<Notifications> => ({
  subscribe,
  listen: (channel) => Stream.unwrapScoped(subscribe(channel)),
  notify: (channel, payload) => Effect.asVoid(sql`SELECT pg_notify(${channel}, ${payload})`)
})

// === migrations

/** The table recording which migrations ran. */
export const migrationsTable = "fleet_migrations"

// Any fixed bigint: replicas migrating one database take turns on it.
const migrationLock = 7_036_512_813_270_529

const runMigrator = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })

/**
 * Runs the migrations not yet run, holding `pg_advisory_lock` meanwhile: on
 * its own pooled connection (`reserved`), or on the one session (PGlite).
 */
const migrate = (database: string, session: "reserved" | "single") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lock = `SELECT pg_advisory_lock(${migrationLock})`
    const unlock = `SELECT pg_advisory_unlock(${migrationLock})`
    if (session === "reserved") {
      const connection = yield* sql.reserve
      yield* Effect.acquireRelease(
        connection.executeRaw(lock, []),
        () => Effect.ignore(connection.executeRaw(unlock, []))
      )
    } else {
      yield* Effect.acquireRelease(sql.unsafe(lock), () => Effect.ignore(sql.unsafe(unlock)))
    }
    return yield* runMigrator
  }).pipe(
    Effect.scoped,
    // The migrator dies when a migration fails; that is a typed failure here.
    Effect.catchAllDefect((defect) =>
      defect instanceof Migrator.MigrationError ? Effect.fail(defect) : Effect.die(defect)
    ),
    Effect.mapError((error) => new MigrationFailed({ database, reason: reasonOf(error) }))
  )

// === PGlite

/** Where a data directory keeps its database, and its lock file. */
export const dataDirPaths = (dataDir: string) => ({
  database: Path.join(dataDir, "pgdata"),
  lockFile: Path.join(dataDir, "lock")
})

type WasmModule = NonNullable<PGliteOptions["pgliteWasmModule"]>

interface PgliteAssets {
  readonly pgliteWasmModule: WasmModule
  readonly initdbWasmModule: WasmModule
  readonly fsBundle: Blob
}

// PGlite finds its WASM and file bundle next to its own module, which a
// bundled command is not: they are loaded from the installed package instead,
// and compiled once per process.
let assets: Promise<PgliteAssets> | undefined
// Node has WebAssembly; the ES2022 lib does not declare it.
const compileWasm = (globalThis as unknown as {
  readonly WebAssembly: { readonly compile: (bytes: Uint8Array) => Promise<WasmModule> }
}).WebAssembly.compile
const loadAssets = (): Promise<PgliteAssets> =>
  assets ??= (async () => {
    const dir = Path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"))
    const read = (name: string) => NodeFs.readFile(Path.join(dir, name))
    const [pglite, initdb, bundle] = await Promise.all([read("pglite.wasm"), read("initdb.wasm"), read("pglite.data")])
    return {
      pgliteWasmModule: await compileWasm(pglite),
      initdbWasmModule: await compileWasm(initdb),
      fsBundle: new Blob([bundle])
    }
  })()

/** Where PGlite's database is: a directory, or memory (empty, or loaded from a dump). */
type PgliteWhere = { readonly dataDir: string } | { readonly loadDataDir?: Blob }

/** Opens PGlite for the scope; closing waits for the session, so a transaction under way ends first. */
const openPglite = (where: PgliteWhere, label: string, session: Effect.Semaphore) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => PGlite.create({ ...where, ...(await loadAssets()), parsers: pgliteParsers }),
      catch: (cause) => new DataDirectoryUnusable({ dataDir: label, reason: messageOf(cause) })
    }),
    (pg) =>
      // A transaction under way gets 10 s to end (one that does not is rolled
      // back); closing itself is never cut short, so what is committed is written.
      session.take(1).pipe(
        Effect.timeout(Duration.seconds(10)),
        Effect.ignore,
        Effect.zipRight(Effect.tryPromise(() => pg.close())),
        Effect.catchAll((error) => Effect.logWarning(`closing the database in ${label} failed: ${messageOf(error.cause)}`))
      )
  )

/**
 * Creates the database of a new data directory beside it and moves it into
 * place once complete, so a process killed while creating it leaves nothing
 * that looks like a database.
 */
const createDatabase = (dataDir: string, dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const unusable = (error: { readonly message: string }) => new DataDirectoryUnusable({ dataDir, reason: error.message })
    if (yield* fs.exists(Path.join(dir, "PG_VERSION")).pipe(Effect.mapError(unusable))) return
    if (yield* fs.exists(dir).pipe(Effect.mapError(unusable))) {
      const entries = yield* fs.readDirectory(dir).pipe(Effect.mapError(unusable))
      if (entries.length > 0) {
        return yield* new DataDirectoryUnusable({ dataDir, reason: `${dir} holds files but no database` })
      }
      yield* fs.remove(dir).pipe(Effect.mapError(unusable))
    }
    yield* Effect.logInfo(`creating the database in ${dir} (a first start takes some seconds)`)
    const staging = `${dir}.new`
    yield* fs.remove(staging, { recursive: true, force: true }).pipe(Effect.mapError(unusable))
    yield* fs.makeDirectory(staging, { mode: 0o700 }).pipe(Effect.mapError(unusable))
    yield* Effect.scoped(openPglite({ dataDir: staging }, dataDir, yield* Effect.makeSemaphore(1)))
    yield* fs.rename(staging, dir).pipe(Effect.mapError(unusable))
  })

const openMigrated = (where: PgliteWhere, label: string) =>
  Effect.gen(function*() {
    const session = yield* Effect.makeSemaphore(1)
    const pg = yield* openPglite(where, label, session)
    const sql = yield* PgliteClient.make(pg, session)
    yield* Effect.provideService(migrate(label, "single"), SqlClient.SqlClient, sql)
    return { pg, sql }
  })

const makePglite = (where: PgliteWhere, label: string) =>
  Effect.gen(function*() {
    const { pg, sql } = yield* openMigrated(where, label)
    const listener = yield* PgliteClient.makeListener(pg, sql)
    return Context.make(SqlClient.SqlClient, sql).pipe(
      Context.add(Notifications, makeNotifications(sql, listener.subscribe))
    )
  })

/** Where the embedded database lives. */
export interface PgliteOptions {
  /** The data directory (created if missing): the database is in `pgdata/`, the lock in `lock`. */
  readonly dataDir: string
}

/**
 * The embedded database in a data directory, locked for this process while
 * the layer lives (a lock left by a process that died is taken over).
 * Closing the layer closes the database cleanly.
 */
export const layerPglite = (
  options: PgliteOptions
): Layer.Layer<SqlClient.SqlClient | Notifications, DatabaseError, FileSystem.FileSystem> =>
  Layer.scopedContext(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const { dataDir } = options
    const paths = dataDirPaths(dataDir)
    yield* fs.makeDirectory(dataDir, { recursive: true }).pipe(
      Effect.mapError((error) => new DataDirectoryUnusable({ dataDir, reason: error.message }))
    )
    yield* PidLock.acquire(paths.lockFile).pipe(
      Effect.catchTags({
        LockHeld: (held) =>
          new DataDirectoryLocked({ dataDir, pid: held.pid, host: held.host, lockFile: paths.lockFile }),
        LockFailed: (failed) => new DataDirectoryUnusable({ dataDir, reason: failed.message })
      })
    )
    yield* createDatabase(dataDir, paths.database)
    return yield* makePglite({ dataDir: paths.database }, dataDir)
  })).pipe(Layer.provide(Reactivity.layer))

const memory = "(in memory)"

/** The embedded database in memory, for tests: fresh and migrated, gone when the layer closes. */
export const layerPgliteMemory: Layer.Layer<SqlClient.SqlClient | Notifications, DatabaseError> = Layer.scopedContext(
  makePglite({}, memory)
).pipe(Layer.provide(Reactivity.layer))

/**
 * The embedded database in memory, starting from `dump` (made by
 * {@link dumpPgliteMemory}) and migrated on top. Loading a dump skips
 * PostgreSQL's initdb, most of what a fresh database costs.
 */
export const layerPgliteMemoryFrom = (
  dump: Blob
): Layer.Layer<SqlClient.SqlClient | Notifications, DatabaseError> =>
  Layer.scopedContext(makePglite({ loadDataDir: dump }, memory)).pipe(Layer.provide(Reactivity.layer))

/** A fresh, migrated, empty in-memory database as a tarball, for {@link layerPgliteMemoryFrom}. */
export const dumpPgliteMemory: Effect.Effect<Blob, DatabaseError> = Effect.gen(function*() {
  const { pg } = yield* openMigrated({}, memory)
  return yield* Effect.tryPromise({
    try: () => pg.dumpDataDir("none"),
    catch: (cause) => new DataDirectoryUnusable({ dataDir: memory, reason: messageOf(cause) })
  })
}).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

// === PostgreSQL

/** How to reach a PostgreSQL server. */
export interface PostgresOptions {
  /** `postgres://user:password@host:port/database` (and node-postgres's parameters, such as `sslmode`). */
  readonly url: string | Redacted.Redacted<string>
  /** The pool's size; 10 by default, at least 2. One more connection carries the notifications. */
  readonly maxConnections?: number
  /** How long connecting (or waiting for a pooled connection) may take; 10 s by default. */
  readonly connectTimeout?: Duration.DurationInput
  /** How long an unused pooled connection stays open; 30 s by default. */
  readonly idleTimeout?: Duration.DurationInput
  /** The name the server shows for our connections (`pg_stat_activity`). */
  readonly applicationName?: string
}

/** `user@host:port/database` from a URL: what messages name, never the password. */
export const describeUrl = (url: string): Effect.Effect<string, DatabaseUrlInvalid> =>
  Effect.try({
    try: () => {
      const parsed = new URL(url)
      if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
        throw new Error(`the scheme is ${parsed.protocol.replace(/:$/, "")}, not postgres or postgresql`)
      }
      const user = decodeURIComponent(parsed.username)
      const host = decodeURIComponent(parsed.hostname) || parsed.searchParams.get("host") || "localhost"
      const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || user || "postgres"
      return `${user === "" ? "" : `${user}@`}${host}:${parsed.port || "5432"}/${database}`
    },
    catch: (error) =>
      new DatabaseUrlInvalid({
        reason: error instanceof TypeError
          ? "not a URL; expected postgres://user:password@host:port/database"
          : messageOf(error)
      })
  })

/**
 * A PostgreSQL server through node-postgres's pool. Fails with a one-line
 * {@link DatabaseUnavailable} when the server cannot be reached or refuses the
 * connection.
 */
export const layerPostgres = (
  options: PostgresOptions
): Layer.Layer<SqlClient.SqlClient | Notifications, DatabaseError> =>
  Layer.scopedContext(Effect.gen(function*() {
    const url = Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url
    const database = yield* describeUrl(url)
    const connectTimeout = Duration.toMillis(options.connectTimeout ?? Duration.seconds(10))
    const applicationName = options.applicationName ?? "effect-omaha fleet"
    const unavailable = (cause: unknown) => new DatabaseUnavailable({ database, reason: messageOf(cause) })

    const runtime = yield* Effect.runtime<never>()
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pg.Pool({
          connectionString: url,
          max: Math.max(2, options.maxConnections ?? 10),
          idleTimeoutMillis: Duration.toMillis(options.idleTimeout ?? Duration.seconds(30)),
          connectionTimeoutMillis: connectTimeout,
          application_name: applicationName,
          keepAlive: true,
          types: pgTypes
        })
        // An idle pooled connection that fails is dropped by the pool; say so.
        pool.on("error", (error) => {
          Runtime.runFork(runtime)(Effect.logWarning(`database: a pooled connection failed: ${messageOf(error)}`))
        })
        return pool
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
    )
    yield* Effect.tryPromise({ try: () => pool.query("SELECT 1"), catch: unavailable })
    const sql = yield* PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName }).pipe(
      Effect.mapError((error) => unavailable(error.cause))
    )
    yield* Effect.provideService(migrate(database, "reserved"), SqlClient.SqlClient, sql)
    const listener = yield* PgListener.make({
      connectionString: url,
      application_name: `${applicationName} notifications`,
      connectionTimeoutMillis: connectTimeout,
      keepAlive: true
    })
    return Context.make(SqlClient.SqlClient, sql).pipe(
      Context.add(Notifications, makeNotifications(sql, listener.subscribe))
    )
  })).pipe(Layer.provide(Reactivity.layer))
