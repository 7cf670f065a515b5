/**
 * How fast the dashboard shows its main views with 10,000 machines in the
 * fleet (set BENCH_INSTANCES for another size), in Debian's Chromium on
 * loopback: each view opened in a fresh tab of a signed-in operator, timed
 * by the page's own clock from the start of the navigation until its
 * content is on the screen (the page, its bundles and every API read it
 * makes), BENCH_RUNS times (7 by default), median and slowest. On the
 * embedded store (PGlite), and on PostgreSQL too when
 * FLEET_TEST_DATABASE_URL names a server. Also the bundles' sizes.
 * Target: under a second for each view.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import * as Browser from "../dashboard/browser.js"
import * as Fleet from "../dashboard/fleet.js"
import { appId, seed } from "../dashboard/seed.js"
import { printTable } from "./measure.js"

const instances = Number(process.env["BENCH_INSTANCES"] ?? 10_000)
const runs = Number(process.env["BENCH_RUNS"] ?? 7)
const app = encodeURIComponent(appId)
const stable = Math.round(instances * 0.8).toLocaleString("en-US")

/** The views and what shows each is there. */
export const views: ReadonlyArray<readonly [string, string, ReadonlyArray<Browser.Ready>]> = [
  ["applications", "/", [{ selector: "[data-group] .bar-part", count: 3 }]],
  ["group", `/apps/${app}/groups/stable`, [
    { selector: "[data-stat=total] .stat-value", text: stable },
    { selector: "svg[aria-label^='Versions'] path" },
    { selector: "svg[aria-label^='Statuses'] path" }
  ]],
  ["instances", `/apps/${app}/instances`, [{ selector: "tr[data-machine]", count: 50 }]],
  ["instances, searched", `/apps/${app}/instances?search=node-01&sort=version`, [{ selector: "tr[data-machine]", count: 50 }]],
  ["activity", "/activity", [{ selector: ".feed-item" }]]
]

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const measure = (store: string, options: Fleet.StartOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const fleet = yield* Fleet.start(options)
    yield* seed(fleet, instances)
    const browser = yield* Browser.launch
    const rows: Array<Array<string>> = []
    for (const [name, route, ready] of views) {
      const times: Array<number> = []
      // One untimed run first: the server's and the database's first use of each query.
      yield* Effect.scoped(Browser.loadTime(browser, fleet.base, fleet.admin, route, ready))
      for (let run = 0; run < runs; run++) times.push(yield* Effect.scoped(Browser.loadTime(browser, fleet.base, fleet.admin, route, ready)))
      rows.push([`${store}: ${name}`, `${median(times).toFixed(0)} ms`, `${Math.max(...times).toFixed(0)} ms`])
    }
    return rows
  }))

const program = Effect.gen(function*() {
  const assets = Path.join(import.meta.dirname, "..", "..", "dist", "dashboard", "assets")
  const sizes = Fs.readdirSync(assets).filter((f) => /\.(js|css)$/.test(f)).map((file) => {
    const bytes = Fs.readFileSync(Path.join(assets, file))
    return [file, `${(bytes.length / 1024).toFixed(1)} KiB`, `${(Zlib.gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KiB`]
  })
  printTable(["bundle", "size", "gzip"], sizes)
  console.log()
  const rows = yield* measure("PGlite", {})
  const url = process.env["FLEET_TEST_DATABASE_URL"]
  if (url !== undefined && url !== "") rows.push(...(yield* measure("PostgreSQL", { postgresUrl: url })))
  console.log(`views shown with ${instances.toLocaleString("en-US")} machines, ${runs} runs each (target: under 1000 ms)`)
  printTable(["view", "median", "slowest"], rows)
})

Effect.runPromise(program).catch((e) => {
  console.error(e)
  process.exit(1)
})
