/**
 * The Omaha v3 response document (`<response>`): one class per element,
 * including update_engine's action extensions and multi-step manifests.
 */
import { Clock, Effect, Schema } from "effect"
import { dual } from "effect/Function"
import { AppStatus, UpdateStatus } from "./Codes.js"
import { Bool, elements, Int, NonNegativeInt, optional, textKey, wrapped, XmlText } from "./internal/wire.js"

/** `<daystart>`: the server's clock, for the client's day-based counting. */
export class DayStart extends Schema.Class<DayStart>("effect-omaha/DayStart")({
  /** Seconds since the server's local midnight. */
  elapsedSeconds: optional(Int).pipe(Schema.fromKey("elapsed_seconds")),
  /** Calendar days since 2007-01-01 in the server's time zone. */
  elapsedDays: optional(Int).pipe(Schema.fromKey("elapsed_days"))
}) {}

/** `app/ping` and `app/event` in a response: the acknowledgement, `status="ok"`. */
export class Ack extends Schema.Class<Ack>("effect-omaha/Ack")({
  status: optional(XmlText)
}) {}

/** `urls/url`: a base URL the package names are appended to. */
export class Url extends Schema.Class<Url>("effect-omaha/Url")({
  codebase: XmlText
}) {}

/** `package/metadata`: typed data about a package, carried as a CDATA body. */
export class Metadata extends Schema.Class<Metadata>("effect-omaha/Metadata")({
  contentType: optional(XmlText).pipe(Schema.fromKey("content-type")),
  content: optional(XmlText).pipe(Schema.fromKey(textKey))
}) {}

/** `packages/package`: one file to download. */
export class Package extends Schema.Class<Package>("effect-omaha/Package")({
  name: XmlText,
  /** Base64 SHA-1 of the file. */
  hash: optional(XmlText),
  /** SHA-256 of the file: base64 when we write it; hex from some servers. */
  hashSha256: optional(XmlText).pipe(Schema.fromKey("hash_sha256")),
  size: optional(NonNegativeInt),
  required: optional(Bool),
  metadata: optional(Metadata)
}) {}

/** `actions/action`: what to do with the packages, with update_engine's extensions. */
export class Action extends Schema.Class<Action>("effect-omaha/Action")({
  event: XmlText,
  run: optional(XmlText),
  arguments: optional(XmlText),
  /** Base64 SHA-256 of the payload (update_engine requires it on `postinstall`). */
  sha256: optional(XmlText),
  displayVersion: optional(XmlText).pipe(Schema.fromKey("DisplayVersion")),
  chromeOsVersion: optional(XmlText).pipe(Schema.fromKey("ChromeOSVersion")),
  needsAdmin: optional(Bool).pipe(Schema.fromKey("needsadmin")),
  isDeltaPayload: optional(Bool).pipe(Schema.fromKey("IsDeltaPayload")),
  disablePayloadBackoff: optional(Bool).pipe(Schema.fromKey("DisablePayloadBackoff")),
  maxFailureCountPerUrl: optional(Int).pipe(Schema.fromKey("MaxFailureCountPerUrl")),
  metadataSignatureRsa: optional(XmlText).pipe(Schema.fromKey("MetadataSignatureRsa")),
  metadataSize: optional(Int).pipe(Schema.fromKey("MetadataSize")),
  deadline: optional(XmlText),
  moreInfo: optional(XmlText).pipe(Schema.fromKey("MoreInfo")),
  prompt: optional(Bool).pipe(Schema.fromKey("Prompt"))
}) {}

/** `updatecheck/manifest`: one version to install (several for multi-step updates). */
export class Manifest extends Schema.Class<Manifest>("effect-omaha/Manifest")({
  version: XmlText,
  isFloor: optional(Bool).pipe(Schema.fromKey("is_floor")),
  floorReason: optional(XmlText).pipe(Schema.fromKey("floor_reason")),
  isTarget: optional(Bool).pipe(Schema.fromKey("is_target")),
  packages: wrapped("package", Package),
  actions: wrapped("action", Action)
}) {}

/** `app/updatecheck` in a response: the answer to an update check. */
export class UpdateResponse extends Schema.Class<UpdateResponse>("effect-omaha/UpdateResponse")({
  status: UpdateStatus,
  /** Seconds until the next check (update_engine clamps it to 45 min .. 4 h). */
  pollInterval: optional(Int).pipe(Schema.fromKey("PollInterval")),
  info: optional(XmlText),
  urls: wrapped("url", Url),
  manifests: elements(Manifest).pipe(Schema.fromKey("manifest"))
}) {}

/** `app/data` in a response: the data an app asked for. */
export class DataResponse extends Schema.Class<DataResponse>("effect-omaha/DataResponse")({
  status: optional(XmlText),
  name: optional(XmlText),
  index: optional(XmlText),
  content: optional(XmlText).pipe(Schema.fromKey(textKey))
}) {}

/** `<app>` in a response: the server's answer for one app of the request. */
export class AppResponse extends Schema.Class<AppResponse>("effect-omaha/AppResponse")({
  appId: XmlText.pipe(Schema.propertySignature, Schema.fromKey("appid")),
  status: AppStatus,
  cohort: optional(XmlText),
  cohortHint: optional(XmlText).pipe(Schema.fromKey("cohorthint")),
  cohortName: optional(XmlText).pipe(Schema.fromKey("cohortname")),
  ping: optional(Ack),
  updateCheck: optional(UpdateResponse).pipe(Schema.fromKey("updatecheck")),
  events: elements(Ack).pipe(Schema.fromKey("event")),
  data: elements(DataResponse)
}) {}

/** `<response>`: the document a server answers with. */
export class Response extends Schema.Class<Response>("effect-omaha/Response")({
  protocol: XmlText,
  server: optional(XmlText),
  dayStart: optional(DayStart).pipe(Schema.fromKey("daystart")),
  apps: elements(AppResponse).pipe(Schema.fromKey("app"))
}) {}

const omahaEpoch = Date.UTC(2007, 0, 1)
const millisPerDay = 86_400_000

/** The `<daystart>` for an instant, in the local time zone of this process. */
export const dayStartAt = (date: Date): DayStart => {
  const today = Date.UTC(date.getFullYear(), date.getMonth(), date.getDate())
  // Integers by construction: the constructor's check would only cost time.
  return new DayStart({
    elapsedSeconds: date.getHours() * 3600 + date.getMinutes() * 60 + date.getSeconds(),
    elapsedDays: Math.round((today - omahaEpoch) / millisPerDay)
  }, true)
}

/** Fields of a response other than its fixed protocol version. */
export type ResponseFields = Omit<ConstructorParameters<typeof Response>[0], "protocol">

/** A response with protocol 3.0 and the given fields (server name, daystart, apps). */
export const make = (fields: ResponseFields = {}): Response => new Response({ protocol: "3.0", ...fields })

/** The `<daystart>` of the current time (read from `Clock`). */
export const dayStartNow: Effect.Effect<DayStart> = Effect.map(Clock.currentTimeMillis, (now) => dayStartAt(new Date(now)))

/** A response from `server` with the daystart of the current time (read from `Clock`). */
export const makeNow = (server: string): Effect.Effect<Response> =>
  Effect.map(dayStartNow, (dayStart) => make({ server, dayStart }))

/** The response with one more app. */
export const addApp: {
  (app: AppResponse): (response: Response) => Response
  (response: Response, app: AppResponse): Response
} = dual(2, (response: Response, app: AppResponse): Response => new Response({ ...response, apps: [...response.apps, app] }))

/** The app of a response with the given id, if any. */
export const findApp = (response: Response, appId: string): AppResponse | undefined =>
  response.apps.find((app) => app.appId === appId)

/** The acknowledgement the server gives for a ping or an event. */
export const ok: Ack = new Ack({ status: "ok" })
