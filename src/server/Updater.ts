/**
 * The backend an Omaha server asks about each app of a request: whether the
 * app is known, whether an update is offered, and what the client reported
 * (pings and events). Implementations decide; the handler turns their typed
 * outcomes into the response document.
 */
import { Context, Data, Effect, Layer, Schema } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { AppErrorStatus, UpdateErrorStatus } from "../protocol/Codes.js"
import type { AppRequest, EventRequest, Request } from "../protocol/Request.js"
import type { Manifest } from "../protocol/Response.js"

const withReason = (status: string, reason: string | undefined) => (reason === undefined ? status : `${status}: ${reason}`)

/** An app the server will not serve: its `app@status` and, for logs, why. */
export class AppRefused extends Schema.TaggedError<AppRefused>()("AppRefused", {
  status: AppErrorStatus,
  reason: Schema.optionalWith(Schema.String, { exact: true })
}) {
  override get message(): string {
    return withReason(this.status, this.reason)
  }
}

/** An update check the server answers with an error status, and for logs, why. */
export class UpdateRefused extends Schema.TaggedError<UpdateRefused>()("UpdateRefused", {
  status: UpdateErrorStatus,
  reason: Schema.optionalWith(Schema.String, { exact: true })
}) {
  override get message(): string {
    return withReason(this.status, this.reason)
  }
}

/** No update for this app now (`updatecheck status="noupdate"`); `reason` is for logs only. */
export class NoUpdate extends Data.TaggedClass("NoUpdate")<{ readonly reason?: string }> {}

/**
 * An update to offer: where the packages are (codebases; relative ones are
 * resolved against the server's public address) and one manifest, or several
 * for a multi-step update (floors first, the target last). Treat it as an
 * immutable value: the endpoint keeps the encoded answer of each `Update`
 * object (per origin) for as long as the object lives, so returning the same
 * object again is cheap, and a changed answer must be a new object.
 */
export class Update extends Data.TaggedClass("Update")<{
  readonly codebases: NonEmptyReadonlyArray<string>
  readonly manifests: NonEmptyReadonlyArray<Manifest>
  /** Seconds until the client should check again, if the server wants to say. */
  readonly pollInterval?: number
}> {}

/** Who sent a request, as far as the server can tell. */
export interface Client {
  /**
   * The client's IP address: the peer's, or the first `X-Forwarded-For`
   * address when the peer is a trusted proxy; undefined when unknown.
   */
  readonly address: string | undefined
}

/**
 * What a backend answers for each app of a request. For each app the
 * endpoint calls `checkApp`, then `event` for each event in document order,
 * then `ping`, then `checkUpdate`: update_engine reports the end of an update
 * (3/2) in the same request as its next check, so a backend that tracks
 * progress sees the report before it decides.
 */
export interface UpdaterService {
  /** Whether the app may be served at all. */
  readonly checkApp: (request: Request, app: AppRequest, client: Client) => Effect.Effect<void, AppRefused>
  /** The answer to the app's update check. */
  readonly checkUpdate: (
    request: Request,
    app: AppRequest,
    client: Client
  ) => Effect.Effect<Update | NoUpdate, UpdateRefused>
  /** Records an event the app reported. */
  readonly event: (request: Request, app: AppRequest, event: EventRequest, client: Client) => Effect.Effect<void>
  /** Records an app's ping. */
  readonly ping: (request: Request, app: AppRequest, client: Client) => Effect.Effect<void>
}

/** The backend of an Omaha server. */
export class Updater extends Context.Tag("effect-omaha/server/Updater")<Updater, UpdaterService>() {}

/** A backend that serves every app and never offers an update. */
export const layerNoUpdate: Layer.Layer<Updater> = Layer.succeed(Updater, {
  checkApp: () => Effect.void,
  checkUpdate: () => Effect.succeed(new NoUpdate({})),
  event: () => Effect.void,
  ping: () => Effect.void
})
