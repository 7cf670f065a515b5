/**
 * The rollout decision for one update check, as pure functions over the
 * fleet's configuration (the classes of `Model`), the machine's request and
 * state, the group's grant counts and the current time (passed in, read from
 * Effect's `Clock` by the caller). `FleetUpdater` asks these functions and
 * does the I/O around them; nothing here reads a clock, the database or the
 * network.
 *
 * The order of a decision: the group from the machine's track, the arch from
 * its board or `os@arch`, the channel of that arch; `target` says whether the
 * machine needs anything (floors, blocklist, multi-step manifests,
 * downgrades); `gate` and then `admit` apply the group's policy; events move
 * the machine's status (`eventTransition`) and may trip the failure brake
 * (`brakeTrips`). Hold reasons are short sentences the API shows as they are.
 */
import { Array as Arr, Data } from "effect"
import * as Crypto from "node:crypto"
import type { AppRequest, EventRequest, Request } from "../protocol/Request.js"
import * as Version from "../protocol/Version.js"
import type { Application, Arch, Channel, FailureBrake, Group, MaintenanceWindow, Package, Policy, Status, Weekday } from "./Model.js"

// ---------------------------------------------------------------------------
// Configuration

/** The configuration a decision reads: what the cache holds. */
export interface ConfigInput {
  readonly applications: Iterable<Application>
  readonly packages: Iterable<Package>
  readonly channels: Iterable<Channel>
  readonly groups: Iterable<Group>
}

const key = (...parts: ReadonlyArray<string>): string => parts.join("\u0000")

/** The configuration indexed for lookups by app id, track, channel name and arch, package version and arch. */
export class Config {
  readonly applications: ReadonlyMap<string, Application>
  readonly groups: ReadonlyArray<Group>
  private readonly groupsByTrack = new Map<string, Group>()
  private readonly groupsById = new Map<string, Group>()
  private readonly channels = new Map<string, Channel>()
  private readonly packages = new Map<string, Package>()

  constructor(input: ConfigInput) {
    this.applications = new Map(Array.from(input.applications, (app) => [app.id, app]))
    this.groups = Array.from(input.groups)
    for (const group of this.groups) {
      this.groupsByTrack.set(key(group.appId, group.track), group)
      this.groupsById.set(key(group.appId, group.id), group)
    }
    for (const channel of input.channels) this.channels.set(key(channel.appId, channel.name, channel.arch), channel)
    for (const pkg of input.packages) this.packages.set(key(pkg.appId, pkg.version, pkg.arch), pkg)
  }

  /** The group of an app whose track is `track`, else whose id is `track`. */
  group(appId: string, track: string): Group | undefined {
    return this.groupsByTrack.get(key(appId, track)) ?? this.groupsById.get(key(appId, track))
  }

  /** The channel of an app with this name and exactly this arch. */
  channel(appId: string, name: string, arch: Arch): Channel | undefined {
    return this.channels.get(key(appId, name, arch))
  }

  /** The package of an app at this version for exactly this arch. */
  package(appId: string, version: string, arch: Arch): Package | undefined {
    return this.packages.get(key(appId, version, arch))
  }
}

/** An empty configuration, before the first load. */
export const emptyConfig: Config = new Config({ applications: [], packages: [], channels: [], groups: [] })

// ---------------------------------------------------------------------------
// Arch, group, channel, package

const archNames: Readonly<Record<string, Arch>> = {
  amd64: "amd64",
  x64: "amd64",
  x86_64: "amd64",
  arm64: "arm64",
  aarch64: "arm64",
  x86: "x86",
  i386: "x86",
  i686: "x86",
  "386": "x86"
}

/**
 * The machine's arch: from the app's `board` (`amd64-usr`, `arm64-usr`, the
 * part before the first `-`), else from `os@arch` (Omaha's `x64`, `arm64`,
 * `x86`, or the kernel's `x86_64`, `aarch64`), else amd64.
 */
export const archOf = (request: Request, app: AppRequest): Exclude<Arch, "all"> => {
  const fromBoard = app.board === undefined ? undefined : archNames[app.board.split("-", 1)[0]!.toLowerCase()]
  if (fromBoard !== undefined && fromBoard !== "all") return fromBoard
  const fromOs = request.os?.arch === undefined ? undefined : archNames[request.os.arch.toLowerCase()]
  return fromOs !== undefined && fromOs !== "all" ? fromOs : "amd64"
}

/** The group of a machine: the app's group whose track (or, failing that, id) is the machine's `app@track`. */
export const groupFor = (config: Config, appId: string, track: string | undefined): Group | undefined =>
  track === undefined || track === "" ? undefined : config.group(appId, track)

/** The channel a group's machines of an arch follow: the group's channel name for that arch, else for `all`. */
export const channelFor = (config: Config, group: Group, arch: Arch): Channel | undefined =>
  config.channel(group.appId, group.channel, arch) ?? config.channel(group.appId, group.channel, "all")

/** The package of a version for a machine's arch: that arch's, else the `all` one. */
export const packageFor = (config: Config, appId: string, version: string, arch: Arch): Package | undefined =>
  config.package(appId, version, arch) ?? config.package(appId, version, "all")

// ---------------------------------------------------------------------------
// Percentage buckets

/** The key of a rollout: the group and the version it is brought to. A new target is a new rollout. */
export const rolloutKey = (group: Group, targetVersion: string): string => `${group.id}@${targetVersion}`

/**
 * A machine's place in a rollout, a number in [0, 100): the first 8 bytes of
 * SHA-256(`rolloutKey` NUL `machineId`) scaled. The same machine and rollout
 * always land in the same place, so raising the percentage only adds
 * machines; a new target version shuffles the fleet again.
 */
export const bucket = (machineId: string, key: string): number => {
  const digest = Crypto.createHash("sha256").update(`${key}\u0000${machineId}`).digest()
  return ((digest.readUInt32BE(0) * 2 ** 32 + digest.readUInt32BE(4)) / 2 ** 64) * 100
}

/** Whether a machine at `place` (see {@link bucket}) is inside a rollout reaching `percent` % of the group. */
export const inRollout = (place: number, percent: number): boolean => place < percent

// ---------------------------------------------------------------------------
// Target: what a machine needs

/** One manifest of an update: a floor on the way, or the channel's target. */
export interface Step {
  readonly package: Package
  /** Set for a floor: why every machine must pass through it. */
  readonly floorReason?: string
  readonly isTarget: boolean
}

/** The machine needs nothing: it is on (or past) the channel's package. */
export class UpToDate extends Data.TaggedClass("UpToDate")<{ readonly reason: string }> {}

/** Nothing can be offered: no package on the channel, for the arch, or a version that cannot be read. */
export class Unavailable extends Data.TaggedClass("Unavailable")<{ readonly reason: string }> {}

/** The manifests to offer, in order (floors first); `target` is the channel's package the rollout is about. */
export class Steps extends Data.TaggedClass("Steps")<{
  readonly steps: Arr.NonEmptyReadonlyArray<Step>
  readonly target: Package
}> {}

/** What a machine needs from its channel. */
export type Target = UpToDate | Unavailable | Steps

/**
 * The most manifests one answer carries for a client that sends
 * `multi_manifest_ok`. Floors are never skipped: with more floors than
 * this, the answer holds the first five floors and the target comes in a
 * later check.
 */
export const maxManifests = 5

/** The version with which a client asks for any update whatever its version (Chrome OS). */
export const forcedUpdate = "ForcedUpdate"

/** What the machine reports, as `target` needs it. */
export interface Machine {
  /** `app@version`. */
  readonly version: string | undefined
  readonly arch: Arch
  /** `app@multi_manifest_ok`: the client installs several manifests (floors, then the target) from one answer. */
  readonly multiManifestOk: boolean
}

/**
 * What a machine of `group` on `channel` needs: nothing (not older than the
 * channel's package, unless the group allows downgrades), or the steps to
 * it: the channel's floors strictly between the machine's version and the
 * target, in version order, then the target, leaving out blocklisted
 * versions. A stock client gets the first step only (one step per check); a
 * multi-manifest client gets up to {@link maxManifests}. A downgrade goes
 * straight to the target.
 */
export const target = (config: Config, group: Group, channel: Channel, machine: Machine): Target => {
  if (channel.package === undefined) return new Unavailable({ reason: `channel ${channel.name} has no package` })
  const targetVersion = Version.parseOption(channel.package)
  if (targetVersion._tag === "None") {
    return new Unavailable({ reason: `channel ${channel.name} points to ${channel.package}, which is not a version` })
  }
  const blocked = new Set(channel.blocklist)
  if (blocked.has(channel.package)) {
    return new UpToDate({ reason: `${channel.package} is blocklisted on channel ${channel.name}` })
  }
  const targetPackage = packageFor(config, channel.appId, channel.package, machine.arch)
  if (targetPackage === undefined) {
    return new Unavailable({ reason: `no package ${channel.package} for ${machine.arch}` })
  }
  const reported = machine.version ?? ""
  const current = reported === forcedUpdate ? undefined : Version.parseOption(reported)
  if (current?._tag === "None") return new Unavailable({ reason: `unreadable version ${JSON.stringify(reported)}` })
  const order = current === undefined ? -1 : Version.compare(current.value, targetVersion.value)
  if (order === 0 || (order > 0 && !group.policy.allowDowngrade)) {
    return new UpToDate({ reason: `${reported} is not older than ${channel.package}` })
  }
  if (order > 0) return new Steps({ steps: [{ package: targetPackage, isTarget: true }], target: targetPackage })
  const floors = channel.floors
    .flatMap((floor) => {
      if (blocked.has(floor.version)) return []
      const version = Version.parseOption(floor.version)
      if (version._tag === "None") return []
      if (current !== undefined && !Version.lessThan(current.value, version.value)) return []
      if (!Version.lessThan(version.value, targetVersion.value)) return []
      const pkg = packageFor(config, channel.appId, floor.version, machine.arch)
      return pkg === undefined ? [] : [{ version: version.value, step: { package: pkg, floorReason: floor.reason, isTarget: false } }]
    })
    .sort((a, b) => Version.compare(a.version, b.version))
    .map(({ step }): Step => step)
  const all = Arr.append(floors, { package: targetPackage, isTarget: true })
  const steps = machine.multiManifestOk ? Arr.prepend(all.slice(1, maxManifests), all[0]) : Arr.of(all[0])
  return new Steps({ steps, target: targetPackage })
}

/** The version a grant for these steps brings the machine to: the last manifest's. */
export const grantedVersionOf = (steps: Steps): string => steps.steps[steps.steps.length - 1]!.package.version

/**
 * The versions whose grants belong to the rollout towards `target`: the
 * channel's floors below it and the target itself. Safe mode and the
 * failure brake count these grants.
 */
export const rolloutVersions = (channel: Channel): ReadonlyArray<string> =>
  channel.package === undefined ? [] : [channel.package, ...channel.floors.map((floor) => floor.version)]

// ---------------------------------------------------------------------------
// The machine's own state

/** What the machine's state says before any policy applies. */
export type Resume =
  /** Nothing in progress: decide under the policy. */
  | { readonly _tag: "Fresh" }
  /** Granted and not yet on the granted version: the same package again, no policy check. */
  | { readonly _tag: "Again"; readonly grantedVersion: string }
  /** Downloading or installing: no second update. */
  | { readonly _tag: "InProgress"; readonly reason: string }

/** The part of a machine's state the decision reads. */
export interface InstanceState {
  readonly status: Status
  readonly grantedVersion?: string | undefined
  /** Epoch ms of the last grant. */
  readonly lastGrant?: number | undefined
}

const fresh: Resume = { _tag: "Fresh" }

/**
 * Where a machine stands with its last grant: granted within the update
 * timeout and still below the granted version, it gets the same package
 * again; downloading or downloaded within the timeout, or installed and
 * waiting for its reboot, it is in progress. A grant older than the timeout
 * and not installed has timed out: the machine is decided afresh.
 */
export const resume = (
  state: InstanceState | undefined,
  policy: Policy,
  now: number,
  reportedVersion: string | undefined
): Resume => {
  if (state === undefined) return fresh
  const withinTimeout = state.lastGrant !== undefined && now - state.lastGrant < policy.updateTimeoutSeconds * 1000
  switch (state.status) {
    case "granted": {
      if (!withinTimeout || state.grantedVersion === undefined) return fresh
      const order = Version.compareText(reportedVersion ?? "", state.grantedVersion)
      return order._tag === "Some" && order.value >= 0 ? fresh : { _tag: "Again", grantedVersion: state.grantedVersion }
    }
    case "downloading":
    case "downloaded":
      return withinTimeout ? { _tag: "InProgress", reason: holdReason.inProgress } : fresh
    case "installed":
      return { _tag: "InProgress", reason: holdReason.waitingForReboot }
    default:
      return fresh
  }
}

/**
 * The steps that bring a machine to the version it was granted, for
 * answering it again: the current steps up to the granted version, or that
 * version's package alone when the channel moved since.
 */
export const regrant = (
  config: Config,
  group: Group,
  channel: Channel,
  machine: Machine,
  grantedVersion: string
): Steps | undefined => {
  const now = target(config, group, channel, { ...machine, multiManifestOk: true })
  if (now._tag === "Steps") {
    const index = now.steps.findIndex((step) => step.package.version === grantedVersion)
    if (index >= 0) {
      const steps = machine.multiManifestOk ? Arr.prepend(now.steps.slice(1, index + 1), now.steps[0]) : Arr.of(now.steps[index]!)
      return new Steps({ steps, target: now.target })
    }
  }
  const pkg = packageFor(config, group.appId, grantedVersion, machine.arch)
  return pkg === undefined ? undefined : new Steps({ steps: [{ package: pkg, isTarget: true }], target: pkg })
}

// ---------------------------------------------------------------------------
// Maintenance windows

const weekdays: ReadonlyArray<Weekday> = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
const weekdayIndex: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 }

const formatters = new Map<string, Intl.DateTimeFormat | undefined>()

const formatterFor = (timeZone: string): Intl.DateTimeFormat | undefined => {
  if (formatters.has(timeZone)) return formatters.get(timeZone)
  let formatter: Intl.DateTimeFormat | undefined
  try {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23"
    })
  } catch {
    formatter = undefined
  }
  formatters.set(timeZone, formatter)
  return formatter
}

/** The weekday (0 = Sunday) and minute of the day of an instant in a time zone; undefined for an unknown zone. */
export const localTime = (now: number, timeZone: string): { readonly day: number; readonly minute: number } | undefined => {
  const formatter = formatterFor(timeZone)
  if (formatter === undefined) return undefined
  let day = 0
  let hour = 0
  let minute = 0
  for (const part of formatter.formatToParts(now)) {
    if (part.type === "weekday") day = weekdayIndex[part.value] ?? 0
    else if (part.type === "hour") hour = Number(part.value)
    else if (part.type === "minute") minute = Number(part.value)
  }
  return { day, minute: hour * 60 + minute }
}

const minutesOf = (time: string): number => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5))

/**
 * Whether `now` falls in a window: on one of its days (in its time zone),
 * from `start` (inclusive) to `end` (exclusive). An `end` at or before
 * `start` runs past midnight: the window opens on its days and closes the
 * next day (`22:00`-`02:00` on `fri` covers Friday night into Saturday;
 * equal times are a full 24 hours). Local times are wall-clock times, so a
 * window across a DST change is an hour shorter or longer that day. A
 * window in an unknown time zone is never open.
 */
export const inWindow = (window: MaintenanceWindow, now: number): boolean => {
  const local = localTime(now, window.timeZone)
  if (local === undefined) return false
  const start = minutesOf(window.start)
  const end = minutesOf(window.end)
  const today = window.days.includes(weekdays[local.day]!)
  if (start < end) return today && local.minute >= start && local.minute < end
  const yesterday = window.days.includes(weekdays[(local.day + 6) % 7]!)
  return (today && local.minute >= start) || (yesterday && local.minute < end)
}

/** Whether grants may happen at `now`: no windows means always, else inside at least one. */
export const inMaintenanceWindow = (windows: ReadonlyArray<MaintenanceWindow>, now: number): boolean =>
  windows.length === 0 || windows.some((window) => inWindow(window, now))

// ---------------------------------------------------------------------------
// Policy

/** A readable duration for hold reasons: `90 s`, `15 min`, `1 h`, `2 d`, `90 min`. */
export const formatDuration = (seconds: number): string =>
  seconds % 86_400 === 0
    ? `${seconds / 86_400} d`
    : seconds % 3600 === 0
    ? `${seconds / 3600} h`
    : seconds % 60 === 0
    ? `${seconds / 60} min`
    : `${seconds} s`

/**
 * The reasons a machine is held, as the API and the dashboard show them.
 * They stay the same from one check to the next (no clock times in them), so
 * a held fleet reads as a few distinct reasons.
 */
export const holdReason = {
  paused: (reason: string | undefined): string => reason === undefined ? "on hold: group paused" : `on hold: group paused (${reason})`,
  updatesDisabled: "on hold: updates disabled for the group",
  outsideWindows: "on hold: outside the maintenance windows",
  outsideRollout: (percent: number): string => `on hold: not in the ${percent} % of machines this rollout reaches`,
  periodLimit: (granted: number, max: number, periodSeconds: number): string =>
    `on hold: ${granted} of ${max} updates in the last ${formatDuration(periodSeconds)}`,
  concurrentLimit: (inProgress: number, max: number): string => `on hold: ${inProgress} of ${max} updates in progress`,
  safeModeWaiting: "on hold: safe mode, waiting for the first update of the rollout to finish",
  safeModeTimedOut: (timedOut: number): string =>
    `on hold: safe mode turned updates off for the group after ${timedOut} updates timed out`,
  inProgress: "on hold: update in progress",
  waitingForReboot: "on hold: update installed, waiting for the machine to reboot"
} as const

/** Counts of the group's grants at the moment of the decision, read inside the grant transaction. */
export interface Stats {
  /** Grants of the group in the last period. */
  readonly grantedInPeriod: number
  /** Grants of the group not finished and younger than the update timeout. */
  readonly inProgress: number
  /** Of this rollout's grants (see {@link rolloutVersions}): finished ones (complete or failed). */
  readonly rolloutFinished: number
  /** Of this rollout's grants: finished with an error. */
  readonly rolloutFailed: number
  /** Of this rollout's grants: not finished and younger than the update timeout. */
  readonly rolloutInProgress: number
  /** Of this rollout's grants: not finished and older than the update timeout. */
  readonly rolloutTimedOut: number
}

/** Hand out the update. */
export class Grant extends Data.TaggedClass("Grant")<{}> {}

/** Do not hand out the update now; `disableUpdates` asks the caller to turn the group's updates off (safe mode). */
export class Hold extends Data.TaggedClass("Hold")<{ readonly reason: string; readonly disableUpdates: boolean }> {}

const hold = (reason: string, disableUpdates = false): Hold => new Hold({ reason, disableUpdates })

/** What the policy needs to know about the machine and the moment. */
export interface GateInput {
  readonly group: Group
  /** Epoch ms. */
  readonly now: number
  /** The machine's place in this rollout ({@link bucket}). */
  readonly bucket: number
}

/**
 * The policy rules that need only the configuration, in order: paused (by
 * an operator or the failure brake), updates disabled, outside every
 * maintenance window, outside the rollout percentage. The caller answers
 * these holds without a database round trip.
 */
export const gate = ({ bucket: place, group, now }: GateInput): Hold | undefined => {
  const policy = group.policy
  if (group.paused) return hold(holdReason.paused(group.pausedReason))
  if (!policy.updatesEnabled) return hold(holdReason.updatesDisabled)
  if (!inMaintenanceWindow(policy.windows, now)) return hold(holdReason.outsideWindows)
  if (!inRollout(place, policy.rolloutPercent)) return hold(holdReason.outsideRollout(policy.rolloutPercent))
  return undefined
}

/** The most updates in progress at once: `maxConcurrentUpdates`, else `maxUpdatesPerPeriod`. */
export const maxConcurrent = (policy: Policy): number => policy.maxConcurrentUpdates ?? policy.maxUpdatesPerPeriod

/**
 * Whether a machine that needs an update gets it now. Every rule, in order:
 * the {@link gate} rules; granted in the last period at the maximum; in
 * progress at the maximum; in safe mode, one update at a time until an
 * attempt of the rollout has finished; in safe mode, as many timed-out
 * updates as the period allows turns the group's updates off. Else grant.
 */
export const admit = (input: GateInput & { readonly stats: Stats }): Grant | Hold => {
  const gated = gate(input)
  if (gated !== undefined) return gated
  const { group: { policy }, stats } = input
  if (stats.grantedInPeriod >= policy.maxUpdatesPerPeriod) {
    return hold(holdReason.periodLimit(stats.grantedInPeriod, policy.maxUpdatesPerPeriod, policy.periodSeconds))
  }
  const concurrent = maxConcurrent(policy)
  if (stats.inProgress >= concurrent) return hold(holdReason.concurrentLimit(stats.inProgress, concurrent))
  if (policy.safeMode && stats.rolloutFinished === 0 && stats.rolloutInProgress >= 1) return hold(holdReason.safeModeWaiting)
  if (policy.safeMode && stats.rolloutTimedOut >= policy.maxUpdatesPerPeriod) {
    return hold(holdReason.safeModeTimedOut(stats.rolloutTimedOut), true)
  }
  return new Grant()
}

// ---------------------------------------------------------------------------
// Events

/** update_engine ORs flag bits (dev mode, resumed, test image, test Omaha URL) into its codes: the code is below them. */
export const errorCodeMask = 0x0fffffff

/** update_engine's code for an update that booted back into the old version. */
export const rollbackErrorCode = 44

/** A status change an event causes. */
export interface Transition {
  readonly status: Status
  /** The machine's version after the event (the granted one on completion). */
  readonly version: string
  /** update_engine's error code (flag bits masked off), on an error. */
  readonly errorCode?: number
  /** Set when the event finishes the grant: how it ended. */
  readonly outcome?: "complete" | "error"
  /** An error that is a rollback (code 44): the machine booted back into its old version. */
  readonly rollback: boolean
}

/** The part of a machine's state an event moves. */
export interface EventState {
  readonly status: Status
  readonly version: string
  readonly grantedVersion?: string | undefined
}

const inProgressStatuses: ReadonlySet<Status> = new Set(["granted", "downloading", "downloaded", "installed"])

/**
 * The status an event moves a machine to: 13/1 downloading, 14/1
 * downloaded, 3/1 or 800/1 (Flatcar) installed, 3/2 complete (the version
 * becomes the granted one, the grant finishes complete), any result 0 an
 * error with its code (the grant finishes with an error; 44 is a rollback);
 * an absent result is 0, the protocol's default.
 * Undefined when the event moves nothing: other events, and every event of
 * a machine with no update in progress.
 */
export const eventTransition = (
  state: EventState,
  event: Pick<EventRequest, "eventType" | "eventResult" | "errorCode">
): Transition | undefined => {
  if (!inProgressStatuses.has(state.status)) return undefined
  const type = event.eventType
  const result = event.eventResult ?? 0
  if (result === 0) {
    const code = event.errorCode === undefined ? undefined : event.errorCode & errorCodeMask
    return {
      status: "error",
      version: state.version,
      ...(code === undefined ? {} : { errorCode: code }),
      outcome: "error",
      rollback: code === rollbackErrorCode
    }
  }
  const move = (status: Status): Transition => ({ status, version: state.version, rollback: false })
  if (type === 13 && result === 1) return move("downloading")
  if (type === 14 && result === 1) return move("downloaded")
  if ((type === 3 || type === 800) && result === 1) return move("installed")
  if (type === 3 && result === 2) {
    return { status: "complete", version: state.grantedVersion ?? state.version, outcome: "complete", rollback: false }
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Failure brake

/** The finished attempts of a rollout, as the brake counts them. */
export interface BrakeStats {
  readonly finished: number
  readonly failed: number
}

/**
 * Why the brake pauses the group, or undefined: once `minAttempts` attempts
 * of the rollout have finished, a failure ratio over `ratio` trips it.
 */
export const brakeTrips = (brake: FailureBrake | undefined, stats: BrakeStats): string | undefined => {
  if (brake === undefined || stats.finished < brake.minAttempts || stats.finished === 0) return undefined
  return stats.failed / stats.finished > brake.ratio
    ? `failure brake: ${stats.failed} of ${stats.finished} finished updates failed, over ${
      Math.round(brake.ratio * 1000) / 10
    } %`
    : undefined
}
