import { HttpApp, HttpServerResponse } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import * as Dashboard from "../../src/fleet/Dashboard.js"

const fallback = Effect.succeed(HttpServerResponse.text("from the api", { status: 418 }))

const handlerOf = (assets: Dashboard.Assets | undefined) => HttpApp.toWebHandler(Dashboard.serve(assets)(fallback))

const get = (handler: (r: Request) => Promise<Response>, path: string, init: RequestInit = {}) =>
  Effect.promise(() => handler(new Request(`http://127.0.0.1${path}`, init)))

const builtFolder = () => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "dashboard-"))
  Fs.mkdirSync(Path.join(dir, "assets"))
  Fs.writeFileSync(Path.join(dir, "index.html"), "<!doctype html><script type=module src=/assets/main-AAAA.js></script>")
  Fs.writeFileSync(Path.join(dir, "assets", "main-AAAA.js"), `console.log(${JSON.stringify("x".repeat(4000))})`)
  Fs.writeFileSync(Path.join(dir, "assets", "main-BBBB.css"), "body{margin:0}")
  return dir
}

describe("Dashboard", () => {
  it.effect("serves the page with a policy that forbids other origins, revalidated on every load", () =>
    Effect.gen(function*() {
      const dir = builtFolder()
      const handler = handlerOf(yield* Dashboard.load(dir))
      const page = yield* get(handler, "/")
      expect(page.status).toBe(200)
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(page.headers.get("cache-control")).toBe("no-cache")
      const csp = page.headers.get("content-security-policy")!
      expect(csp).toContain("default-src 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("connect-src 'self'")
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).not.toMatch(/https?:|\*|unsafe/)
      expect(page.headers.get("x-content-type-options")).toBe("nosniff")
      expect(yield* Effect.promise(() => page.text())).toContain("/assets/main-AAAA.js")
      const same = yield* get(handler, "/index.html")
      expect(same.headers.get("etag")).toBe(page.headers.get("etag"))
      const again = yield* get(handler, "/", { headers: { "if-none-match": page.headers.get("etag")! } })
      expect(again.status).toBe(304)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("serves hashed bundles for a year, gzipped when the browser takes it, and HEAD alike", () =>
    Effect.gen(function*() {
      const dir = builtFolder()
      const handler = handlerOf(yield* Dashboard.load(dir))
      const js = Fs.readFileSync(Path.join(dir, "assets", "main-AAAA.js"))
      const plain = yield* get(handler, "/assets/main-AAAA.js")
      expect(plain.status).toBe(200)
      expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8")
      expect(plain.headers.get("cache-control")).toBe("public, max-age=31536000, immutable")
      expect(plain.headers.get("content-encoding")).toBeNull()
      expect(Buffer.from(yield* Effect.promise(() => plain.arrayBuffer()))).toEqual(js)
      const zipped = yield* get(handler, "/assets/main-AAAA.js", { headers: { "accept-encoding": "gzip, br" } })
      expect(zipped.headers.get("content-encoding")).toBe("gzip")
      expect(zipped.headers.get("vary")).toBe("accept-encoding")
      const raw = Buffer.from(yield* Effect.promise(() => zipped.arrayBuffer()))
      // The web handler hands the body over as sent: still compressed.
      expect(raw.length).toBeLessThan(js.length)
      expect(Zlib.gunzipSync(raw)).toEqual(js)
      const refused = yield* get(handler, "/assets/main-AAAA.js", { headers: { "accept-encoding": "gzip;q=0" } })
      expect(refused.headers.get("content-encoding")).toBeNull()
      const head = yield* get(handler, "/assets/main-BBBB.css", { method: "HEAD" })
      expect(head.status).toBe(200)
      expect(head.headers.get("content-type")).toBe("text/css; charset=utf-8")
      expect(head.headers.get("content-length")).toBe("14")
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("answers unknown files 404 and writes 405, and leaves every other path to the API", () =>
    Effect.gen(function*() {
      const dir = builtFolder()
      const handler = handlerOf(yield* Dashboard.load(dir))
      expect((yield* get(handler, "/assets/missing.js")).status).toBe(404)
      const post = yield* get(handler, "/", { method: "POST", body: "x" })
      expect(post.status).toBe(405)
      expect(post.headers.get("allow")).toBe("GET, HEAD")
      const api = yield* get(handler, "/api/apps")
      expect(api.status).toBe(418)
      expect(yield* Effect.promise(() => api.text())).toBe("from the api")
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("without a build: a typed error at load, and a 503 page that says how to build it", () =>
    Effect.gen(function*() {
      const missing = Path.join(Os.tmpdir(), "no-such-dashboard")
      const error = yield* Effect.flip(Dashboard.load(missing))
      expect(error._tag).toBe("DashboardNotBuilt")
      expect(error.message).toBe(`no dashboard in ${missing} (no index.html): run npm run build`)
      const handler = handlerOf(undefined)
      const page = yield* get(handler, "/")
      expect(page.status).toBe(503)
      expect(yield* Effect.promise(() => page.text())).toBe("the dashboard is not built: run npm run build\n")
      expect((yield* get(handler, "/api/apps")).status).toBe(418)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("finds the package's own build, whose page names bundles it has", () =>
    Effect.gen(function*() {
      const directory = yield* Dashboard.defaultDirectory
      expect(directory).toBe(Path.resolve(import.meta.dirname, "..", "..", "dist", "dashboard"))
      const assets = yield* Dashboard.load(directory)
      const page = new TextDecoder().decode(assets.files.get("/")!.body)
      const named = [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!)
      expect(named.length).toBe(3)
      for (const path of named) expect(assets.files.has(path)).toBe(true)
      expect(named.some((p) => /\/assets\/main-[A-Z0-9]+\.js$/.test(p))).toBe(true)
    }).pipe(Effect.provide(NodeContext.layer)))
})
