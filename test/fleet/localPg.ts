// Throwaway: a fresh database on the development server until test/fleet/support.ts lands.
import { Reactivity } from "@effect/experimental"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import migration from "../../src/fleet/migrations/0001_fleet.js"

const base = "postgres://postgres@127.0.0.1:5432"

const admin = (statement: string) =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(`${base}/postgres`) })
    yield* sql.unsafe(statement)
  })).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

export const createDatabase = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `fleet_engine_${Math.random().toString(36).slice(2, 10)}`
    yield* admin(`CREATE DATABASE ${name}`)
    return name
  }),
  (name) => admin(`DROP DATABASE ${name} WITH (FORCE)`)
)

export const clientLayer = (name: string, migrate: boolean) =>
  Layer.effectContext(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    if (migrate) yield* Effect.provideService(migration, SqlClient.SqlClient, sql)
    return yield* Effect.context<PgClient.PgClient | SqlClient.SqlClient>()
  })).pipe(
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(`${base}/${name}`), maxConnections: 20 })),
    Layer.provide(Reactivity.layer),
    Layer.orDie
  )
