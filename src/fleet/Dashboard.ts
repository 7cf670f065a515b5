/**
 * The fleet dashboard's files as fleet-server serves them: `index.html` at
 * `/` and the bundles under `/assets/`, read once at start from the folder
 * `npm run build` writes (`dist/dashboard`, shipped in the package) and kept
 * in memory with their gzip forms. The page may load code, styles and
 * images from this server only and talk to nothing but it (a content
 * security policy says so to the browser); the bundles' names carry their
 * content hash, so they are cached for a year and the page is revalidated
 * on every load.
 */
import { FileSystem, type HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Zlib from "node:zlib"

/** The dashboard folder is missing or incomplete (the package was not built). */
export class DashboardNotBuilt extends Schema.TaggedError<DashboardNotBuilt>()("DashboardNotBuilt", {
  directory: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `no dashboard in ${this.directory} (${this.reason}): run npm run build`
  }
}

/**
 * What the page may do, for the browser to enforce: scripts, styles,
 * images and requests from this server only; no frames, no plugins, no
 * form posts, no `<base>`.
 */
export const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

/** One file of the dashboard, ready to send. */
export interface Asset {
  readonly body: Uint8Array
  readonly gzip: Uint8Array | undefined
  readonly contentType: string
  readonly etag: string
  /** Cache for a year (a hashed bundle name) or revalidate on every load (the page). */
  readonly immutable: boolean
}

/** The dashboard's files by URL path (`/`, `/assets/main-<hash>.js`). */
export interface Assets {
  readonly files: ReadonlyMap<string, Asset>
  readonly directory: string
}

const contentTypes: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".woff2": "font/woff2"
}

const assetOf = (body: Uint8Array, name: string, immutable: boolean): Asset => {
  const contentType = contentTypes[Path.extname(name)] ?? "application/octet-stream"
  const compressible = !contentType.startsWith("image/png") && !contentType.startsWith("font/")
  const gzip = compressible && body.byteLength > 512 ? new Uint8Array(Zlib.gzipSync(body, { level: 9 })) : undefined
  const etag = `"${Crypto.createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`
  return { body, gzip: gzip !== undefined && gzip.byteLength < body.byteLength ? gzip : undefined, contentType, etag, immutable }
}

/** Reads the dashboard from a built folder (`index.html` and `assets/`). */
export const load = Effect.fn("Dashboard.load")(function*(directory: string) {
  const fs = yield* FileSystem.FileSystem
  const notBuilt = (reason: string) => new DashboardNotBuilt({ directory, reason })
  const index = yield* fs.readFile(Path.join(directory, "index.html")).pipe(
    Effect.mapError(() => notBuilt("no index.html"))
  )
  const names = yield* fs.readDirectory(Path.join(directory, "assets")).pipe(
    Effect.mapError(() => notBuilt("no assets folder"))
  )
  const files = new Map<string, Asset>([["/", assetOf(index, "index.html", false)]])
  for (const name of names) {
    const body = yield* fs.readFile(Path.join(directory, "assets", name)).pipe(
      Effect.mapError(() => notBuilt(`assets/${name} is unreadable`))
    )
    files.set(`/assets/${name}`, assetOf(body, name, true))
  }
  return { files, directory } satisfies Assets
})

/**
 * The folder the package's build writes the dashboard to: `dist/dashboard`
 * at the root of the installed package, found from this module's own place
 * (`src/fleet`, `dist/fleet` or a bundled `dist/bin`).
 */
export const defaultDirectory = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  let dir = Path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = Path.join(dir, "package.json")
    if (yield* fs.exists(manifest).pipe(Effect.orElseSucceed(() => false))) {
      const text = yield* fs.readFileString(manifest).pipe(Effect.orElseSucceed(() => ""))
      if (/"name"\s*:\s*"effect-omaha"/.test(text)) return Path.join(dir, "dist", "dashboard")
    }
    const parent = Path.dirname(dir)
    if (parent === dir) return Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "dashboard")
    dir = parent
  }
})

const pathOf = (url: string): string => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/** Whether a path is the dashboard's (the page, or under `/assets/`). */
export const isDashboardPath = (path: string): boolean =>
  path === "/" || path === "/index.html" || path.startsWith("/assets/")

const securityHeaders = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer"
}

const pageHeaders = {
  ...securityHeaders,
  "content-security-policy": contentSecurityPolicy,
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin"
}

const plain = (text: string, status: number, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(`${text}\n`, {
    status,
    contentType: "text/plain; charset=utf-8",
    headers: { ...securityHeaders, "cache-control": "no-store", ...headers }
  })

const acceptsGzip = (header: string | undefined): boolean =>
  header !== undefined && header.split(",").some((part) => {
    const [coding = "", ...params] = part.trim().toLowerCase().split(";")
    return (coding === "gzip" || coding === "*") && !params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p))
  })

const respond = (asset: Asset, request: HttpServerRequest.HttpServerRequest) => {
  const headers: Record<string, string> = {
    ...(asset.immutable ? securityHeaders : pageHeaders),
    "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    etag: asset.etag,
    ...(asset.gzip === undefined ? {} : { vary: "accept-encoding" })
  }
  const match = request.headers["if-none-match"]
  if (match !== undefined && match.split(",").some((tag) => tag.trim().replace(/^W\//, "") === asset.etag)) {
    return HttpServerResponse.empty({ status: 304, headers })
  }
  const gzip = asset.gzip !== undefined && acceptsGzip(request.headers["accept-encoding"])
  const body = gzip ? asset.gzip! : asset.body
  const withEncoding = gzip ? { ...headers, "content-encoding": "gzip" } : headers
  if (request.method === "HEAD") {
    return HttpServerResponse.empty({
      status: 200,
      headers: { ...withEncoding, "content-type": asset.contentType, "content-length": String(body.byteLength) }
    })
  }
  return HttpServerResponse.uint8Array(body, { status: 200, contentType: asset.contentType, headers: withEncoding })
}

/**
 * Serves the dashboard in front of `app`: the page at `/` (and
 * `/index.html`), the files under `/assets/`, GET and HEAD only; every
 * other path goes to `app`. Without a built dashboard (`assets` undefined)
 * the page answers 503 with how to build it, and `app` still serves.
 */
export const serve = (assets: Assets | undefined) => <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const path = pathOf(request.url)
    if (!isDashboardPath(path)) return app
    if (request.method !== "GET" && request.method !== "HEAD") {
      return Effect.succeed(plain(`${request.method} is not allowed here`, 405, { allow: "GET, HEAD" }))
    }
    if (assets === undefined) {
      return Effect.succeed(plain("the dashboard is not built: run npm run build", 503))
    }
    const asset = assets.files.get(path === "/index.html" ? "/" : path)
    return Effect.succeed(asset === undefined ? plain("not found", 404) : respond(asset, request))
  })
