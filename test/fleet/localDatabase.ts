/**
 * A fresh PostgreSQL database per test file on the development server
 * (FLEET_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres),
 * migrated, dropped afterwards.
 */
import { Migrator } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as Crypto from "node:crypto"
import migration0001 from "../../src/fleet/migrations/0001_fleet.js"

const serverUrl = process.env["FLEET_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.href
}

const admin = PgClient.layer({ url: Redacted.make(serverUrl) })

/** A SqlClient on a new, migrated database, dropped when the layer is released. */
export const layer = Layer.unwrapScoped(Effect.gen(function*() {
  const name = `fleet_test_${Crypto.randomBytes(6).toString("hex")}`
  yield* Effect.acquireRelease(
    Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(`CREATE DATABASE ${name}`)).pipe(Effect.provide(admin), Effect.orDie),
    () =>
      Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(
        Effect.provide(admin),
        Effect.orDie
      )
  )
  const client = PgClient.layer({ url: Redacted.make(withDatabase(serverUrl, name)) })
  const migrated = Layer.effectDiscard(
    Migrator.make({})({ loader: Migrator.fromRecord({ "0001_fleet": migration0001 }) })
  ).pipe(Layer.provide(client))
  return Layer.merge(client, migrated).pipe(Layer.orDie)
}))
