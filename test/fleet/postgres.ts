/**
 * Test databases on a PostgreSQL server (`FLEET_TEST_DATABASE_URL`): a fresh
 * one per suite, with a random name, dropped afterwards. No vitest here, so
 * benchmarks use it too.
 */
import { Effect, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as Pg from "pg"
import * as Database from "../../src/fleet/Database.js"

/** The server for PostgreSQL tests, if any. */
export const postgresUrl: string | undefined = process.env["FLEET_TEST_DATABASE_URL"] || undefined

/** Whether this runs under CI, where a missing server is a failure. */
export const inCi = ["true", "1"].includes(process.env["CI"] ?? "")

/** What to do when there is no server. */
export const howToStart = "start one with `eval \"$(scripts/test-postgres.sh start)\"`, or run the tests with " +
  "`scripts/test-postgres.sh run npm test`"

/** The error for a server that cannot be used, saying how to start one. */
export const unreachable = (url: string, reason: string) =>
  new Error(
    `PostgreSQL at ${Effect.runSync(Effect.orElseSucceed(Database.describeUrl(url), () => "(invalid URL)"))} ` +
      `(FLEET_TEST_DATABASE_URL) cannot be used: ${reason}; ${howToStart}`
  )

/** `url` with its database replaced by `database`. */
export const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const admin = (url: string, statement: string) =>
  Effect.tryPromise({
    try: async () => {
      const client = new Pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
      await client.connect()
      try {
        await client.query(statement)
      } finally {
        await client.end()
      }
    },
    catch: (cause) => unreachable(url, cause instanceof Error ? cause.message : String(cause))
  })

/**
 * A new empty database on the server at `url` (a random name), dropped when
 * the scope closes; yields its URL.
 */
export const freshDatabase = (url: string): Effect.Effect<string, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const name = `fleet_test_${Crypto.randomBytes(6).toString("hex")}`
      yield* admin(url, `CREATE DATABASE ${name}`)
      return name
    }),
    (name) => Effect.ignore(admin(url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  ).pipe(Effect.map((name) => withDatabase(url, name)))
