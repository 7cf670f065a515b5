/**
 * fleet-server against serve-package, measured in one run on loopback with
 * wrk as the load generator (test/bench/fleetSetup.ts has the fleet):
 * - update checks per second of three servers, the bundled commands as
 *   processes: serve-package, fleet-server on the embedded database
 *   (PGlite) and fleet-server on PostgreSQL, each database holding 100,000
 *   registered machines. The same request stream goes to each:
 *   update_engine's captured request from 10,000 machine ids in turn, most
 *   on the channel's version (no update), every 50th on the one before
 *   (serve-package offers it the update; the fleet grants 5 and holds the
 *   rest), 32 connections, three runs alternating the servers, the median
 *   of each and of the per-run ratios to serve-package;
 * - each server's CPU time per check (from /proc, the PostgreSQL server's
 *   own excluded) and its peak RSS;
 * - what the runs left in each database: every checking machine recorded
 *   as seen, exactly 5 grants;
 * - the in-process µs per check of the endpoint over each backend.
 * - the in-process µs per check of the endpoint over each backend: the
 *   periodic check, and the first check after an update (its 3/2 event is
 *   written at once).
 * Target: fleet-server on PostgreSQL at least 0.5 of serve-package's rate.
 *
 * PostgreSQL: a fresh database (dropped at the end) on the server at
 * FLEET_BENCH_DATABASE_URL, else FLEET_TEST_DATABASE_URL (what the tests
 * use); with neither, the PostgreSQL rows are left out, saying so.
 * BENCH_SECONDS sets the length of each wrk run (10 s by default). An
 * interrupt (Ctrl-C, SIGTERM) stops the servers, drops the database and
 * removes the temporary directory before the bench exits (run as
 * `node --import tsx`: the `tsx` command kills a process whose event loop is
 * busy, as it is while PGlite works, before it can clean up).
 */
import { NodeContext } from "@effect/platform-node"
import type { SqlClient } from "@effect/sql"
import { Effect, Exit, Fiber, Layer, Logger, Runtime, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { logfmt } from "../../src/cli/internal/logLines.js"
import * as Database from "../../src/fleet/Database.js"
import * as FleetUpdater from "../../src/fleet/FleetUpdater.js"
import { Package, TrivialUpdater, Version } from "../../src/index.js"
import * as OmahaHandler from "../../src/server/OmahaHandler.js"
import type { Updater } from "../../src/server/Updater.js"
import { freshDatabase } from "../fleet/postgres.js"
import * as Fleet from "./fleetSetup.js"
import { printTable } from "./measure.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const seconds = Number(process.env["BENCH_SECONDS"] ?? 10)
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-fleet-bench-"))
const progress = (line: string) => console.log(`  ${line}`)
const loadAverage = () => Os.loadavg().map((l) => l.toFixed(1)).join(" ")
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// -- processes ------------------------------------------------------------------

interface Server {
  readonly name: string
  readonly child: ChildProcess.ChildProcess
  readonly endpoint: string
}

// Every process the bench started and that has not exited, for `cleanUp`.
const children = new Set<ChildProcess.ChildProcess>()
let cleaning: Promise<void> | undefined

const spawn = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) => {
  if (cleaning !== undefined) throw new Error("interrupted")
  const child = ChildProcess.spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env })
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

const startServer = (name: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  new Promise<Server>((resolve, reject) => {
    const child = spawn(process.execPath, args, env)
    let out = ""
    let err = ""
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = /^SERVER=(\S+)$/m.exec(out)
      if (m !== null) resolve({ name, child, endpoint: m[1]! })
    })
    // The request log goes nowhere, as serve-package's does in the server bench; errors are kept.
    child.stderr!.on("data", (c: Buffer) => {
      if (err.length < 10_000) err += c.toString()
    })
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}: ${err.slice(-2000)}`)))
  })

const stop = async (server: Server) => {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = new Promise((resolve) => server.child.once("exit", resolve))
  server.child.kill("SIGTERM")
  await exited
}

const procStatus = (pid: number, field: string): number =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024

/** User and system CPU seconds of a process so far. */
const cpuSeconds = (pid: number): number => {
  const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const post = async (url: string, body: string) => {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "text/xml" }, body })
  return { status: res.status, text: await res.text() }
}

interface WrkRun {
  readonly rate: number
  readonly requests: number
  readonly errors: number
}

// wrk runs beside the event loop, so that an interrupt is handled at once.
const wrk = async (url: string, lua: string, duration: number): Promise<WrkRun> => {
  const child = spawn("wrk", ["-t1", "-c32", `-d${duration}s`, "-s", lua, url])
  let out = ""
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()))
  const code = await new Promise((resolve) => child.once("exit", resolve))
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`)
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const requests = /(\d+) requests in/.exec(out)
  if (rate === null || requests === null) throw new Error(`wrk printed no rate:\n${out}`)
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rate: Number(rate[1]),
    requests: Number(requests[1]),
    errors: Number(errors?.[1] ?? 0) + (socket === null ? 0 : socket.slice(1).reduce((n, s) => n + Number(s), 0))
  }
}

// Effects in flight, which `cleanUp` interrupts (closing their databases) before it removes their files.
const running = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
const run = <A, E>(effect: Effect.Effect<A, E, never>): Promise<A> => {
  const fiber = Effect.runFork(effect)
  running.add(fiber)
  fiber.addObserver(() => running.delete(fiber))
  return Effect.runPromise(Fiber.join(fiber))
}

// -- in process ---------------------------------------------------------------------

const exchange: OmahaHandler.Exchange = {
  method: "POST",
  headers: { host: "127.0.0.1:8000", "content-type": "text/xml" },
  remoteAddress: "127.0.0.1",
  encrypted: false
}

/**
 * µs per update check of the endpoint over `updater`, the log line written
 * to a sink: `requestOf(i)` for the 10,000 machines in turn, 16 requests in
 * flight, median of 5 rounds of `perRound` after a warm-up round.
 */
const inProcess = (
  updater: Layer.Layer<Updater, unknown>,
  requestOf: (i: number) => string,
  perRound: number
) =>
  Effect.scoped(Effect.gen(function*() {
    let sink = 0
    const logger = Logger.make((options) => void (sink += logfmt(options).length))
    const runtime = yield* Layer.toRuntime(Layer.merge(updater, Logger.replace(Logger.defaultLogger, logger)))
    const endpoint = yield* OmahaHandler.makeEndpoint({}).pipe(Effect.provide(runtime))
    const bodies = Array.from({ length: Fleet.checking }, (_, i) => Buffer.from(requestOf(i)))
    const runCallback = Runtime.runCallback(runtime)
    let next = 0
    const answerOnce = () =>
      new Promise<void>((resolve, reject) =>
        runCallback(endpoint.answer(exchange, bodies[next++ % bodies.length]!), {
          onExit: (exit) => (exit._tag === "Success" && exit.value.status === 200 ? resolve() : reject(new Error(String(exit))))
        })
      )
    const answers = async (n: number) => {
      const started = performance.now()
      for (let i = 0; i < n; i += 16) await Promise.all(Array.from({ length: 16 }, answerOnce))
      return ((performance.now() - started) * 1000) / n
    }
    return yield* Effect.promise(async () => {
      await answers(perRound)
      const rounds: Array<number> = []
      for (let round = 0; round < 5; round++) rounds.push(await answers(perRound))
      if (sink === 0) throw new Error("no log line was written")
      return median(rounds)
    })
  }))

const seeded = (database: Layer.Layer<SqlClient.SqlClient | Database.Notifications, unknown>, payload: Uint8Array) =>
  FleetUpdater.layer().pipe(
    Layer.provide(Layer.effectDiscard(Fleet.seed(payload)).pipe(Layer.provideMerge(database)))
  )

// -- cleaning up --------------------------------------------------------------------

// Everything the run made, undone by `cleanUp` at the end or on an interrupt:
// the servers, the PostgreSQL databases (the scope drops them) and the
// temporary directory.
const servers: Array<Server> = []
const scope = Effect.runSync(Scope.make())
const cleanUp = () =>
  (cleaning ??= (async () => {
    await Promise.all(Array.from(children, (child) =>
      new Promise((resolve) => {
        child.once("exit", resolve)
        child.kill("SIGTERM")
      })))
    servers.length = 0
    if (running.size > 0) console.error("waiting for the database's statement in progress to end")
    await Effect.runPromise(Fiber.interruptAll(running))
    await Effect.runPromise(Scope.close(scope, Exit.void)).catch(() => {})
    Fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 })
  })())
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the servers, dropping the bench's databases, removing ${dir}`)
    void cleanUp().then(
      () => process.exit(130),
      (error) => {
        console.error(`cleaning up failed: ${error}`)
        process.exit(130)
      }
    )
  })
}

/** A fresh database on the bench's PostgreSQL server, dropped by `cleanUp`. */
const freshPostgres = (url: string) => run(Scope.extend(freshDatabase(url), scope))

const withDatabase = <A>(
  layer: Layer.Layer<SqlClient.SqlClient | Database.Notifications, unknown>,
  effect: Effect.Effect<A, unknown, SqlClient.SqlClient>
) => run(Effect.scoped(Effect.flatMap(Layer.build(layer), (context) => Effect.provide(effect, context))))

const pgliteAt = (dataDir: string) => Database.layerPglite({ dataDir }).pipe(Layer.provide(NodeContext.layer))

/** Runs `f`, printing `what` before and the seconds it took after. */
const step = async <A>(what: string, f: () => Promise<A>): Promise<A> => {
  progress(`${what} ...`)
  const started = performance.now()
  const result = await f()
  progress(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return result
}

// -- the run ------------------------------------------------------------------------

const main = async () => {
  const postgresUrl = process.env["FLEET_BENCH_DATABASE_URL"] || process.env["FLEET_TEST_DATABASE_URL"] || undefined
  const loadBefore = loadAverage()
  console.log(
    `Node ${process.version}, ${Os.cpus().length} CPUs, wrk ${seconds} s per run, 32 connections, loopback; ` +
      `load average ${loadBefore}`
  )
  if (postgresUrl === undefined) {
    console.log(
      "PostgreSQL: skipped, no server given: set FLEET_BENCH_DATABASE_URL (or FLEET_TEST_DATABASE_URL) to " +
        "postgres://user@host:port/db; the bench makes a fresh database there and drops it"
    )
  }
  console.log("")
  const payload = Crypto.randomBytes(1024 * 1024)
  const payloadFile = Path.join(dir, "update.gz")
  Fs.writeFileSync(payloadFile, payload)
  const templateFile = Path.join(dir, "request.xml")
  Fs.writeFileSync(templateFile, Fleet.requestTemplate)
  const lua = Path.join(dir, "checks.lua")
  Fs.writeFileSync(lua, Fleet.wrkScript(templateFile))

  // The fleets, 100,000 machines each, written before the servers start (the embedded one is one process's).
  const registered = Fleet.registered.toLocaleString("en-US")
  const pgliteData = Path.join(dir, "fleet-pglite")
  await step(`registering ${registered} machines in PGlite (${pgliteData})`, () =>
    withDatabase(pgliteAt(pgliteData), Fleet.seed(payload)))
  const database = postgresUrl === undefined ? undefined : await freshPostgres(postgresUrl)
  if (database !== undefined) {
    await step(`registering ${registered} machines in PostgreSQL (${database.replace(/^.*\//, "database ")})`, () =>
      withDatabase(Database.layerPostgres({ url: database }), Fleet.seed(payload)))
  }

  const bin = (name: string) => Path.join(root, "dist/bin", `${name}.js`)
  const listen = ["--listen-address", "127.0.0.1:0"]
  progress("starting the servers ...")
  servers.push(
    await startServer("serve-package", [bin("serve-package"), "--package-file", payloadFile, "--package-version", Fleet.current, ...listen])
  )
  servers.push(await startServer("fleet-server, PGlite", [bin("fleet-server"), "serve", "--data", pgliteData, ...listen]))
  if (database !== undefined) {
    servers.push(
      await startServer("fleet-server, PostgreSQL", [bin("fleet-server"), "serve", "--data", Path.join(dir, "fleet-pg"), ...listen], {
        ...process.env,
        FLEET_DATABASE_URL: database
      })
    )
  }
  const since = new Date()
  // Each answers as expected: a machine on the channel's version no update.
  for (const server of servers) {
    const current = await post(server.endpoint, Fleet.requestOf(1))
    if (current.status !== 200 || !current.text.includes(`<updatecheck status="noupdate"`)) {
      throw new Error(`${server.name}: unexpected answer: ${current.text}`)
    }
  }

  const warmUp = Math.min(3, seconds)
  progress(`warming up: ${warmUp} s of checks to each server`)
  for (const server of servers) await wrk(server.endpoint, lua, warmUp)
  const runs: Array<Array<WrkRun & { readonly cpu: number }>> = servers.map(() => [])
  // Three runs, alternating the servers so that drift on the machine hits each alike.
  for (let round = 0; round < 3; round++) {
    for (const [i, server] of servers.entries()) {
      const cpuBefore = cpuSeconds(server.child.pid!)
      const result = await wrk(server.endpoint, lua, seconds)
      runs[i]!.push({ ...result, cpu: cpuSeconds(server.child.pid!) - cpuBefore })
      progress(`run ${round + 1} of 3, ${server.name}: ${result.rate.toFixed(0)} checks/s`)
    }
  }
  const peaks = servers.map((server) => procStatus(server.child.pid!, "VmHWM"))
  const names = servers.map((server) => server.name)
  progress("stopping the servers (each writes its last check-ins)")
  for (const server of servers) await stop(server)
  servers.length = 0
  const loadAfter = loadAverage()

  // What the runs left: the graceful stops wrote the last check-ins.
  const left = [await withDatabase(pgliteAt(pgliteData), Fleet.outcome(since))]
  if (database !== undefined) left.push(await withDatabase(Database.layerPostgres({ url: database }), Fleet.outcome(since)))

  const rows: Array<Array<string>> = names.map((name, i) => {
    const mine = runs[i]!
    const ratios = mine.map((r, round) => r.rate / runs[0]![round]!.rate)
    const cpuPerCheck = mine.reduce((n, r) => n + r.cpu, 0) / mine.reduce((n, r) => n + r.requests, 0) * 1e6
    const errors = mine.reduce((n, r) => n + r.errors, 0)
    return [
      name,
      median(mine.map((r) => r.rate)).toFixed(0),
      mine.map((r) => r.rate.toFixed(0)).join(" "),
      i === 0 ? "1.00" : median(ratios).toFixed(2),
      i === 0 ? "" : ratios.map((r) => r.toFixed(2)).join(" "),
      cpuPerCheck.toFixed(0),
      `${(peaks[i]! / 1024 / 1024).toFixed(0)} MiB`,
      String(errors)
    ]
  })
  console.log(`\nupdate checks/s, ${Fleet.checking.toLocaleString("en-US")} machines checking (every 50th on hold in the fleets), ${registered} registered\n`)
  printTable(["server", "checks/s (median)", "runs", "ratio (median)", "ratios by run", "CPU µs/check", "peak RSS", "errors"], rows)
  if (database === undefined) {
    console.log("\nfleet-server, PostgreSQL: skipped (no FLEET_BENCH_DATABASE_URL or FLEET_TEST_DATABASE_URL)")
  } else {
    const pgRatio = median(runs[2]!.map((r, round) => r.rate / runs[0]![round]!.rate))
    console.log(
      `\ntarget: fleet-server on PostgreSQL >= 0.50 of serve-package: ${pgRatio.toFixed(2)} (${pgRatio >= 0.5 ? "met" : "missed"})`
    )
  }
  console.log(`load average ${loadBefore} before, ${loadAfter} after`)
  const described = (o: { seen: number; grants: number; onHold: number }) =>
    `${o.seen} machines seen, ${o.grants} grants, ${o.onHold} on hold`
  console.log(
    `left in the databases: PGlite ${described(left[0]!)}` +
      (left[1] === undefined ? "" : `; PostgreSQL ${described(left[1])}`)
  )

  // The endpoint in this process, per backend.
  console.log("")
  const version = Effect.runSync(Version.parseSemver(Fleet.current))
  const facts = Fleet.factsOf(payload)
  const trivial = TrivialUpdater.layer({ name: "update.gz", version, facts: new Package.PackageFacts(facts) })
  const backends: Array<{ readonly name: string; readonly layer: () => Promise<Layer.Layer<Updater, unknown>> }> = [
    { name: "TrivialUpdater (serve-package)", layer: async () => trivial },
    { name: "FleetUpdater on PGlite in memory", layer: async () => seeded(Database.layerPgliteMemory, payload) }
  ]
  if (postgresUrl !== undefined) {
    backends.push({
      name: "FleetUpdater on PostgreSQL",
      layer: async () => seeded(Database.layerPostgres({ url: await freshPostgres(postgresUrl) }), payload)
    })
  }
  const kinds = [
    { name: "periodic check", requestOf: Fleet.requestOf, perRound: 5_000 },
    { name: "with a 3/2 event", requestOf: Fleet.requestWithEventOf, perRound: 500 }
  ]
  const micros: Array<Array<number>> = []
  for (const backend of backends) {
    const mine: Array<number> = []
    for (const kind of kinds) {
      const us = await step(`in process, ${backend.name}, ${kind.name}`, async () =>
        run(inProcess(await backend.layer(), kind.requestOf, kind.perRound)))
      mine.push(us)
    }
    micros.push(mine)
  }
  console.log("\nin-process µs per update check, the endpoint over each backend (median of 5 rounds, 16 in flight)\n")
  printTable(
    ["backend", ...kinds.map((k) => `µs, ${k.name}`), "vs TrivialUpdater"],
    backends.map((backend, i) => [
      backend.name,
      ...micros[i]!.map((us) => us.toFixed(1)),
      (micros[i]![0]! / micros[0]![0]!).toFixed(2)
    ])
  )
  if (postgresUrl === undefined) console.log("\nFleetUpdater on PostgreSQL: skipped (no server given)")
  console.log(`\nload average at the end ${loadAverage()}`)
}

main()
  .then(cleanUp, async (error) => {
    // After an interrupt, the signal's handler cleans up and exits.
    if (cleaning !== undefined) return
    console.error(error)
    await cleanUp()
    process.exit(1)
  })
