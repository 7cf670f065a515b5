import { NodeContext } from "@effect/platform-node"
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Database from "../../src/fleet/Database.js"
import { migrations as allMigrations } from "../../src/fleet/migrations/index.js"
import { bundleEntry } from "./bundleEntry.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const temp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-fleet-data-"))
afterAll(() => Fs.rmSync(temp, { recursive: true, force: true }))

let dirs = 0
/** A copy of the data directory made by the first test: opening one costs a reopen, not a creation. */
const copyOfTemplate = (): string => {
  const dir = Path.join(temp, `copy-${++dirs}`)
  Fs.cpSync(template, dir, { recursive: true })
  return dir
}
const template = Path.join(temp, "fleet-data")

const open = (dataDir: string) => Layer.build(Database.layerPglite({ dataDir })).pipe(Effect.provide(NodeContext.layer))

const withDatabase = <A, E>(dataDir: string, effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.scoped(Effect.flatMap(open(dataDir), (context) => Effect.provide(effect, context)))

const count = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ readonly n: number }>`SELECT count(*) AS n FROM ${sql(table)}`)
    .pipe(Effect.map((rows) => rows[0]!.n))

// A pid that surely ran and is gone: a child that has exited.
const deadPid = (): number => ChildProcess.spawnSync("true").pid!

const lockOf = (dataDir: string) => Database.dataDirPaths(dataDir).lockFile

// The process holding a data directory runs bundled, as the commands do.
let holderCommand: string

/** Starts a process holding `dataDir` and committing rows (test/fleet/holdDataDir.ts). */
const holder = (dataDir: string) => {
  const child = ChildProcess.spawn(process.execPath, [holderCommand, dataDir], { stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  let err = ""
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")))
  child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")))
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
  const waitFor = async (predicate: (out: string) => boolean) => {
    const deadline = Date.now() + 60_000
    while (!predicate(out)) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the holder exited: ${err}`)
      if (Date.now() > deadline) throw new Error(`the holder took too long; stderr: ${err}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const committed = () => Math.max(0, ...[...out.matchAll(/^committed (\d+)$/gm)].map((match) => Number(match[1])))
  return { child, waitFor, committed, exited }
}

describe("layerPglite", () => {
  beforeAll(async () => {
    holderCommand = await bundleEntry(Path.join(root, "test", "fleet", "holdDataDir.ts"), "holdDataDir")
    // What a process killed while creating a database leaves: a half-made one beside it.
    Fs.mkdirSync(Path.join(template, "pgdata.new"), { recursive: true })
    Fs.writeFileSync(Path.join(template, "pgdata.new", "PG_VERSION"), "15\n")
    await Effect.runPromise(withDatabase(
      template,
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO applications (id, name) VALUES ('app', 'App')`)
    ))
  }, 180_000)

  it.live("creates a data directory whole, and keeps what was written across a close and a reopen", () =>
    Effect.gen(function*() {
      expect(Fs.readdirSync(template).sort()).toEqual(["pgdata"])
      expect(Fs.existsSync(Path.join(template, "pgdata", "PG_VERSION"))).toBe(true)
      const [apps, migrations] = yield* withDatabase(
        copyOfTemplate(),
        Effect.all([
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT id, name FROM applications`),
          count(Database.migrationsTable)
        ])
      )
      expect(apps).toEqual([{ id: "app", name: "App" }])
      expect(migrations).toBe(Object.keys(allMigrations).length)
    }), 60_000)

  it.live("refuses a second open of the directory while it is open, naming the holder", () =>
    Effect.gen(function*() {
      const dataDir = copyOfTemplate()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* open(dataDir)
        const second = yield* Effect.flip(Effect.scoped(open(dataDir)))
        expect(second).toMatchObject({ _tag: "DataDirectoryLocked", dataDir, pid: process.pid, host: Os.hostname() })
        expect(second.message).toBe(
          `data directory ${dataDir} is in use by process ${process.pid} on ${Os.hostname()} (lock file ${lockOf(dataDir)})`
        )
      }))
      expect(Fs.existsSync(lockOf(dataDir))).toBe(false)
    }), 60_000)

  it.live("refuses a second process at once; after a kill -9 the directory reopens with every committed write", () =>
    Effect.gen(function*() {
      const dataDir = copyOfTemplate()
      const running = holder(dataDir)
      yield* Effect.promise(() => running.waitFor((out) => /^committed 50$/m.test(out)))
      const refused = yield* Effect.flip(Effect.scoped(open(dataDir)))
      expect(refused).toMatchObject({ _tag: "DataDirectoryLocked", pid: running.child.pid })
      running.child.kill("SIGKILL")
      yield* Effect.promise(() => running.exited)
      const acknowledged = running.committed()
      const rows = yield* withDatabase(
        dataDir,
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ readonly id: string }>`SELECT id FROM instances`)
      )
      // Every commit the process reported is there, and nothing but whole commits.
      expect(rows.length).toBeGreaterThanOrEqual(acknowledged)
      expect(new Set(rows.map((row) => row.id))).toEqual(
        new Set(Array.from({ length: rows.length }, (_, i) => `machine-${i + 1}`))
      )
    }), 120_000)

  it.live("takes over a lock whose process is gone, or whose pid now belongs to a process that started later", () =>
    Effect.gen(function*() {
      const dataDir = copyOfTemplate()
      const host = Os.hostname()
      for (const owner of [{ pid: deadPid(), host }, { pid: process.ppid, host, started: "1" }]) {
        Fs.writeFileSync(lockOf(dataDir), JSON.stringify(owner))
        expect(yield* withDatabase(dataDir, count("applications"))).toBe(1)
        expect(Fs.existsSync(lockOf(dataDir))).toBe(false)
      }
      // A lock written on another host cannot be checked from here: it stands.
      Fs.writeFileSync(lockOf(dataDir), JSON.stringify({ pid: deadPid(), host: "elsewhere" }))
      const refused = yield* Effect.flip(Effect.scoped(open(dataDir)))
      expect(refused).toMatchObject({ _tag: "DataDirectoryLocked", host: "elsewhere" })
    }), 60_000)

  it.live("refuses a database directory that holds files but no database", () =>
    Effect.gen(function*() {
      const dataDir = Path.join(temp, "not-a-database")
      Fs.mkdirSync(Path.join(dataDir, "pgdata"), { recursive: true })
      Fs.writeFileSync(Path.join(dataDir, "pgdata", "notes.txt"), "mine")
      const refused = yield* Effect.flip(Effect.scoped(open(dataDir)))
      expect(refused).toMatchObject({ _tag: "DataDirectoryUnusable", dataDir })
      expect(refused.message).toBe(
        `cannot use data directory ${dataDir}: ${Path.join(dataDir, "pgdata")} holds files but no database`
      )
      expect(Fs.readFileSync(Path.join(dataDir, "pgdata", "notes.txt"), "utf8")).toBe("mine")
      expect(Fs.existsSync(lockOf(dataDir))).toBe(false)
    }))
})
