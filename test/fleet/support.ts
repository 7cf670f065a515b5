/**
 * Store tests on both backends: PGlite in memory (always; loaded from a
 * migrated dump cached across runs, see memory.ts) and a PostgreSQL server
 * (from `FLEET_TEST_DATABASE_URL`, in a fresh database per suite, created
 * with a random name and dropped afterwards).
 *
 * Without `FLEET_TEST_DATABASE_URL` the PostgreSQL half is skipped; with
 * `CI=true` it fails instead, and so does a URL whose server cannot be
 * reached, saying how to start one. Locally:
 *
 *   scripts/test-postgres.sh run npx vitest run test/fleet/Store.test.ts
 *
 * Writing a suite (each backend gets the same tests, its layer built once for
 * the suite; `truncateAll` empties every table, so a test starts from
 * nothing; TestClock is in place, as in any `it.effect`):
 *
 *   import { SqlClient } from "@effect/sql"
 *   import { expect } from "@effect/vitest"
 *   import { Effect } from "effect"
 *   import { describeStores, truncateAll } from "./support.js"
 *
 *   describeStores("Store", (it, backend) => {
 *     it.effect("keeps an application", () =>
 *       Effect.gen(function*() {
 *         yield* truncateAll
 *         const sql = yield* SqlClient.SqlClient
 *         yield* sql`INSERT INTO applications (id, name) VALUES ('a', 'A')`
 *         expect(yield* sql`SELECT name FROM applications`).toEqual([{ name: "A" }])
 *       }))
 *   })
 *
 * Tests that only make sense on a server (several clients of one database)
 * go in `describePostgres`, with `freshDatabase` for their own databases.
 */
import { SqlClient } from "@effect/sql"
import { describe, it, layer } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Database from "../../src/fleet/Database.js"
import { layerPgliteMemoryTest } from "./memory.js"
import { freshDatabase, howToStart, inCi, postgresUrl, unreachable } from "./postgres.js"

export { freshDatabase, postgresUrl, withDatabase } from "./postgres.js"

/** Which database a suite runs on. */
export type Backend = "pglite" | "postgres"

/** What a store test has: the SQL client and notifications. */
export type Stores = SqlClient.SqlClient | Database.Notifications

/** `layerPostgres` on a fresh database of the server at `url`. */
export const layerPostgresFresh = (url: string): Layer.Layer<Stores, Error> =>
  Layer.unwrapScoped(
    Effect.map(freshDatabase(url), (database) =>
      Database.layerPostgres({ url: database, maxConnections: 4 }).pipe(
        Layer.catchAll((error) =>
          Layer.fail(error._tag === "DatabaseUnavailable" ? unreachable(url, error.reason) : new Error(error.message))
        )
      ))
  )

const timeout = "120 seconds"

// @effect/vitest's `layer` gives its block the global `it` with the layer's
// `effect` and `scoped` put on it, and leaves them there: every `it.effect`
// later in the file would run on that layer. Each block puts them back.
const restoringIt = <R>(suite: (it: Vitest.MethodsNonLive<R>) => void) => {
  const saved = { effect: it.effect, scoped: it.scoped, flakyTest: it.flakyTest, layer: it.layer, prop: it.prop }
  return (blockIt: Vitest.MethodsNonLive<R>) => {
    try {
      suite(blockIt)
    } finally {
      Object.assign(it, saved)
    }
  }
}

/** Runs `suite` on PGlite in memory and on PostgreSQL (see the module comment). */
export const describeStores = (
  name: string,
  suite: (it: Vitest.MethodsNonLive<Stores>, backend: Backend) => void
): void => {
  describe(name, () => {
    layer(layerPgliteMemoryTest, { timeout })("PGlite", restoringIt((it) => suite(it, "pglite")))
    const url = postgresUrl
    if (url !== undefined) {
      layer(layerPostgresFresh(url), { timeout })("PostgreSQL", restoringIt((it) => suite(it, "postgres")))
    } else if (inCi) {
      describe("PostgreSQL", () => {
        it("has a server to run on", () => {
          throw new Error(`CI=true but FLEET_TEST_DATABASE_URL is not set: ${howToStart}`)
        })
      })
    } else {
      // Registered, so the run lists what it skipped.
      describe.skip("PostgreSQL", () =>
        layer(layerPostgresFresh("postgres://skipped"))(
          "needs FLEET_TEST_DATABASE_URL",
          restoringIt((it) => suite(it, "postgres"))
        ))
    }
  })
}

/** Runs `suite` only with a PostgreSQL server: skipped without one, failing without one under CI=true. */
export const describePostgres = (name: string, suite: (url: string) => void): void => {
  const url = postgresUrl
  if (url !== undefined) {
    describe(name, () => suite(url))
  } else if (inCi) {
    describe(name, () => {
      it("has a server to run on", () => {
        throw new Error(`CI=true but FLEET_TEST_DATABASE_URL is not set: ${howToStart}`)
      })
    })
  } else {
    describe.skip(`${name} (set FLEET_TEST_DATABASE_URL to run)`, () => suite("postgres://skipped"))
  }
}

/** Empties every table but the migrations' record, restarting identities. */
export const truncateAll: Effect.Effect<void, unknown, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* sql<{ readonly name: string }>`
    SELECT tablename AS name FROM pg_tables
    WHERE schemaname = 'public' AND tablename <> ${Database.migrationsTable}`
  if (tables.length === 0) return
  yield* sql.unsafe(`TRUNCATE ${tables.map((table) => `"${table.name}"`).join(", ")} RESTART IDENTITY CASCADE`)
})
