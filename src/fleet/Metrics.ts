/**
 * The fleet server's Prometheus metrics, served at `/metrics` in the text
 * exposition format (version 0.0.4) by a prom-client registry of the
 * server's own:
 *
 * - `fleet_instances{app,group,channel,version,status}`: machines by their
 *   state, read from the database when scraped and kept for a few seconds,
 *   so that scrapes cannot load the database; the label sets with the most
 *   machines up to a cap, the rest counted under `version="other"`;
 * - `fleet_update_checks_total{app,answer,reason}`: update checks by answer
 *   (`update`, `noupdate`, `hold`, `error`) and, for holds and no-updates,
 *   a reason from a fixed set ({@link holdReasons}, {@link noUpdateReasons});
 * - `fleet_grants_total`, `fleet_updates_completed_total{app,group}` and
 *   `fleet_updates_failed_total{app,group,error_code}` (update_engine's
 *   code: 0-99 and 2000-2999 as they are, any other as `other`);
 *   `fleet_rollouts_started_total`, `fleet_rollouts_finished_total` and
 *   `fleet_rollouts_braked_total{app,group}`;
 * - `fleet_omaha_request_duration_seconds{status}`,
 *   `fleet_api_request_duration_seconds{method,route,status}` (`route` the
 *   API path's template) and `fleet_store_statement_duration_seconds{operation}`
 *   (every SQL statement, from asking for a connection to its result):
 *   histograms;
 * - `fleet_webhook_deliveries_total{outcome}`, and Node's process metrics
 *   (`process_*`, `nodejs_*`).
 *
 * Every label takes values from a bounded set: applications and groups are
 * the configuration's, versions are capped, reasons and routes are fixed.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Duration, Effect, Layer, Tracer } from "effect"
import * as Prom from "prom-client"
import type { NoUpdate, Update, UpdaterService } from "../server/Updater.js"
import type { Listener } from "./FleetEvents.js"
import type { Outcome } from "./Webhooks.js"

/** The path metrics are served at. */
export const path = "/metrics"

/** The metric names, as documented. */
export const names = {
  instances: "fleet_instances",
  updateChecks: "fleet_update_checks_total",
  grants: "fleet_grants_total",
  completed: "fleet_updates_completed_total",
  failed: "fleet_updates_failed_total",
  rolloutsStarted: "fleet_rollouts_started_total",
  rolloutsFinished: "fleet_rollouts_finished_total",
  rolloutsBraked: "fleet_rollouts_braked_total",
  omahaDuration: "fleet_omaha_request_duration_seconds",
  apiDuration: "fleet_api_request_duration_seconds",
  storeDuration: "fleet_store_statement_duration_seconds",
  webhookDeliveries: "fleet_webhook_deliveries_total"
} as const

/** The `reason` label of a hold, from the reason's stable start; anything else held is `other`. */
export const holdReasons: ReadonlyArray<readonly [RegExp, string]> = [
  [/^on hold: group paused/, "paused"],
  [/^on hold: updates disabled/, "updates_disabled"],
  [/^on hold: outside the maintenance windows/, "outside_windows"],
  [/^on hold: not in the .* of machines/, "outside_rollout"],
  [/^on hold: \d+ of \d+ updates in the last/, "period_limit"],
  [/^on hold: \d+ of \d+ updates in progress/, "concurrent_limit"],
  [/^on hold: safe mode, waiting/, "safe_mode_waiting"],
  [/^on hold: safe mode turned updates off/, "safe_mode_timed_out"],
  [/^on hold: update in progress/, "in_progress"],
  [/^on hold: update installed/, "waiting_for_reboot"],
  [/^on hold: the group is gone/, "group_gone"]
]

/** The `reason` label of a no-update that is not a hold; anything else is `other`. */
export const noUpdateReasons: ReadonlyArray<readonly [RegExp, string]> = [
  [/ is not older than /, "up_to_date"],
  [/ is blocklisted on channel /, "blocklisted"],
  [/^no group with track /, "no_group"],
  [/ has no channel /, "no_channel"],
  [/^channel .* has no package|^no package |, which is not a version$/, "no_package"],
  [/^the client has updates disabled/, "client_disabled"],
  [/^the request names no machine/, "no_machine_id"],
  [/^unreadable version /, "unreadable_version"],
  [/^the database is unavailable/, "database_unavailable"],
  [/^the granted package .* is gone/, "granted_package_gone"]
]

const classify = (table: ReadonlyArray<readonly [RegExp, string]>, reason: string | undefined): string => {
  if (reason === undefined) return "other"
  for (const [pattern, label] of table) if (pattern.test(reason)) return label
  return "other"
}

/** The `answer` and `reason` labels of an update check's outcome. */
export const answerOf = (outcome: Update | NoUpdate): { readonly answer: string; readonly reason: string } => {
  if (outcome._tag === "Update") return { answer: "update", reason: "" }
  const reason = outcome.reason
  return reason !== undefined && reason.startsWith("on hold:")
    ? { answer: "hold", reason: classify(holdReasons, reason) }
    : { answer: "noupdate", reason: classify(noUpdateReasons, reason) }
}

/** The `error_code` label: update_engine's codes (0-99) and its HTTP ones (2000 + status) as they are, others `other`. */
export const errorCodeLabel = (code: number | undefined): string =>
  code === undefined
    ? "none"
    : Number.isInteger(code) && ((code >= 0 && code < 100) || (code >= 2000 && code < 3000))
    ? String(code)
    : "other"

// After these words of an API path comes a value, named so.
const parameters: Readonly<Record<string, string>> = {
  apps: "{app}",
  packages: "{version}",
  channels: "{name}",
  groups: "{name}",
  instances: "{machineId}",
  floors: "{version}",
  blocklist: "{version}",
  tokens: "{id}",
  webhooks: "{id}"
}
const words: ReadonlySet<string> = new Set([...Object.keys(parameters), "api", "pause", "resume", "activity", "openapi.json"])

/** The `route` label of an API request: its path with the values replaced (`/api/apps/{app}/groups/{name}`), or `other`. */
export const routeOf = (url: string): string => {
  const path = url.split("?", 1)[0]!
  if (path === "/health" || path === "/metrics") return path
  const segments = path.split("/").slice(1)
  if (segments[0] !== "api" || segments.length > 8) return "other"
  const route: Array<string> = []
  for (let i = 0; i < segments.length; i++) {
    const previous = i === 0 ? undefined : segments[i - 1]!
    const parameter = previous === undefined ? undefined : parameters[previous]
    if (parameter !== undefined && route[route.length - 1] === previous) route.push(parameter)
    else if (words.has(segments[i]!)) route.push(segments[i]!)
    else return "other"
  }
  return `/${route.join("/")}`
}

/** The `operation` label of a statement: its first SQL word. */
export const operationOf = (text: unknown): string => {
  const word = typeof text === "string" ? /^\s*([A-Za-z]+)/.exec(text)?.[1]?.toLowerCase() : undefined
  return word !== undefined && ["select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "savepoint", "release"].includes(word)
    ? word
    : "other"
}

/** How the metrics are kept. */
export interface Options {
  /** How long the machines' counts are kept before a scrape reads them again. 5 s by default. */
  readonly instancesTtl?: Duration.DurationInput
  /** Label sets of `fleet_instances` at most; past it, counted as `version="other"`. 1,000 by default. */
  readonly maxInstanceSeries?: number
  /** Node's process metrics (`process_*`, `nodejs_*`). On by default. */
  readonly processMetrics?: boolean
}

/** The metrics service. */
export interface MetricsService {
  /** The registry (for more metrics of one's own). */
  readonly registry: Prom.Registry
  /** The `FleetEvents` listener counting grants, completions, failures and rollouts. */
  readonly listener: Listener
  /** The updater, its update checks counted by answer. */
  readonly instrumentUpdater: (updater: UpdaterService) => UpdaterService
  /** Records an Omaha request's duration. */
  readonly observeOmaha: (status: number, seconds: number) => void
  /** Records an API request's duration. */
  readonly observeApi: (method: string, url: string, status: number, seconds: number) => void
  /** Records a statement's duration. */
  readonly observeStatement: (operation: string, seconds: number) => void
  /** Counts a webhook delivery's outcome (`Webhooks.Options.observe`). */
  readonly observeWebhook: (outcome: Outcome) => void
  /** The exposition text, with the machines' counts read (or taken from the last few seconds). */
  readonly scrape: Effect.Effect<string>
  /** The exposition's content type. */
  readonly contentType: string
}

/** The metrics service. */
export class Metrics extends Context.Tag("effect-omaha/fleet/Metrics")<Metrics, MetricsService>() {}

const durationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const statementBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

interface InstanceRow {
  readonly app: string
  readonly group: string
  readonly channel: string
  readonly version: string
  readonly status: string
  readonly n: unknown
}

/** Builds the metrics over the database the machines' counts come from. */
export const make = (options: Options = {}): Effect.Effect<MetricsService, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const registry = new Prom.Registry()
    if (options.processMetrics ?? true) Prom.collectDefaultMetrics({ register: registry })
    const registers = [registry]
    const maxSeries = Math.max(1, options.maxInstanceSeries ?? 1000)

    const instances = new Prom.Gauge({
      name: names.instances,
      help: "Machines by application, group, channel, version and status (read from the database at most every few seconds).",
      labelNames: ["app", "group", "channel", "version", "status"],
      registers
    })
    const checks = new Prom.Counter({
      name: names.updateChecks,
      help: "Update checks by answer (update, noupdate, hold, error) and reason.",
      labelNames: ["app", "answer", "reason"],
      registers
    })
    const groupLabels = ["app", "group"] as const
    const grants = new Prom.Counter({ name: names.grants, help: "Updates granted.", labelNames: groupLabels, registers })
    const completed = new Prom.Counter({ name: names.completed, help: "Updates reported complete.", labelNames: groupLabels, registers })
    const failed = new Prom.Counter({
      name: names.failed,
      help: "Updates that failed, by update_engine's error code.",
      labelNames: ["app", "group", "error_code"],
      registers
    })
    const started = new Prom.Counter({ name: names.rolloutsStarted, help: "Rollouts started.", labelNames: groupLabels, registers })
    const finished = new Prom.Counter({ name: names.rolloutsFinished, help: "Rollouts finished.", labelNames: groupLabels, registers })
    const braked = new Prom.Counter({
      name: names.rolloutsBraked,
      help: "Rollouts paused by the failure brake.",
      labelNames: groupLabels,
      registers
    })
    const omaha = new Prom.Histogram({
      name: names.omahaDuration,
      help: "Omaha update requests, from the body read to the answer.",
      labelNames: ["status"],
      buckets: durationBuckets,
      registers
    })
    const api = new Prom.Histogram({
      name: names.apiDuration,
      help: "Admin API requests.",
      labelNames: ["method", "route", "status"],
      buckets: durationBuckets,
      registers
    })
    const statements = new Prom.Histogram({
      name: names.storeDuration,
      help: "SQL statements, from asking for a connection to the result.",
      labelNames: ["operation"],
      buckets: statementBuckets,
      registers
    })
    const webhooks = new Prom.Counter({
      name: names.webhookDeliveries,
      help: "Webhook deliveries by outcome (delivered, retried, dropped, queueFull).",
      labelNames: ["outcome"],
      registers
    })

    const listener: Listener = (event) =>
      Effect.sync(() => {
        const labels = { app: event.appId, group: event.group }
        switch (event._tag) {
          case "Granted":
            return grants.inc(labels)
          case "Completed":
            return completed.inc(labels)
          case "Failed":
            return failed.inc({ ...labels, error_code: errorCodeLabel(event.errorCode) })
          case "RolloutStarted":
            return started.inc(labels)
          case "RolloutFinished":
            return finished.inc(labels)
          case "RolloutBraked":
            return braked.inc(labels)
        }
      })

    const instrumentUpdater = (updater: UpdaterService): UpdaterService => ({
      ...updater,
      checkUpdate: (request, app, client) =>
        updater.checkUpdate(request, app, client).pipe(
          Effect.tap((outcome) => Effect.sync(() => checks.inc({ app: app.appId, ...answerOf(outcome) }))),
          Effect.tapError(() => Effect.sync(() => checks.inc({ app: app.appId, answer: "error", reason: "" })))
        )
    })

    const readInstances = sql<InstanceRow>`
      SELECT ia.app_id AS app, coalesce(g.name, '') AS "group", coalesce(g.channel, '') AS channel,
        ia.version, ia.status, count(*) AS n
      FROM instance_apps ia LEFT JOIN groups g ON g.id = ia.group_id
      GROUP BY 1, 2, 3, 4, 5 ORDER BY n DESC, 1, 2, 3, 4, 5`
    const cachedInstances = yield* Effect.cachedWithTTL(readInstances, options.instancesTtl ?? Duration.seconds(5))

    const setInstances = (rows: ReadonlyArray<InstanceRow>) => {
      instances.reset()
      rows.forEach((row, i) => {
        const labels = {
          app: row.app,
          group: row.group,
          channel: row.channel,
          version: i < maxSeries ? row.version : "other",
          status: row.status
        }
        if (i < maxSeries) instances.set(labels, Number(row.n))
        else instances.inc(labels, Number(row.n))
      })
    }

    const scrape = cachedInstances.pipe(
      Effect.tap((rows) => Effect.sync(() => setInstances(rows))),
      Effect.catchAll((error: SqlError) =>
        Effect.logWarning(`metrics: reading the machines' counts failed; ${names.instances} left out: ${error.message}`).pipe(
          Effect.zipRight(Effect.sync(() => instances.reset()))
        )
      ),
      Effect.zipRight(Effect.promise(() => registry.metrics())),
      // prom-client writes NaN as "Nan"; the format's word is "NaN".
      Effect.map((text) => text.replace(/ Nan$/gm, " NaN"))
    )

    return {
      registry,
      listener,
      instrumentUpdater,
      observeOmaha: (status, seconds) => omaha.observe({ status: String(status) }, seconds),
      observeApi: (method, url, status, seconds) =>
        api.observe({ method: method.toUpperCase(), route: routeOf(url), status: String(status) }, seconds),
      observeStatement: (operation, seconds) => statements.observe({ operation }, seconds),
      observeWebhook: (outcome) => webhooks.inc({ outcome }),
      scrape,
      contentType: registry.contentType
    } satisfies MetricsService
  })

/** The service as a layer. */
export const layer = (options: Options = {}): Layer.Layer<Metrics, never, SqlClient.SqlClient> => Layer.effect(Metrics, make(options))

/**
 * A tracer that times every SQL statement (the `sql.execute` spans of
 * @effect/sql, on either backend) into `observe`, leaving every span to
 * `base` otherwise.
 */
export const statementTimer = (base: Tracer.Tracer, observe: (operation: string, seconds: number) => void): Tracer.Tracer =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const span = base.span(name, parent, context, links, startTime, kind, options)
      if (name !== "sql.execute") return span
      const end = span.end.bind(span)
      ;(span as { end: Tracer.Span["end"] }).end = (endTime, exit) => {
        end(endTime, exit)
        observe(operationOf(span.attributes.get("db.query.text")), Number(endTime - startTime) / 1e9)
      }
      return span
    },
    context: (f, fiber) => base.context(f, fiber)
  })

/** Puts {@link statementTimer} in place for what the layer is provided to. */
export const layerStatementTimer: Layer.Layer<never, never, Metrics> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const metrics = yield* Metrics
    const base = yield* Effect.tracer
    return Layer.setTracer(statementTimer(base, metrics.observeStatement))
  })
)

/** The `/metrics` response: the exposition text. */
export const respond = (metrics: MetricsService): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.map(metrics.scrape, (text) =>
    HttpServerResponse.text(text, { contentType: metrics.contentType, headers: { "cache-control": "no-store" } }))

/** Whether a request is for the metrics. */
export const isMetricsRequest = (request: HttpServerRequest.HttpServerRequest): boolean =>
  request.url.split("?", 1)[0] === path
