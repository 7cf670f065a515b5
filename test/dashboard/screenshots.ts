/**
 * `npm run screenshots [folder]`: a fleet server with 10,000 machines (see
 * seed.ts), Debian's Chromium, and a screenshot of each main view at
 * 1280x800 and 390x844 (full pages), written to the folder (default
 * `screenshots/`), which it prints; then how long each view took to show.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Browser from "./browser.js"
import * as Fleet from "./fleet.js"
import { appId, seed } from "./seed.js"

const folder = Path.resolve(process.argv[2] ?? "screenshots")
const instances = 10_000
const app = encodeURIComponent(appId)

/** The views: a name, a route, what shows that it is ready, and what to do before the picture. */
const views = (failedMachine: string) => [
  { name: "applications", route: "/", ready: "[data-group=stable] .bar-part" },
  { name: "group", route: `/apps/${app}/groups/stable`, ready: "svg[aria-label^='Versions'] path", window: "7d" },
  { name: "instances", route: `/apps/${app}/instances`, ready: "table[aria-label=Instances] tbody tr[data-machine]" },
  { name: "instance", route: `/apps/${app}/instances/${encodeURIComponent(failedMachine)}`, ready: "table[aria-label=Events]" },
  { name: "channels", route: `/apps/${app}/channels`, ready: "table[aria-label=Packages]" },
  { name: "activity", route: "/activity", ready: ".feed-item" }
] as const

const sizes = [{ width: 1280, height: 800 }, { width: 390, height: 844 }] as const

const program = Effect.gen(function*() {
  Fs.mkdirSync(folder, { recursive: true })
  const fleet = yield* Fleet.start()
  const started = Date.now()
  const { failedMachine } = yield* seed(fleet, instances)
  console.error(`seeded ${instances} machines in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  const browser = yield* Browser.launch
  const written: Array<string> = []
  for (const size of sizes) {
    yield* Effect.scoped(Effect.gen(function*() {
      const { errors, page } = yield* Browser.open(browser, size)
      yield* Effect.promise(async () => {
        const shoot = async (name: string) => {
          const file = Path.join(folder, `${name}-${size.width}x${size.height}.png`)
          await page.screenshot({ path: file, fullPage: true })
          written.push(file)
        }
        await page.goto(`${fleet.base}/`)
        await page.waitForSelector("input[name=token]")
        await shoot("sign-in")
        await Browser.signIn(page, fleet.base, fleet.admin)
        for (const view of views(failedMachine)) {
          await page.goto(`${fleet.base}/#${view.route}`)
          await page.waitForSelector(view.ready)
          if ("window" in view) {
            await page.click(`.segmented button:text-is("${view.window}")`)
            await page.waitForSelector(`svg[aria-label='Versions over 7 days'] path`)
          }
          await page.waitForLoadState("networkidle")
          await shoot(view.name)
        }
        await page.evaluate(() => (globalThis as unknown as { sessionStorage: { clear(): void } }).sessionStorage.clear())
        const viewer = await page.context().newPage()
        await viewer.setViewportSize(size)
        await Browser.signIn(viewer, fleet.base, fleet.viewer)
        await viewer.goto(`${fleet.base}/#/apps/${app}/groups/stable`)
        await viewer.waitForSelector("svg[aria-label^='Versions'] path")
        await viewer.waitForLoadState("networkidle")
        const file = Path.join(folder, `group-viewer-${size.width}x${size.height}.png`)
        await viewer.screenshot({ path: file, fullPage: true })
        written.push(file)
        await viewer.close()
      })
      const logged = Browser.unexpected(errors)
      if (logged.length > 0) console.error(`the browser logged: ${JSON.stringify(logged)}`)
    }))
  }
  console.log(`screenshots in ${folder}:`)
  for (const file of written) console.log(`  ${Path.basename(file)}`)
  for (const [name, route, ready] of [
    ["applications", "/", [{ selector: "[data-group] .bar-part", count: 3 }]],
    ["group", `/apps/${app}/groups/stable`, [
      { selector: "[data-stat=total] .stat-value", text: "8,000" },
      { selector: "svg[aria-label^='Versions'] path" },
      { selector: "svg[aria-label^='Statuses'] path" }
    ]],
    ["instances", `/apps/${app}/instances`, [{ selector: "tr[data-machine]", count: 50 }]]
  ] as const) {
    const ms = yield* Effect.scoped(Browser.loadTime(browser, fleet.base, fleet.admin, route, ready))
    console.log(`${name}: shown in ${ms.toFixed(0)} ms with ${instances} machines`)
  }
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
