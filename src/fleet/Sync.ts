/**
 * Mirroring channels of an upstream Omaha server (Flatcar's public one, a
 * serve-package, another fleet-server): for each synced channel and arch,
 * the upstream is asked as a machine on the channel's current version would
 * ask (with `multi_manifest_ok`, so it names the floors on the way); what it
 * offers becomes packages (with their floors) and the channel is moved to
 * the target, with an activity entry. With `hostPayloads`, each payload is
 * downloaded, verified against the upstream's size and digests while it
 * streams, and kept in the data directory as an upload would be, so
 * machines fetch it from us; without, packages point at the upstream's URLs.
 *
 * The fleet does not speak to the upstream itself: the {@link Upstream}
 * port asks (the command provides it over the project's Omaha client), and
 * this module decides what the answer means.
 */
import { HttpClient } from "@effect/platform"
import { Context, Duration, Effect, Either, Layer, Option, Random, Schema, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import * as Crypto from "node:crypto"
import { digestBytes } from "../protocol/Package.js"
import type * as Response from "../protocol/Response.js"
import * as Version from "../protocol/Version.js"
import { ExtraFile, type PostinstallAction } from "./Model.js"
import { Payloads } from "./Payloads.js"
import { Store } from "./Store.js"

/** Flatcar Container Linux's application id, synced when no other is named. */
export const flatcarAppId = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"

/** The version asked with when a channel has no package yet: anything the upstream has is newer. */
export const noVersion = "0.0.0"

/** The arches a synced channel may have, with the board a Flatcar machine of each sends. */
export const boards = { amd64: "amd64-usr", arm64: "arm64-usr" } as const
export type SyncArch = keyof typeof boards

/** One channel to mirror: ours (`channel`, `arch`) and the upstream track it follows. */
export interface SyncChannel {
  readonly channel: string
  readonly arch: SyncArch
  readonly track: string
}

/** A `--sync-channel` that is not `NAME[:ARCH][=TRACK]` with a known arch. */
export class InvalidSyncChannel extends Schema.TaggedError<InvalidSyncChannel>()("InvalidSyncChannel", {
  spec: Schema.String
}) {
  override get message(): string {
    return `invalid --sync-channel ${JSON.stringify(this.spec)}: give NAME, NAME:ARCH or NAME:ARCH=TRACK, ARCH amd64 or arm64`
  }
}

/** Reads `stable`, `beta:arm64`, `lts:amd64=lts-2024`: our channel, its arch (amd64 by default) and the upstream track (the name by default). */
export const parseSyncChannel = (spec: string): Effect.Effect<SyncChannel, InvalidSyncChannel> => {
  const m = /^([^:=\s]+)(?::([a-z0-9]+))?(?:=(\S+))?$/.exec(spec.trim())
  const arch = m?.[2] ?? "amd64"
  if (m === null || !(arch in boards)) return Effect.fail(new InvalidSyncChannel({ spec }))
  return Effect.succeed({ channel: m[1]!, arch: arch as SyncArch, track: m[3] ?? m[1]! })
}

/** What the upstream is asked: one app, as a machine on `version` of the track and board would ask. */
export interface UpstreamCheck {
  readonly appId: string
  readonly version: string
  readonly track: string
  readonly board: string
  /** The id the syncer sends as its machine id. */
  readonly machineId: string
}

/** The upstream could not be asked (unreachable, an HTTP or Omaha error, a malformed answer). */
export class UpstreamFailed extends Schema.TaggedError<UpstreamFailed>()("UpstreamFailed", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `upstream ${this.url}: ${this.reason}`
  }
}

/** An answer whose update cannot be mirrored (no URL, no size, no digest). */
export class UpstreamAnswerInvalid extends Schema.TaggedError<UpstreamAnswerInvalid>()("UpstreamAnswerInvalid", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `upstream ${this.url} offered an update that cannot be mirrored: ${this.reason}`
  }
}

/** A downloaded payload whose size or digest is not what the upstream announced. */
export class PayloadMismatch extends Schema.TaggedError<PayloadMismatch>()("PayloadMismatch", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `payload ${this.url}: ${this.reason}`
  }
}

/** The upstream, as the sync asks it. */
export interface UpstreamService {
  /** The upstream's update URL (for messages). */
  readonly url: string
  /** One update check; the answer's `updatecheck`. */
  readonly check: (check: UpstreamCheck) => Effect.Effect<Response.UpdateResponse, UpstreamFailed>
}

/** The upstream port. */
export class Upstream extends Context.Tag("effect-omaha/fleet/Sync/Upstream")<Upstream, UpstreamService>() {}

/** One version the upstream offers: a floor on the way, or the target. */
export interface Step {
  readonly version: string
  readonly isTarget: boolean
  /** Why a floor is one, when the upstream says. */
  readonly floorReason: string | undefined
  /** The payload's file name and absolute URL. */
  readonly name: string
  readonly url: string
  readonly size: number
  /** Base64 digests. */
  readonly sha1: string
  readonly sha256: string
  readonly action: Partial<PostinstallAction>
  readonly extraFiles: ReadonlyArray<ExtraFile>
}

/** What the upstream offers: floors in order, then the target, unless the answer stopped short of it (`complete` false). */
export interface Release {
  readonly steps: NonEmptyReadonlyArray<Step>
  readonly complete: boolean
}

const base64Of = (digest: string | undefined): string | undefined => {
  const bytes = digest === undefined ? undefined : digestBytes(digest)
  return bytes === undefined ? undefined : bytes.toString("base64")
}

/**
 * The release an update check's answer offers, its URLs made absolute
 * against the upstream's; `None` for no update. A manifest without
 * `is_floor`/`is_target` (a server that does not do multi-step updates) is
 * the target.
 */
export const releaseOf = (
  update: Response.UpdateResponse,
  upstream: string
): Either.Either<Option.Option<Release>, UpstreamAnswerInvalid> => {
  const invalid = (reason: string) => Either.left(new UpstreamAnswerInvalid({ url: upstream, reason }))
  if (update.status === "noupdate") return Either.right(Option.none())
  if (update.status !== "ok") return invalid(`it answered ${update.status}`)
  const codebase = update.urls.find((url) => url.codebase !== "")?.codebase
  if (codebase === undefined) return invalid("the update has no URL")
  if (!URL.canParse(codebase, upstream)) return invalid(`the URL ${JSON.stringify(codebase)} is not a URL`)
  const base = new URL(codebase, upstream)
  if (!base.pathname.endsWith("/")) base.pathname += "/"
  const flagged = update.manifests.some((m) => m.isFloor !== undefined || m.isTarget !== undefined)
  const steps: Array<Step> = []
  for (const [i, manifest] of update.manifests.entries()) {
    const [payload, ...extras] = [...manifest.packages].sort((a, b) => Number(b.required !== false) - Number(a.required !== false))
    if (payload === undefined) return invalid(`manifest ${manifest.version} has no package`)
    if (Option.isNone(Version.parseOption(manifest.version))) return invalid(`${JSON.stringify(manifest.version)} is not a version`)
    const action = manifest.actions.find((a) => a.event === "postinstall")
    const sha256 = base64Of(payload.hashSha256) ?? base64Of(action?.sha256)
    const sha1 = base64Of(payload.hash)
    if (payload.size === undefined) return invalid(`package ${payload.name} of ${manifest.version} has no size`)
    if (sha256 === undefined || Buffer.from(sha256, "base64").length !== 32) {
      return invalid(`package ${payload.name} of ${manifest.version} has no SHA-256`)
    }
    if (sha1 === undefined || Buffer.from(sha1, "base64").length !== 20) {
      return invalid(`package ${payload.name} of ${manifest.version} has no SHA-1`)
    }
    const url = new URL(payload.name, base)
    if (!url.href.startsWith(base.href)) return invalid(`package name ${JSON.stringify(payload.name)} is not a file name`)
    const extraFiles = extras.flatMap((extra) => {
      const extraSha1 = base64Of(extra.hash)
      const extraSha256 = base64Of(extra.hashSha256)
      return extra.size === undefined || extraSha1 === undefined || extraSha256 === undefined
        ? []
        : [new ExtraFile({ name: extra.name, size: extra.size, sha1: extraSha1, sha256: extraSha256, url: new URL(extra.name, base).href })]
    })
    steps.push({
      version: manifest.version,
      isTarget: flagged ? manifest.isTarget === true : i === update.manifests.length - 1,
      floorReason: manifest.floorReason,
      name: payload.name,
      url: url.href,
      size: payload.size,
      sha1,
      sha256,
      action: {
        ...(action?.isDeltaPayload === undefined ? {} : { isDelta: action.isDeltaPayload }),
        ...(action?.needsAdmin === undefined ? {} : { needsAdmin: action.needsAdmin }),
        ...(action?.disablePayloadBackoff === undefined ? {} : { disablePayloadBackoff: action.disablePayloadBackoff }),
        ...(action?.metadataSignatureRsa === undefined ? {} : { metadataSignatureRsa: action.metadataSignatureRsa }),
        ...(action?.metadataSize === undefined ? {} : { metadataSize: String(action.metadataSize) }),
        ...(action?.deadline === undefined ? {} : { deadline: action.deadline }),
        ...(action?.chromeOsVersion === undefined ? {} : { chromeOsVersion: action.chromeOsVersion })
      },
      extraFiles
    })
  }
  if (steps.length === 0) return invalid("the update has no manifest")
  const last = steps[steps.length - 1]!
  return Either.right(Option.some({ steps: steps as unknown as NonEmptyReadonlyArray<Step>, complete: last.isTarget }))
}

/**
 * The bytes of `body` as they stream, checked against `step`: more bytes
 * than announced fail at once, and at the end the size, SHA-1 and SHA-256
 * must be the announced ones, or the stream fails (before its consumer
 * keeps anything).
 */
export const verified = <E, R>(body: Stream.Stream<Uint8Array, E, R>, step: Step): Stream.Stream<Uint8Array, E | PayloadMismatch, R> =>
  Stream.suspend(() => {
    const sha1 = Crypto.createHash("sha1")
    const sha256 = Crypto.createHash("sha256")
    let size = 0
    const mismatch = (reason: string) => new PayloadMismatch({ url: step.url, reason })
    const checked = Stream.mapChunksEffect(body, (chunk) => {
      for (const bytes of chunk) {
        size += bytes.byteLength
        sha1.update(bytes)
        sha256.update(bytes)
      }
      return size > step.size ? Effect.fail(mismatch(`more than the announced ${step.size} bytes`)) : Effect.succeed(chunk)
    })
    const end = Effect.suspend(() => {
      if (size !== step.size) return Effect.fail(mismatch(`${size} bytes, the upstream announced ${step.size}`))
      const sha1Is = sha1.digest("base64")
      if (sha1Is !== step.sha1) return Effect.fail(mismatch(`SHA-1 is ${sha1Is}, the upstream announced ${step.sha1}`))
      const sha256Is = sha256.digest("base64")
      if (sha256Is !== step.sha256) return Effect.fail(mismatch(`SHA-256 is ${sha256Is}, the upstream announced ${step.sha256}`))
      return Effect.void
    })
    return Stream.concat(checked, Stream.execute(end))
  })

/** A `--sync-app` that cannot be an application's id (empty, or over 200 characters). */
export class InvalidSyncApp extends Schema.TaggedError<InvalidSyncApp>()("InvalidSyncApp", {
  appId: Schema.String
}) {
  override get message(): string {
    return `invalid --sync-app ${JSON.stringify(this.appId)}: give an application id of 1 to 200 characters without spaces around it`
  }
}

/** Checks an application id to mirror as the API checks a new application's. */
export const parseSyncApp = (appId: string): Effect.Effect<string, InvalidSyncApp> =>
  appId.length > 0 && appId.length <= 200 && appId.trim() === appId
    ? Effect.succeed(appId)
    : Effect.fail(new InvalidSyncApp({ appId }))

/** The machine id the syncer sends for a channel: the same on every replica and restart. */
export const syncMachineId = (appId: string, channel: SyncChannel): string =>
  Crypto.createHash("sha256").update(`effect-omaha fleet-server sync\0${appId}\0${channel.track}\0${channel.arch}`).digest("hex").slice(0, 32)

// -- mirroring ----------------------------------------------------------------

/** How the sync runs. */
export interface Options {
  /** The application whose channels are mirrored; Flatcar's by default. */
  readonly appId?: string
  /** The channels mirrored. */
  readonly channels: ReadonlyArray<SyncChannel>
  /** Download the payloads into the data directory (else packages point at the upstream's URLs). */
  readonly hostPayloads?: boolean
  /** Time between rounds, fuzzed by ±10 %; 1 hour by default. */
  readonly interval?: Duration.DurationInput
  /** Time from start to the first round; 5 seconds by default. */
  readonly firstRound?: Duration.DurationInput
}

/** A payload could not be downloaded from the upstream. */
export class DownloadFailed extends Schema.TaggedError<DownloadFailed>()("DownloadFailed", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `downloading ${this.url} failed: ${this.reason}`
  }
}

/** A package of ours has the version the upstream offers but other bytes: it is left alone and the channel not moved. */
export class PackageDiffers extends Schema.TaggedError<PackageDiffers>()("PackageDiffers", {
  version: Schema.String,
  arch: Schema.String
}) {
  override get message(): string {
    return `package ${this.version} (${this.arch}) exists here with other bytes than the upstream's; not mirrored`
  }
}

/** What one channel's sync did. */
export interface Synced {
  readonly channel: SyncChannel
  /** Versions of packages created. */
  readonly created: ReadonlyArray<string>
  /** The version the channel was moved to, if it moved. */
  readonly moved: string | undefined
}

// More rounds than any real chain of floors; an upstream that keeps answering floors stops here.
const maxRounds = 10

/** Mirrors one channel once: asks the upstream, creates what it offers, moves the channel. */
export const syncChannel = (
  appId: string,
  target: SyncChannel,
  options: { readonly hostPayloads?: boolean | undefined } = {}
) =>
  Effect.gen(function*() {
    const store = yield* Store
    const payloads = yield* Payloads
    const upstream = yield* Upstream
    const http = yield* HttpClient.HttpClient
    const key = { appId, name: target.channel, arch: target.arch }
    yield* store.getApplication(appId).pipe(
      Effect.catchTag("NotFound", () =>
        store.createApplication({ id: appId, name: appId === flatcarAppId ? "Flatcar Container Linux" : appId }))
    )
    const channel = yield* store.getChannel(key).pipe(
      Effect.catchTag("NotFound", () => store.createChannel({ appId, name: target.channel, arch: target.arch }))
    )
    const created: Array<string> = []
    let current = channel.package ?? noVersion

    // The package for a step: ours when we have it with the same bytes, else made.
    const ensure = (step: Step) =>
      Effect.gen(function*() {
        const existing = yield* store.getPackage(appId, step.version, target.arch).pipe(
          Effect.map(Option.some),
          Effect.catchTag("NotFound", () => Effect.succeed(Option.none()))
        )
        if (Option.isSome(existing)) {
          if (existing.value.sha256 !== step.sha256) return yield* new PackageDiffers({ version: step.version, arch: target.arch })
          return
        }
        const facts = {
          appId,
          version: step.version,
          arch: target.arch,
          name: step.name,
          action: step.action
        }
        if (options.hostPayloads === true) {
          if (step.size > payloads.maxUploadBytes) {
            return yield* new DownloadFailed({ url: step.url, reason: `${step.size} bytes is over the ${payloads.maxUploadBytes}-byte upload limit` })
          }
          const failed = (reason: string) => new DownloadFailed({ url: step.url, reason })
          yield* Effect.scoped(Effect.gen(function*() {
            const response = yield* HttpClient.withScope(http).get(step.url).pipe(Effect.mapError((e) => failed(e.message)))
            if (response.status !== 200) return yield* failed(`HTTP ${response.status}`)
            const body = Stream.mapError(response.stream, (e) => failed(e.message))
            yield* payloads.upload({ ...facts, body: verified(body, step) })
          }))
        } else {
          yield* payloads.register({
            ...facts,
            url: step.url,
            size: step.size,
            sha1: step.sha1,
            sha256: step.sha256,
            extraFiles: step.extraFiles
          })
        }
        created.push(step.version)
      })

    for (let round = 0; round < maxRounds; round++) {
      const update = yield* upstream.check({
        appId,
        version: current,
        track: target.track,
        board: boards[target.arch],
        machineId: syncMachineId(appId, target)
      })
      const offered = yield* releaseOf(update, upstream.url)
      if (Option.isNone(offered)) break
      const ahead = Option.match(Version.parseOption(current), {
        onNone: () => offered.value.steps,
        onSome: (now) => offered.value.steps.filter((s) => Version.lessThan(now, Version.parseOption(s.version).pipe(Option.getOrThrow)))
      })
      if (ahead.length === 0) break
      for (const step of ahead) yield* ensure(step)
      for (const step of ahead) {
        if (!step.isTarget) yield* store.setFloor(key, step.version, step.floorReason ?? "")
      }
      const last = ahead[ahead.length - 1]!
      current = last.version
      if (offered.value.complete) break
    }
    const moved = current !== noVersion && current !== (channel.package ?? noVersion) ? current : undefined
    if (moved !== undefined) yield* store.updateChannel(key, { package: moved })
    return { channel: target, created, moved } satisfies Synced
  }).pipe(Effect.withSpan("Sync.syncChannel"))

const describeSynced = (synced: Synced, upstream: string): string | undefined => {
  const label = `${synced.channel.channel} (${synced.channel.arch})`
  if (synced.moved === undefined && synced.created.length === 0) return undefined
  const created = synced.created.length === 0 ? "" : `created ${synced.created.join(", ")}; `
  return `sync: channel ${label} from ${upstream}: ${created}${synced.moved === undefined ? "not moved" : `moved to ${synced.moved}`}`
}

/** One round: every channel in turn; a channel that fails is logged and the others go on. */
export const syncAll = (options: Options) =>
  Effect.gen(function*() {
    const upstream = yield* Upstream
    const appId = options.appId ?? flatcarAppId
    const results: Array<Synced> = []
    for (const channel of options.channels) {
      const synced = yield* syncChannel(appId, channel, { hostPayloads: options.hostPayloads }).pipe(
        Effect.tap((synced) => {
          const line = describeSynced(synced, upstream.url)
          return line === undefined ? Effect.void : Effect.logInfo(line)
        }),
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning(`sync: channel ${channel.channel} (${channel.arch}): ${error.message}`), undefined)
        )
      )
      if (synced !== undefined) results.push(synced)
    }
    return results
  })

/** The sync for the scope: a round `firstRound` after start, then one every `interval` ±10 %. */
export const run = (options: Options) =>
  Effect.gen(function*() {
    const interval = Duration.toMillis(Duration.decode(options.interval ?? Duration.hours(1)))
    yield* Effect.sleep(options.firstRound ?? Duration.seconds(5))
    for (;;) {
      yield* syncAll(options)
      const fuzz = yield* Random.nextRange(0.9, 1.1)
      yield* Effect.sleep(Duration.millis(Math.round(interval * fuzz)))
    }
  })

/** {@link run} as a layer. */
export const layer = (options: Options) => Layer.scopedDiscard(Effect.forkScoped(run(options)))
