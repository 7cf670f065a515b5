/**
 * The fleet's `Updater`: each update check decided by `Rollout` over a cached
 * copy of the configuration, the machine's facts and progress written by
 * `Tracking`.
 *
 * The configuration (applications, packages, channels, groups) is loaded at
 * start and again whenever a configuration table announces a change on the
 * `fleet_config` channel (within a second, on every replica), and polled as a
 * backstop in case a notification was lost. A check that needs nothing, or
 * that the configuration alone holds (paused, updates off, outside the
 * windows, outside the rollout percentage), costs no database round trip: its
 * check-in is queued for the next batch. Only a machine that needs an update
 * and may get one reaches the database, in the grant transaction, which is
 * committed before the answer is sent. Once a transaction finds the group's
 * period used up, the group's machines are held until its oldest grant
 * leaves the period with one read each (is this machine granted already?)
 * instead of a transaction that waits for the group's lock.
 *
 * Payloads: a hosted package is at `packages/<sha256 hex>/<name>` (relative;
 * the endpoint makes it absolute), an external one at its URL (the codebase
 * is its directory, the name its last segment). One answer has one codebase,
 * so a multi-step answer stops before the first step that lives elsewhere;
 * that step comes with the next check. Extra files are listed when they sit
 * beside the payload.
 */
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Layer, Option, Queue, type Scope, Stream } from "effect"
import type { AppRequest, EventRequest, Request } from "../protocol/Request.js"
import * as Response from "../protocol/Response.js"
import { AppRefused, type Client, NoUpdate, Update, Updater, type UpdaterService } from "../server/Updater.js"
import { configChannel, Notifications } from "./Database.js"
import { FleetEvent, FleetEvents, make as tellingNobody } from "./FleetEvents.js"
import { loadConfig } from "./internal/configRows.js"
import type { Package } from "./Model.js"
import * as Rollout from "./Rollout.js"
import * as Tracking from "./Tracking.js"

/** How the fleet updater follows the configuration and batches check-ins. */
export interface Options {
  /** How often the configuration is read again even without a notification; 30 s by default. */
  readonly pollInterval?: Duration.DurationInput
  /** How check-ins are batched (for {@link layer}). */
  readonly tracking?: Tracking.Options
}

/** Where an answer's packages are: the codebase (a directory, ending in "/") and the package's name in it. */
export interface Location {
  readonly codebase: string
  readonly name: string
}

const hexOf = (base64: string) => Buffer.from(base64, "base64").toString("hex")

/** Where a package's payload is downloaded from. */
export const locate = (pkg: Pick<Package, "url" | "sha256" | "name">): Location => {
  if (pkg.url === undefined) return { codebase: `packages/${hexOf(pkg.sha256)}/`, name: pkg.name }
  const slash = pkg.url.lastIndexOf("/")
  return { codebase: pkg.url.slice(0, slash + 1), name: pkg.url.slice(slash + 1) }
}

const integer = /^\d+$/

const manifestOf = (step: Rollout.Step, location: Location, multi: boolean): Response.Manifest => {
  const pkg = step.package
  const action = pkg.action
  const extras = pkg.extraFiles.flatMap((file) => {
    if (file.url === undefined) return []
    const at = locate({ url: file.url, sha256: file.sha256, name: file.name })
    return at.codebase === location.codebase
      ? [new Response.Package({ name: at.name, hash: file.sha1, hashSha256: file.sha256, size: file.size, required: false })]
      : []
  })
  return new Response.Manifest({
    version: pkg.version,
    ...(multi
      ? {
        isFloor: !step.isTarget,
        isTarget: step.isTarget,
        ...(step.floorReason === undefined || step.floorReason === "" ? {} : { floorReason: step.floorReason })
      }
      : {}),
    packages: [
      new Response.Package({ name: location.name, hash: pkg.sha1, hashSha256: pkg.sha256, size: pkg.size, required: true }),
      ...extras
    ],
    actions: [
      new Response.Action({
        event: "postinstall",
        sha256: pkg.sha256,
        needsAdmin: action.needsAdmin,
        isDeltaPayload: action.isDelta,
        disablePayloadBackoff: action.disablePayloadBackoff,
        ...(action.metadataSignatureRsa === undefined ? {} : { metadataSignatureRsa: action.metadataSignatureRsa }),
        ...(action.metadataSize !== undefined && integer.test(action.metadataSize)
          ? { metadataSize: Number(action.metadataSize) }
          : {}),
        ...(action.deadline === undefined ? {} : { deadline: action.deadline }),
        ...(action.chromeOsVersion === undefined ? {} : { chromeOsVersion: action.chromeOsVersion })
      })
    ]
  })
}

/**
 * The answer for the steps of an update: one manifest per step up to the
 * first that is downloaded from another codebase. `multi` (the client sent
 * `multi_manifest_ok`) marks floors and the target on each manifest.
 */
export const updateOf = (steps: Rollout.Steps, multi: boolean): Update => {
  const location = locate(steps.steps[0].package)
  const manifests: [Response.Manifest, ...Array<Response.Manifest>] = [manifestOf(steps.steps[0], location, multi)]
  for (const step of steps.steps.slice(1)) {
    const at = locate(step.package)
    if (at.codebase !== location.codebase) break
    manifests.push(manifestOf(step, at, multi))
  }
  return new Update({ codebases: [location.codebase], manifests })
}

/** The machine a request's app speaks for: `app@machineid`, else `request@userid`. */
export const machineIdOf = (request: Request, app: AppRequest): string | undefined => {
  const id = app.machineId ?? request.userId
  return id === undefined || id === "" ? undefined : id
}

/**
 * The `Updater` over the fleet's database, writing through `Tracking`. It
 * listens on `fleet_config` before the first load, so no change is missed.
 */
export const make = (
  options: Options = {}
): Effect.Effect<UpdaterService, SqlError, SqlClient.SqlClient | Notifications | Tracking.Tracking | Scope.Scope> =>
  Effect.gen(function*() {
    // Grants, completions, failures and rollouts are told to `FleetEvents` when it is provided.
    const events = Option.getOrElse(yield* Effect.serviceOption(FleetEvents), () => tellingNobody([]))
    const sql = yield* SqlClient.SqlClient
    const tracking = yield* Tracking.Tracking
    const notifications = yield* Notifications
    const pollInterval = Duration.decode(options.pollInterval ?? Duration.seconds(30))

    const changes = yield* notifications.subscribe(configChannel)
    const load = Effect.provideService(loadConfig, SqlClient.SqlClient, sql).pipe(
      Effect.tap(({ skipped }) =>
        Effect.forEach(skipped, (what) => Effect.logWarning(`configuration: left out ${what}`), { discard: true })
      )
    )
    let config = (yield* load).config
    // Groups whose period's grants are used up, until the oldest leaves the
    // period: their machines are held without the grant transaction. Grants
    // only fill a period, so this never holds a machine that could be granted,
    // unless the policy changed, and a change of configuration forgets it.
    const periodFull = new Map<string, { readonly until: number; readonly reason: string }>()
    const stale = yield* Queue.sliding<void>(1)
    yield* Queue.take(stale).pipe(
      Effect.zipRight(load),
      Effect.tap((loaded) =>
        Effect.sync(() => {
          config = loaded.config
          periodFull.clear()
        })
      ),
      Effect.catchAll((error) => Effect.logWarning(`configuration: reading it again failed: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )
    yield* changes.pipe(
      Stream.runForEach(() => stale.offer(undefined)),
      Effect.catchAllCause((cause) =>
        Effect.logWarning("configuration: notifications stopped; following changes by polling only", cause)
      ),
      Effect.forkScoped
    )
    yield* stale.offer(undefined).pipe(Effect.delay(pollInterval), Effect.forever, Effect.forkScoped)

    const checkInOf = (
      app: AppRequest,
      client: Client,
      machineId: string,
      now: number,
      group: string | undefined,
      arch: string
    ): Tracking.CheckIn => ({
      machineId,
      appId: app.appId,
      at: now,
      ip: client.address ?? "",
      alias: app.machineAlias ?? "",
      oem: app.oem ?? "",
      oemVersion: app.oemVersion ?? "",
      alephVersion: app.alephVersion ?? "",
      track: app.track ?? "",
      arch,
      groupId: group,
      version: app.version ?? ""
    })

    const checkApp = (_: Request, app: AppRequest) =>
      config.applications.has(app.appId)
        ? Effect.void
        : Effect.fail(new AppRefused({ status: "error-unknownApplication", reason: `no application ${app.appId}` }))

    const ping = (request: Request, app: AppRequest, client: Client) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const machineId = machineIdOf(request, app)
        if (machineId === undefined) return Effect.void
        const group = Rollout.groupFor(config, app.appId, app.track)
        return tracking.checkIn(checkInOf(app, client, machineId, now, group?.id, Rollout.archOf(request, app)))
      })

    // The per-check methods open no tracing span (`Effect.fnUntraced`, not
    // `Effect.fn`): nothing exports traces from the fleet server, and a span
    // cost more than the rest of a "no update" decision.
    const event = Effect.fnUntraced(function*(request: Request, app: AppRequest, event: EventRequest, client: Client) {
      const machineId = machineIdOf(request, app)
      if (machineId === undefined) return
      const now = yield* Clock.currentTimeMillis
      const snapshot = config
      const arch = Rollout.archOf(request, app)
      const group = Rollout.groupFor(snapshot, app.appId, app.track)
      const channel = group === undefined ? undefined : Rollout.channelFor(snapshot, group, arch)
      const outcome = yield* tracking.event({
        checkIn: checkInOf(app, client, machineId, now, group?.id, arch),
        event,
        rolloutVersions: channel === undefined ? [] : Rollout.rolloutVersions(channel)
      }).pipe(
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logError(
              `recording event ${event.eventType}/${event.eventResult ?? 0} of ${machineId} failed: ${error.message}`,
              error.cause
            ),
            undefined
          )
        )
      )
      if (outcome?.braked !== undefined) yield* Effect.logWarning(`group ${group?.name}: ${outcome.braked}; rollout paused`)
      if (outcome?.transition?.outcome !== undefined && outcome.version !== undefined) {
        const told = { appId: app.appId, group: group?.name ?? "", version: outcome.version, at: now }
        const { transition } = outcome
        yield* transition.outcome === "complete"
          ? events.publish(FleetEvent.Completed({ ...told, machineId }))
          : events.publish(FleetEvent.Failed({ ...told, machineId, errorCode: transition.errorCode, rollback: transition.rollback }))
        if (outcome.braked !== undefined) yield* events.publish(FleetEvent.RolloutBraked({ ...told, reason: outcome.braked }))
        if (outcome.rolloutFinished) yield* events.publish(FleetEvent.RolloutFinished(told))
      }
    })

    const checkUpdate = Effect.fnUntraced(function*(request: Request, app: AppRequest, client: Client) {
      const machineId = machineIdOf(request, app)
      if (machineId === undefined) return new NoUpdate({ reason: "the request names no machine (app@machineid or request@userid)" })
      const now = yield* Clock.currentTimeMillis
      const snapshot = config
      const arch = Rollout.archOf(request, app)
      const group = Rollout.groupFor(snapshot, app.appId, app.track)
      const checkIn = checkInOf(app, client, machineId, now, group?.id, arch)
      const noUpdate = (reason: string, hold: string | null = null) =>
        Effect.as(tracking.checkIn({ ...checkIn, hold }), new NoUpdate({ reason }))
      if (group === undefined) return yield* noUpdate(`no group with track ${JSON.stringify(app.track ?? "")}`)
      if (app.updateCheck?.updateDisabled === true) return yield* noUpdate("the client has updates disabled")
      const channel = Rollout.channelFor(snapshot, group, arch)
      if (channel === undefined) return yield* noUpdate(`group ${group.name} has no channel ${group.channel} for ${arch}`)
      const multi = app.multiManifestOk === true
      const machine: Rollout.Machine = {
        version: app.version,
        arch,
        multiManifestOk: multi,
        targetVersionPrefix: app.updateCheck?.targetVersionPrefix
      }
      const target = Rollout.target(snapshot, group, channel, machine)
      if (target._tag !== "Steps") return yield* noUpdate(target.reason)
      const place = Rollout.bucket(machineId, Rollout.rolloutKey(group, target.target.version))
      const gated = Rollout.gate({ group, now, bucket: place })
      if (gated !== undefined) return yield* noUpdate(gated.reason, gated.reason)
      const full = periodFull.get(group.id)
      if (full !== undefined && now < full.until) {
        // Only a machine granted before (the same package again) may pass; one read says.
        const state = yield* tracking.state(machineId, app.appId).pipe(Effect.either)
        const resumed = state._tag === "Right" ? Rollout.resume(state.right, group.policy, now, app.version) : undefined
        if (resumed?._tag === "Fresh") return yield* noUpdate(full.reason, full.reason)
        if (resumed?._tag === "InProgress") return yield* noUpdate(resumed.reason, resumed.reason)
      }
      const outcome = yield* tracking.grant({
        checkIn,
        groupId: group.id,
        steps: target,
        rolloutVersions: Rollout.rolloutVersions(channel),
        bucket: place
      }).pipe(Effect.either)
      if (outcome._tag === "Left") {
        yield* Effect.logError(`granting an update to ${machineId} failed: ${outcome.left.message}`, outcome.left.cause)
        return new NoUpdate({ reason: "the database is unavailable" })
      }
      switch (outcome.right._tag) {
        case "Granted": {
          yield* Effect.logInfo(`group ${group.name}: granted ${outcome.right.version} to ${machineId}`)
          const told = { appId: app.appId, group: group.name, at: now }
          if (outcome.right.rolloutStarted) {
            yield* events.publish(FleetEvent.RolloutStarted({ ...told, version: target.target.version }))
          }
          yield* events.publish(FleetEvent.Granted({ ...told, machineId, version: outcome.right.version }))
          return updateOf(target, multi)
        }
        case "Again": {
          const again = Rollout.regrant(snapshot, group, channel, machine, outcome.right.grantedVersion)
          return again === undefined
            ? new NoUpdate({ reason: `the granted package ${outcome.right.grantedVersion} is gone` })
            : updateOf(again, multi)
        }
        case "Held": {
          const until = outcome.right.until
          if (until !== undefined && snapshot === config) periodFull.set(group.id, { until, reason: outcome.right.reason })
          return new NoUpdate({ reason: outcome.right.reason })
        }
      }
    })

    return { checkApp, checkUpdate, event, ping } satisfies UpdaterService
  })

/**
 * The fleet server's `Updater`, with its own `Tracking`: closing the layer
 * (a graceful stop) writes the last check-ins.
 */
export const layer = (options: Options = {}): Layer.Layer<Updater, SqlError, SqlClient.SqlClient | Notifications> =>
  Layer.scoped(Updater, make(options)).pipe(Layer.provide(Tracking.layer(options.tracking)))
