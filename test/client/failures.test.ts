// Every failure a client must survive, staged by a real server on 127.0.0.1:
// the typed error, its exit code, the attempts made, and the error event the
// server received (or, for a well-formed refusal, did not).
import { describe, expect, it } from "@effect/vitest"
import type { HttpClient } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Either, Layer, Logger } from "effect"
import { AppClient, OmahaClient, Request, Response as OmahaResponse } from "effect-omaha"
import {
  answerApps,
  clientLayer,
  endless,
  isCheck,
  onChecks,
  refusedUrl,
  reply,
  stall,
  startServer,
  type TestServer,
  xml
} from "./server.js"
import { readFixture } from "../fixtures.js"

const appId = "{5ca607f8-61b5-4692-90ce-30380ba05a98}"

/** One update check (then a flush of the event queue), and the log lines written meanwhile. */
const checkOnce = (
  url: string,
  options: Partial<OmahaClient.Options> = {},
  http: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layer
) => {
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => {
    logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return Effect.gen(function*() {
    const omaha = yield* OmahaClient.OmahaClient
    const app = yield* AppClient.make({ appId, version: "1.0.0", track: "stable" })
    const result = yield* Effect.either(app.updateCheck())
    yield* omaha.flush
    return { result, logs }
  }).pipe(
    Effect.provide(clientLayer(url, options, http)),
    Effect.provide(Logger.replace(Logger.defaultLogger, logger))
  )
}

const failure = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left
}

/** The single error event the server received, as [type, result, errorcode]. */
const errorEvents = (server: TestServer) =>
  server.events()
    .filter((event) => !(event.eventType === 3 && event.eventResult === 2))
    .map((event) => [event.eventType, event.eventResult, event.errorCode])

describe("OmahaClient failures against a loopback server", () => {
  it.scopedLive("connection refused: NetworkError after 7 attempts, each wait logged, code 2; the error event tried once", () =>
    Effect.gen(function*() {
      const url = yield* refusedUrl
      const { logs, result } = yield* checkOnce(url)
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.NetworkError)
      expect(error._tag === "NetworkError" && error.attempts).toBe(7)
      expect(error.message).toContain("ECONNREFUSED")
      expect(AppClient.exitCodeOf(error)).toBe(2)
      // The automatic error event went to the same dead server once: the check had spent the retries.
      expect(logs).toEqual([
        ...[2, 3, 4, 5, 6, 7].map((n) =>
          expect.stringMatching(new RegExp(`^Omaha server unreachable, retrying in [0-9.]+ s \\(attempt ${n} of 7\\)$`))
        ),
        expect.stringMatching(
          /^Omaha event \(update complete: error, OmahaRequestError \(2\)\) not delivered: .*failed after 1 attempt\(s\).*ECONNREFUSED/
        )
      ])
    }))

  it.scopedLive("timeout: RequestTimeout after 7 attempts, code 2, then error event 3/0/2", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => stall))
      const { result } = yield* checkOnce(server.url, { timeout: "100 millis" })
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.RequestTimeout)
      expect(error).toMatchObject({ attempts: 7, timeoutMillis: 100 })
      expect(AppClient.exitCodeOf(error)).toBe(2)
      expect(server.checks().length).toBe(7)
      expect(errorEvents(server)).toEqual([[3, 0, 2]])
    }))

  it.scopedLive("HTTP 500: HttpStatusError after 7 attempts, code 2500, then error event 3/0/2500", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply("internal error", 500, { "content-type": "text/plain" })))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.HttpStatusError)
      expect(error).toMatchObject({ status: 500, attempts: 7 })
      expect(AppClient.exitCodeOf(error)).toBe(2500)
      expect(server.checks().length).toBe(7)
      expect(errorEvents(server)).toEqual([[3, 0, 2500]])
    }))

  it.scopedLive("HTTP 503 then success: retried once, the answer is used, no error event", () =>
    Effect.gen(function*() {
      const server = yield* startServer(
        onChecks((received, index) =>
          index === 0 ? reply("busy", 503, { "retry-after": "0" }) : answerApps(received.request)
        )
      )
      const { result } = yield* checkOnce(server.url)
      expect(Either.getOrThrow(result)).toBeInstanceOf(AppClient.NoUpdate)
      expect(server.checks().length).toBe(2)
      // The same request both times: same request id, so a server can tell it is a retry.
      expect(server.checks()[1]!.request!.requestId).toBe(server.checks()[0]!.request!.requestId)
      expect(errorEvents(server)).toEqual([])
    }))

  it.scopedLive("HTTP 503 with a Retry-After over the limit: not retried, the wait is on the error, code 2503", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply("busy", 503, { "x-retry-after": "600" })))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "HttpStatusError", status: 503, attempts: 1, retryAfterSeconds: 600 })
      expect(AppClient.exitCodeOf(error)).toBe(2503)
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 2503]])
    }))

  it.scopedLive("HTTP 404: not retried, code 2404", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply("not found", 404)))
      const { result } = yield* checkOnce(server.url)
      expect(failure(result)).toMatchObject({ _tag: "HttpStatusError", status: 404, attempts: 1 })
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 2404]])
    }))

  it.scopedLive("empty body: EmptyResponse, code 30, not retried, error event 3/0/30", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply(" \n")))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.EmptyResponse)
      expect(AppClient.exitCodeOf(error)).toBe(30)
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 30]])
    }))

  it.scopedLive("malformed XML: MalformedResponse, code 31, not retried, error event 3/0/31", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply(`<?xml version="1.0"?><response protocol="3.0"><app`)))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.MalformedResponse)
      expect(error.message).toMatch(/malformed XML at line 1/)
      expect(AppClient.exitCodeOf(error)).toBe(31)
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 31]])
    }))

  it.scopedLive("oversized body with a length: ResponseTooLarge without reading it, code 34, error event 3/0/34", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => reply(new Uint8Array(1024 * 1024 + 1).fill(0x3c))))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "ResponseTooLarge", limit: 1024 * 1024 })
      expect(AppClient.exitCodeOf(error)).toBe(34)
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
    }))

  it.scopedLive("endless body without a length: reading stops past 1 MiB and the connection is closed", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => endless))
      const { result } = yield* checkOnce(server.url)
      expect(failure(result)).toMatchObject({ _tag: "ResponseTooLarge", limit: 1024 * 1024 })
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
      // The server saw the client go away long before its own 256 MiB stop; what
      // it wrote beyond 1 MiB sat in socket buffers, never read.
      expect(server.endlessClosedAfter.length).toBe(1)
      expect(server.endlessClosedAfter[0]).toBeLessThan(64 * 1024 * 1024)
    }))

  it.scopedLive("app missing from the response: ResponseInvalid, code 34, error event 3/0/34", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() =>
        reply(xml(OmahaResponse.make({
          apps: [new OmahaResponse.AppResponse({ appId: "{another-app}", status: "ok" })]
        })))
      ))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "ResponseInvalid", appId })
      expect(error.message).toContain(`the response has no app ${appId}`)
      expect(AppClient.exitCodeOf(error)).toBe(34)
      expect(server.checks().length).toBe(1)
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
    }))

  it.scopedLive("app status error: AppStatusError, code 34, and no error event (the server chose it)", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) =>
        reply(
          xml(OmahaResponse.make({
            apps: (received.request?.apps ?? []).map((app) =>
              new OmahaResponse.AppResponse({ appId: app.appId, status: "error-unknownApplication" })
            )
          })),
          400
        )
      ))
      // go-omaha's semantics: a 400 with a well-formed document is the HTTP
      // error; the app status is read when the server answers 200.
      const at400 = failure((yield* checkOnce(server.url)).result)
      expect(at400).toMatchObject({ _tag: "HttpStatusError", status: 400 })

      const server200 = yield* startServer(onChecks((received) =>
        reply(xml(OmahaResponse.make({
          apps: (received.request?.apps ?? []).map((app) =>
            new OmahaResponse.AppResponse({ appId: app.appId, status: "error-unknownApplication" })
          )
        })))
      ))
      const { result } = yield* checkOnce(server200.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "AppStatusError", appId, status: "error-unknownApplication" })
      expect(AppClient.exitCodeOf(error)).toBe(34)
      expect(server200.checks().length).toBe(1)
      expect(server200.received.length).toBe(1)
      expect(errorEvents(server200)).toEqual([])
    }))

  it.scopedLive("update check status error: UpdateCheckError, code 34, no error event", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) =>
        answerApps(received.request, () => new OmahaResponse.UpdateResponse({ status: "error-osnotsupported" }))
      ))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "UpdateCheckError", appId, status: "error-osnotsupported" })
      expect(AppClient.exitCodeOf(error)).toBe(34)
      expect(server.received.length).toBe(1)
    }))

  it.scopedLive("an ok update check without a URL or manifest: ResponseInvalid, code 34, error event", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) =>
        answerApps(received.request, () => new OmahaResponse.UpdateResponse({ status: "ok" }))
      ))
      const { result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "ResponseInvalid", reason: "the update has no manifest" })
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
    }))

  it.scopedLive("a setting XML cannot carry: InvalidRequest, code 2, nothing sent", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) => answerApps(received.request)))
      const result = yield* Effect.gen(function*() {
        const omaha = yield* OmahaClient.OmahaClient
        const app = yield* AppClient.make({ appId, version: "1.0.0", machineAlias: "bad\u0001alias" })
        const result = yield* Effect.either(app.updateCheck())
        yield* omaha.flush
        return result
      }).pipe(Effect.provide(clientLayer(server.url)))
      const error = failure(result)
      expect(error).toBeInstanceOf(OmahaClient.InvalidRequest)
      expect(error.message).toContain("app[1]/machineAlias")
      expect(AppClient.exitCodeOf(error)).toBe(2)
      expect(server.received.length).toBe(0)
    }))

  it.scopedLive("go-omaha's update response: UpdateAvailable, no warning, no error event", () =>
    Effect.gen(function*() {
      const answer = readFixture("go-omaha/update-response.xml").replaceAll("{e96281a6-d1af-4bde-9a0a-97b76e56dc57}", appId)
      const server = yield* startServer(onChecks(() => reply(answer)))
      const { logs, result } = yield* checkOnce(server.url)
      expect(Either.getOrThrow(result)).toMatchObject({ _tag: "UpdateAvailable", manifest: { version: "3815.2.1" } })
      expect(logs).toEqual([])
      expect(errorEvents(server)).toEqual([])
    }))

  it.scopedLive("an update check without a status: read as absent with a warning, ResponseInvalid, code 34, error event", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() =>
        reply(`<response protocol="3.0"><app appid="${appId}" status="ok"><updatecheck></updatecheck></app></response>`)
      ))
      const { logs, result } = yield* checkOnce(server.url)
      const error = failure(result)
      expect(error).toMatchObject({ _tag: "ResponseInvalid", reason: "the response has no updatecheck" })
      expect(AppClient.exitCodeOf(error)).toBe(34)
      expect(logs).toEqual([
        `Omaha server ${server.url}/v1/update/: response/app[1]/updatecheck/status: is missing; <updatecheck> skipped`
      ])
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
    }))

  it.scopedLive("closing the client without a flush still delivers the error event, retries included", () =>
    Effect.gen(function*() {
      // Checks get a malformed answer; the error event's first attempt a 503.
      let eventAttempts = 0
      const server = yield* startServer((received) => {
        if (isCheck(received)) return reply(`<response`)
        return ++eventAttempts === 1 ? reply("busy", 503) : answerApps(received.request)
      })
      const result = yield* Effect.gen(function*() {
        const app = yield* AppClient.make({ appId, version: "1.0.0" })
        return yield* Effect.either(app.updateCheck())
      }).pipe(Effect.provide(clientLayer(server.url, { retry: { baseDelay: "200 millis" } })))
      // The client's scope is closed and nothing flushed: the event went out anyway.
      expect(failure(result)).toBeInstanceOf(OmahaClient.MalformedResponse)
      expect(eventAttempts).toBe(2)
      expect(errorEvents(server)).toEqual([[3, 0, 31], [3, 0, 31]])
    }))

  it.scopedLive("closing the client waits at most closeTimeout for queued events, then logs them as dropped", () =>
    Effect.gen(function*() {
      const server = yield* startServer((received) => (isCheck(received) ? reply(`<response`) : stall))
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
      const started = Date.now()
      yield* Effect.gen(function*() {
        const app = yield* AppClient.make({ appId, version: "1.0.0" })
        yield* Effect.either(app.updateCheck())
        yield* Effect.promise(() => server.receivedCount(2))
      }).pipe(
        Effect.provide(clientLayer(server.url, { closeTimeout: "300 millis" })),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      const elapsed = Date.now() - started
      expect(elapsed).toBeGreaterThanOrEqual(300)
      expect(elapsed).toBeLessThan(3000)
      expect(logs).toEqual([
        "Omaha event (update complete: error, OmahaRequestXMLParseError (31)) dropped: " +
        "not delivered within 300ms of closing the client"
      ])
    }))

  it.scopedLive("the wire: POST to /v1/update/ with Content-Type text/xml; charset=utf-8", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks((received) => answerApps(received.request)))
      yield* checkOnce(server.url)
      const [first] = server.received
      expect(first).toMatchObject({ method: "POST", path: "/v1/update/" })
      expect(first!.headers["content-type"]).toBe("text/xml; charset=utf-8")
      expect(first!.body.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0"`)).toBe(true)
      expect(first!.request).toBeInstanceOf(Request.Request)
    }))
})

// The timeout and the size cap hold on undici as well as on node:http (the
// client only needs an HttpClient); the README recommends node:http.
describe("OmahaClient on NodeHttpClient.layerUndici", () => {
  it.scopedLive("a stalled server times out", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => stall))
      const { result } = yield* checkOnce(server.url, { timeout: "100 millis", retry: { tries: 2 } }, NodeHttpClient.layerUndici)
      expect(failure(result)).toMatchObject({ _tag: "RequestTimeout", attempts: 2 })
      expect(server.checks().length).toBe(2)
      expect(errorEvents(server)).toEqual([[3, 0, 2]])
    }))

  it.scopedLive("an endless body is cut off past 1 MiB", () =>
    Effect.gen(function*() {
      const server = yield* startServer(onChecks(() => endless))
      const { result } = yield* checkOnce(server.url, {}, NodeHttpClient.layerUndici)
      expect(failure(result)).toMatchObject({ _tag: "ResponseTooLarge" })
      expect(server.endlessClosedAfter.length).toBe(1)
      expect(server.endlessClosedAfter[0]).toBeLessThan(64 * 1024 * 1024)
      expect(errorEvents(server)).toEqual([[3, 0, 34]])
    }))
})
