/**
 * The Omaha update endpoint, apart from any HTTP server (`makeEndpoint`) and
 * as an HttpApp (`make`), with go-omaha's semantics: POST
 * only, XML content types only, 1 MiB requests at most (refused with 413
 * before the body is read), protocol 3.0 only, every app of a request
 * answered, and the HTTP status taken from the app statuses (200 if any app
 * is ok, else 500 for `error-internal`, else 400). Codebases are made
 * absolute from the request's own address, a configured public base URL, or
 * `X-Forwarded-*` headers from configured trusted proxies only.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Clock, Context, Effect, Exit, type FiberId, FiberRef, LogLevel, Option, Schema } from "effect"
import { isIP } from "node:net"
import { describeEvent } from "../client/ExitCode.js"
import type { AppRequest, Request } from "../protocol/Request.js"
import * as Response from "../protocol/Response.js"
import * as Xml from "../protocol/Xml.js"
import { AppRefused, type Client, type NoUpdate, type Update, UpdateRefused, Updater } from "./Updater.js"

/** How the endpoint is configured. */
export interface Options {
  /** `response@server`; default `effect-omaha`. */
  readonly serverName?: string
  /** An absolute http(s) URL that relative codebases are resolved against, instead of the request's address. */
  readonly publicBaseUrl?: string
  /** Peer addresses whose `X-Forwarded-Proto` / `X-Forwarded-Host` headers are believed. */
  readonly trustedProxies?: ReadonlyArray<string>
  /** Largest request body in bytes; default 1 MiB. */
  readonly maxBodyBytes?: number
  /** Told of each request the endpoint answers from its body: the HTTP status and the seconds from the body read to the reply. */
  readonly observe?: (status: number, seconds: number) => void
}

/** A public base URL that is not an absolute http(s) URL. */
export class InvalidBaseUrl extends Schema.TaggedError<InvalidBaseUrl>()("InvalidBaseUrl", { url: Schema.String }) {
  override get message(): string {
    return `invalid base URL ${JSON.stringify(this.url)}: give an absolute http:// or https:// URL`
  }
}

/** A base URL checked to be absolute http(s), ending in "/" so relative codebases go below it. */
export const parseBaseUrl = (url: string): Effect.Effect<string, InvalidBaseUrl> => {
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.host === "") {
    return Effect.fail(new InvalidBaseUrl({ url }))
  }
  if (!parsed.pathname.endsWith("/")) parsed.pathname += "/"
  parsed.search = ""
  parsed.hash = ""
  return Effect.succeed(parsed.href)
}

/** The largest request body go-omaha accepts, and our default. */
export const defaultMaxBodyBytes = 1024 * 1024

/** The content type of every response document. */
export const xmlContentType = "text/xml; charset=utf-8"

// `text/xml` or `application/xml`, with at most a UTF-8 charset among the parameters.
const acceptableContentType = (header: string | undefined): boolean => {
  if (header === undefined || header.trim() === "") return true
  const [type, ...params] = header.split(";").map((part) => part.trim().toLowerCase())
  if (type !== "text/xml" && type !== "application/xml") return false
  return params.every((param) => {
    const [name, value = ""] = param.split("=", 2).map((s) => s.trim())
    return name !== "charset" || value.replace(/^"(.*)"$/, "$1") === "utf-8"
  })
}

const hostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

const firstValue = (header: string | undefined): string | undefined => header?.split(",", 1)[0]?.trim()

/** Request headers by lower-case name, as Node and @effect/platform both give them. */
export type Headers = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name]
  return typeof value === "string" ? value : value?.[0]
}

/** One HTTP exchange at the endpoint, whatever server carries it. */
export interface Exchange {
  readonly method: string
  readonly headers: Headers
  /** The peer's IP address, when known. */
  readonly remoteAddress: string | undefined
  /** True when the connection is TLS. */
  readonly encrypted: boolean
}

/** An answer of the endpoint: status, headers and a text body. */
export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

// The scheme and host clients used to reach us, as an origin.
const requestOrigin = (exchange: Exchange, trusted: ReadonlySet<string>): string | undefined => {
  let scheme = exchange.encrypted ? "https" : "http"
  let host = header(exchange.headers, "host")
  const peer = exchange.remoteAddress
  if (peer !== undefined && trusted.has(peer)) {
    const proto = firstValue(header(exchange.headers, "x-forwarded-proto"))?.toLowerCase()
    if (proto === "http" || proto === "https") scheme = proto
    const forwardedHost = firstValue(header(exchange.headers, "x-forwarded-host"))
    if (forwardedHost !== undefined && hostPattern.test(forwardedHost)) host = forwardedHost
  }
  return host !== undefined && hostPattern.test(host) ? `${scheme}://${host}/` : undefined
}

/**
 * The client's address: the peer's, or, when the peer is a trusted proxy, the
 * nearest `X-Forwarded-For` address that is not itself a trusted proxy
 * (read from the right, since each proxy appends the address it saw).
 */
export const clientAddress = (exchange: Exchange, trusted: ReadonlySet<string>): string | undefined => {
  const peer = exchange.remoteAddress
  if (peer === undefined || !trusted.has(peer)) return peer
  const forwarded = header(exchange.headers, "x-forwarded-for")
  if (forwarded === undefined) return peer
  const hops = forwarded.split(",")
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim()
    if (isIP(hop) === 0) return peer
    if (!trusted.has(hop)) return hop
  }
  return peer
}

// Responses are assembled from validated parts (decoded requests, the
// Updater's instances, URLs from the URL parser), so construction skips the
// second validation, which re-derives each class's schema and cost about a
// tenth of a request.
const validated = true

const xmlHeaders: Readonly<Record<string, string>> = { "content-type": xmlContentType }

// Encoded offers kept per Update object: one per origin (and multi-step flag), a few at most.
const maxOriginsPerUpdate = 16

/** An update check's answer, and how the log says it. */
interface Offer {
  readonly response: Response.UpdateResponse
  readonly answer: string
}

const internalApp = new AppRefused({ status: "error-internal", reason: "the updater failed" })
const internalUpdate = new UpdateRefused({ status: "error-internal", reason: "the updater failed" })

const plain = (status: number, text: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { ...headers, "content-type": "text/plain; charset=utf-8" },
  body: text + "\n"
})

/**
 * The endpoint's record of one request, for its log line: the HTTP status,
 * the protocol, each app (or why none was served) and what reading the
 * request gave up.
 */
export interface RequestRecord {
  readonly status: number
  readonly protocol: string
  readonly apps: ReadonlyArray<AppLog> | string
  readonly warnings?: ReadonlyArray<string>
}

/**
 * Where the endpoint writes its one line per request, for a program that
 * owns its log output (serve-package writes the line itself, as logfmt or
 * JSON). Without it the line goes through Effect's logger:
 * `Effect.logInfo("omaha")` with the record's fields as annotations. Either
 * way the line is written only when the minimum log level lets Info through.
 */
export class RequestLog extends Context.Tag("effect-omaha/server/RequestLog")<RequestLog, {
  readonly write: (record: RequestRecord, fiberId: FiberId.FiberId, date: Date) => void
}>() {}

/** What the handler answered one app, for the request's log line. */
export interface AppLog {
  readonly appid: string
  readonly version: string | undefined
  readonly track: string | undefined
  readonly machineid: string | undefined
  readonly answer: string
  readonly events: ReadonlyArray<string>
}

/** The HTTP status for a response: 200 if any app is ok, else 500 when the first error is internal, else 400. */
export const httpStatusOf = (apps: ReadonlyArray<Response.AppResponse>): number => {
  if (apps.some((app) => app.status === "ok")) return 200
  return apps[0]?.status === "error-internal" ? 500 : 400
}

/** The Omaha endpoint (see the module header), served by whatever `Updater` is provided. */
export const makeEndpoint = (options: Options = {}): Effect.Effect<Endpoint, InvalidBaseUrl, Updater> =>
  Effect.gen(function*() {
    const updater = yield* Updater
    const requestLog = yield* Effect.serviceOption(RequestLog)
    const serverName = options.serverName ?? "effect-omaha"
    const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes
    const limits: Xml.Limits = { ...Xml.defaultLimits, maxBytes: maxBodyBytes }
    const trusted: ReadonlySet<string> = new Set(options.trustedProxies ?? [])
    const publicBase = options.publicBaseUrl === undefined ? undefined : yield* parseBaseUrl(options.publicBaseUrl)

    // What the backend answered, as the response's update check and the log's
    // answer. Answers that repeat are the same instances every time, so their
    // encoding is written once (`Xml.keepEncoding`): noupdate, each error
    // status, and each offered update for a given origin. The offers are
    // keyed by the `Update` object itself, so a backend that decides anew
    // (another object) is never answered from a stale encoding.
    const noUpdate = Xml.keepEncoding(new Response.UpdateResponse({ status: "noupdate" }, validated))
    const refusals = new Map<Response.UpdateResponse["status"], Response.UpdateResponse>()
    const refusedWith = (status: Response.UpdateResponse["status"]) => {
      let response = refusals.get(status)
      if (response === undefined) {
        response = Xml.keepEncoding(new Response.UpdateResponse({ status }, validated))
        refusals.set(status, response)
      }
      return response
    }
    const offers = new WeakMap<Update, Map<string, Offer>>()
    const offer = (update: Update, origin: string, multi: boolean): Offer => {
      const key = multi ? "+" + origin : origin
      let byOrigin = offers.get(update)
      const known = byOrigin?.get(key)
      if (known !== undefined) return known
      const made = makeOffer(update, origin, multi)
      if (byOrigin === undefined) offers.set(update, byOrigin = new Map())
      // Origins come from Host headers: keep a few, not one per spelling a client invents.
      if (byOrigin.size >= maxOriginsPerUpdate) byOrigin.clear()
      byOrigin.set(key, made)
      return made
    }
    const makeOffer = (update: Update, origin: string, multi: boolean): Offer => {
      const manifests = multi ? update.manifests : [update.manifests[0]]
      const urls = update.codebases.flatMap((codebase) =>
        URL.canParse(codebase, origin) ? [new Response.Url({ codebase: new URL(codebase, origin).href }, validated)] : []
      )
      if (urls.length === 0) {
        return {
          response: refusedWith("error-internal"),
          answer: `error-internal: the updater gave no usable codebase (${update.codebases.join(", ")})`
        }
      }
      return {
        response: Xml.keepEncoding(
          new Response.UpdateResponse({
            status: "ok",
            urls,
            manifests,
            ...(update.pollInterval === undefined ? {} : { pollInterval: update.pollInterval })
          }, validated)
        ),
        answer: `update to ${manifests.map((m) => m.version).join(", ")}`
      }
    }
    Xml.keepEncoding(Response.ok)

    // One day start per second, shared by the requests of that second.
    let dayStartSecond = Number.NaN
    let dayStart: Response.DayStart = Response.dayStartAt(new Date(0))
    const dayStartAt = (millis: number): Response.DayStart => {
      const second = Math.floor(millis / 1000)
      if (second !== dayStartSecond) {
        dayStartSecond = second
        dayStart = Xml.keepEncoding(Response.dayStartAt(new Date(millis)))
      }
      return dayStart
    }

    // Each app in one pass over the backend's calls, in the request's fiber:
    // checkApp, then its events and ping, then checkUpdate. A backend's defect
    // is logged and answered as error-internal; its interruption ends the request.
    const serveApp = function*(request: Request, app: AppRequest, client: Client, origin: string) {
      const events = app.events.map(describeEvent)
      const log = (answer: string): AppLog => ({
        appid: app.appId,
        version: app.version,
        track: app.track,
        machineid: app.machineId,
        answer,
        events
      })
      const checked = yield* Effect.exit(updater.checkApp(request, app, client))
      if (Exit.isFailure(checked)) {
        const refusal = Cause.failureOption(checked.cause)
        let refused: AppRefused
        if (Option.isSome(refusal)) {
          refused = refusal.value
        } else if (Cause.isInterruptedOnly(checked.cause)) {
          return yield* Effect.failCause(checked.cause)
        } else {
          yield* Effect.logError("Updater.checkApp failed", Cause.squash(checked.cause))
          refused = internalApp
        }
        return {
          response: new Response.AppResponse({ appId: app.appId, status: refused.status }, validated),
          log: log(refused.message)
        }
      }
      // Events and the ping first: the check is decided on what they report.
      for (const event of app.events) {
        const recorded = yield* Effect.exit(updater.event(request, app, event, client))
        if (Exit.isFailure(recorded)) yield* Effect.logError("Updater.event failed", recorded.cause)
      }
      if (app.ping !== undefined) {
        const recorded = yield* Effect.exit(updater.ping(request, app, client))
        if (Exit.isFailure(recorded)) yield* Effect.logError("Updater.ping failed", recorded.cause)
      }
      let update: Offer | undefined
      if (app.updateCheck !== undefined) {
        const outcome = yield* Effect.exit(updater.checkUpdate(request, app, client))
        if (Exit.isSuccess(outcome)) {
          const result: Update | NoUpdate = outcome.value
          update = result._tag === "NoUpdate"
            ? { response: noUpdate, answer: result.reason === undefined ? "noupdate" : `noupdate: ${result.reason}` }
            : offer(result, origin, app.multiManifestOk === true)
        } else {
          const refusal = Cause.failureOption(outcome.cause)
          let refused: UpdateRefused
          if (Option.isSome(refusal)) {
            refused = refusal.value
          } else if (Cause.isInterruptedOnly(outcome.cause)) {
            return yield* Effect.failCause(outcome.cause)
          } else {
            yield* Effect.logError("Updater.checkUpdate failed", Cause.squash(outcome.cause))
            refused = internalUpdate
          }
          update = { response: refusedWith(refused.status), answer: refused.message }
        }
      }
      return {
        response: new Response.AppResponse({
          appId: app.appId,
          status: "ok",
          ...(update === undefined ? {} : { updateCheck: update.response }),
          ...(app.ping === undefined ? {} : { ping: Response.ok }),
          events: app.events.length === 0 ? [] : app.events.map(() => Response.ok)
        }, validated),
        log: log(update === undefined ? "ok" : update.answer)
      }
    }

    // Every app gets `error-unsupportedProtocol` and nothing is recorded.
    const unsupportedProtocol = (request: Request) =>
      request.apps.map((app) =>
        new Response.AppResponse({
          appId: app.appId,
          status: "ok",
          ...(app.updateCheck === undefined ? {} : {
            updateCheck: new Response.UpdateResponse({ status: "error-unsupportedProtocol" }, validated)
          })
        }, validated)
      )

    const refuse = (status: number, reason: string, headers: Record<string, string> = {}) =>
      Effect.as(Effect.logWarning(`refused: ${reason}`).pipe(Effect.annotateLogs("status", status)), plain(status, reason, headers))

    const screen = (exchange: Exchange): Effect.Effect<Reply> | undefined => {
      if (exchange.method !== "POST") {
        return refuse(405, `method ${exchange.method} not allowed: the update endpoint takes POST`, { allow: "POST" })
      }
      const contentType = header(exchange.headers, "content-type")
      if (!acceptableContentType(contentType)) {
        return refuse(400, `unsupported content type ${JSON.stringify(contentType)}: send text/xml in UTF-8`)
      }
      const declared = header(exchange.headers, "content-length")
      if (declared !== undefined && !(/^\d+$/.test(declared) && Number(declared) <= maxBodyBytes)) {
        return /^\d+$/.test(declared)
          ? refuse(413, `request body of ${declared} bytes is over the ${maxBodyBytes}-byte limit`, { connection: "close" })
          : refuse(400, "invalid Content-Length", { connection: "close" })
      }
      return undefined
    }

    const respond = (exchange: Exchange, request: Request, warnings: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const base = publicBase ?? requestOrigin(exchange, trusted)
        if (base === undefined) {
          return yield* refuse(400, "missing or invalid Host header: cannot tell clients where the packages are")
        }
        const client: Client = { address: clientAddress(exchange, trusted) }
        let apps: Array<Response.AppResponse>
        let logged: ReadonlyArray<AppLog> | string
        let status: number
        if (request.protocol === "3.0") {
          apps = []
          const logs: Array<AppLog> = []
          for (const app of request.apps) {
            const served = yield* serveApp(request, app, client, base)
            apps.push(served.response)
            logs.push(served.log)
          }
          logged = logs
          status = httpStatusOf(apps)
        } else {
          apps = unsupportedProtocol(request)
          logged = "unsupported protocol"
          status = 400
        }
        const now = yield* Clock.currentTimeMillis
        const response = new Response.Response(
          { protocol: "3.0", server: serverName, dayStart: dayStartAt(now), apps },
          validated
        )
        const xml = yield* Xml.encodeResponse(response)
        const record: RequestRecord = warnings.length === 0
          ? { status, protocol: request.protocol, apps: logged }
          : { status, protocol: request.protocol, apps: logged, warnings }
        if (Option.isNone(requestLog)) {
          yield* Effect.annotateLogs(Effect.logInfo("omaha"), record as unknown as Record<string, unknown>)
        } else if (LogLevel.greaterThanEqual(LogLevel.Info, yield* FiberRef.get(FiberRef.currentMinimumLogLevel))) {
          requestLog.value.write(record, yield* Effect.fiberId, new Date(now))
        }
        return { status, headers: xmlHeaders, body: xml }
      })

    const answer = (exchange: Exchange, body: Uint8Array): Effect.Effect<Reply> =>
      Xml.decodeRequestWithWarnings(body, limits).pipe(
        Effect.matchEffect({
          onFailure: (error) => refuse(400, `bad Omaha request: ${error.message}`),
          onSuccess: ({ value, warnings }) => respond(exchange, value, warnings)
        }),
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logError("omaha request failed", cause), plain(500, "internal server error"))
        )
      )

    const observe = options.observe
    const timed = observe === undefined ? answer : (exchange: Exchange, body: Uint8Array) =>
      Effect.flatMap(Clock.currentTimeNanos, (start) =>
        Effect.tap(answer(exchange, body), (reply) =>
          Effect.map(Clock.currentTimeNanos, (end) => observe(reply.status, Number(end - start) / 1e9))))

    const endpoint: Endpoint = {
      maxBodyBytes,
      screen,
      answer: timed,
      bodyTooLarge: refuse(413, `request body could not be read within the ${maxBodyBytes}-byte limit`, {
        connection: "close"
      })
    }
    return endpoint
  })

/**
 * The endpoint apart from any HTTP server: a server screens each exchange
 * (method and headers), reads at most `maxBodyBytes` of body (answering
 * `bodyTooLarge` past that), and answers with the body read.
 */
export interface Endpoint {
  readonly maxBodyBytes: number
  /** The refusal owed to an exchange from its method and headers alone, before any body is read. */
  readonly screen: (exchange: Exchange) => Effect.Effect<Reply> | undefined
  /** The answer to an exchange whose body was read whole. */
  readonly answer: (exchange: Exchange, body: Uint8Array) => Effect.Effect<Reply>
  /** The answer when the body runs past `maxBodyBytes`. */
  readonly bodyTooLarge: Effect.Effect<Reply>
}

const toServerResponse = (reply: Reply) => {
  const { "content-type": contentType, ...headers } = reply.headers
  return HttpServerResponse.text(reply.body, {
    status: reply.status,
    headers,
    ...(contentType === undefined ? {} : { contentType })
  })
}

/** An endpoint as an `HttpApp`, for an @effect/platform router. */
export const toHttpApp = (endpoint: Endpoint) =>
  Effect.gen(function*() {
    const http = yield* HttpServerRequest.HttpServerRequest
    const source = http.source as { readonly socket?: { readonly encrypted?: boolean } }
    const exchange: Exchange = {
      method: http.method,
      headers: http.headers,
      remoteAddress: Option.getOrUndefined(http.remoteAddress),
      encrypted: source.socket?.encrypted === true
    }
    const screened = endpoint.screen(exchange)
    if (screened !== undefined) return toServerResponse(yield* screened)
    const body = yield* http.arrayBuffer.pipe(
      HttpServerRequest.withMaxBodySize(Option.some(endpoint.maxBodyBytes)),
      Effect.either
    )
    return toServerResponse(
      yield* (body._tag === "Left" ? endpoint.bodyTooLarge : endpoint.answer(exchange, new Uint8Array(body.right)))
    )
  })

/** The Omaha endpoint (see the module header) as an `HttpApp`, served by whatever `Updater` is provided. */
export const make = (options: Options = {}) => Effect.map(makeEndpoint(options), toHttpApp)
