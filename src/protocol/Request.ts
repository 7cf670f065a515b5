/**
 * The Omaha v3 request document (`<request>`), as sent by update_engine,
 * Google's updaters and our own client: one class per element, fields named
 * in lowerCamelCase, wire names kept on the encoded side.
 */
import { dual } from "effect/Function"
import { Schema } from "effect"
import * as Platform from "./Platform.js"
import { Bool, elements, Flag, Int, optional, textKey, XmlText } from "./internal/wire.js"

/** `<os>`: the client's operating system. */
export class Os extends Schema.Class<Os>("effect-omaha/Os")({
  platform: optional(XmlText),
  version: optional(XmlText),
  sp: optional(XmlText),
  arch: optional(XmlText)
}) {}

/** `<hw>`: the client's hardware (memory in GiB, CPU features). */
export class Hardware extends Schema.Class<Hardware>("effect-omaha/Hardware")({
  physMemory: optional(Int).pipe(Schema.fromKey("physmemory")),
  sse: optional(Flag),
  sse2: optional(Flag),
  sse3: optional(Flag),
  ssse3: optional(Flag),
  sse41: optional(Flag),
  sse42: optional(Flag),
  avx: optional(Flag)
}) {}

/** `app/ping`: activity counts since the last ping. */
export class PingRequest extends Schema.Class<PingRequest>("effect-omaha/PingRequest")({
  active: optional(Int),
  /** Days since the last active ping; -1 means never (absent means not sent). */
  a: optional(Int),
  /** Days since the last ping; -1 means never. */
  r: optional(Int),
  ad: optional(Int),
  rd: optional(Int)
}) {}

/** `app/updatecheck`: the app asks for an update. */
export class UpdateRequest extends Schema.Class<UpdateRequest>("effect-omaha/UpdateRequest")({
  targetVersionPrefix: optional(XmlText).pipe(Schema.fromKey("targetversionprefix")),
  updateDisabled: optional(Bool).pipe(Schema.fromKey("updatedisabled")),
  rollbackAllowed: optional(Bool).pipe(Schema.fromKey("rollback_allowed"))
}) {}

/** `app/event`: progress or failure of an update on the client. */
export class EventRequest extends Schema.Class<EventRequest>("effect-omaha/EventRequest")({
  eventType: Int.pipe(Schema.propertySignature, Schema.fromKey("eventtype")),
  eventResult: optional(Int).pipe(Schema.fromKey("eventresult")),
  errorCode: optional(Int).pipe(Schema.fromKey("errorcode")),
  previousVersion: optional(XmlText).pipe(Schema.fromKey("previousversion")),
  nextVersion: optional(XmlText).pipe(Schema.fromKey("nextversion"))
}) {}

/** `app/data`: install or untrusted data the app asks for or carries. */
export class DataRequest extends Schema.Class<DataRequest>("effect-omaha/DataRequest")({
  name: optional(XmlText),
  index: optional(XmlText),
  content: optional(XmlText).pipe(Schema.fromKey(textKey))
}) {}

/** `<app>`: one application on the client, with update_engine's extensions. */
export class AppRequest extends Schema.Class<AppRequest>("effect-omaha/AppRequest")({
  appId: XmlText.pipe(Schema.propertySignature, Schema.fromKey("appid")),
  version: optional(XmlText),
  nextVersion: optional(XmlText).pipe(Schema.fromKey("nextversion")),
  lang: optional(XmlText),
  client: optional(XmlText),
  installAge: optional(Int).pipe(Schema.fromKey("installage")),
  brand: optional(XmlText),
  cohort: optional(XmlText),
  cohortHint: optional(XmlText).pipe(Schema.fromKey("cohorthint")),
  cohortName: optional(XmlText).pipe(Schema.fromKey("cohortname")),
  track: optional(XmlText),
  fromTrack: optional(XmlText).pipe(Schema.fromKey("from_track")),
  board: optional(XmlText),
  deltaOkay: optional(Bool).pipe(Schema.fromKey("delta_okay")),
  hardwareClass: optional(XmlText).pipe(Schema.fromKey("hardware_class")),
  machineId: optional(XmlText).pipe(Schema.fromKey("machineid")),
  bootId: optional(XmlText).pipe(Schema.fromKey("bootid")),
  machineAlias: optional(XmlText).pipe(Schema.fromKey("machinealias")),
  oem: optional(XmlText),
  oemVersion: optional(XmlText).pipe(Schema.fromKey("oemversion")),
  alephVersion: optional(XmlText).pipe(Schema.fromKey("alephversion")),
  multiManifestOk: optional(Bool).pipe(Schema.fromKey("multi_manifest_ok")),
  ping: optional(PingRequest),
  updateCheck: optional(UpdateRequest).pipe(Schema.fromKey("updatecheck")),
  events: elements(EventRequest).pipe(Schema.fromKey("event")),
  data: elements(DataRequest)
}) {}

/** `<request>`: the document a client posts to the update endpoint. */
export class Request extends Schema.Class<Request>("effect-omaha/Request")({
  protocol: XmlText,
  version: optional(XmlText),
  updaterVersion: optional(XmlText).pipe(Schema.fromKey("updaterversion")),
  installSource: optional(XmlText).pipe(Schema.fromKey("installsource")),
  isMachine: optional(Flag).pipe(Schema.fromKey("ismachine")),
  requestId: optional(XmlText).pipe(Schema.fromKey("requestid")),
  sessionId: optional(XmlText).pipe(Schema.fromKey("sessionid")),
  userId: optional(XmlText).pipe(Schema.fromKey("userid")),
  testSource: optional(XmlText).pipe(Schema.fromKey("testsource")),
  dedup: optional(XmlText),
  originUrl: optional(XmlText).pipe(Schema.fromKey("originurl")),
  hw: optional(Hardware),
  os: optional(Os),
  apps: elements(AppRequest).pipe(Schema.fromKey("app"))
}) {}

/** The protocol version this library speaks. */
export const protocolVersion = "3.0"

/** The `<os>` of the machine running this code: Omaha's platform and arch names. */
export const localOs = (): Os => new Os({ platform: Platform.omahaPlatform(), arch: Platform.omahaArch() })

/** Fields of a request other than its fixed protocol version. */
export type RequestFields = Omit<ConstructorParameters<typeof Request>[0], "protocol">

/** A request with protocol 3.0 and the local `<os>` (both overridable through `fields`). */
export const make = (fields: Partial<RequestFields> = {}): Request =>
  new Request({ protocol: protocolVersion, os: localOs(), ...fields })

/** The request with one more app. */
export const addApp: {
  (app: AppRequest): (request: Request) => Request
  (request: Request, app: AppRequest): Request
} = dual(2, (request: Request, app: AppRequest): Request => new Request({ ...request, apps: [...request.apps, app] }))

/** The app of a request with the given id, if any. */
export const findApp = (request: Request, appId: string): AppRequest | undefined =>
  request.apps.find((app) => app.appId === appId)

/** The app with one more event. */
export const addEvent: {
  (event: EventRequest): (app: AppRequest) => AppRequest
  (app: AppRequest, event: EventRequest): AppRequest
} = dual(2, (app: AppRequest, event: EventRequest): AppRequest => new AppRequest({ ...app, events: [...app.events, event] }))
