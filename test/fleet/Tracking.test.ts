import { SqlClient } from "@effect/sql"
import { expect } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import { describeStores, truncateAll } from "./support.js"
import { check, counter, machineApp, replica, seed } from "./updaterSupport.js"

describeStores("Tracking", (it) => {
  it.scoped("writes the queued check-ins when it stops", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const scope = yield* Scope.make()
      const a = yield* Scope.extend(replica({ tracking: { flushInterval: Duration.hours(1) } }), scope)
      for (let i = 0; i < 50; i++) {
        const answer = yield* check(a.updater, machineApp(`machine-${i}`, "3815.2.1"))
        expect(answer?._tag).toBe("NoUpdate")
      }
      expect(yield* a.tracking.pending).toBe(50)
      const [none] = yield* sql`SELECT count(*)::int AS n FROM instance_apps`
      expect(none).toEqual({ n: 0 })
      yield* Scope.close(scope, Exit.void)
      const [written] = yield* sql`SELECT count(*)::int AS n FROM instance_apps WHERE version = '3815.2.1'`
      expect(written).toEqual({ n: 50 })
    }))

  it.scoped("records 10,000 machines' check-ins with a handful of statements, none per request", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const a = yield* replica({ tracking: { flushInterval: Duration.hours(1) } })
      const before = { ...counter }
      for (let i = 0; i < 10_000; i++) {
        yield* check(a.updater, machineApp(`m${i.toString(16).padStart(31, "0")}`, "3815.2.1"))
      }
      const during = counter.statements - before.statements + 2 * (counter.transactions - before.transactions)
      yield* a.tracking.flush
      const total = counter.statements - before.statements + 2 * (counter.transactions - before.transactions)
      const [written] = yield* sql`SELECT count(*)::int AS n FROM instance_apps`
      expect(written).toEqual({ n: 10_000 })
      // A full batch of 2,000 is written at once, in the background, while checks go on; a
      // write takes what is queued by then, in statements of at most 2,000 rows.
      expect(total).toBeGreaterThanOrEqual(5)
      expect(total).toBeLessThanOrEqual(10)
      expect(during).toBeLessThanOrEqual(total)
    }), { timeout: 120_000 })

  it.scoped("keeps the check-ins of a batch the database refused, and writes them on the next try", () =>
    Effect.gen(function*() {
      yield* truncateAll
      const sql = yield* SqlClient.SqlClient
      yield* seed(sql)
      const { tracking, updater } = yield* replica()
      for (let i = 0; i < 20; i++) yield* check(updater, machineApp(`m${i}`, "3815.2.1"))
      yield* sql`ALTER TABLE instance_apps RENAME TO instance_apps_away`
      const refused = yield* Effect.flip(tracking.flush)
      expect(refused._tag).toBe("SqlError")
      expect(yield* tracking.pending).toBe(20)
      // A later check-in of a machine replaces the one kept for it.
      yield* check(updater, machineApp("m0", "3815.2.2"))
      yield* sql`ALTER TABLE instance_apps_away RENAME TO instance_apps`
      yield* tracking.flush
      expect(yield* tracking.pending).toBe(0)
      const rows = yield* sql<{ version: string; n: number }>`SELECT version, count(*)::int AS n FROM instance_apps
        GROUP BY version ORDER BY version`
      expect(rows).toEqual([{ version: "3815.2.1", n: 19 }, { version: "3815.2.2", n: 1 }])
    }))
})
