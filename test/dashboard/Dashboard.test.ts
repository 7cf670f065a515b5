/**
 * The dashboard in a real browser (Debian's Chromium) against a real fleet
 * server on 127.0.0.1, with machines that are the project's own Omaha
 * client: an operator signs in, creates a group, watches a rollout move as
 * the machines report, edits the policy and pauses it; a viewer sees it all
 * and can change nothing; every API failure is said on the page; and the
 * browser logs no error the test did not provoke.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Page } from "playwright-core"
import * as Browser from "./browser.js"
import * as Fleet from "./fleet.js"

// The page's globals as the functions run in the page use them (the tests compile without the DOM library).
interface PageElement {
  readonly textContent: string | null
  readonly className: string
  getAttribute(name: string): string | null
}
declare const document: {
  querySelectorAll(selector: string): Iterable<PageElement>
  querySelector(selector: string): PageElement | null
  readonly cookie: string
}
declare const location: { readonly hash: string }
declare const sessionStorage: { getItem(key: string): string | null }
declare const localStorage: { readonly length: number }

class Env extends Context.Tag("test/dashboard/Env")<Env, { readonly fleet: Fleet.Fleet; readonly browser: Browser.Browser }>() {}

const EnvLive = Layer.scoped(
  Env,
  Effect.gen(function*() {
    const fleet = yield* Fleet.start()
    const browser = yield* Browser.launch
    return { fleet, browser }
  })
)

const appHash = (appId: string) => encodeURIComponent(appId)

/** The number a rollout counter on the page shows. */
const stat = (page: Page, name: string) =>
  page.locator(`[data-stat="${name}"] .stat-value`).textContent().then((t) => Number((t ?? "").replace(/,/g, "")))

/** Waits until the page's counters read `counts` (they refresh every few seconds). */
const waitForCounts = async (page: Page, counts: Record<string, number>, timeout = 20_000) => {
  const deadline = Date.now() + timeout
  let seen: Record<string, number> = {}
  while (Date.now() < deadline) {
    seen = {}
    for (const name of Object.keys(counts)) seen[name] = await stat(page, name).catch(() => NaN)
    if (Object.keys(counts).every((name) => seen[name] === counts[name])) return seen
    await page.waitForTimeout(200)
  }
  throw new Error(`the page shows ${JSON.stringify(seen)}, not ${JSON.stringify(counts)}`)
}

/** The buttons and forms of a page that are not for looking: anything but navigation, sorting, paging, windows and search. */
const writeControls = (page: Page) =>
  page.evaluate(() => {
    const reading = new Set(["Sign out", "Try again", "← Previous", "Next →", "1h", "1d", "7d", "30d", "Older entries"])
    const sorting = /^(Machine|Group|Version|Status|Last check)( [▲▼])?$/
    const buttons = [...document.querySelectorAll("button")]
      .map((b) => b.textContent?.trim() ?? "")
      .filter((text) => !reading.has(text) && !sorting.test(text))
    const forms = [...document.querySelectorAll("form")].filter((f) => f.getAttribute("role") !== "search")
      .map((f) => f.getAttribute("aria-label") ?? f.className)
    const files = [...document.querySelectorAll("input[type=file]")].map(() => "file input")
    return [...buttons, ...forms, ...files]
  })

const stepAll = (machines: ReadonlyArray<Fleet.Machine>) =>
  Effect.forEach(machines, (m) => m.step, { concurrency: 5 })

if (!Browser.available) {
  describe("the dashboard in Chromium", () => {
    it.skip(Browser.howToInstall, () => undefined)
  })
}

// Real time and sockets throughout: no test services.
const suite = Browser.available ? layer(EnvLive, { timeout: "120 seconds", excludeTestServices: true }) : undefined

suite?.("the dashboard in Chromium", (it) => {
  it.scoped("an admin creates a group, watches 20 machines roll out, edits the policy and pauses", () =>
    Effect.gen(function*() {
      const { browser, fleet } = yield* Env
      const appId = "{2d0c4ebf-7f5a-4f0e-9d51-000000000001}"
      yield* Fleet.seedApplication(fleet, { appId, name: "Flatcar", from: "3815.2.0", to: "3815.2.1", channel: "stable" })
      const { errors, page } = yield* Browser.open(browser)

      yield* Effect.promise(async () => {
        await Browser.signIn(page, fleet.base, fleet.admin)
        expect(await page.locator("[data-role]").textContent()).toBe("admin")
        expect((await page.evaluate(() => Object.keys(sessionStorage))).sort()).toEqual(["fleet-dashboard-role", "fleet-dashboard-token"])
        expect(await page.evaluate(() => Object.keys(localStorage).length + document.cookie.length)).toBe(0)
        await page.goto(`${fleet.base}/#/apps/${appHash(appId)}`)
        const form = page.locator("form[aria-label='New group']")
        await form.locator("input[name=name]").fill("canary")
        await form.locator("select[name=channel]").selectOption("stable")
        await form.locator("input[name=maxUpdatesPerPeriod]").fill("5")
        await form.locator("input[name=periodMinutes]").fill("60")
        await form.locator("input[name=safeMode]").uncheck()
        await form.locator("button[type=submit]").click()
        await page.waitForURL(/#\/apps\/.*\/groups\/canary$/)
        await page.waitForSelector("[data-state=running]")
        await waitForCounts(page, { total: 0 })
        // What a viewer must not be shown is here for an admin.
        expect(await writeControls(page)).toEqual(expect.arrayContaining(["Pause rollout", "Edit policy"]))
      })

      // The group is what the form said, in the database behind the API.
      const created = yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/groups/canary`)
      expect(created.status).toBe(200)
      expect(created.json).toMatchObject({
        name: "canary",
        track: "canary",
        channel: "stable",
        policy: { maxUpdatesPerPeriod: 5, periodSeconds: 3600, safeMode: false, rolloutPercent: 100 }
      })

      const machines = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) =>
        Fleet.machine(fleet, {
          appId,
          machineId: `m-${String(i).padStart(2, "0")}`,
          alias: `node-${i}`,
          version: "3815.2.0",
          track: "canary",
          ...(i === 19 ? { failWith: 10 } : {})
        }))

      // First checks: five granted, fifteen held by the limit, and the page follows each step.
      yield* stepAll(machines)
      yield* Effect.promise(() => waitForCounts(page, { total: 20, granted: 5, onHold: 15 }))
      expect(yield* Effect.promise(() => page.locator("[data-hold]").first().textContent())).toContain(
        "on hold: 5 of 5 updates in the last 1 h"
      )
      yield* stepAll(machines.slice(0, 5))
      yield* Effect.promise(() => waitForCounts(page, { downloading: 5, granted: 0 }))
      yield* stepAll(machines.slice(0, 5))
      yield* Effect.promise(() => waitForCounts(page, { downloaded: 5, downloading: 0 }))
      yield* stepAll(machines.slice(0, 5))
      yield* Effect.promise(() => waitForCounts(page, { installed: 5, downloaded: 0 }))
      yield* stepAll(machines.slice(0, 5))
      yield* Effect.promise(() => waitForCounts(page, { complete: 5, installed: 0, onHold: 15 }))

      // The admin lets the rest through by editing the policy.
      yield* Effect.promise(async () => {
        await page.click("text=Edit policy")
        const form = page.locator("form[aria-label=Policy]")
        await form.locator("input[name=maxUpdatesPerPeriod]").fill("20")
        await form.locator("button[type=submit]").click()
        await page.waitForSelector("text=at most 20 every 1 h")
      })
      const edited = yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/groups/canary`)
      expect(edited.json).toMatchObject({ policy: { maxUpdatesPerPeriod: 20, periodSeconds: 3600, safeMode: false } })

      yield* stepAll(machines.slice(5))
      yield* Effect.promise(() => waitForCounts(page, { granted: 15, onHold: 0, complete: 5 }))
      yield* stepAll(machines.slice(5))
      yield* Effect.promise(() => waitForCounts(page, { downloading: 15, granted: 0 }))
      yield* stepAll(machines.slice(5))
      yield* stepAll(machines.slice(5))
      yield* Effect.promise(() => waitForCounts(page, { installed: 14, error: 1 }))
      // m-19 failed its install; the others restart on the new version.
      yield* stepAll(machines.slice(5, 19))
      yield* Effect.promise(() => waitForCounts(page, { complete: 19, error: 1, installed: 0 }))
      yield* Effect.promise(async () => {
        const failure = page.locator("table[aria-label='Failures by error code']")
        expect(await failure.textContent()).toContain("PayloadHashMismatchError (10)")
        expect(await failure.textContent()).toContain("the downloaded payload's hash is not the one the server announced")
        await page.waitForSelector("svg[aria-label='Versions over 1 hour'] path")
        await page.waitForSelector("svg[aria-label='Statuses over 1 hour'] path")
      })

      // Pause through the page: the group is paused behind the API, and a checking machine is held.
      yield* Effect.promise(async () => {
        await page.fill("input[name=reason]", "looking at m-19")
        await page.click("text=Pause rollout")
        await page.waitForSelector("[data-state=paused]")
        expect(await page.locator("[data-state=paused]").textContent()).toBe("paused: looking at m-19")
        expect(await page.locator("text=Resume rollout").count()).toBe(1)
      })
      const paused = yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/groups/canary`)
      expect(paused.json).toMatchObject({ paused: true, pausedReason: "looking at m-19" })
      yield* machines[19]!.step
      yield* Effect.promise(() => waitForCounts(page, { onHold: 1, error: 0 }))

      yield* Effect.promise(async () => {
        await page.click("text=Resume rollout")
        await page.waitForSelector("[data-state=running]")
      })
      expect((yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/groups/canary`)).json).toMatchObject({ paused: false })
      expect(Browser.unexpected(errors)).toEqual([])
    }), 120_000)

  it.scoped("a viewer sees every view but no control, and the API refuses a write the page could send", () =>
    Effect.gen(function*() {
      const { browser, fleet } = yield* Env
      const appId = "{2d0c4ebf-7f5a-4f0e-9d51-000000000002}"
      yield* Fleet.seedApplication(fleet, { appId, name: "Viewer app", from: "1.0.0", to: "1.0.1", channel: "stable" })
      yield* Fleet.call(fleet, "POST", `${Fleet.appPath(appId)}/groups`, { name: "prod", channel: "stable" })
      const m = yield* Fleet.machine(fleet, { appId, machineId: "v-1", alias: "viewer-node", version: "1.0.0", track: "prod" })
      yield* m.run
      const { errors, page } = yield* Browser.open(browser)
      const app = appHash(appId)
      yield* Effect.promise(async () => {
        await Browser.signIn(page, fleet.base, fleet.viewer)
        expect(await page.locator("[data-role]").textContent()).toBe("viewer")
        for (
          const [route, ready] of [
            ["/", "[data-group=prod]"],
            [`/apps/${app}`, "[data-group=prod]"],
            [`/apps/${app}/groups/prod`, "[data-stat=total]"],
            [`/apps/${app}/instances`, "[data-machine=v-1]"],
            [`/apps/${app}/instances/v-1`, "table[aria-label='Status history']"],
            [`/apps/${app}/channels`, "[data-channel='stable/amd64']"],
            ["/activity", "h1"]
          ] as const
        ) {
          await page.goto(`${fleet.base}/#${route}`)
          await page.waitForSelector(ready)
          expect(await writeControls(page), `controls on ${route}`).toEqual([])
        }
        await page.goto(`${fleet.base}/#/apps/${app}/groups/prod`)
        await page.waitForSelector("[data-state=running]")
        // What a viewer could send from the browser's console: the server refuses it.
        const answer = await page.evaluate(async (path) => {
          const token = sessionStorage.getItem("fleet-dashboard-token")
          const response = await fetch(path, { method: "POST", headers: { authorization: `Bearer ${token}` } })
          return { status: response.status, body: await response.json() as unknown }
        }, `/api/apps/${app}/groups/prod/pause`)
        expect(answer).toEqual({
          status: 403,
          body: { error: "Forbidden", message: "a viewer token may only read: POST needs an admin token" }
        })
      })
      expect((yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/groups/prod`)).json).toMatchObject({ paused: false })
      expect(Browser.unexpected(errors, [Browser.refused(403, `/api/apps/${app}/groups/prod/pause`)])).toEqual([])
    }), 60_000)

  it.scoped("instances are filtered, searched, sorted and paged; a machine's failure is explained; a package uploads with progress", () =>
    Effect.gen(function*() {
      const { browser, fleet } = yield* Env
      const appId = "{2d0c4ebf-7f5a-4f0e-9d51-000000000004}"
      yield* Fleet.seedApplication(fleet, { appId, name: "Tables", from: "1.0.0", to: "1.0.1", channel: "stable" })
      yield* Fleet.call(fleet, "POST", `${Fleet.appPath(appId)}/groups`, {
        name: "all",
        channel: "stable",
        policy: { maxUpdatesPerPeriod: 100, safeMode: false }
      })
      // 60 machines: the first five fail with update_engine's code 10, the next ten stay on 1.0.0 (they never check).
      const machines = yield* Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) =>
        Fleet.machine(fleet, {
          appId,
          machineId: `t-${String(i).padStart(2, "0")}`,
          alias: i % 2 === 0 ? `even-${i}` : `odd-${i}`,
          version: "1.0.0",
          track: "all",
          ...(i < 5 ? { failWith: 10 } : {})
        }))
      yield* Effect.forEach(machines.filter((_, i) => i < 5 || i >= 15), (m) => m.run, { concurrency: 8 })
      yield* Effect.forEach(machines.slice(5, 15), (m) => m.step.pipe(Effect.zipRight(m.step)), { concurrency: 8 })
      yield* fleet.flush
      const app = appHash(appId)
      const { errors, page } = yield* Browser.open(browser)
      const rows = () => page.locator("table[aria-label=Instances] tbody tr[data-machine]").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-machine")))
      yield* Effect.promise(async () => {
        await Browser.signIn(page, fleet.base, fleet.admin)
        await page.goto(`${fleet.base}/#/apps/${app}/instances`)
        await page.waitForSelector("table[aria-label=Instances][data-total='60']")
        expect((await rows()).length).toBe(50)
        expect(await page.locator(".pager").textContent()).toContain("1–50 of 60 · page 1 of 2")
        await page.click("text=Next →")
        await page.waitForSelector(".pager:has-text('51–60 of 60')")
        expect((await rows()).length).toBe(10)

        await page.selectOption("select[name=status]", "error")
        await page.waitForSelector("table[aria-label=Instances][data-total='5']")
        expect((await rows()).sort()).toEqual(["t-00", "t-01", "t-02", "t-03", "t-04"])
        await page.selectOption("select[name=status]", "")
        await page.selectOption("select[name=version]", "1.0.1")
        await page.waitForSelector("table[aria-label=Instances][data-total='45']")
        // odd-1, odd-11 ... odd-19 by alias; of them only t-15, t-17 and t-19 run 1.0.1.
        await page.fill("input[name=search]", "odd-1")
        await page.waitForSelector("table[aria-label=Instances][data-total='3']")
        await page.click("th button:has-text('Machine')")
        await page.waitForFunction(() => location.hash.includes("sort=machineId") && location.hash.includes("order=asc"))
        await page.waitForFunction(() => document.querySelector("tbody tr[data-machine]")?.getAttribute("data-machine") === "t-15")
        expect(await rows()).toEqual(["t-15", "t-17", "t-19"])
        await page.click("th button:has-text('Machine')")
        await page.waitForFunction(() => document.querySelector("tbody tr[data-machine]")?.getAttribute("data-machine") === "t-19")
        expect(await rows()).toEqual(["t-19", "t-17", "t-15"])
        expect(await page.locator("th[aria-sort=descending]").textContent()).toContain("Machine")

        // One failed machine: its status history and events, the error in update_engine's name and in words.
        await page.goto(`${fleet.base}/#/apps/${app}/instances/t-02`)
        await page.waitForSelector("table[aria-label='Status history']")
        expect(await page.locator("table[aria-label='Status history'] tbody tr").count()).toBe(4)
        const explained = await page.locator(".error-code").first().textContent()
        expect(explained).toBe("PayloadHashMismatchError (10): the downloaded payload's hash is not the one the server announced")
        expect(await page.locator("table[aria-label=Events]").textContent()).toContain("update download started: success (13/1)")

        // An upload: the progress bar fills, the package is listed, the channel moves to it.
        await page.goto(`${fleet.base}/#/apps/${app}/channels`)
        const upload = page.locator("form[aria-label='Upload a package']")
        await upload.locator("input[name=file]").setInputFiles({
          name: "update.gz",
          mimeType: "application/octet-stream",
          buffer: Buffer.alloc(3 * 1024 * 1024, 7)
        })
        await upload.locator("input[name=version]").fill("1.0.2")
        await upload.locator("button[type=submit]").click()
        await page.waitForSelector("[role=status]:has-text('Uploaded 1.0.2 (amd64), 3.0 MiB.')")
        expect(await upload.locator("progress").getAttribute("value")).toBe(String(3 * 1024 * 1024))
        await page.waitForSelector("tr[data-package='1.0.2']")
        const card = page.locator("[data-channel='stable/amd64']")
        await card.locator("select[name=package]").selectOption("1.0.2")
        await card.locator("button:has-text('Move channel')").click()
        await card.locator("[data-package]:has-text('1.0.2')").waitFor()
      })
      const listed = yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/packages/1.0.2?arch=amd64`)
      expect(listed.json).toMatchObject({ version: "1.0.2", arch: "amd64", name: "update.gz", size: 3 * 1024 * 1024 })
      expect((yield* Fleet.call(fleet, "GET", `${Fleet.appPath(appId)}/channels/stable?arch=amd64`)).json).toMatchObject({ package: "1.0.2" })
      expect(Browser.unexpected(errors)).toEqual([])
    }), 90_000)

  it.scoped("every API failure is said on the page", () =>
    Effect.gen(function*() {
      const { browser, fleet } = yield* Env
      const appId = "{2d0c4ebf-7f5a-4f0e-9d51-000000000003}"
      yield* Fleet.seedApplication(fleet, { appId, name: "Failures", from: "1.0.0", to: "1.0.1", channel: "stable" })
      yield* Fleet.call(fleet, "POST", `${Fleet.appPath(appId)}/groups`, { name: "taken", channel: "stable" })
      const app = appHash(appId)
      const { errors, page } = yield* Browser.open(browser)
      const alert = (text: string) => page.waitForSelector(`[role=alert]:has-text(${JSON.stringify(text)})`)
      yield* Effect.promise(async () => {
        // A token the server does not know.
        await page.goto(`${fleet.base}/`)
        await page.fill("input[name=token]", `fleet_${"x".repeat(43)}`)
        await page.click("form.signin-form button[type=submit]")
        await alert("Signing in failed: unknown token (401 Unauthorized)")

        await Browser.signIn(page, fleet.base, fleet.admin)
        // A group that does not exist.
        await page.goto(`${fleet.base}/#/apps/${app}/groups/missing`)
        await alert(`Loading the group failed: no group "missing" of "${appId}" (404 NotFound)`)
        // A name already taken.
        await page.goto(`${fleet.base}/#/apps/${app}`)
        const form = page.locator("form[aria-label='New group']")
        await form.locator("input[name=name]").fill("taken")
        await form.locator("button[type=submit]").click()
        await alert("Creating the group failed:")
        expect(await form.locator("[role=alert]").getAttribute("data-error-tag")).toBe("Conflict")
        // A policy the server refuses.
        await page.goto(`${fleet.base}/#/apps/${app}/groups/taken`)
        await page.click("text=Edit policy")
        await page.locator("form[aria-label=Policy] input[name=maxUpdatesPerPeriod]").fill("")
        await page.locator("form[aria-label=Policy] button[type=submit]").click()
        await alert("Saving the group failed:")
        // The server failing, and not answering at all.
        await page.route("**/groups/taken/status", (route) =>
          route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: "Internal", message: "the database request failed" }) }))
        await page.goto(`${fleet.base}/#/apps/${app}/groups/taken`)
        await alert("Loading the rollout status failed: the database request failed (500 Internal)")
        await page.unroute("**/groups/taken/status")
        await page.route("**/groups/taken/timeline*", (route) => route.abort("connectionrefused"))
        await page.reload()
        await alert("Loading the timeline failed: the server did not answer")
        await page.unroute("**/groups/taken/timeline*")
      })
      // A token withdrawn while the page is open: the next refresh says so and asks to sign in again.
      const tokens = yield* Fleet.call(fleet, "POST", "/api/tokens", { role: "viewer", name: "short-lived" })
      const { id, token } = tokens.json as { id: number; token: string }
      const other = yield* Browser.open(browser)
      yield* Effect.promise(() => Browser.signIn(other.page, fleet.base, token))
      yield* Effect.promise(() => other.page.goto(`${fleet.base}/#/apps/${app}/groups/taken`))
      yield* Effect.promise(() => other.page.waitForSelector("[data-stat=total]"))
      yield* Fleet.call(fleet, "DELETE", `/api/tokens/${id}`)
      yield* Effect.promise(() => other.page.waitForSelector("[role=alert]:has-text('unknown token (401 Unauthorized)')"))
      expect(yield* Effect.promise(() => other.page.locator("input[name=token]").count())).toBe(1)

      expect(Browser.unexpected(errors, [
        Browser.refused(401, "/api/session"),
        Browser.refused(404, `/api/apps/${app}/groups/missing`),
        Browser.refused(404, /\/groups\/missing\/(status|timeline)$/),
        Browser.refused(409, `/api/apps/${app}/groups`),
        Browser.refused(400, `/api/apps/${app}/groups/taken`),
        Browser.refused(500, `/api/apps/${app}/groups/taken/status`),
        (l) => l.text.includes("net::ERR_CONNECTION_REFUSED") && l.url.includes("/timeline")
      ])).toEqual([])
      expect(Browser.unexpected(other.errors, [Browser.refused(401, /^\/api\//)])).toEqual([])
    }), 60_000)
})
