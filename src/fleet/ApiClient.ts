/**
 * A typed client of a fleet server's admin API, for `fleet-server`'s admin
 * commands and for programs of your own. `make` derives it from the API's
 * definition (`Api.FleetApi`, through `HttpApiClient`): every endpoint is a
 * method taking and answering the API's own schemas, with the bearer token
 * on every request and path parameters URL-encoded (Omaha app ids have
 * braces). Fields the model types as classes are given as instances
 * (`MaintenanceWindow.make({...})`, `FailureBrake.make({...})`): the
 * request's schema encodes them, and refuses a plain object.
 *
 * `upload` streams a payload (the derived client would read it into memory
 * first) over node:http(s), so that a server answering before it has read
 * the whole body is heard rather than lost to the broken pipe the rest of
 * the body meets; what can be known before sending (the application, a
 * package of that version and arch already there) is asked first, and
 * nothing is sent then. `normalize` turns any failure of a call into one of
 * three, each with a one-line message: the API refused the request (its
 * error body and HTTP status), the server cannot be reached, or what
 * answered is not a fleet server.
 *
 *   const program = Effect.gen(function*() {
 *     const client = yield* ApiClient.make({ server: "http://localhost:8000", token })
 *     const groups = yield* client.groups.listGroups({ path: { app: "{e96281a6-...}" } })
 *   }).pipe(Effect.provide(NodeHttpClient.layer))
 */
import { FileSystem, HttpApiClient, HttpClient, HttpClientError, HttpClientRequest } from "@effect/platform"
import { Cause, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, ParseResult, Redacted, Schema, Stream } from "effect"
import * as Http from "node:http"
import * as Https from "node:https"
import { packageVersion } from "../internal/version.js"
import * as Api from "./Api.js"
import * as ApiError from "./ApiError.js"
import { type Arch, Package } from "./Model.js"

/** Where the server is and how to authenticate. */
export interface Options {
  /** The server's URL (`http://localhost:8000`); the API is below it at `/api/`. */
  readonly server: string | URL
  /** An API token (`fleet-server token create`); left out, requests carry none. */
  readonly token?: Redacted.Redacted<string> | string | undefined
  /** How long a call may wait for its answer; default 30 seconds. Uploads are not limited. */
  readonly timeout?: Duration.DurationInput | undefined
}

// -- failures -----------------------------------------------------------------

/** The API refused the request: its error body (`NotFound`, `Conflict`, ...) and HTTP status. */
export class Refused extends Schema.TaggedError<Refused>()("Refused", {
  status: Schema.Number,
  /** The API's error tag. */
  error: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.reason} (${this.status})`
  }
}

/** The server cannot be reached: refused connection, unknown host, no answer in time. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  server: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot reach the fleet server at ${this.server}: ${this.reason}`
  }
}

/** Something answered, but not as the fleet API does (a proxy's error page, another service, another version). */
export class UnexpectedAnswer extends Schema.TaggedError<UnexpectedAnswer>()("UnexpectedAnswer", {
  server: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.server} does not answer as a fleet server: ${this.reason}`
  }
}

/** Every way a call can fail, after {@link normalize}. */
export type ClientError = Refused | Unreachable | UnexpectedAnswer

const errnoWords: Partial<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "the host name cannot be resolved now",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "timed out",
  EPIPE: "the connection was closed while sending"
}

const errnoReason = (cause: unknown): string => {
  const error = cause as NodeJS.ErrnoException | undefined
  const code = error?.code
  if (code !== undefined) return errnoWords[code] ?? `${error?.message ?? code} (${code})`
  return error?.message ?? String(cause)
}

const transportReason = (error: HttpClientError.RequestError): string =>
  error.cause === undefined
    ? error.reason === "InvalidUrl" ? `not a URL this client can use (${error.request.url})` : error.description ?? error.reason
    : errnoReason(error.cause)

const isErrorBody = (u: unknown): u is { readonly error: string; readonly message: string } =>
  typeof u === "object" && u !== null && "error" in u && typeof u.error === "string" && "message" in u &&
  typeof u.message === "string"

const classify = (server: string, error: unknown): Effect.Effect<ClientError> => {
  if (error instanceof Refused || error instanceof Unreachable || error instanceof UnexpectedAnswer) return Effect.succeed(error)
  if (ApiError.isApiError(error)) {
    return Effect.succeed(new Refused({ status: ApiError.statusOf(error), error: error.error, reason: error.message }))
  }
  if (HttpClientError.isHttpClientError(error)) {
    if (error._tag === "RequestError") return Effect.succeed(new Unreachable({ server, reason: transportReason(error) }))
    const status = error.response.status
    // An error body with a tag this client does not know (a newer server) is still the API's answer.
    return error.response.json.pipe(
      Effect.map((body): ClientError =>
        isErrorBody(body)
          ? new Refused({ status, error: body.error, reason: ApiError.oneLine(body.message) })
          : new UnexpectedAnswer({ server, reason: `HTTP ${status} with a body that is not the API's` })
      ),
      Effect.orElseSucceed(() => new UnexpectedAnswer({ server, reason: `HTTP ${status} without a JSON body` }))
    )
  }
  if (ParseResult.isParseError(error)) {
    const first = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    const where = first === undefined || first.path.length === 0 ? "" : `${first.path.join(".")}: `
    return Effect.succeed(
      new UnexpectedAnswer({ server, reason: `its answer does not match this client (${where}${first?.message ?? error.message})` })
    )
  }
  if (Cause.isTimeoutException(error)) return Effect.succeed(new Unreachable({ server, reason: error.message }))
  return Effect.die(error)
}

/**
 * A client call with its failures as {@link ClientError}s (see the module
 * header); `server` names the server in the messages.
 */
export const normalize = (server: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, ClientError, R> =>
  Effect.catchAll(self, (error) => Effect.flatMap(classify(server, error), Effect.fail))

// -- the client ---------------------------------------------------------------

// Path parameters are put into the URL as they are; names may hold any
// character. A `+` stays itself: versions have it, and paths do not read it as a space.
const encodeSegment = (value: string) => encodeURIComponent(value).replace(/%2B/gi, "+")

const encodePaths = <C>(client: C): C => {
  const wrap = (method: (request?: { readonly path?: Record<string, unknown> }) => unknown) =>
  (request?: { readonly path?: Record<string, unknown> }) =>
    method(
      request?.path === undefined ? request : {
        ...request,
        path: Object.fromEntries(
          Object.entries(request.path).map(([key, value]) => [key, typeof value === "string" ? encodeSegment(value) : value])
        )
      }
    )
  return Object.fromEntries(
    Object.entries(client as Record<string, unknown>).map(([name, member]) => [
      name,
      typeof member === "function"
        ? wrap(member as never)
        : Object.fromEntries(Object.entries(member as Record<string, never>).map(([endpoint, method]) => [endpoint, wrap(method)]))
    ])
  ) as C
}

/** The server's URL as given, checked: http or https. */
export class InvalidApiUrl extends Schema.TaggedError<InvalidApiUrl>()("InvalidApiUrl", {
  url: Schema.String
}) {
  override get message(): string {
    return `invalid server URL ${JSON.stringify(this.url)}: give http://host:port or https://host`
  }
}

/** The server URL as a base for the API: an http(s) URL ending in `/`. */
export const parseServerUrl = (url: string | URL): Effect.Effect<URL, InvalidApiUrl> =>
  Effect.suspend(() => {
    const text = String(url)
    if (!URL.canParse(text)) return Effect.fail(new InvalidApiUrl({ url: text }))
    const parsed = new URL(text)
    if ((parsed.protocol !== "http:" && parsed.protocol !== "https:") || parsed.hostname === "") {
      return Effect.fail(new InvalidApiUrl({ url: text }))
    }
    parsed.search = ""
    parsed.hash = ""
    if (!parsed.pathname.endsWith("/")) parsed.pathname += "/"
    return Effect.succeed(parsed)
  })

const defaultTimeout = Duration.seconds(30)

const makeHttp = (options: Options, base: URL) =>
  Effect.map(HttpClient.HttpClient, (client) => {
    const token = options.token === undefined
      ? undefined
      : Redacted.isRedacted(options.token)
      ? options.token
      : Redacted.make(options.token)
    return client.pipe(
      HttpClient.mapRequest((request) => {
        const withAgent = HttpClientRequest.setHeader(request, "user-agent", userAgent)
        return token === undefined ? withAgent : HttpClientRequest.bearerToken(withAgent, Redacted.value(token))
      }),
      // The API's paths start at the root; a server below a path prefix keeps it.
      HttpClient.mapRequest(HttpClientRequest.prependUrl(base.href.replace(/\/$/, "")))
    )
  })

/** What to upload: a payload file for a version of an application. */
export interface Upload<E = never> {
  readonly app: string
  readonly version: string
  readonly arch: Arch
  /** The payload's name in manifests and its URL; the server's default (`update.gz`) when left out. */
  readonly name?: string | undefined
  /** The payload's bytes and their number. */
  readonly body: Stream.Stream<Uint8Array, E>
  readonly size: number
  /** update_engine's postinstall facts, as the upload's query takes them. */
  readonly action?: {
    readonly isDelta?: boolean | undefined
    readonly needsAdmin?: boolean | undefined
    readonly disablePayloadBackoff?: boolean | undefined
    readonly metadataSignatureRsa?: string | undefined
    readonly metadataSize?: string | undefined
    readonly deadline?: string | undefined
    readonly chromeOsVersion?: string | undefined
  } | undefined
}

const ErrorBody = Schema.Struct({ error: Schema.String, message: Schema.String })

const userAgent = `fleet-server/${packageVersion}`

/** The connection failed before an answer came. */
class SendFailed extends Schema.TaggedError<SendFailed>()("SendFailed", { cause: Schema.Unknown }) {}

/**
 * A PUT of a streamed body over node:http(s), answered with the status and
 * text of the response. A server may answer before it has read the whole
 * body (a package that exists, a payload over its limit) and close the
 * connection; the answer is what counts then, not the broken pipe the rest
 * of the body meets (which @effect/platform's client reports instead).
 */
const send = <E>(url: URL, headers: Record<string, string>, body: Stream.Stream<Uint8Array, E>) =>
  Effect.scoped(Effect.gen(function*() {
    const answered = yield* Deferred.make<Http.IncomingMessage, SendFailed>()
    const request = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const request = (url.protocol === "https:" ? Https : Http).request(url, { method: "PUT", headers, agent: false })
        request.on("response", (response) => Deferred.unsafeDone(answered, Exit.succeed(response)))
        request.on("error", (cause) => Deferred.unsafeDone(answered, Exit.fail(new SendFailed({ cause }))))
        return request
      }),
      (request) => Effect.sync(() => request.destroy())
    )
    const write = (chunk: Uint8Array) =>
      Effect.async<void>((resume) => {
        if (request.write(chunk)) return resume(Effect.void)
        const drained = () => resume(Effect.void)
        request.once("drain", drained)
        return Effect.sync(() => request.off("drain", drained))
      })
    const sending = yield* Stream.runForEach(body, write).pipe(
      Effect.zipRight(Effect.sync(() => request.end())),
      Effect.forkScoped
    )
    // A body that cannot be read ends the upload; an answer ends it too, read or not.
    const response = yield* Effect.raceFirst(Deferred.await(answered), Fiber.join(sending).pipe(Effect.zipRight(Effect.never)))
    const text = yield* Effect.async<string, SendFailed>((resume) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
      response.on("error", (cause) => resume(Effect.fail(new SendFailed({ cause }))))
    })
    return { status: response.statusCode ?? 0, text }
  }))

const derive = (http: HttpClient.HttpClient, timeout: Duration.Duration) =>
  HttpApiClient.make(Api.FleetApi, {
    transformClient: () => http.pipe(HttpClient.transformResponse(Effect.timeout(timeout)) as never)
  }).pipe(Effect.provideService(HttpClient.HttpClient, http))

/** The derived client: one method per endpoint, grouped as the API groups them (`apps.listApps`). */
export type Endpoints = Effect.Effect.Success<ReturnType<typeof derive>>

/** A client of one server. */
export interface Client extends Endpoints {
  /** The server's URL, as messages name it. */
  readonly server: string
  /** Streams a payload to `PUT /api/apps/{app}/packages/{version}`: the package the server stored, with its hashes. */
  readonly upload: <E>(upload: Upload<E>) => Effect.Effect<Package, ClientError | E>
}

/** A client of the server in `options`; it needs an `HttpClient` (`NodeHttpClient.layer` on Node). */
export const make = (options: Options): Effect.Effect<Client, InvalidApiUrl, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const base = yield* parseServerUrl(options.server)
    const server = base.href.replace(/\/$/, "")
    const http = yield* makeHttp(options, base)
    const timeout = Duration.decode(options.timeout ?? defaultTimeout)
    const endpoints = encodePaths(yield* derive(http, timeout))
    const token = options.token === undefined
      ? undefined
      : Redacted.isRedacted(options.token)
      ? Redacted.value(options.token)
      : options.token
    // Asked before the body is sent: a server refusing an upload it has not read closes the
    // connection, and a client still sending may then meet a reset instead of the answer.
    const preflight = (upload: Upload<unknown>) =>
      Effect.gen(function*() {
        yield* endpoints.apps.getApp({ path: { app: upload.app } })
        const existing = yield* endpoints.packages.getPackage({
          path: { app: upload.app, version: upload.version },
          urlParams: { arch: upload.arch }
        }).pipe(
          Effect.map((found) => found.arch === upload.arch),
          Effect.catchIf((e) => ApiError.isApiError(e) && e.error === "NotFound", () => Effect.succeed(false))
        )
        if (existing) {
          return yield* new Refused({
            status: 409,
            error: "Conflict",
            reason: `package ${upload.version} (${upload.arch}) of ${JSON.stringify(upload.app)} already exists`
          })
        }
      }).pipe(normalize(server))
    const upload = <E>(upload: Upload<E>) =>
      Effect.gen(function*() {
        yield* preflight(upload)
        const params = new URLSearchParams({ arch: upload.arch })
        if (upload.name !== undefined) params.set("name", upload.name)
        for (const [key, value] of Object.entries(upload.action ?? {})) {
          if (value !== undefined) params.set(key, String(value))
        }
        const url = new URL(
          `api/apps/${encodeSegment(upload.app)}/packages/${encodeSegment(upload.version)}?${params}`,
          base
        )
        const answer = yield* send(url, {
          "content-type": "application/octet-stream",
          "content-length": String(upload.size),
          "user-agent": userAgent,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
        }, upload.body).pipe(
          Effect.catchAll((e): Effect.Effect<never, Unreachable | E> =>
            Effect.fail(
              e instanceof SendFailed
                ? new Unreachable({
                  server,
                  reason: ["EPIPE", "ECONNRESET"].includes((e.cause as NodeJS.ErrnoException).code ?? "")
                    ? "the connection was closed before the whole payload was sent (is it over the server's --max-upload-size?)"
                    : errnoReason(e.cause)
                })
                : e
            )
          )
        )
        if (answer.status === 201) {
          return yield* Schema.decodeUnknown(Schema.parseJson(Package))(answer.text).pipe(
            Effect.mapError((e) => new UnexpectedAnswer({ server, reason: `its answer to an upload is not a package (${e.message.split("\n", 1)[0]})` }))
          )
        }
        const body = yield* Schema.decodeUnknown(Schema.parseJson(ErrorBody))(answer.text).pipe(
          Effect.mapError(() => new UnexpectedAnswer({ server, reason: `HTTP ${answer.status} to an upload, without the API's error body` }))
        )
        return yield* new Refused({ status: answer.status, error: body.error, reason: ApiError.oneLine(body.message) })
      })
    return { ...endpoints, server, upload }
  })

/** The client as a service, for programs that build it once. */
export class ApiClient extends Context.Tag("effect-omaha/fleet/ApiClient")<ApiClient, Client>() {}

/** {@link ApiClient} for the server in `options`. */
export const layer = (options: Options): Layer.Layer<ApiClient, InvalidApiUrl, HttpClient.HttpClient> =>
  Layer.effect(ApiClient, make(options))

/** A payload file as an upload's body: its bytes, streamed, and its size; `onSent` hears how many bytes went. */
export const fileBody = (path: string, onSent?: (sent: number, total: number) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const size = Number((yield* fs.stat(path)).size)
    let sent = 0
    const bytes = fs.stream(path, { chunkSize: 64 * 1024 })
    const body = onSent === undefined ? bytes : bytes.pipe(
      Stream.tap((chunk) => {
        sent += chunk.byteLength
        return onSent(sent, size)
      })
    )
    return { body, size }
  })
