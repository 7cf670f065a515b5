/**
 * One application on an Omaha client, as go-omaha's AppClient and Flatcar's
 * update_engine present it: an app id and version with update_engine's
 * extensions (track, OEM, board, ...), an update check (ping, updatecheck and
 * the 3/2 "complete" event in one request), pings, and events sent in the
 * background. A request that fails sends the matching error event on its own;
 * a well-formed refusal from the server does not, since the server already
 * knows. Also the one mapping from every client error to an update_engine
 * exit code.
 */
import { Context, Data, Duration, Effect, Layer, Match, Option, Ref, Schema, type Scope } from "effect"
import { EventResult, EventType, UpdateStatus } from "../protocol/Codes.js"
import * as Request from "../protocol/Request.js"
import type * as Response from "../protocol/Response.js"
import * as ExitCode from "./ExitCode.js"
import type * as Machine from "./Machine.js"
import * as OmahaClient from "./OmahaClient.js"

// -----------------------------------------------------------------------------
// Errors and results
// -----------------------------------------------------------------------------

/** An app id, version or track that is empty. */
export class EmptySetting extends Schema.TaggedError<EmptySetting>()("EmptySetting", {
  appId: Schema.String,
  setting: Schema.Literal("appId", "version", "track")
}) {
  override get message(): string {
    return this.setting === "appId" ? "an app client needs an app id" : `app ${this.appId}: empty ${this.setting}`
  }
}

/** The server answered the update check with an error status (`error-*`). */
export class UpdateCheckError extends Schema.TaggedError<UpdateCheckError>()("UpdateCheckError", {
  url: Schema.String,
  appId: Schema.String,
  status: UpdateStatus
}) {
  override get message(): string {
    return `Omaha server ${this.url} answered the update check for app ${this.appId} with ${this.status}`
  }
}

/** An update is offered: the server's answer and the manifest to install (the first one). */
export class UpdateAvailable extends Data.TaggedClass("UpdateAvailable")<{
  readonly update: Response.UpdateResponse
  readonly manifest: Response.Manifest
}> {}

/** No update now; the answer may still carry a `PollInterval`. */
export class NoUpdate extends Data.TaggedClass("NoUpdate")<{
  readonly update: Response.UpdateResponse
}> {}

/** The outcome of an update check that got an answer. */
export type CheckResult = UpdateAvailable | NoUpdate

/** The poll interval the server asked for in a check result, if any. */
export const pollInterval = (result: CheckResult): Option.Option<Duration.Duration> =>
  Option.map(Option.fromNullable(result.update.pollInterval), Duration.seconds)

/** What an update check can fail with. */
export type CheckError = OmahaClient.AppRequestError | UpdateCheckError

/** Every typed error of the client side: configuration, identity, requests and answers. */
export type ClientError =
  | OmahaClient.ConfigError
  | OmahaClient.AppRequestError
  | OmahaClient.DuplicateAppId
  | Machine.IdentityError
  | EmptySetting
  | UpdateCheckError

/**
 * The update_engine exit code of a client error: network 2, HTTP 2000 +
 * status, empty body 30, bad XML 31, an unusable or refusing answer 34, a
 * request we could not write 2, and configuration problems 1.
 */
export const exitCodeOf: (error: ClientError) => number = Match.type<ClientError>().pipe(
  Match.tagsExhaustive({
    InvalidServerUrl: () => ExitCode.Code.Error,
    MissingUserId: () => ExitCode.Code.Error,
    DuplicateAppId: () => ExitCode.Code.Error,
    EmptySetting: () => ExitCode.Code.Error,
    IdFileMissing: () => ExitCode.Code.Error,
    IdFileUnreadable: () => ExitCode.Code.Error,
    IdFileMalformed: () => ExitCode.Code.Error,
    InvalidRequest: () => ExitCode.Code.OmahaRequestError,
    NetworkError: () => ExitCode.Code.OmahaRequestError,
    RequestTimeout: () => ExitCode.Code.OmahaRequestError,
    HttpStatusError: (error) => ExitCode.ofHttpStatus(error.status),
    EmptyResponse: () => ExitCode.Code.OmahaRequestEmptyResponseError,
    MalformedResponse: () => ExitCode.Code.OmahaRequestXMLParseError,
    ResponseTooLarge: () => ExitCode.Code.OmahaResponseInvalid,
    ResponseInvalid: () => ExitCode.Code.OmahaResponseInvalid,
    AppStatusError: () => ExitCode.Code.OmahaResponseInvalid,
    UpdateCheckError: () => ExitCode.Code.OmahaResponseInvalid
  })
)

/**
 * Whether a failed request is reported to the server with an error event:
 * yes when the exchange itself failed; no for a well-formed refusal (the
 * server chose it) or a request we could not even write.
 */
export const sendsErrorEvent = (error: CheckError): boolean =>
  error._tag !== "AppStatusError" && error._tag !== "UpdateCheckError" && error._tag !== "InvalidRequest"

/** Whether a failed request had retries to spend (and spent them): the server is unreachable or failing. */
const isExhausted = (error: CheckError): boolean =>
  error._tag === "NetworkError" || error._tag === "RequestTimeout" || error._tag === "HttpStatusError" &&
    OmahaClient.retryableStatuses.has(error.status)

// -----------------------------------------------------------------------------
// Events
// -----------------------------------------------------------------------------

/** The events update_engine sends as an update progresses. */
export const Events = {
  /** 13/1: the payload download started. */
  downloadStarted: new Request.EventRequest({ eventType: EventType.UpdateDownloadStarted, eventResult: EventResult.Success }),
  /** 14/1: the payload is downloaded and verified. */
  downloadFinished: new Request.EventRequest({ eventType: EventType.UpdateDownloadFinished, eventResult: EventResult.Success }),
  /** 3/1: the update is installed and waits for a restart. */
  installed: new Request.EventRequest({ eventType: EventType.UpdateComplete, eventResult: EventResult.Success }),
  /** 3/2: the new version is running (sent with every update check, as go-omaha does). */
  complete: new Request.EventRequest({ eventType: EventType.UpdateComplete, eventResult: EventResult.SuccessReboot })
} as const

// -----------------------------------------------------------------------------
// The client
// -----------------------------------------------------------------------------

/** An app and update_engine's extensions; absent settings are not sent. */
export interface Options {
  readonly appId: string
  readonly version: string
  /** The update track or group (`stable`, `beta`, ...). */
  readonly track?: string
  readonly fromTrack?: string
  /** Flatcar's board (`amd64-usr`, `arm64-usr`), from which servers derive the arch. */
  readonly board?: string
  readonly oem?: string
  readonly oemVersion?: string
  readonly alephVersion?: string
  readonly machineAlias?: string
  readonly lang?: string
  readonly hardwareClass?: string
  readonly deltaOkay?: boolean
  /** Whether the app accepts several manifests (multi-step updates). */
  readonly multiManifestOk?: boolean
}

/** What an update check may add to its request. */
export interface CheckOptions extends OmahaClient.RequestOptions {
  /** `previousversion` on the 3/2 event: the version that ran before the last update. */
  readonly previousVersion?: string
  /** `updatecheck@targetversionprefix`. */
  readonly targetVersionPrefix?: string
  /** `updatecheck@updatedisabled`: ask, but do not want an update now. */
  readonly updateDisabled?: boolean
}

/** The children an app element carries in one request. */
export interface AppParts {
  readonly ping?: Request.PingRequest
  readonly updateCheck?: Request.UpdateRequest
  readonly events?: ReadonlyArray<Request.EventRequest>
}

/** The service: one app talking to the Omaha server through `OmahaClient`. */
export interface AppClientService {
  readonly appId: string
  /** The current settings. */
  readonly settings: Effect.Effect<Options>
  /** Changes the version, e.g. after the new one started. */
  readonly setVersion: (version: string) => Effect.Effect<void, EmptySetting>
  readonly setTrack: (track: string) => Effect.Effect<void, EmptySetting>
  /** Changes the OEM; the OEM version is the one given, or none. */
  readonly setOem: (oem: string, oemVersion?: string) => Effect.Effect<void>
  /** The `<app>` element for the current settings with these children; `machineid`/`bootid` are the client's ids. */
  readonly appRequest: (parts: AppParts) => Effect.Effect<Request.AppRequest>
  /** Ping, update check and the 3/2 event in one request; the answer, or why there is none. */
  readonly updateCheck: (options?: CheckOptions) => Effect.Effect<CheckResult, CheckError>
  /** A ping on its own (when updates are disabled). */
  readonly ping: (options?: OmahaClient.RequestOptions) => Effect.Effect<void, OmahaClient.AppRequestError>
  /**
   * Queues an event; it is sent in the background, in order. The returned
   * effect waits for the outcome (running it is optional).
   */
  readonly event: (event: Request.EventRequest) => Effect.Effect<Effect.Effect<void, OmahaClient.AppRequestError>>
}

/** An app client as a service, for programs that update one app. */
export class AppClient extends Context.Tag("effect-omaha/client/AppClient")<AppClient, AppClientService>() {}

const active = new Request.PingRequest({ active: 1 })

/** Builds an app client; its app id stays claimed on the Omaha client for the scope. */
export const make = (
  options: Options
): Effect.Effect<AppClientService, EmptySetting | OmahaClient.DuplicateAppId, OmahaClient.OmahaClient | Scope.Scope> =>
  Effect.gen(function*() {
    const omaha = yield* OmahaClient.OmahaClient
    const { appId } = options
    if (appId === "") return yield* new EmptySetting({ appId, setting: "appId" })
    if (options.version === "") return yield* new EmptySetting({ appId, setting: "version" })
    if (options.track === "") return yield* new EmptySetting({ appId, setting: "track" })
    yield* omaha.claimAppId(appId)
    const settings = yield* Ref.make<Options>(options)

    const nonEmpty = (setting: "version" | "track", value: string) =>
      value === "" ? Effect.fail(new EmptySetting({ appId, setting })) : Effect.void

    // Unchecked construction: every string is checked once, when the request
    // is encoded, and a bad one fails there as `InvalidRequest`.
    const appRequest = (parts: AppParts) =>
      Effect.map(Ref.get(settings), (current) =>
        new Request.AppRequest({
          ...current,
          // go-omaha and update_engine repeat the ids in the app element for servers that read them there.
          machineId: omaha.userId,
          bootId: omaha.sessionId,
          ...(parts.ping === undefined ? {} : { ping: parts.ping }),
          ...(parts.updateCheck === undefined ? {} : { updateCheck: parts.updateCheck }),
          events: parts.events ?? []
        }, true))

    const sendEvent = (event: Request.EventRequest, sendOptions?: OmahaClient.SendOptions) =>
      Effect.gen(function*() {
        const request = yield* omaha.makeRequest([yield* appRequest({ events: [event] })])
        return yield* omaha.enqueue(request, appId, sendOptions)
      })
    const event = Effect.fn("AppClient.event")(function*(event: Request.EventRequest) {
      return yield* sendEvent(event)
    })

    // A request that failed after all its retries (the server unreachable or
    // failing) gets one try for its error event: the retries were just spent.
    const reportFailure = <A, E extends CheckError, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.tapError(effect, (error) =>
        sendsErrorEvent(error)
          ? Effect.asVoid(sendEvent(ExitCode.errorEvent(exitCodeOf(error)), isExhausted(error) ? { tries: 1 } : undefined))
          : Effect.void)

    const invalid = (reason: string) => new OmahaClient.ResponseInvalid({ url: omaha.url, appId, reason })

    const answer = (check: Response.UpdateResponse | undefined): Effect.Effect<CheckResult, CheckError> => {
      if (check === undefined) return Effect.fail(invalid("the response has no updatecheck"))
      switch (check.status) {
        case "noupdate":
          return Effect.succeed(new NoUpdate({ update: check }))
        case "ok": {
          const [manifest] = check.manifests
          if (manifest === undefined) return Effect.fail(invalid("the update has no manifest"))
          if (!check.urls.some((url) => url.codebase !== "")) return Effect.fail(invalid("the update has no URL"))
          return Effect.succeed(new UpdateAvailable({ update: check, manifest }))
        }
        default:
          return Effect.fail(new UpdateCheckError({ url: omaha.url, appId, status: check.status }))
      }
    }

    const updateCheck = Effect.fn("AppClient.updateCheck")(function*(checkOptions: CheckOptions = {}) {
      const app = yield* appRequest({
        ping: active,
        updateCheck: new Request.UpdateRequest({
          ...(checkOptions.targetVersionPrefix === undefined ? {} : { targetVersionPrefix: checkOptions.targetVersionPrefix }),
          ...(checkOptions.updateDisabled === undefined ? {} : { updateDisabled: checkOptions.updateDisabled })
        }, true),
        // Tells CoreUpdate-style servers this instance is in its "complete"
        // state; a ping alone reads there as an instance on hold.
        events: [
          checkOptions.previousVersion === undefined
            ? Events.complete
            : new Request.EventRequest({ ...Events.complete, previousVersion: checkOptions.previousVersion }, true)
        ]
      })
      const request = yield* omaha.makeRequest([app], checkOptions)
      return yield* reportFailure(
        Effect.flatMap(omaha.sendApp(request, appId), (response) => answer(response.updateCheck))
      )
    })

    const ping = Effect.fn("AppClient.ping")(function*(requestOptions: OmahaClient.RequestOptions = {}) {
      const request = yield* omaha.makeRequest([yield* appRequest({ ping: active })], requestOptions)
      yield* reportFailure(omaha.sendApp(request, appId))
    })

    return {
      appId,
      settings: Ref.get(settings),
      setVersion: (version) =>
        Effect.zipRight(nonEmpty("version", version), Ref.update(settings, (s) => ({ ...s, version }))),
      setTrack: (track) => Effect.zipRight(nonEmpty("track", track), Ref.update(settings, (s) => ({ ...s, track }))),
      setOem: (oem, oemVersion) =>
        Ref.update(settings, ({ oemVersion: _previous, ...s }) => ({
          ...s,
          oem,
          ...(oemVersion === undefined ? {} : { oemVersion })
        })),
      appRequest,
      updateCheck,
      ping,
      event
    } satisfies AppClientService
  })

/** One app client as a layer. */
export const layer = (
  options: Options
): Layer.Layer<AppClient, EmptySetting | OmahaClient.DuplicateAppId, OmahaClient.OmahaClient> =>
  Layer.scoped(AppClient, make(options))
