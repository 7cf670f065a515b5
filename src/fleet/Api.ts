/**
 * The fleet's admin API: an `HttpApi` under `/api/` (applications,
 * packages, channels with floors and blocklists, groups, instances,
 * activity, tokens), `/api/openapi.json` and `/health`. JSON in and out
 * with camelCase fields; every error is `{"error": "<tag>", "message": "<one
 * line>"}` with a 4xx or 5xx status (`ApiError.ts`). Every `/api/` route
 * but the OpenAPI document needs a bearer token (`Auth.ts`); viewers may
 * only read.
 *
 * Hostile input is refused before anything is stored: JSON bodies over
 * `maxBodyBytes` (413, before reading when Content-Length says so), bodies
 * that are not JSON (415) or do not parse (400), unknown fields anywhere in
 * a body or query (400), uploads over the upload limit (413, the file
 * removed and no package written).
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiSchema,
  type HttpApp,
  HttpServerRequest,
  HttpServerResponse,
  OpenApi
} from "@effect/platform"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Effect, Layer, Option, Schema } from "effect"
import { Readable } from "node:stream"
import { packageVersion } from "../internal/version.js"
import * as Version from "../protocol/Version.js"
import { type InvalidPackageName, isValidName } from "../server/PackageFiles.js"
import * as ApiError from "./ApiError.js"
import * as Auth from "./Auth.js"
import * as Body from "./internal/body.js"
import {
  Activity,
  ApiToken,
  Application,
  Arch,
  Base64Digest,
  Channel,
  ExtraFile,
  FailureBrake,
  Group,
  GroupStatus,
  InstanceDetail,
  InstancePage,
  MaintenanceWindow,
  Package,
  Policy,
  PostinstallAction,
  Role,
  Status,
  Timeline,
  TimelineWindow,
  Webhook,
  WebhookKind
} from "./Model.js"
import { Payloads, type PayloadStorageFailed, type PayloadTooLarge } from "./Payloads.js"
import { RolloutStatus } from "./RolloutStatus.js"
import { Store, type StoreError } from "./Store.js"
import { type InvalidWebhookUrl, type WebhookAppNotFound, type WebhookNotFound, Webhooks } from "./Webhooks.js"

// -- schemas ------------------------------------------------------------------

// Unknown fields are refused, not ignored, in bodies and queries alike.
// Query schemas carry no identifier: the OpenAPI document lists their
// fields as parameters only when they are not a reference.
const strict = { parseOptions: { onExcessProperty: "error" } } as const

/** A version as packages and channels name it (semantic or dotted). */
export const VersionText = Schema.Trimmed.pipe(
  Schema.minLength(1),
  Schema.maxLength(100),
  Schema.filter((s) => Option.isSome(Version.parseOption(s)) || `${JSON.stringify(s)} is not a version (e.g. 3815.2.0)`)
).annotations({ identifier: "VersionText" })

/** A payload's file name: one plain name, not starting with a dot. */
export const PayloadName = Schema.String.pipe(
  Schema.filter((s) => isValidName(s) || `${JSON.stringify(s)} is not a plain file name (such as update.gz)`)
).annotations({ identifier: "PayloadName" })

const digestOf = (bytes: number, name: string) =>
  Base64Digest.pipe(
    Schema.filter((s) => Buffer.from(s, "base64").length === bytes || `a ${name} digest is ${bytes} bytes in base64`)
  )

const validTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone })
    return true
  } catch {
    return false
  }
}

const Window = MaintenanceWindow.pipe(
  Schema.filter((w) => validTimeZone(w.timeZone) || `unknown time zone ${JSON.stringify(w.timeZone)} (use an IANA name such as Europe/Berlin)`)
)

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

/** A policy in a request: every field optional; `null` clears `maxConcurrentUpdates` or `failureBrake`. */
export const PolicyInput = Schema.Struct({
  updatesEnabled: optional(Policy.fields.updatesEnabled),
  maxUpdatesPerPeriod: optional(Policy.fields.maxUpdatesPerPeriod),
  periodSeconds: optional(Policy.fields.periodSeconds),
  maxConcurrentUpdates: optional(Schema.NullOr(Schema.NonNegativeInt)),
  updateTimeoutSeconds: optional(Policy.fields.updateTimeoutSeconds),
  safeMode: optional(Policy.fields.safeMode),
  rolloutPercent: optional(Policy.fields.rolloutPercent),
  allowDowngrade: optional(Policy.fields.allowDowngrade),
  failureBrake: optional(Schema.NullOr(FailureBrake)),
  windows: optional(Schema.Array(Window))
}).annotations({ identifier: "PolicyInput", ...strict })

/** The body of `POST /api/apps`. */
export const CreateApplication = Schema.Struct({
  id: Application.fields.id,
  name: Application.fields.name,
  description: optional(Application.fields.description)
}).annotations({ identifier: "CreateApplication", ...strict })

/** The body of `PATCH /api/apps/{app}`. */
export const UpdateApplication = Schema.Struct({
  name: optional(Application.fields.name),
  description: optional(Application.fields.description)
}).annotations({ identifier: "UpdateApplication", ...strict })

/** update_engine's postinstall action in a request; what is left out takes its default. */
export const ActionInput = Schema.Struct({
  isDelta: optional(PostinstallAction.fields.isDelta),
  needsAdmin: optional(PostinstallAction.fields.needsAdmin),
  disablePayloadBackoff: optional(PostinstallAction.fields.disablePayloadBackoff),
  metadataSignatureRsa: optional(Schema.String),
  metadataSize: optional(Schema.String),
  deadline: optional(Schema.String),
  chromeOsVersion: optional(Schema.String)
}).annotations({ identifier: "ActionInput", ...strict })

/** The body of `POST /api/apps/{app}/packages`: an external payload and its facts. */
export const RegisterPackage = Schema.Struct({
  version: VersionText,
  arch: Arch,
  name: PayloadName,
  url: Schema.String.pipe(Schema.maxLength(2000)),
  size: Schema.NonNegativeInt,
  sha1: digestOf(20, "SHA-1"),
  sha256: digestOf(32, "SHA-256"),
  action: optional(ActionInput),
  extraFiles: optional(Schema.Array(ExtraFile))
}).annotations({ identifier: "RegisterPackage", ...strict })

/** The query of an upload. */
export const UploadParams = Schema.Struct({
  arch: Arch,
  name: optional(PayloadName),
  isDelta: optional(Schema.BooleanFromString),
  needsAdmin: optional(Schema.BooleanFromString),
  disablePayloadBackoff: optional(Schema.BooleanFromString),
  metadataSignatureRsa: optional(Schema.String),
  metadataSize: optional(Schema.String),
  deadline: optional(Schema.String),
  chromeOsVersion: optional(Schema.String)
}).annotations(strict)

/** `?arch=`: which arch, where a version or channel name exists for several. */
export const ArchParam = Schema.Struct({ arch: optional(Arch) }).annotations(strict)

/** The body of `POST /api/apps/{app}/channels`. */
export const CreateChannel = Schema.Struct({
  name: Channel.fields.name,
  arch: Arch,
  package: optional(VersionText),
  color: optional(Schema.String.pipe(Schema.maxLength(50)))
}).annotations({ identifier: "CreateChannel", ...strict })

/** The body of `PATCH /api/apps/{app}/channels/{name}`; `package: null` points the channel at nothing. */
export const UpdateChannel = Schema.Struct({
  package: optional(Schema.NullOr(VersionText)),
  color: optional(Schema.String.pipe(Schema.maxLength(50)))
}).annotations({ identifier: "UpdateChannel", ...strict })

/** The body of `PUT .../floors/{version}` (may be empty). */
export const SetFloor = Schema.NullOr(
  Schema.Struct({ reason: Schema.String.pipe(Schema.maxLength(1000)) }).annotations({ identifier: "SetFloor", ...strict })
)

/** The body of `POST /api/apps/{app}/groups`; the track defaults to the name. */
export const CreateGroup = Schema.Struct({
  name: Group.fields.name,
  description: optional(Schema.String.pipe(Schema.maxLength(2000))),
  track: optional(Group.fields.track),
  channel: Group.fields.channel,
  policy: optional(PolicyInput)
}).annotations({ identifier: "CreateGroup", ...strict })

/** The body of `PATCH /api/apps/{app}/groups/{name}`: what is left out keeps its value, policy fields included. */
export const UpdateGroup = Schema.Struct({
  name: optional(Group.fields.name),
  description: optional(Schema.String.pipe(Schema.maxLength(2000))),
  track: optional(Group.fields.track),
  channel: optional(Group.fields.channel),
  policy: optional(PolicyInput)
}).annotations({ identifier: "UpdateGroup", ...strict })

/** The body of `POST .../pause` (may be empty). */
export const PauseGroup = Schema.NullOr(
  Schema.Struct({ reason: optional(Schema.String.pipe(Schema.maxLength(500))) }).annotations({ identifier: "PauseGroup", ...strict })
)

const PositiveIntFromString = Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(1))

/** The columns the instance list sorts by. */
export const InstanceSort = Schema.Literal("machineId", "alias", "group", "version", "status", "lastCheck")

/** The query of the instance list. */
export const InstanceParams = Schema.Struct({
  group: optional(Schema.String),
  status: optional(Status),
  version: optional(Schema.String),
  /** Machines whose id, alias or address contains this text (any case). */
  search: optional(Schema.String.pipe(Schema.maxLength(200))),
  /** The column to sort by; default `lastCheck` (newest first). */
  sort: optional(InstanceSort),
  /** `asc` or `desc`; default `asc`, but `desc` for `lastCheck`. */
  order: optional(Schema.Literal("asc", "desc")),
  /** ISO 8601: machines whose last check was at or after it. */
  lastCheckAfter: optional(Schema.Date),
  /** ISO 8601: machines whose last check was before it. */
  lastCheckBefore: optional(Schema.Date),
  page: optional(PositiveIntFromString),
  perPage: optional(PositiveIntFromString.pipe(Schema.lessThanOrEqualTo(1000)))
}).annotations(strict)

/** The query of a group's timeline: `window` is 1h, 1d (the default), 7d or 30d. */
export const TimelineParams = Schema.Struct({ window: optional(TimelineWindow) }).annotations(strict)

/** The query of the activity feed. */
export const ActivityParams = Schema.Struct({
  app: optional(Schema.String),
  before: optional(PositiveIntFromString),
  limit: optional(PositiveIntFromString.pipe(Schema.lessThanOrEqualTo(1000)))
}).annotations(strict)

/** The body of `POST /api/tokens`. */
export const CreateToken = Schema.Struct({
  role: Role,
  name: optional(Schema.String.pipe(Schema.maxLength(200)))
}).annotations({ identifier: "CreateToken", ...strict })

const WebhookUrl = Schema.String.pipe(Schema.maxLength(2000))
const WebhookSecret = Schema.String.pipe(
  Schema.minLength(16, { message: () => "a webhook secret is at least 16 characters" }),
  Schema.maxLength(1000)
)
const WebhookKinds = Schema.Array(WebhookKind).pipe(Schema.minItems(1))

/** The body of `POST /api/webhooks`; the secret is never shown again. */
export const CreateWebhook = Schema.Struct({
  url: WebhookUrl,
  secret: WebhookSecret,
  kinds: WebhookKinds,
  appId: optional(Schema.String),
  description: optional(Schema.String.pipe(Schema.maxLength(2000)))
}).annotations({ identifier: "CreateWebhook", ...strict })

/** The body of `PATCH /api/webhooks/{id}`: what is left out keeps its value; `appId: null` hears every application. */
export const UpdateWebhook = Schema.Struct({
  url: optional(WebhookUrl),
  secret: optional(WebhookSecret),
  kinds: optional(WebhookKinds),
  appId: optional(Schema.NullOr(Schema.String)),
  description: optional(Schema.String.pipe(Schema.maxLength(2000)))
}).annotations({ identifier: "UpdateWebhook", ...strict })

/** A new token: the token itself, shown this once, and what is stored about it. */
export class CreatedToken extends Schema.Class<CreatedToken>("CreatedToken")({
  token: Schema.String,
  ...ApiToken.fields
}) {}

/** What `/health` answers while the database does. */
export class Health extends Schema.Class<Health>("Health")({ status: Schema.Literal("ok") }) {}

// -- the API ------------------------------------------------------------------

const appParam = HttpApiSchema.param("app", Schema.String)
const versionParam = HttpApiSchema.param("version", VersionText)
const nameParam = HttpApiSchema.param("name", Schema.String)
const machineParam = HttpApiSchema.param("machineId", Schema.String)
const tokenParam = HttpApiSchema.param("id", Schema.NumberFromString.pipe(Schema.int()))

/** Applications. */
export class AppsGroup extends HttpApiGroup.make("apps")
  .add(HttpApiEndpoint.post("createApp", "/apps").setPayload(CreateApplication).addSuccess(Application, { status: 201 }))
  .add(HttpApiEndpoint.get("listApps", "/apps").addSuccess(Schema.Array(Application)))
  .add(HttpApiEndpoint.get("getApp")`/apps/${appParam}`.addSuccess(Application))
  .add(HttpApiEndpoint.patch("updateApp")`/apps/${appParam}`.setPayload(UpdateApplication).addSuccess(Application))
  .add(HttpApiEndpoint.del("deleteApp")`/apps/${appParam}`)
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** Packages: uploaded (hosted) or registered by URL. */
export class PackagesGroup extends HttpApiGroup.make("packages")
  .add(
    HttpApiEndpoint.put("uploadPackage")`/apps/${appParam}/packages/${versionParam}`
      .setUrlParams(UploadParams)
      .setPayload(HttpApiSchema.Uint8Array({ contentType: "application/octet-stream" }))
      .addSuccess(Package, { status: 201 })
  )
  .add(
    HttpApiEndpoint.post("registerPackage")`/apps/${appParam}/packages`.setPayload(RegisterPackage).addSuccess(Package, {
      status: 201
    })
  )
  .add(HttpApiEndpoint.get("listPackages")`/apps/${appParam}/packages`.addSuccess(Schema.Array(Package)))
  .add(HttpApiEndpoint.get("getPackage")`/apps/${appParam}/packages/${versionParam}`.setUrlParams(ArchParam).addSuccess(Package))
  .add(HttpApiEndpoint.del("deletePackage")`/apps/${appParam}/packages/${versionParam}`.setUrlParams(ArchParam))
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** Channels, their floors and their blocklists. */
export class ChannelsGroup extends HttpApiGroup.make("channels")
  .add(HttpApiEndpoint.post("createChannel")`/apps/${appParam}/channels`.setPayload(CreateChannel).addSuccess(Channel, { status: 201 }))
  .add(HttpApiEndpoint.get("listChannels")`/apps/${appParam}/channels`.addSuccess(Schema.Array(Channel)))
  .add(HttpApiEndpoint.get("getChannel")`/apps/${appParam}/channels/${nameParam}`.setUrlParams(ArchParam).addSuccess(Channel))
  .add(
    HttpApiEndpoint.patch("updateChannel")`/apps/${appParam}/channels/${nameParam}`
      .setUrlParams(ArchParam)
      .setPayload(UpdateChannel)
      .addSuccess(Channel)
  )
  .add(HttpApiEndpoint.del("deleteChannel")`/apps/${appParam}/channels/${nameParam}`.setUrlParams(ArchParam))
  .add(
    HttpApiEndpoint.put("setFloor")`/apps/${appParam}/channels/${nameParam}/floors/${versionParam}`
      .setUrlParams(ArchParam)
      .setPayload(SetFloor)
      .addSuccess(Channel)
  )
  .add(
    HttpApiEndpoint.del("removeFloor")`/apps/${appParam}/channels/${nameParam}/floors/${versionParam}`
      .setUrlParams(ArchParam)
      .addSuccess(Channel)
  )
  .add(
    HttpApiEndpoint.put("blockVersion")`/apps/${appParam}/channels/${nameParam}/blocklist/${versionParam}`
      .setUrlParams(ArchParam)
      .addSuccess(Channel)
  )
  .add(
    HttpApiEndpoint.del("unblockVersion")`/apps/${appParam}/channels/${nameParam}/blocklist/${versionParam}`
      .setUrlParams(ArchParam)
      .addSuccess(Channel)
  )
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** Groups and their rollout policy. */
export class GroupsGroup extends HttpApiGroup.make("groups")
  .add(HttpApiEndpoint.post("createGroup")`/apps/${appParam}/groups`.setPayload(CreateGroup).addSuccess(Group, { status: 201 }))
  .add(HttpApiEndpoint.get("listGroups")`/apps/${appParam}/groups`.addSuccess(Schema.Array(Group)))
  .add(HttpApiEndpoint.get("getGroup")`/apps/${appParam}/groups/${nameParam}`.addSuccess(Group))
  .add(HttpApiEndpoint.patch("updateGroup")`/apps/${appParam}/groups/${nameParam}`.setPayload(UpdateGroup).addSuccess(Group))
  .add(HttpApiEndpoint.del("deleteGroup")`/apps/${appParam}/groups/${nameParam}`)
  .add(HttpApiEndpoint.post("pauseGroup")`/apps/${appParam}/groups/${nameParam}/pause`.setPayload(PauseGroup).addSuccess(Group))
  .add(HttpApiEndpoint.post("resumeGroup")`/apps/${appParam}/groups/${nameParam}/resume`.addSuccess(Group))
  .add(HttpApiEndpoint.get("groupStatus")`/apps/${appParam}/groups/${nameParam}/status`.addSuccess(GroupStatus))
  .add(
    HttpApiEndpoint.get("groupTimeline")`/apps/${appParam}/groups/${nameParam}/timeline`
      .setUrlParams(TimelineParams)
      .addSuccess(Timeline)
  )
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** Machines, as they checked in. */
export class InstancesGroup extends HttpApiGroup.make("instances")
  .add(HttpApiEndpoint.get("listInstances")`/apps/${appParam}/instances`.setUrlParams(InstanceParams).addSuccess(InstancePage))
  .add(HttpApiEndpoint.get("getInstance")`/apps/${appParam}/instances/${machineParam}`.addSuccess(InstanceDetail))
  .add(HttpApiEndpoint.del("deleteInstance")`/apps/${appParam}/instances/${machineParam}`)
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** The activity feed and API tokens. */
export class AdminGroup extends HttpApiGroup.make("admin")
  .add(HttpApiEndpoint.get("session", "/session").addSuccess(ApiToken))
  .add(HttpApiEndpoint.get("listActivity", "/activity").setUrlParams(ActivityParams).addSuccess(Schema.Array(Activity)))
  .add(HttpApiEndpoint.get("listTokens", "/tokens").addSuccess(Schema.Array(ApiToken)))
  .add(HttpApiEndpoint.post("createToken", "/tokens").setPayload(CreateToken).addSuccess(CreatedToken, { status: 201 }))
  .add(HttpApiEndpoint.del("deleteToken")`/tokens/${tokenParam}`)
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** Webhooks: admin tokens only, reads included (their URLs may carry credentials); the secret is write-only. */
export class WebhooksGroup extends HttpApiGroup.make("webhooks")
  .add(HttpApiEndpoint.get("listWebhooks", "/webhooks").addSuccess(Schema.Array(Webhook)))
  .add(HttpApiEndpoint.post("createWebhook", "/webhooks").setPayload(CreateWebhook).addSuccess(Webhook, { status: 201 }))
  .add(HttpApiEndpoint.get("getWebhook")`/webhooks/${tokenParam}`.addSuccess(Webhook))
  .add(HttpApiEndpoint.patch("updateWebhook")`/webhooks/${tokenParam}`.setPayload(UpdateWebhook).addSuccess(Webhook))
  .add(HttpApiEndpoint.del("deleteWebhook")`/webhooks/${tokenParam}`)
  .addError(ApiError.Forbidden)
  .middleware(Auth.Authentication)
  .prefix("/api")
{}

/** `/health`, without a token: 200 while the database answers, else 503. */
export class HealthGroup extends HttpApiGroup.make("health")
  .add(HttpApiEndpoint.get("health", "/health").addSuccess(Health).addError(ApiError.Unavailable))
{}

/** The whole admin API. */
export class FleetApi extends HttpApi.make("fleet")
  .add(AppsGroup)
  .add(PackagesGroup)
  .add(ChannelsGroup)
  .add(GroupsGroup)
  .add(InstancesGroup)
  .add(AdminGroup)
  .add(WebhooksGroup)
  .add(HealthGroup)
  .addError(ApiError.InvalidRequest)
  .addError(ApiError.NotFound)
  .addError(ApiError.Conflict)
  .addError(ApiError.PayloadTooLarge)
  .addError(ApiError.UnsupportedMediaType)
  .addError(ApiError.MissingReference)
  .addError(ApiError.Internal)
  .annotate(OpenApi.Title, "fleet-server admin API")
  .annotate(OpenApi.Version, packageVersion)
  .annotate(
    OpenApi.Description,
    "Applications, packages, channels, groups, instances and activity of an effect-omaha fleet server. " +
      "Send Authorization: Bearer <token> (fleet-server token create); viewer tokens may only read."
  )
{}

// -- handlers -----------------------------------------------------------------

/** The error bodies a store failure becomes. */
export type StoreApiError =
  | ApiError.NotFound
  | ApiError.Conflict
  | ApiError.MissingReference
  | ApiError.InvalidRequest
  | ApiError.Internal

/** A store failure as the API answers it. */
export const fromStore = (error: StoreError | Body.BodyAborted): Effect.Effect<never, StoreApiError> => {
  switch (error._tag) {
    case "NotFound":
      return Effect.fail(new ApiError.NotFound({ message: error.message }))
    case "Conflict":
      return Effect.fail(new ApiError.Conflict({ message: error.message }))
    case "MissingReference":
      return Effect.fail(new ApiError.MissingReference({ message: error.message }))
    case "AmbiguousArch":
    case "InvalidInput":
    case "BodyAborted":
      return Effect.fail(new ApiError.InvalidRequest({ message: error.message }))
    default:
      return Effect.zipRight(
        Effect.logError("database request failed", error),
        Effect.fail(new ApiError.Internal({ message: "the database request failed" }))
      )
  }
}

const api = <A, E extends StoreError, R>(effect: Effect.Effect<A, E, R>) => Effect.catchAll(effect, fromStore)

const AppsLive = HttpApiBuilder.group(FleetApi, "apps", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    const payloads = yield* Payloads
    return handlers
      .handle("createApp", ({ payload }) => api(store.createApplication(payload)))
      .handle("listApps", () => api(store.listApplications()))
      .handle("getApp", ({ path }) => api(store.getApplication(path.app)))
      .handle("updateApp", ({ path, payload }) => api(store.updateApplication(path.app, payload)))
      .handle("deleteApp", ({ path }) => api(payloads.removeApplication(path.app)))
  }))

const encodePackage = HttpServerResponse.schemaJson(Package)

type UploadFailure =
  | StoreError
  | Body.BodyTooLarge
  | Body.BodyAborted
  | PayloadTooLarge
  | PayloadStorageFailed
  | InvalidPackageName

const uploadError = (
  e: UploadFailure
): Effect.Effect<never, ApiError.PayloadTooLarge | StoreApiError> => {
  switch (e._tag) {
    case "BodyTooLarge":
    case "PayloadTooLarge":
      return Effect.fail(new ApiError.PayloadTooLarge({ message: e.message }))
    case "InvalidPackageName":
      return Effect.fail(new ApiError.InvalidRequest({ message: e.message }))
    case "PayloadStorageFailed":
      return Effect.zipRight(
        Effect.logError(e.message),
        Effect.fail(new ApiError.Internal({ message: "the payload could not be stored" }))
      )
    default:
      return fromStore(e)
  }
}

const PackagesLive = HttpApiBuilder.group(FleetApi, "packages", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    const payloads = yield* Payloads
    return handlers
      .handleRaw("uploadPackage", ({ path, request, urlParams }) =>
        Effect.gen(function*() {
          const declared = request.headers["content-length"]
          if (declared !== undefined && Number(declared) > payloads.maxUploadBytes) {
            return yield* Effect.fail(new ApiError.PayloadTooLarge({
              message: `the payload of ${declared} bytes is over the ${payloads.maxUploadBytes}-byte upload limit`
            }))
          }
          const { arch, name, ...action } = urlParams
          const uploaded = yield* payloads.upload({
            appId: path.app,
            version: path.version,
            arch,
            name: name ?? "update.gz",
            action,
            body: Body.stream(request, payloads.maxUploadBytes)
          }).pipe(Effect.catchAll(uploadError))
          return yield* Effect.orDie(encodePackage(uploaded, { status: 201 }))
        }))
      .handle("registerPackage", ({ path, payload }) =>
        payloads.register({ ...payload, appId: path.app }).pipe(
          Effect.catchTags({
            InvalidPayloadUrl: (e) => Effect.fail(new ApiError.InvalidRequest({ message: e.message })),
            InvalidPackageName: (e) => Effect.fail(new ApiError.InvalidRequest({ message: e.message }))
          }),
          Effect.catchAll((e) => (ApiError.isApiError(e) ? Effect.fail(e) : fromStore(e)))
        ))
      .handle("listPackages", ({ path }) => api(store.listPackages(path.app)))
      .handle("getPackage", ({ path, urlParams }) => api(store.getPackage(path.app, path.version, urlParams.arch)))
      .handle("deletePackage", ({ path, urlParams }) => api(Effect.asVoid(payloads.remove(path.app, path.version, urlParams.arch))))
  }))

const ChannelsLive = HttpApiBuilder.group(FleetApi, "channels", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    const key = (path: { readonly app: string; readonly name: string }, urlParams: { readonly arch?: Arch }) => ({
      appId: path.app,
      name: path.name,
      arch: urlParams.arch
    })
    return handlers
      .handle("createChannel", ({ path, payload }) => api(store.createChannel({ ...payload, appId: path.app })))
      .handle("listChannels", ({ path }) => api(store.listChannels(path.app)))
      .handle("getChannel", ({ path, urlParams }) => api(store.getChannel(key(path, urlParams))))
      .handle("updateChannel", ({ path, payload, urlParams }) => api(store.updateChannel(key(path, urlParams), payload)))
      .handle("deleteChannel", ({ path, urlParams }) => api(Effect.asVoid(store.deleteChannel(key(path, urlParams)))))
      .handle("setFloor", ({ path, payload, urlParams }) =>
        api(store.setFloor(key(path, urlParams), path.version, payload?.reason ?? "")))
      .handle("removeFloor", ({ path, urlParams }) => api(store.removeFloor(key(path, urlParams), path.version)))
      .handle("blockVersion", ({ path, urlParams }) => api(store.blockVersion(key(path, urlParams), path.version)))
      .handle("unblockVersion", ({ path, urlParams }) => api(store.unblockVersion(key(path, urlParams), path.version)))
  }))

const GroupsLive = HttpApiBuilder.group(FleetApi, "groups", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    const rollouts = yield* RolloutStatus
    return handlers
      .handle("createGroup", ({ path, payload }) => api(store.createGroup({ ...payload, appId: path.app })))
      .handle("listGroups", ({ path }) => api(store.listGroups(path.app)))
      .handle("getGroup", ({ path }) => api(store.getGroup(path.app, path.name)))
      .handle("updateGroup", ({ path, payload }) => api(store.updateGroup(path.app, path.name, payload)))
      .handle("deleteGroup", ({ path }) => api(Effect.asVoid(store.deleteGroup(path.app, path.name))))
      .handle("pauseGroup", ({ path, payload }) => api(store.pauseGroup(path.app, path.name, payload?.reason)))
      .handle("resumeGroup", ({ path }) => api(store.resumeGroup(path.app, path.name)))
      .handle("groupStatus", ({ path }) => api(rollouts.groupStatus(path.app, path.name)))
      .handle("groupTimeline", ({ path, urlParams }) => api(rollouts.timeline(path.app, path.name, urlParams.window ?? "1d")))
  }))

const InstancesLive = HttpApiBuilder.group(FleetApi, "instances", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    return handlers
      .handle("listInstances", ({ path, urlParams }) => api(store.listInstances(path.app, urlParams)))
      .handle("getInstance", ({ path }) => api(store.getInstance(path.app, path.machineId)))
      .handle("deleteInstance", ({ path }) => api(Effect.asVoid(store.deleteInstance(path.app, path.machineId))))
  }))

const AdminLive = HttpApiBuilder.group(FleetApi, "admin", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    return handlers
      .handle("session", () => Auth.Caller)
      .handle("listActivity", ({ urlParams }) =>
        api(store.listActivity({ appId: urlParams.app, before: urlParams.before, limit: urlParams.limit })))
      .handle("listTokens", () => api(store.listTokens()))
      .handle("createToken", ({ payload }) =>
        api(Auth.createToken(payload)).pipe(
          Effect.map(({ stored, token }) => new CreatedToken({ token, ...stored })),
          Effect.provideService(Store, store)
        ))
      .handle("deleteToken", ({ path }) => api(Effect.asVoid(store.deleteToken(path.id))))
  }))

// The webhook service's failures as the API answers them.
const fromWebhooks = <A, R>(
  effect: Effect.Effect<
    A,
    InvalidWebhookUrl | WebhookNotFound | WebhookAppNotFound | SqlError,
    R
  >
) =>
  Effect.gen(function*() {
    const caller = yield* Auth.Caller
    if (caller.role !== "admin") {
      return yield* Effect.fail(new ApiError.Forbidden({ message: "webhooks need an admin token, to read them too" }))
    }
    return yield* effect.pipe(
      Effect.catchTags({
        InvalidWebhookUrl: (e) => Effect.fail(new ApiError.InvalidRequest({ message: e.message })),
        WebhookAppNotFound: (e) => Effect.fail(new ApiError.MissingReference({ message: e.message })),
        WebhookNotFound: (e) => Effect.fail(new ApiError.NotFound({ message: e.message })),
        SqlError: (e) => fromStore(e)
      })
    )
  })

const WebhooksLive = HttpApiBuilder.group(FleetApi, "webhooks", (handlers) =>
  Effect.gen(function*() {
    const webhooks = yield* Webhooks
    return handlers
      .handle("listWebhooks", () => fromWebhooks(webhooks.list))
      .handle("createWebhook", ({ payload }) => fromWebhooks(webhooks.create(payload)))
      .handle("getWebhook", ({ path }) => fromWebhooks(webhooks.get(path.id)))
      .handle("updateWebhook", ({ path, payload }) => fromWebhooks(webhooks.update(path.id, payload)))
      .handle("deleteWebhook", ({ path }) => fromWebhooks(Effect.asVoid(webhooks.remove(path.id))))
  }))

const HealthLive = HttpApiBuilder.group(FleetApi, "health", (handlers) =>
  Effect.gen(function*() {
    const store = yield* Store
    return handlers.handle("health", () =>
      store.ping.pipe(
        Effect.timeout("5 seconds"),
        Effect.as(new Health({ status: "ok" })),
        Effect.catchAll((e) =>
          Effect.zipRight(
            Effect.logWarning("health check: the database does not answer", e),
            Effect.fail(new ApiError.Unavailable({ message: "the database does not answer" }))
          )
        )
      ))
  }))

// -- hostile input and error bodies ------------------------------------------

/** How the API guards its input. */
export interface Options {
  /** The largest JSON body in bytes; default 1 MiB. */
  readonly maxBodyBytes?: number
}

/** The default largest JSON body. */
export const defaultMaxBodyBytes = 1024 * 1024

const pathOf = (url: string) => url.split("?", 1)[0]!
const uploadPath = /^\/api\/apps\/[^/]+\/packages\/[^/]+$/
const bodyMethods: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"])

const isJson = (contentType: string | undefined) => {
  if (contentType === undefined || contentType.trim() === "") return true
  const type = contentType.split(";", 1)[0]!.trim().toLowerCase()
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type)
}

// The request with its body already read: the builder then parses these
// bytes instead of reading the (consumed) stream again.
const withBody = (request: HttpServerRequest.HttpServerRequest, text: string, json: unknown) =>
  Object.create(request, {
    text: { value: Effect.succeed(text) },
    json: { value: Effect.succeed(json) },
    arrayBuffer: { value: Effect.succeed(new TextEncoder().encode(text).buffer) }
  }) as HttpServerRequest.HttpServerRequest

const decodeMessage = (error: HttpApiDecodeError): string => {
  const issues = error.issues.slice(0, 3).map((issue) =>
    issue.path.length === 0 ? issue.message : `${issue.path.join(".")}: ${issue.message}`
  )
  const more = error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : ""
  return `${issues.join("; ")}${more}`
}

// A response for whatever the API failed with: its own error bodies as
// they are, everything else as one of them.
const failureResponse = (cause: Cause.Cause<unknown>, request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const source = request.source
    const unread = source instanceof Readable && !source.readableEnded
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (ApiError.isApiError(error)) return ApiError.toResponse(error, unread || error.error === "PayloadTooLarge")
      if (error instanceof HttpApiDecodeError) {
        return ApiError.toResponse(new ApiError.InvalidRequest({ message: decodeMessage(error) }), unread)
      }
      const tag = (error as { readonly _tag?: unknown })._tag
      if (tag === "RouteNotFound") {
        return ApiError.toResponse(
          new ApiError.NotFound({ message: `no endpoint ${request.method} ${pathOf(request.url)}` }),
          unread
        )
      }
    }
    if (Cause.isInterruptedOnly(cause)) return yield* Effect.interrupt
    yield* Effect.logError("admin API request failed", cause)
    return ApiError.toResponse(new ApiError.Internal({ message: "internal error" }), unread)
  })

/**
 * The API's guard around its router: reads and parses JSON bodies within
 * the limit (uploads stream on), turns every failure into an error body,
 * and logs one line per request (method, path, status).
 */
export const guard = (options: Options = {}) => {
  const limit = options.maxBodyBytes ?? defaultMaxBodyBytes
  return (app: HttpApp.Default): HttpApp.Default =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = pathOf(request.url)
      if (!bodyMethods.has(request.method) || (request.method === "PUT" && uploadPath.test(path))) return yield* app
      const contentType = request.headers["content-type"]
      const declared = request.headers["content-length"]
      if (declared !== undefined && Number(declared) > limit) {
        return yield* Effect.fail(new ApiError.PayloadTooLarge({ message: `the body of ${declared} bytes is over the ${limit}-byte limit` }))
      }
      const bytes = yield* Body.read(request, limit).pipe(
        Effect.catchTags({
          BodyTooLarge: (e) => Effect.fail(new ApiError.PayloadTooLarge({ message: e.message })),
          BodyAborted: (e) => Effect.fail(new ApiError.InvalidRequest({ message: e.message }))
        })
      )
      if (bytes.byteLength > 0 && !isJson(contentType)) {
        return yield* Effect.fail(
          new ApiError.UnsupportedMediaType({ message: `content type ${JSON.stringify(contentType)}: send application/json` })
        )
      }
      const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes)
      const json = yield* Effect.try({
        try: () => (text.trim() === "" ? null : JSON.parse(text) as unknown),
        catch: (e) => new ApiError.InvalidRequest({ message: `the body is not JSON: ${(e as Error).message}` })
      })
      return yield* Effect.provideService(app, HttpServerRequest.HttpServerRequest, withBody(request, text, json))
    }).pipe(
      Effect.catchAllCause((cause) => Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => failureResponse(cause, request))),
      Effect.tap((response) =>
        Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
          Effect.logInfo("api").pipe(
            Effect.annotateLogs({ method: request.method, path: pathOf(request.url), status: response.status })
          ))
      )
    )
}

// The OpenAPI document as served: the decode error the framework declares
// for every API is never sent (it becomes InvalidRequest), so it goes.
const openApiDocument = () => {
  const spec = OpenApi.fromApi(FleetApi) as unknown as {
    paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string; anyOf?: Array<{ $ref?: string }> } }> }> }>>
    components: { schemas: Record<string, unknown> }
  }
  const decodeRef = "#/components/schemas/HttpApiDecodeError"
  for (const methods of Object.values(spec.paths)) {
    for (const operation of Object.values(methods)) {
      for (const response of Object.values(operation.responses ?? {})) {
        for (const media of Object.values(response.content ?? {})) {
          const anyOf = media.schema?.anyOf
          if (anyOf === undefined) continue
          const rest = anyOf.filter((s) => s.$ref !== decodeRef)
          media.schema = rest.length === 1 ? rest[0]! : { anyOf: rest }
        }
      }
    }
  }
  delete spec.components.schemas["HttpApiDecodeError"]
  delete spec.components.schemas["Issue"]
  return spec
}

/** The path of the OpenAPI document. */
export const openApiPath = "/api/openapi.json"

const OpenApiLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const response = yield* Effect.orDie(HttpServerResponse.json(openApiDocument()))
    yield* router.get(openApiPath, Effect.succeed(response))
  })
)

/**
 * The API (handlers, authentication, guard, OpenAPI document) as the
 * `HttpApi.Api` layer `HttpApiBuilder.httpApp` serves.
 */
export const layer = (options: Options = {}) =>
  HttpApiBuilder.api(FleetApi).pipe(
    Layer.provide([AppsLive, PackagesLive, ChannelsLive, GroupsLive, InstancesLive, AdminLive, WebhooksLive, HealthLive]),
    Layer.provide(Auth.layer),
    Layer.merge(OpenApiLive),
    Layer.merge(HttpApiBuilder.middleware(guard(options)))
  )

/**
 * The API as an `HttpApp` for `/api/` and `/health`, built once for the
 * scope; it needs the store and the payloads, and serves with
 * @effect/platform's default services (file system, path, ETag generator,
 * platform) that the server provides.
 */
export const makeApp = (options: Options = {}) =>
  Effect.flatMap(
    Layer.build(Layer.mergeAll(layer(options), HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer)),
    (context) => Effect.provide(HttpApiBuilder.httpApp, context)
  )
