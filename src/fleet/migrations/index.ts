/**
 * Every migration, by `<id>_<name>`, in the form `@effect/sql`'s Migrator
 * loads: imported here rather than found on disk, so that a bundled command
 * carries them. A migration added to this folder is added here too (a test
 * checks the two agree).
 */
import type { SqlClient } from "@effect/sql"
import type { Effect } from "effect"
import fleet0001 from "./0001_fleet.js"
import webhooks0002 from "./0002_webhooks.js"

/** The migrations by `<id>_<name>`; ids only grow, and a migration never changes once released. */
export const migrations: Readonly<Record<string, Effect.Effect<unknown, unknown, SqlClient.SqlClient>>> = {
  "0001_fleet": fleet0001,
  "0002_webhooks": webhooks0002
}
