/**
 * The fleet server's model: applications, packages, channels with floors and
 * blocklists, groups with their rollout policy, instances (machines) and
 * their per-application state, status history, events, activity and API
 * tokens. These classes are what the store returns and what the admin API
 * speaks (JSON with camelCase fields; dates as ISO 8601 strings).
 */
import { Schema } from "effect"

/** A CPU architecture as the fleet names it; `all` packages and channels serve every arch. */
export const Arch = Schema.Literal("all", "amd64", "arm64", "x86")
export type Arch = typeof Arch.Type

/**
 * Where an instance stands in its update, named as in the API (Nebraska's
 * Undefined, UpdateGranted, Downloading, Downloaded, Installed, Complete,
 * Error and OnHold).
 */
export const Status = Schema.Literal(
  "undefined",
  "granted",
  "downloading",
  "downloaded",
  "installed",
  "complete",
  "error",
  "onHold"
)
export type Status = typeof Status.Type

/** The statuses of an update in progress: granted and not yet finished. */
export const inProgress: ReadonlySet<Status> = new Set(["granted", "downloading", "downloaded", "installed"])

/** Display names of the statuses, as Nebraska's users know them. */
export const statusNames: Readonly<Record<Status, string>> = {
  undefined: "Undefined",
  granted: "UpdateGranted",
  downloading: "Downloading",
  downloaded: "Downloaded",
  installed: "Installed",
  complete: "Complete",
  error: "Error",
  onHold: "OnHold"
}

const NonEmptyTrimmed = Schema.Trimmed.pipe(Schema.minLength(1))

/** An Omaha application: its id is the app id machines send (`{e96281a6-...}` for Flatcar). */
export class Application extends Schema.Class<Application>("Application")({
  id: NonEmptyTrimmed.pipe(Schema.maxLength(200)),
  name: NonEmptyTrimmed.pipe(Schema.maxLength(200)),
  description: Schema.String.pipe(Schema.maxLength(2000)),
  createdAt: Schema.Date
}) {}

/** A base64 digest of a payload (SHA-1 or SHA-256), standard alphabet, padded. */
export const Base64Digest = Schema.String.pipe(Schema.pattern(/^[A-Za-z0-9+/]+={0,2}$/))

/** A further file of a package (Nebraska's extra files), listed in its manifest. */
export class ExtraFile extends Schema.Class<ExtraFile>("ExtraFile")({
  name: NonEmptyTrimmed,
  size: Schema.NonNegativeInt,
  sha1: Base64Digest,
  sha256: Base64Digest,
  url: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/**
 * update_engine's `postinstall` action for a package: the payload's SHA-256
 * is the package's own; these are the rest of its attributes.
 */
export class PostinstallAction extends Schema.Class<PostinstallAction>("PostinstallAction")({
  isDelta: Schema.Boolean,
  needsAdmin: Schema.Boolean,
  /** Sent as `DisablePayloadBackoff`; true spares machines update_engine's backoff of up to 16 days. */
  disablePayloadBackoff: Schema.Boolean,
  metadataSignatureRsa: Schema.optionalWith(Schema.String, { exact: true }),
  metadataSize: Schema.optionalWith(Schema.String, { exact: true }),
  deadline: Schema.optionalWith(Schema.String, { exact: true }),
  chromeOsVersion: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/**
 * A payload of an application at one version for one arch: its facts, and
 * either an external URL or, when `url` is absent, a file hosted in the data
 * directory (named by the hex of its SHA-256).
 */
export class Package extends Schema.Class<Package>("Package")({
  appId: Schema.String,
  version: NonEmptyTrimmed,
  arch: Arch,
  /** The payload's file name in the manifest (`update.gz`). */
  name: NonEmptyTrimmed,
  size: Schema.NonNegativeInt,
  sha1: Base64Digest,
  sha256: Base64Digest,
  url: Schema.optionalWith(Schema.String, { exact: true }),
  action: PostinstallAction,
  extraFiles: Schema.Array(ExtraFile),
  createdAt: Schema.Date
}) {}

/** A package every machine must pass through on its way to the channel's package. */
export class Floor extends Schema.Class<Floor>("Floor")({
  version: Schema.String,
  reason: Schema.String
}) {}

/** A channel: for one arch, the package machines of its groups are brought to. */
export class Channel extends Schema.Class<Channel>("Channel")({
  appId: Schema.String,
  name: NonEmptyTrimmed.pipe(Schema.maxLength(200)),
  arch: Arch,
  color: Schema.String,
  /** The version of the package it points to, when it points to one. */
  package: Schema.optionalWith(Schema.String, { exact: true }),
  floors: Schema.Array(Floor),
  /** Versions never offered on this channel. */
  blocklist: Schema.Array(Schema.String),
  updatedAt: Schema.Date
}) {}

/** Days of the week, as maintenance windows name them. */
export const Weekday = Schema.Literal("mon", "tue", "wed", "thu", "fri", "sat", "sun")
export type Weekday = typeof Weekday.Type

/** `HH:MM`, 00:00 to 24:00. */
export const TimeOfDay = Schema.String.pipe(Schema.pattern(/^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/))

const isIanaTimeZone = (name: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name })
    return true
  } catch {
    return false
  }
}

/** An IANA time zone name this runtime knows (`Europe/Berlin`, `America/New_York`, `UTC`). */
export const TimeZone = Schema.String.pipe(
  Schema.filter(isIanaTimeZone, { message: (issue) => `${JSON.stringify(issue.actual)} is not an IANA time zone` })
)

/**
 * A time when updates may be granted: on `days`, from `start` to `end` in
 * `timeZone` (an IANA name such as `Europe/Berlin`). An `end` before `start`
 * runs past midnight into the next day.
 */
export class MaintenanceWindow extends Schema.Class<MaintenanceWindow>("MaintenanceWindow")({
  days: Schema.Array(Weekday).pipe(Schema.minItems(1)),
  start: TimeOfDay,
  end: TimeOfDay,
  timeZone: TimeZone
}) {}

/** Pause a rollout when more than `ratio` of its finished attempts failed, once `minAttempts` have finished. */
export class FailureBrake extends Schema.Class<FailureBrake>("FailureBrake")({
  ratio: Schema.Number.pipe(Schema.between(0, 1)),
  minAttempts: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1))
}) {}

/** How a group's machines are let through to a new package. */
export class Policy extends Schema.Class<Policy>("Policy")({
  updatesEnabled: Schema.Boolean,
  /** Grants within one period, at most. */
  maxUpdatesPerPeriod: Schema.NonNegativeInt,
  periodSeconds: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  /** Updates in progress at once, at most; absent means `maxUpdatesPerPeriod`. */
  maxConcurrentUpdates: Schema.optionalWith(Schema.NonNegativeInt, { exact: true }),
  /** A grant not finished within this long no longer counts as in progress (and, in safe mode, as timed out). */
  updateTimeoutSeconds: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  /** One update at a time until the first attempt of a rollout has finished. */
  safeMode: Schema.Boolean,
  /** The share of the group's machines the rollout reaches, 0 to 100. */
  rolloutPercent: Schema.Number.pipe(Schema.between(0, 100)),
  /** Whether a channel pointing to an older package brings machines back to it. */
  allowDowngrade: Schema.Boolean,
  failureBrake: Schema.optionalWith(FailureBrake, { exact: true }),
  /** When grants may happen; none means at any time. */
  windows: Schema.Array(MaintenanceWindow)
}) {}

/** Defaults of a new group's policy, Nebraska's for a new group. */
export const defaultPolicy: Policy = Policy.make({
  updatesEnabled: true,
  maxUpdatesPerPeriod: 2,
  periodSeconds: 900,
  updateTimeoutSeconds: 3600,
  safeMode: true,
  rolloutPercent: 100,
  allowDowngrade: false,
  windows: []
})

/** A group of machines of an application: the track they send, the channel they follow, the policy. */
export class Group extends Schema.Class<Group>("Group")({
  id: Schema.String,
  appId: Schema.String,
  name: NonEmptyTrimmed.pipe(Schema.maxLength(200)),
  description: Schema.String,
  /** What machines send as `app@track` (Flatcar's `GROUP=`); machines may also send the group's id. */
  track: NonEmptyTrimmed.pipe(Schema.maxLength(200)),
  /** The name of the channel followed; the channel of the machine's arch is used. */
  channel: NonEmptyTrimmed,
  policy: Policy,
  /** Set by an operator or by the failure brake; no grants while paused. */
  paused: Schema.Boolean,
  pausedReason: Schema.optionalWith(Schema.String, { exact: true }),
  createdAt: Schema.Date
}) {}

/** A machine, by the machine id it sends (`app@machineid`, else `request@userid`). */
export class Instance extends Schema.Class<Instance>("Instance")({
  machineId: Schema.String,
  alias: Schema.String,
  ip: Schema.String,
  oem: Schema.String,
  oemVersion: Schema.String,
  alephVersion: Schema.String,
  createdAt: Schema.Date,
  lastSeen: Schema.Date
}) {}

/** A machine's state for one application. */
export class InstanceApp extends Schema.Class<InstanceApp>("InstanceApp")({
  machineId: Schema.String,
  appId: Schema.String,
  /** The group's name, when the machine's track names a group. */
  group: Schema.optionalWith(Schema.String, { exact: true }),
  track: Schema.String,
  arch: Schema.String,
  version: Schema.String,
  status: Status,
  /** Why its last check was held, while it is ("on hold: 5 of 5 updates in the last 1 h"). */
  hold: Schema.optionalWith(Schema.String, { exact: true }),
  /** update_engine's error code of the last failure. */
  errorCode: Schema.optionalWith(Schema.Int, { exact: true }),
  lastCheck: Schema.Date,
  lastGrant: Schema.optionalWith(Schema.Date, { exact: true }),
  grantedVersion: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/** One change of a machine's status. */
export class StatusChange extends Schema.Class<StatusChange>("StatusChange")({
  status: Status,
  version: Schema.String,
  errorCode: Schema.optionalWith(Schema.Int, { exact: true }),
  at: Schema.Date
}) {}

/** An Omaha event a machine reported. */
export class InstanceEvent extends Schema.Class<InstanceEvent>("InstanceEvent")({
  eventType: Schema.Int,
  eventResult: Schema.Int,
  errorCode: Schema.optionalWith(Schema.Int, { exact: true }),
  previousVersion: Schema.optionalWith(Schema.String, { exact: true }),
  nextVersion: Schema.optionalWith(Schema.String, { exact: true }),
  at: Schema.Date
}) {}

/** What the activity feed records. */
export const ActivityKind = Schema.Literal(
  "rolloutStarted",
  "rolloutFinished",
  "rolloutPaused",
  "rolloutResumed",
  "rolloutBraked",
  "instanceFailed",
  "channelMoved",
  "packageNotFound"
)
export type ActivityKind = typeof ActivityKind.Type

/** An entry of the activity feed. */
export class Activity extends Schema.Class<Activity>("Activity")({
  id: Schema.Int,
  kind: ActivityKind,
  severity: Schema.Literal("info", "warning", "error"),
  appId: Schema.optionalWith(Schema.String, { exact: true }),
  group: Schema.optionalWith(Schema.String, { exact: true }),
  channel: Schema.optionalWith(Schema.String, { exact: true }),
  version: Schema.optionalWith(Schema.String, { exact: true }),
  message: Schema.String,
  at: Schema.Date
}) {}

/** What a webhook is told of: rollouts started, finished and paused by the failure brake, and failed machines. */
export const WebhookKind = Schema.Literal("rolloutStarted", "rolloutFinished", "rolloutBraked", "instanceFailed")
export type WebhookKind = typeof WebhookKind.Type

/** A webhook as the API shows it: never its secret. */
export class Webhook extends Schema.Class<Webhook>("Webhook")({
  id: Schema.Int,
  url: Schema.String,
  kinds: Schema.Array(WebhookKind),
  /** Only this application's events, when set. */
  appId: Schema.optionalWith(Schema.String, { exact: true }),
  description: Schema.String,
  createdAt: Schema.Date,
  updatedAt: Schema.Date
}) {}

/** How many machines are in each status (every status present, zero or more). */
export const StatusCounts = Schema.Struct(
  Object.fromEntries(Status.literals.map((status) => [status, Schema.NonNegativeInt])) as {
    readonly [K in Status]: typeof Schema.NonNegativeInt
  }
)
export type StatusCounts = typeof StatusCounts.Type

/** The machines of a group on one version, by status. */
export class VersionCount extends Schema.Class<VersionCount>("VersionCount")({
  version: Schema.String,
  count: Schema.NonNegativeInt,
  statuses: StatusCounts
}) {}

/** A hold reason and how many of a group's machines it holds now. */
export class HoldCount extends Schema.Class<HoldCount>("HoldCount")({
  reason: Schema.String,
  count: Schema.NonNegativeInt
}) {}

/** An update_engine error code and how many of a group's failed machines last reported it. */
export class ErrorCount extends Schema.Class<ErrorCount>("ErrorCount")({
  code: Schema.Int,
  count: Schema.NonNegativeInt
}) {}

/**
 * A group's rollout as it stands: its machines by status and by version
 * (newest first), why those on hold are held, and the error codes of those
 * that failed (most frequent first).
 */
export class GroupStatus extends Schema.Class<GroupStatus>("GroupStatus")({
  appId: Schema.String,
  group: Schema.String,
  total: Schema.NonNegativeInt,
  statuses: StatusCounts,
  versions: Schema.Array(VersionCount),
  holds: Schema.Array(HoldCount),
  errors: Schema.Array(ErrorCount),
  at: Schema.Date
}) {}

/** The spans a group's timeline covers. */
export const TimelineWindow = Schema.Literal("1h", "1d", "7d", "30d")
export type TimelineWindow = typeof TimelineWindow.Type

/** A group's machines at one time of its timeline, by status and by version. */
export class TimelinePoint extends Schema.Class<TimelinePoint>("TimelinePoint")({
  at: Schema.Date,
  statuses: Schema.Record({ key: Schema.String, value: Schema.NonNegativeInt }),
  versions: Schema.Record({ key: Schema.String, value: Schema.NonNegativeInt })
}) {}

/** A group's versions and statuses over a window, at evenly spaced times ending now. */
export class Timeline extends Schema.Class<Timeline>("Timeline")({
  appId: Schema.String,
  group: Schema.String,
  window: TimelineWindow,
  /** Seconds between points. */
  stepSeconds: Schema.Int,
  points: Schema.Array(TimelinePoint)
}) {}

/** What an API token may do: an admin changes things, a viewer only reads. */
export const Role = Schema.Literal("admin", "viewer")
export type Role = typeof Role.Type

/** A machine's state for one application as the API lists it: the machine's alias and address beside its app state. */
export class InstanceItem extends Schema.Class<InstanceItem>("InstanceItem")({
  machineId: Schema.String,
  alias: Schema.String,
  ip: Schema.String,
  version: Schema.String,
  status: Status,
  /** The group's name; absent when the machine's track names no group of the application. */
  group: Schema.optionalWith(Schema.String, { exact: true }),
  track: Schema.String,
  arch: Schema.String,
  /** Why its last check was held, while it is. */
  hold: Schema.optionalWith(Schema.String, { exact: true }),
  errorCode: Schema.optionalWith(Schema.Int, { exact: true }),
  lastCheck: Schema.Date,
  lastGrant: Schema.optionalWith(Schema.Date, { exact: true }),
  grantedVersion: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/** One machine of an application in full: the list item's fields, the machine's facts, its status history and events (newest first). */
export class InstanceDetail extends InstanceItem.extend<InstanceDetail>("InstanceDetail")({
  oem: Schema.String,
  oemVersion: Schema.String,
  alephVersion: Schema.String,
  firstSeen: Schema.Date,
  history: Schema.Array(StatusChange),
  events: Schema.Array(InstanceEvent)
}) {}

/** A page of instances and how many match the filters in all. */
export class InstancePage extends Schema.Class<InstancePage>("InstancePage")({
  items: Schema.Array(InstanceItem),
  total: Schema.NonNegativeInt
}) {}

/** An API token as the store keeps it: never the token itself, only what it is for. */
export class ApiToken extends Schema.Class<ApiToken>("ApiToken")({
  id: Schema.Int,
  role: Role,
  name: Schema.String,
  createdAt: Schema.Date,
  lastUsed: Schema.optionalWith(Schema.Date, { exact: true })
}) {}
