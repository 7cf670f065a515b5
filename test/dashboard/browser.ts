/**
 * Debian's Chromium driven by playwright-core, for the dashboard's tests and
 * scripts: headless, a fresh profile per launch (removed with it), nothing
 * fetched from the network but the page under test. Every page records
 * what the browser logged as an error, and what the page itself threw.
 */
import { Effect, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

/** Where Debian installs Chromium (`apt-get install chromium`). */
export const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

/**
 * Whether the browser tests run: with Chromium installed, or in CI (where
 * `.ci/run` installs it, and a missing browser is a failure, not a skip).
 */
export const available = Fs.existsSync(executablePath) || ["true", "1"].includes(process.env["CI"] ?? "")

/** What a developer without Chromium is told. */
export const howToInstall = `no Chromium at ${executablePath}: apt-get install -y chromium (or set CHROMIUM_PATH)`

/** The switches: headless, no sandbox (CI runs as root), and no traffic of the browser's own. */
export const args = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage"
]

/** A launched browser: one profile, pages opened in it. */
export interface Browser {
  readonly context: BrowserContext
}

/** Launches Chromium with a fresh profile for the scope. */
export const launch: Effect.Effect<Browser, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(async () => {
    if (!Fs.existsSync(executablePath)) throw new Error(howToInstall)
    const profile = Fs.mkdtempSync(Path.join(Os.tmpdir(), "chromium-profile-"))
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args,
      viewport: { width: 1280, height: 800 },
      timezoneId: "UTC",
      locale: "en-GB"
    })
    return { context, profile }
  }),
  ({ context, profile }) =>
    Effect.promise(async () => {
      await context.close()
      Fs.rmSync(profile, { recursive: true, force: true })
    })
).pipe(Effect.map(({ context }) => ({ context })))

/** Something the browser logged as an error, or an exception the page did not catch. */
export interface Logged {
  readonly text: string
  /** The resource the message is about (a failed request's URL), if any. */
  readonly url: string
}

/** A page with what it logged. */
export interface Watched {
  readonly page: Page
  readonly errors: Array<Logged>
}

/** A new tab (its own sessionStorage) for the scope, at the given size. */
export const open = (
  browser: Browser,
  size: { readonly width: number; readonly height: number } = { width: 1280, height: 800 }
): Effect.Effect<Watched, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const page = await browser.context.newPage()
      await page.setViewportSize(size)
      const errors: Array<Logged> = []
      page.on("console", (message) => {
        if (message.type() === "error" || message.type() === "warning") {
          errors.push({ text: message.text(), url: message.location().url })
        }
      })
      page.on("pageerror", (error) => errors.push({ text: `uncaught: ${error.message}`, url: "" }))
      return { page, errors }
    }),
    ({ page }) => Effect.promise(() => page.close())
  )

/**
 * The browser's own line for a request the server refused (Chromium logs
 * every 4xx and 5xx answer): what a test that provokes a refusal expects.
 */
export const refused = (status: number, path: string | RegExp) => (logged: Logged): boolean =>
  logged.text.startsWith(`Failed to load resource: the server responded with a status of ${status}`) &&
  (typeof path === "string" ? new URL(logged.url).pathname === path : path.test(new URL(logged.url).pathname))

/** The errors that none of the expected refusals explain. */
export const unexpected = (errors: ReadonlyArray<Logged>, expected: ReadonlyArray<(l: Logged) => boolean> = []) =>
  errors.filter((logged) => !expected.some((matches) => matches(logged)))

/** Signs in on the sign-in page with a token. */
export const signIn = async (page: Page, base: string, token: string): Promise<void> => {
  await page.goto(`${base}/`)
  await page.fill("input[name=token]", token)
  await page.click("form.signin-form button[type=submit]")
  await page.waitForSelector("header.top")
}

/** The keys the dashboard keeps its token, and the role last seen for it, under in sessionStorage. */
export const tokenKey = "fleet-dashboard-token"
export const roleKey = "fleet-dashboard-role"

/** What shows that a view is ready: every selector matches (at least `count` elements, the first with `text`). */
export interface Ready {
  readonly selector: string
  readonly count?: number
  readonly text?: string
}

interface PageGlobals {
  readonly document: { querySelectorAll(selector: string): ArrayLike<{ readonly textContent: string | null }> }
  readonly sessionStorage: { setItem(key: string, value: string): void }
  readonly performance: { now(): number }
}

/**
 * How long a view takes to show, in milliseconds: a fresh tab already
 * signed in opens `route` and waits until everything in `ready` holds; the
 * time is the page's own clock from the start of the navigation, so it
 * covers the page, its bundles and the API reads.
 */
export const loadTime = (
  browser: Browser,
  base: string,
  token: string,
  route: string,
  ready: ReadonlyArray<Ready>
): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { errors, page } = yield* open(browser)
    return yield* Effect.promise(async () => {
      // As the tab of an operator who signed in: the token and the role the server gave it.
      await page.addInitScript(([key, value, roleKey]) => {
        const storage = (globalThis as unknown as PageGlobals).sessionStorage
        storage.setItem(key!, value!)
        storage.setItem(roleKey!, "admin")
      }, [tokenKey, token, roleKey])
      await page.goto(`${base}/#${route}`)
      await page.waitForFunction((conditions) =>
        conditions.every((c) => {
          const found = (globalThis as unknown as PageGlobals).document.querySelectorAll(c.selector)
          return found.length >= (c.count ?? 1) && (c.text === undefined || found[0]?.textContent === c.text)
        }), ready, { polling: "raf", timeout: 30_000 })
      const ms = await page.evaluate(() => (globalThis as unknown as PageGlobals).performance.now())
      if (unexpected(errors).length > 0) throw new Error(`the page logged errors: ${JSON.stringify(errors)}`)
      return ms
    })
  })
