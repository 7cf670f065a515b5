/**
 * The writes the database benchmark measures, on whatever database a layer
 * opens, after a warm-up: single-row upserts for a few seconds, then one
 * `unnest` upsert of 10,000 new rows and the same again (all conflicts). Run as a command
 * (`node databaseWrites.js DATA-DIR`, bundled as the commands are), it holds
 * a data directory and prints the figures and its peak RSS as JSON.
 */
import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as Database from "../../src/fleet/Database.js"

/** Rows in the batch upsert. */
export const batch = 10_000
const upsertSeconds = 3
const warmUpSeconds = 2

/** Wall time and this process's CPU time (user and system) of something, in ms. */
export interface Took {
  readonly wall: number
  readonly cpu: number
}

/** What one run measured. */
export interface Writes {
  readonly upserts: number
  readonly upsertsTook: Took
  readonly insert: Took
  readonly update: Took
  readonly rssOpen: number
  readonly peakRss: number
}

/** Measures `effect`: on a machine others load, CPU time is the steadier figure. */
export const took = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<[A, Took], E, R> =>
  Effect.suspend(() => {
    const wall = performance.now()
    const cpu = process.cpuUsage()
    return Effect.map(effect, (a): [A, Took] => {
      const used = process.cpuUsage(cpu)
      return [a, { wall: performance.now() - wall, cpu: (used.user + used.system) / 1000 }]
    })
  })

/** The writes on the database `layer` opens. */
export const writes = (layer: Layer.Layer<SqlClient.SqlClient, unknown>): Effect.Effect<Writes, unknown> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const seen = new Date("2024-01-01T00:00:00Z")
    const rssOpen = process.memoryUsage().rss
    const upsertFor = (seconds: number, prefix: string) =>
      Effect.gen(function*() {
        const started = performance.now()
        let n = 0
        while (performance.now() - started < seconds * 1000) {
          yield* sql`
            INSERT INTO instances (id, ip, last_seen) VALUES (${`${prefix}-${n % 1000}`}, '10.0.0.1', ${seen})
            ON CONFLICT (id) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen`
          n++
        }
        return n
      })
    const upsertBatch = (prefix: string) => {
      const ids = Array.from({ length: batch }, (_, i) => `${prefix}-${i}`)
      const ips = ids.map((_, i) => `10.1.${i >> 8}.${i & 255}`)
      return took(sql`
        INSERT INTO instances (id, ip, last_seen)
        SELECT id, ip, ${seen} FROM unnest(${ids}::text[], ${ips}::text[]) AS t (id, ip)
        ON CONFLICT (id) DO UPDATE SET ip = excluded.ip, last_seen = excluded.last_seen`)
    }
    // PGlite's WASM is compiled in tiers: the hot paths get fast after a while.
    yield* upsertFor(warmUpSeconds, "warm")
    yield* upsertBatch("warm")
    const [upserts, upsertsTook] = yield* took(upsertFor(upsertSeconds, "single"))
    const [, insert] = yield* upsertBatch("batch")
    const [, update] = yield* upsertBatch("batch")
    return { upserts, upsertsTook, insert, update, rssOpen, peakRss: process.resourceUsage().maxRSS * 1024 }
  }).pipe(Effect.provide(layer))

const dataDir = process.argv[2]
if (process.argv[1]?.endsWith("databaseWrites.js") && dataDir !== undefined) {
  const layer = Database.layerPglite({ dataDir }).pipe(Layer.provide(NodeContext.layer))
  process.stdout.write(JSON.stringify(await Effect.runPromise(writes(layer))))
}
