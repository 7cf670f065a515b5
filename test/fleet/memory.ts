/**
 * PGlite in memory for tests, loaded from a dump of a fresh migrated database
 * kept in node_modules/.cache across runs: loading one costs a fraction of
 * PostgreSQL's initdb, which a fresh database pays. The dump's name carries a
 * hash of PGlite's version and of the migration files, so a changed migration
 * makes a new one.
 */
import type { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Database from "../../src/fleet/Database.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const cacheDir = Path.join(root, "node_modules", ".cache", "effect-omaha")
const migrationsDir = Path.join(root, "src", "fleet", "migrations")

const dumpFile = async (): Promise<string> => {
  const pglite = Path.join(Path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite")), "..", "package.json")
  const hash = Crypto.createHash("sha256").update(await Fs.readFile(pglite))
  for (const name of (await Fs.readdir(migrationsDir)).sort()) {
    hash.update(`\0${name}\0`).update(await Fs.readFile(Path.join(migrationsDir, name)))
  }
  return Path.join(cacheDir, `pglite-${hash.digest("hex").slice(0, 16)}.tar`)
}

// Makes the dump and keeps it (written aside, then renamed, so a reader never sees half of one).
const makeDump = (file: string) =>
  Effect.gen(function*() {
    const dump = yield* Database.dumpPgliteMemory
    yield* Effect.promise(async () => {
      await Fs.mkdir(cacheDir, { recursive: true })
      for (const old of await Fs.readdir(cacheDir)) {
        // Dumps for other versions or migrations.
        if (/^pglite-.*\.tar$/.test(old) && old !== Path.basename(file)) await Fs.rm(Path.join(cacheDir, old), { force: true })
      }
      const aside = `${file}.${process.pid}`
      await Fs.writeFile(aside, Buffer.from(await dump.arrayBuffer()))
      await Fs.rename(aside, file)
    })
    return dump
  })

/** `Database.layerPgliteMemory`, faster: from the cached dump, made first if there is none. */
export const layerPgliteMemoryTest: Layer.Layer<SqlClient.SqlClient | Database.Notifications, Database.DatabaseError> = Layer.unwrapEffect(Effect.gen(function*() {
  const file = yield* Effect.promise(dumpFile)
  const cached = yield* Effect.promise(() => Fs.readFile(file).then((bytes) => new Blob([bytes]), () => undefined))
  const remade = Layer.unwrapEffect(Effect.map(makeDump(file), Database.layerPgliteMemoryFrom))
  return cached === undefined
    ? remade
    : Database.layerPgliteMemoryFrom(cached).pipe(Layer.orElse(() => remade))
}))
