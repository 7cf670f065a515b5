/**
 * The fleet database's costs on PGlite: creating and reopening a data
 * directory (the layer as the command builds it: lock, open, migrations), an
 * in-memory database (what each store test file pays), and, in a process of
 * its own bundled as the commands are, single-row upserts per second, one
 * `unnest` upsert of 10,000 rows (new, then the same again) and the peak RSS
 * of that process holding the data directory. With FLEET_TEST_DATABASE_URL
 * set, the same writes on a fresh database of that PostgreSQL server.
 * Beside wall times it prints this process's CPU time: PGlite runs on the
 * main thread, so on a machine others load, CPU time says what it costs.
 */
import { NodeContext } from "@effect/platform-node"
import type { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Database from "../../src/fleet/Database.js"
import { bundleEntry } from "../fleet/bundleEntry.js"
import { freshDatabase } from "../fleet/postgres.js"
import { batch, type Took, took, writes, type Writes } from "./databaseWrites.js"
import { formatRate, printTable } from "./measure.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

const openAndClose = (layer: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Effect.runPromise(took(Effect.scoped(Layer.build(layer)))).then(([, t]) => t)
const median = (xs: ReadonlyArray<Took>): Took => [...xs].sort((a, b) => a.wall - b.wall)[Math.floor(xs.length / 2)]!
const pglite = (dataDir: string) => Database.layerPglite({ dataDir }).pipe(Layer.provide(NodeContext.layer))
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
const ms = (n: number) => `${n.toFixed(0)} ms`
const times = (t: Took) => [ms(t.wall), ms(t.cpu)]
const rate = (n: number, t: Took) => [formatRate((n * 1000) / t.wall), formatRate((n * 1000) / t.cpu)]

const temp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-db-bench-"))
try {
  const dataDir = Path.join(temp, "fleet-data")
  const create = await openAndClose(pglite(dataDir))
  const reopens: Array<Took> = []
  for (let i = 0; i < 3; i++) reopens.push(await openAndClose(pglite(dataDir)))
  const memory = await openAndClose(Database.layerPgliteMemory)
  printTable(["PGlite", "wall", "CPU"], [
    ["create a data directory", ...times(create)],
    ["reopen it (median of 3)", ...times(median(reopens))],
    ["an in-memory database", ...times(memory)]
  ])

  // The holding process runs as a command does: bundled, with plain node.
  const command = await bundleEntry(Path.join(root, "test", "bench", "databaseWrites.ts"), "databaseWrites")
  const child = spawnSync(process.execPath, [command, dataDir], { encoding: "utf8" })
  if (child.status !== 0) throw new Error(`the holding process failed: ${child.stderr}`)
  const held = JSON.parse(child.stdout) as Writes

  const rows = (w: Writes) => [
    ["single-row upserts/s", ...rate(w.upserts, w.upsertsTook)],
    [`unnest upsert of ${formatRate(batch)} new rows`, ...times(w.insert)],
    [`unnest upsert of the same ${formatRate(batch)} rows`, ...times(w.update)]
  ]
  console.log()
  printTable(["PGlite writes", "wall", "CPU"], rows(held))
  const url = process.env["FLEET_TEST_DATABASE_URL"]
  if (url !== undefined) {
    const server = await Effect.runPromise(Effect.scoped(Effect.flatMap(
      freshDatabase(url),
      (database) => writes(Database.layerPostgres({ url: database }))
    )))
    console.log()
    // The server's own CPU is not in this process's: its "CPU" is the client's share only.
    printTable(["PostgreSQL writes", "wall", "client CPU"], rows(server))
  }
  console.log()
  printTable(["process holding the data directory", "RSS"], [
    ["once open", mb(held.rssOpen)],
    ["peak, after the writes", mb(held.peakRss)]
  ])
} finally {
  Fs.rmSync(temp, { recursive: true, force: true })
}
