/**
 * The connection to one Omaha server: where it is, who this client is (user
 * id, session id, client version), and one request/response round trip with
 * update_engine's robustness: a timeout per attempt, a response size cap that
 * stops reading, retries with exponential backoff for transient failures only
 * (honouring `Retry-After`), and typed errors that map to update_engine exit
 * codes. It also runs the ordered, bounded background queue that events go
 * through, and keeps app ids unique. Apps talk through it with `AppClient`.
 */
import { Headers, HttpClient, HttpClientRequest, type HttpClientError, type HttpClientResponse } from "@effect/platform"
import type { FileSystem } from "@effect/platform"
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Option,
  Queue,
  Random,
  Ref,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import { packageVersion } from "../internal/version.js"
import { AppStatus } from "../protocol/Codes.js"
import * as Request from "../protocol/Request.js"
import * as Response from "../protocol/Response.js"
import * as Xml from "../protocol/Xml.js"
import { describeEvent } from "./ExitCode.js"
import * as Machine from "./Machine.js"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/** A server URL that is not an absolute http(s) URL with a host. */
export class InvalidServerUrl extends Schema.TaggedError<InvalidServerUrl>()("InvalidServerUrl", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid Omaha server URL ${JSON.stringify(this.url)}: ${this.reason}`
  }
}

/** A client configured without a user id. */
export class MissingUserId extends Schema.TaggedError<MissingUserId>()("MissingUserId", {}) {
  override get message(): string {
    return "an Omaha client needs a user id: a persistent id unique to this client"
  }
}

/** A second app client for an app id this Omaha client already has one for. */
export class DuplicateAppId extends Schema.TaggedError<DuplicateAppId>()("DuplicateAppId", {
  appId: Schema.String
}) {
  override get message(): string {
    return `app ${this.appId} already has an app client on this Omaha client`
  }
}

/** A request that cannot be written as XML (a setting holds a character XML cannot carry). */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot encode the Omaha request: ${this.reason}`
  }
}

/** The server could not be reached, or the connection failed before the response was read. */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  url: Schema.String,
  attempts: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Omaha request to ${this.url} failed after ${this.attempts} attempt(s): ${this.reason}`
  }
}

/** An attempt took longer than the timeout (the last of `attempts`). */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  url: Schema.String,
  attempts: Schema.Number,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `Omaha request to ${this.url} timed out after ${this.timeoutMillis / 1000} s (${this.attempts} attempt(s))`
  }
}

/** The server answered with a status other than 2xx. */
export class HttpStatusError extends Schema.TaggedError<HttpStatusError>()("HttpStatusError", {
  url: Schema.String,
  status: Schema.Number,
  attempts: Schema.Number,
  /** The wait the server asked for with `Retry-After` / `X-Retry-After`, in seconds. */
  retryAfterSeconds: Schema.optionalWith(Schema.Number, { exact: true })
}) {
  override get message(): string {
    return `Omaha server ${this.url} answered HTTP ${this.status} (${this.attempts} attempt(s))`
  }
}

/** The server answered 2xx with an empty body. */
export class EmptyResponse extends Schema.TaggedError<EmptyResponse>()("EmptyResponse", {
  url: Schema.String
}) {
  override get message(): string {
    return `Omaha server ${this.url} sent an empty response`
  }
}

/** The body is not a well-formed Omaha response document. */
export class MalformedResponse extends Schema.TaggedError<MalformedResponse>()("MalformedResponse", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Omaha server ${this.url} sent a malformed response: ${this.reason}`
  }
}

/** The body is larger than the cap; reading stopped there. */
export class ResponseTooLarge extends Schema.TaggedError<ResponseTooLarge>()("ResponseTooLarge", {
  url: Schema.String,
  limit: Schema.Number
}) {
  override get message(): string {
    return `Omaha server ${this.url} sent a response over the ${this.limit}-byte limit`
  }
}

/** A well-formed response that does not answer what was asked (no app, no update check, no URL). */
export class ResponseInvalid extends Schema.TaggedError<ResponseInvalid>()("ResponseInvalid", {
  url: Schema.String,
  appId: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid Omaha response from ${this.url} for app ${this.appId}: ${this.reason}`
  }
}

/** The server refused the app with a non-ok `app@status`. */
export class AppStatusError extends Schema.TaggedError<AppStatusError>()("AppStatusError", {
  url: Schema.String,
  appId: Schema.String,
  status: AppStatus
}) {
  override get message(): string {
    return `Omaha server ${this.url} refused app ${this.appId}: ${this.status}`
  }
}

/** What can go wrong in one round trip. */
export type RequestError =
  | InvalidRequest
  | NetworkError
  | RequestTimeout
  | HttpStatusError
  | EmptyResponse
  | MalformedResponse
  | ResponseTooLarge

/** What can go wrong in a round trip about one app. */
export type AppRequestError = RequestError | ResponseInvalid | AppStatusError

/** What can go wrong building a client. */
export type ConfigError = InvalidServerUrl | MissingUserId

// -----------------------------------------------------------------------------
// Settings
// -----------------------------------------------------------------------------

/** How failed attempts are retried. */
export interface RetryPolicy {
  /** Wait before the first retry; each later wait doubles. */
  readonly baseDelay: Duration.DurationInput
  /** Attempts in all, the first included. */
  readonly tries: number
  /** The longest `Retry-After` waited for; a server asking for more is not retried. */
  readonly maxRetryAfter: Duration.DurationInput
}

/** update_engine's and go-omaha's policy: 1 s doubling, 7 tries; `Retry-After` up to 2 minutes. */
export const defaultRetryPolicy: RetryPolicy = {
  baseDelay: Duration.seconds(1),
  tries: 7,
  maxRetryAfter: Duration.minutes(2)
}

/** The HTTP statuses worth another attempt. */
export const retryableStatuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/** The default timeout of one attempt, from sending the request to the end of the body. */
export const defaultTimeout: Duration.Duration = Duration.seconds(90)

/** The default cap on a response body: a larger one is bogus. */
export const defaultMaxResponseBytes = 1024 * 1024

/** The default number of events waiting to be sent before `event` waits for room. */
export const defaultEventQueueCapacity = 64

/** How long closing a client waits by default for the events still queued to be delivered. */
export const defaultCloseTimeout: Duration.Duration = Duration.seconds(5)

/** The client version sent when none is configured. */
export const defaultClientVersion = `effect-omaha-${packageVersion}`

/** How a client is configured. */
export interface Options {
  /** The server: http(s) with a host; an empty path means `/v1/update/`. */
  readonly serverUrl: string
  /** A persistent id unique to this client (`request@userid`, copied to `app@machineid`). */
  readonly userId: string
  /** `request@sessionid` (copied to `app@bootid`); default a random `{uuid}` made with the client. */
  readonly sessionId?: string
  /** `request@version` and `@updaterversion`; default `effect-omaha-<version>`. */
  readonly clientVersion?: string
  /** Whether this client updates for the whole machine (`ismachine="1"`). */
  readonly isMachine?: boolean
  /** The `<os>` element; default this machine's platform and arch. */
  readonly os?: Request.Os
  /** Timeout of one attempt; default 90 s. */
  readonly timeout?: Duration.DurationInput
  /** Retry policy; default {@link defaultRetryPolicy}. */
  readonly retry?: Partial<RetryPolicy>
  /** Cap on a response body in bytes; default 1 MiB. */
  readonly maxResponseBytes?: number
  /** Events waiting to be sent before `event` waits for room; default 64. */
  readonly eventQueueCapacity?: number
  /**
   * How long closing the client waits for queued events (error events
   * included) to be delivered, retries and all; default 5 s. What is still
   * queued then is logged as dropped.
   */
  readonly closeTimeout?: Duration.DurationInput
  /** Told before each wait between attempts (a program shows it while it waits); by default a warning is logged. */
  readonly onRetry?: (retry: Retrying) => Effect.Effect<void>
}

/** An attempt failed and another follows after `delay`. */
export interface Retrying {
  readonly url: string
  /** What the failed attempt ran into. */
  readonly error: RequestError
  /** The attempt that follows, counted from 1, and the tries in all. */
  readonly attempt: number
  readonly tries: number
  readonly delay: Duration.Duration
}

const seconds = (millis: number): string => `${Number((millis / 1000).toFixed(2))} s`

/** One line for a retry: `Omaha server unreachable, retrying in 4 s (attempt 3 of 7)`. */
export const describeRetry = (retry: Retrying): string => {
  const what = retry.error._tag === "RequestTimeout"
    ? `Omaha server did not answer within ${seconds(retry.error.timeoutMillis)}`
    : retry.error._tag === "HttpStatusError"
    ? `Omaha server answered HTTP ${retry.error.status}`
    : "Omaha server unreachable"
  return `${what}, retrying in ${seconds(Duration.toMillis(retry.delay))} (attempt ${retry.attempt} of ${retry.tries})`
}

/** How one request is sent, where it differs from the client's settings. */
export interface SendOptions {
  /** Attempts in all, in place of the retry policy's `tries`. */
  readonly tries?: number
}

/** Request attributes that change from one request to the next. */
export interface RequestOptions {
  /** `request@installsource`: `scheduler` for periodic checks, `ondemandupdate` for asked-for ones. */
  readonly installSource?: string
}

/** The service: one Omaha server as seen by this client. */
export interface OmahaClientService {
  /** The endpoint requests are posted to. */
  readonly url: string
  readonly userId: string
  readonly sessionId: string
  readonly clientVersion: string
  readonly isMachine: boolean
  /** A request carrying this client's ids and a fresh request id, for `apps`. */
  readonly makeRequest: (
    apps: ReadonlyArray<Request.AppRequest>,
    options?: RequestOptions
  ) => Effect.Effect<Request.Request>
  /** One round trip, retried as the policy says. */
  readonly send: (request: Request.Request, options?: SendOptions) => Effect.Effect<Response.Response, RequestError>
  /** One round trip, answered for `appId` with `app@status="ok"`. */
  readonly sendApp: (
    request: Request.Request,
    appId: string,
    options?: SendOptions
  ) => Effect.Effect<Response.AppResponse, AppRequestError>
  /**
   * Queues `sendApp` to run in the background, after everything queued
   * before (events are sent one at a time, in order). Waits while the queue
   * is full. The returned effect waits for the outcome; nobody has to run it,
   * and an outcome nobody waits for is logged when it is a failure.
   */
  readonly enqueue: (
    request: Request.Request,
    appId: string,
    options?: SendOptions
  ) => Effect.Effect<Effect.Effect<void, AppRequestError>>
  /** Waits until everything queued so far has been sent (or has failed). */
  readonly flush: Effect.Effect<void>
  /** Claims an app id for the scope; a second claim fails until the first scope closes. */
  readonly claimAppId: (appId: string) => Effect.Effect<void, DuplicateAppId, Scope.Scope>
}

/** The Omaha client service. */
export class OmahaClient extends Context.Tag("effect-omaha/client/OmahaClient")<OmahaClient, OmahaClientService>() {}

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** The endpoint for a server URL: http(s), a host, and `/v1/update/` when the path is empty. */
export const parseServerUrl = (url: string): Effect.Effect<string, InvalidServerUrl> => {
  if (!URL.canParse(url)) return Effect.fail(new InvalidServerUrl({ url, reason: "not an absolute URL" }))
  const parsed = new URL(url)
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return Effect.fail(new InvalidServerUrl({ url, reason: `the scheme must be http or https, not ${parsed.protocol.slice(0, -1)}` }))
  }
  if (parsed.hostname === "") return Effect.fail(new InvalidServerUrl({ url, reason: "no host" }))
  if (parsed.pathname === "" || parsed.pathname === "/") parsed.pathname = "/v1/update/"
  parsed.hash = ""
  return Effect.succeed(parsed.href)
}

const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, "0")

/** A random version-4 UUID in braces, `{xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx}`, drawn from `Random`. */
export const randomId: Effect.Effect<string> = Effect.gen(function*() {
  const words: Array<number> = []
  for (let i = 0; i < 4; i++) words.push(yield* Random.nextIntBetween(0, 0x1_0000_0000))
  const [a = 0, b = 0, c = 0, d = 0] = words
  // RFC 9562: version 4 in the high nibble of the third group, variant 10 in the fourth.
  const timeHi = ((b & 0x0fff) | 0x4000) >>> 0
  const clockSeq = (((c >>> 16) & 0x3fff) | 0x8000) >>> 0
  return `{${hex(a, 8)}-${hex(b >>> 16, 4)}-${hex(timeHi, 4)}-${hex(clockSeq, 4)}-${hex(c & 0xffff, 4)}${hex(d, 8)}}`
})

/** True for the failures another attempt may cure: network errors, timeouts and 408/429/500/502/503/504. */
export const isRetryable = (error: RequestError): boolean =>
  error._tag === "NetworkError" || error._tag === "RequestTimeout" ||
  (error._tag === "HttpStatusError" && retryableStatuses.has(error.status))

/**
 * The retry schedule of a policy, fed with each failure: exponential waits
 * from `baseDelay`, `tries - 1` retries, only for retryable failures; a
 * `Retry-After` longer than the wait replaces it, and one longer than
 * `maxRetryAfter` ends the retries (the server asked us not to come back yet).
 */
export const retrySchedule = (policy: RetryPolicy): Schedule.Schedule<unknown, RequestError> => {
  const maxRetryAfter = Duration.toMillis(policy.maxRetryAfter)
  const retryAfterMillis = (error: RequestError): number =>
    error._tag === "HttpStatusError" && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : 0
  return Schedule.exponential(policy.baseDelay).pipe(
    Schedule.intersect(Schedule.recurs(Math.max(0, policy.tries - 1))),
    Schedule.intersect(Schedule.identity<RequestError>()),
    Schedule.whileInput((error: RequestError) => isRetryable(error) && retryAfterMillis(error) <= maxRetryAfter),
    Schedule.modifyDelay(([, error], delay) => Duration.max(delay, Duration.millis(retryAfterMillis(error))))
  )
}

/**
 * The wait a `Retry-After` value asks for, in whole seconds: delta-seconds, or
 * an HTTP date measured from `now`. None when the value is neither.
 */
export const parseRetryAfter = (value: string, now: number): Option.Option<number> => {
  const text = value.trim()
  if (/^\d{1,10}$/.test(text)) return Option.some(Number(text))
  const date = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN
  return Number.isNaN(date) ? Option.none() : Option.some(Math.max(0, Math.ceil((date - now) / 1000)))
}

const describeHttpError = (error: HttpClientError.HttpClientError): string => {
  const cause: unknown = error.cause
  return cause instanceof Error && cause.message !== "" ? cause.message : error.message
}

const describeRequest = (request: Request.Request): string => {
  const events = request.apps.flatMap((app) => app.events.map(describeEvent))
  return events.length === 0 ? "request" : `event (${events.join("; ")})`
}

// -----------------------------------------------------------------------------
// The service
// -----------------------------------------------------------------------------

interface Job {
  /** What is being sent, for the log line when it fails. */
  readonly what: string
  readonly send: Effect.Effect<void, AppRequestError>
  readonly done: Deferred.Deferred<void, AppRequestError>
}

/** Builds a client (see the module header); events are sent by a fiber that lives as long as the scope. */
export const make = (
  options: Options
): Effect.Effect<OmahaClientService, ConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* parseServerUrl(options.serverUrl)
    if (options.userId === "") return yield* new MissingUserId()
    // Each attempt's connection is aborted when the attempt ends, whether the
    // body was read, left unread (an HTTP error) or cut off at the cap.
    const http = HttpClient.withScope(yield* HttpClient.HttpClient)
    const userId = options.userId
    const sessionId = options.sessionId ?? (yield* randomId)
    const clientVersion = options.clientVersion ?? defaultClientVersion
    const isMachine = options.isMachine ?? false
    const os = options.os ?? Request.localOs()
    const timeout = Duration.decode(options.timeout ?? defaultTimeout)
    const policy: RetryPolicy = { ...defaultRetryPolicy, ...options.retry }
    const onRetry = options.onRetry ?? ((retry: Retrying) => Effect.logWarning(describeRetry(retry)))
    const maxBytes = options.maxResponseBytes ?? defaultMaxResponseBytes
    const limits: Xml.Limits = { ...Xml.defaultLimits, maxBytes }

    // Unchecked construction: the encoder checks every field and fails with
    // `InvalidRequest`, where a checking constructor would throw.
    const makeRequest = (apps: ReadonlyArray<Request.AppRequest>, requestOptions: RequestOptions = {}) =>
      Effect.map(randomId, (requestId) =>
        new Request.Request({
          protocol: Request.protocolVersion,
          version: clientVersion,
          // update_engine sends its version twice; servers that log either see it.
          updaterVersion: clientVersion,
          ...(requestOptions.installSource === undefined ? {} : { installSource: requestOptions.installSource }),
          ...(isMachine ? { isMachine: true } : {}),
          requestId,
          sessionId,
          userId,
          os,
          apps
        }, true))

    // The body, read as a stream so that reading stops at the cap; ending the
    // stream early aborts the request and closes the connection.
    const readBody = (response: HttpClientResponse.HttpClientResponse, attempt: number) =>
      Effect.gen(function*() {
        const declared = Option.flatMap(Headers.get(response.headers, "content-length"), (value) =>
          /^\d+$/.test(value) ? Option.some(Number(value)) : Option.none())
        if (Option.isSome(declared) && declared.value > maxBytes) {
          return yield* new ResponseTooLarge({ url, limit: maxBytes })
        }
        const chunks: Array<Uint8Array> = []
        const size = yield* response.stream.pipe(
          Stream.mapError((error) =>
            new NetworkError({
              url,
              attempts: attempt,
              reason: `the connection failed while reading the response: ${describeHttpError(error)}`
            })
          ),
          Stream.runFoldEffect(0, (total, chunk): Effect.Effect<number, ResponseTooLarge> => {
            if (total + chunk.length > maxBytes) return Effect.fail(new ResponseTooLarge({ url, limit: maxBytes }))
            chunks.push(chunk)
            return Effect.succeed(total + chunk.length)
          })
        )
        return Buffer.concat(chunks, size)
      })

    const httpError = (response: HttpClientResponse.HttpClientResponse, attempt: number) =>
      Effect.gen(function*() {
        const header = Headers.get(response.headers, "retry-after").pipe(
          Option.orElse(() => Headers.get(response.headers, "x-retry-after"))
        )
        const now = yield* Clock.currentTimeMillis
        const retryAfter = Option.flatMap(header, (value) => parseRetryAfter(value, now))
        return new HttpStatusError({
          url,
          status: response.status,
          attempts: attempt,
          ...(Option.isSome(retryAfter) ? { retryAfterSeconds: retryAfter.value } : {})
        })
      })

    const attemptOnce = (body: string, attempt: number): Effect.Effect<Response.Response, RequestError> =>
      Effect.scoped(
        Effect.gen(function*() {
          const response = yield* http.execute(
            HttpClientRequest.post(url).pipe(HttpClientRequest.bodyText(body, "text/xml; charset=utf-8"))
          ).pipe(
            Effect.mapError((error) => new NetworkError({ url, attempts: attempt, reason: describeHttpError(error) }))
          )
          // An HTTP error is reported as such, whatever the body holds (go-omaha does the same).
          if (response.status < 200 || response.status > 299) return yield* Effect.flip(httpError(response, attempt))
          const bytes = yield* readBody(response, attempt)
          if (bytes.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d)) {
            return yield* new EmptyResponse({ url })
          }
          const { value, warnings } = yield* Xml.decodeResponseWithWarnings(bytes, limits).pipe(
            Effect.mapError((error) => new MalformedResponse({ url, reason: error.message }))
          )
          for (const warning of warnings) yield* Effect.logWarning(`Omaha server ${url}: ${warning}`)
          return value
        })
      ).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new RequestTimeout({ url, attempts: attempt, timeoutMillis: Duration.toMillis(timeout) })
        })
      )

    const send = Effect.fn("OmahaClient.send")(function*(request: Request.Request, sendOptions: SendOptions = {}) {
      const body = yield* Xml.encodeRequest(request).pipe(
        Effect.mapError((error) => new InvalidRequest({ reason: error.message }))
      )
      const tries = sendOptions.tries ?? policy.tries
      const attempts = yield* Ref.make(0)
      const failed = yield* Ref.make(Option.none<RequestError>())
      // Each wait is announced before it starts, with what the last attempt ran into.
      const schedule = retrySchedule({ ...policy, tries }).pipe(
        Schedule.delays,
        Schedule.onDecision((delay, decision) =>
          decision._tag === "Done" ? Effect.void : Effect.flatMap(
            Effect.all([Ref.get(attempts), Ref.get(failed)]),
            ([attempt, error]) =>
              Option.isNone(error) ? Effect.void : onRetry({ url, error: error.value, attempt: attempt + 1, tries, delay })
          )
        )
      )
      return yield* Ref.updateAndGet(attempts, (n) => n + 1).pipe(
        Effect.flatMap((attempt) => attemptOnce(body, attempt)),
        Effect.tapError((error) => Ref.set(failed, Option.some(error))),
        Effect.retry(schedule)
      )
    })

    const sendApp = Effect.fn("OmahaClient.sendApp")(function*(
      request: Request.Request,
      appId: string,
      sendOptions?: SendOptions
    ) {
      const response = yield* send(request, sendOptions)
      const app = Response.findApp(response, appId)
      if (app === undefined) {
        return yield* new ResponseInvalid({ url, appId, reason: `the response has no app ${appId}` })
      }
      if (app.status !== "ok") return yield* new AppStatusError({ url, appId, status: app.status })
      return app
    })

    // Events go out one at a time so that the server sees them in the order
    // they happened (download started before finished before installed).
    const queue = yield* Effect.acquireRelease(
      Queue.bounded<Job>(options.eventQueueCapacity ?? defaultEventQueueCapacity),
      (queue) =>
        Queue.takeAll(queue).pipe(
          Effect.flatMap(Effect.forEach((job) => Deferred.interrupt(job.done), { discard: true })),
          Effect.zipRight(Queue.shutdown(queue))
        )
    )
    // Jobs offered and not finished, oldest first: what closing waits for.
    const pending = new Set<Job>()
    yield* Queue.take(queue).pipe(
      Effect.flatMap((job) =>
        job.send.pipe(
          Effect.tapError((error) => Effect.logWarning(`Omaha ${job.what} not delivered: ${error.message}`)),
          Effect.ensuring(Effect.sync(() => pending.delete(job))),
          Effect.intoDeferred(job.done)
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )
    // Added after the sender, so it runs before the sender is stopped: a
    // failed check's error event, queued a moment before the scope closes,
    // still reaches the server. Finalizers are uninterruptible; the wait is
    // made interruptible so that the timeout can end it.
    const closeTimeout = Duration.decode(options.closeTimeout ?? defaultCloseTimeout)
    const deliverPending = Effect.suspend(function loop(): Effect.Effect<void> {
      const [oldest] = pending
      if (oldest === undefined) return Effect.void
      return Effect.zipRight(
        Effect.exit(Deferred.await(oldest.done)),
        Effect.suspend(() => {
          pending.delete(oldest)
          return loop()
        })
      )
    })
    yield* Effect.addFinalizer(() =>
      pending.size === 0 ? Effect.void : Effect.interruptible(deliverPending).pipe(
        Effect.timeoutOption(closeTimeout),
        Effect.flatMap((delivered) =>
          Option.isSome(delivered) ? Effect.void : Effect.forEach(
            [...pending].filter((job) => job.what !== "flush"),
            (job) =>
              Effect.logWarning(
                `Omaha ${job.what} dropped: not delivered within ${Duration.format(closeTimeout)} of closing the client`
              ),
            { discard: true }
          )
        )
      )
    )
    const offer = (what: string, send: Effect.Effect<void, AppRequestError>) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void, AppRequestError>()
        const job: Job = { what, send, done }
        pending.add(job)
        yield* Queue.offer(queue, job).pipe(
          Effect.onInterrupt(() => Effect.zipRight(Effect.sync(() => pending.delete(job)), Deferred.interrupt(done)))
        )
        return Deferred.await(done)
      })

    const claimed = yield* Ref.make<ReadonlySet<string>>(new Set())
    const claimAppId = (appId: string) =>
      Effect.acquireRelease(
        Ref.modify(claimed, (ids): readonly [boolean, ReadonlySet<string>] =>
          ids.has(appId) ? [false, ids] : [true, new Set([...ids, appId])]).pipe(
            Effect.filterOrFail((fresh) => fresh, () => new DuplicateAppId({ appId }))
          ),
        () => Ref.update(claimed, (ids) => new Set([...ids].filter((id) => id !== appId)))
      )

    return {
      url,
      userId,
      sessionId,
      clientVersion,
      isMachine,
      makeRequest,
      send,
      sendApp,
      enqueue: (request, appId, sendOptions) =>
        offer(describeRequest(request), Effect.asVoid(sendApp(request, appId, sendOptions))),
      flush: Effect.flatten(offer("flush", Effect.void)).pipe(Effect.ignore),
      claimAppId
    } satisfies OmahaClientService
  })

/** The client as a layer; it needs an `HttpClient` (`NodeHttpClient.layer` on Node). */
export const layer = (options: Options): Layer.Layer<OmahaClient, ConfigError, HttpClient.HttpClient> =>
  Layer.scoped(OmahaClient, make(options))

/**
 * A machine-wide client on Linux: the machine id is the user id and the boot
 * id the session id (see `Machine`), and `ismachine="1"`.
 */
export const layerMachine = (
  options: Omit<Options, "userId" | "sessionId" | "isMachine"> & { readonly paths?: Machine.Paths }
): Layer.Layer<OmahaClient, ConfigError | Machine.IdentityError, HttpClient.HttpClient | FileSystem.FileSystem> =>
  Layer.scoped(
    OmahaClient,
    Effect.flatMap(Machine.readIdentity(options.paths), (identity) =>
      make({ ...options, userId: identity.userId, sessionId: identity.sessionId, isMachine: true }))
  )
