/**
 * Webhooks: the fleet server POSTs a JSON body to each configured URL when a
 * rollout starts, finishes or is paused by the failure brake, and when a
 * machine's update fails, for the kinds (and optionally the application)
 * the webhook asks for.
 *
 * Each body is signed: the `X-Fleet-Signature-256` header is `sha256=`
 * and the hex HMAC-SHA256 of the exact body bytes, keyed with the webhook's
 * secret (see {@link sign} and {@link verify}). `X-Fleet-Event` names the
 * kind and `X-Fleet-Delivery` the delivery (the same on every attempt, so a
 * receiver can drop repeats).
 *
 * Delivery never holds up the one who publishes: an event is put on a
 * bounded queue (a full queue drops it, logged) and background fibers
 * deliver, a few at a time, each attempt within a timeout, retrying network
 * errors, timeouts, 408, 429 and 5xx with exponential backoff up to a
 * number of attempts, then dropping it (logged). Other statuses are final.
 * The queue lives in this process: deliveries still queued at a stop are
 * lost. Each replica delivers the events that happened on it.
 *
 * The webhooks are stored in the database (migration `0002_webhooks`); every
 * replica follows changes through `fleet_webhooks` notifications, and polls
 * as a backstop.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Duration, Effect, Layer, Queue, Schema, type Scope, Stream } from "effect"
import * as Crypto from "node:crypto"
import { packageVersion } from "../internal/version.js"
import { Notifications } from "./Database.js"
import type { FleetEvent, Listener } from "./FleetEvents.js"
import { Webhook, type WebhookKind } from "./Model.js"

/** The header carrying the body's signature: `sha256=<hex HMAC-SHA256 of the body, keyed with the secret>`. */
export const signatureHeader = "x-fleet-signature-256"

/** The header naming the event's kind (`rolloutStarted`, ...). */
export const eventHeader = "x-fleet-event"

/** The header naming the delivery: the same on every attempt of one delivery. */
export const deliveryHeader = "x-fleet-delivery"

/** The channel on which webhook changes are announced. */
export const webhooksChannel = "fleet_webhooks"

/** The signature header's value for `body` under `secret`. */
export const sign = (secret: string, body: string | Uint8Array): string =>
  `sha256=${Crypto.createHmac("sha256", secret).update(body).digest("hex")}`

/** Whether `header` is the signature of `body` under `secret` (compared in constant time), as a receiver checks it. */
export const verify = (secret: string, body: string | Uint8Array, header: string | undefined): boolean => {
  if (header === undefined) return false
  const expected = Buffer.from(sign(secret, body))
  const given = Buffer.from(header)
  return expected.length === given.length && Crypto.timingSafeEqual(expected, given)
}

/** The JSON body of a delivery. */
export interface Body {
  /** The delivery's id (also in `X-Fleet-Delivery`). */
  readonly id: string
  readonly kind: WebhookKind
  /** When it happened, ISO 8601. */
  readonly at: string
  readonly appId: string
  /** The group's name. */
  readonly group: string
  /** The rollout's version (the failed machine's target, for `instanceFailed`). */
  readonly version: string
  /** One line for people. */
  readonly message: string
  /** `instanceFailed`: the machine. */
  readonly machineId?: string
  /** `instanceFailed`: update_engine's error code, when it sent one. */
  readonly errorCode?: number
  /** `instanceFailed`: whether the machine booted back into its old version (code 44). */
  readonly rollback?: boolean
  /** `rolloutBraked`: why the brake tripped. */
  readonly reason?: string
}

/** A webhook's URL that is not an absolute http(s) URL. */
export class InvalidWebhookUrl extends Schema.TaggedError<InvalidWebhookUrl>()("InvalidWebhookUrl", {
  url: Schema.String
}) {
  override get message(): string {
    return `invalid webhook URL ${JSON.stringify(this.url)}: give an absolute http:// or https:// URL`
  }
}

/** No webhook with that id. */
export class WebhookNotFound extends Schema.TaggedError<WebhookNotFound>()("WebhookNotFound", {
  id: Schema.Number
}) {
  override get message(): string {
    return `no webhook ${this.id}`
  }
}

/** A webhook's application that does not exist. */
export class WebhookAppNotFound extends Schema.TaggedError<WebhookAppNotFound>()("WebhookAppNotFound", {
  appId: Schema.String
}) {
  override get message(): string {
    return `no application ${JSON.stringify(this.appId)} for the webhook`
  }
}

/** What a new webhook is. */
export interface NewWebhook {
  readonly url: string
  readonly secret: string
  readonly kinds: ReadonlyArray<WebhookKind>
  readonly appId?: string | undefined
  readonly description?: string | undefined
}

/** A change of a webhook: what is left out keeps its value; `appId: null` makes it hear every application. */
export interface WebhookPatch {
  readonly url?: string | undefined
  readonly secret?: string | undefined
  readonly kinds?: ReadonlyArray<WebhookKind> | undefined
  readonly appId?: string | null | undefined
  readonly description?: string | undefined
}

/** How a delivery ended, for metrics. */
export type Outcome = "delivered" | "retried" | "dropped" | "queueFull"

/** How deliveries are made. */
export interface Options {
  /** Deliveries waiting at most; past it new ones are dropped. 1,000 by default. */
  readonly queueCapacity?: number
  /** Deliveries in progress at once. 4 by default. */
  readonly concurrency?: number
  /** One attempt's limit, from connecting to the response's status. 10 s by default. */
  readonly timeout?: Duration.DurationInput
  /** Attempts of one delivery in all. 6 by default (waits of 1, 2, 4, 8 and 16 s between them). */
  readonly maxAttempts?: number
  /** The wait after the first failed attempt; each later wait doubles. 1 s by default. */
  readonly baseDelay?: Duration.DurationInput
  /** How often the webhooks are read again even without a notification. 30 s by default. */
  readonly pollInterval?: Duration.DurationInput
  /** Told of each delivery's outcome (and of each retry). */
  readonly observe?: (outcome: Outcome) => void
}

/** The webhook service: the configuration and the delivery. */
export interface WebhooksService {
  readonly create: (input: NewWebhook) => Effect.Effect<Webhook, InvalidWebhookUrl | WebhookAppNotFound | SqlError>
  readonly list: Effect.Effect<ReadonlyArray<Webhook>, SqlError>
  readonly get: (id: number) => Effect.Effect<Webhook, WebhookNotFound | SqlError>
  readonly update: (
    id: number,
    patch: WebhookPatch
  ) => Effect.Effect<Webhook, WebhookNotFound | InvalidWebhookUrl | WebhookAppNotFound | SqlError>
  readonly remove: (id: number) => Effect.Effect<Webhook, WebhookNotFound | SqlError>
  /** The `FleetEvents` listener: queues a delivery to each webhook that asks for the event. */
  readonly listener: Listener
  /** Deliveries queued or in progress. */
  readonly pending: Effect.Effect<number>
  /** Reads the webhooks again now (a change is otherwise seen within a second, by notification). */
  readonly reload: Effect.Effect<void, SqlError>
}

/** The webhook service. */
export class Webhooks extends Context.Tag("effect-omaha/fleet/Webhooks")<Webhooks, WebhooksService>() {}

/** The kind of webhook an event is, if any. */
export const kindOf = (event: FleetEvent): WebhookKind | undefined => {
  switch (event._tag) {
    case "RolloutStarted":
      return "rolloutStarted"
    case "RolloutFinished":
      return "rolloutFinished"
    case "RolloutBraked":
      return "rolloutBraked"
    case "Failed":
      return "instanceFailed"
    default:
      return undefined
  }
}

/** The body telling of `event` (undefined for events no webhook hears). */
export const bodyOf = (event: FleetEvent, id: string): Body | undefined => {
  const kind = kindOf(event)
  if (kind === undefined) return undefined
  const base = { id, kind, at: new Date(event.at).toISOString(), appId: event.appId }
  switch (event._tag) {
    case "RolloutStarted":
      return { ...base, group: event.group, version: event.version, message: `${event.group}: rollout of ${event.version} started` }
    case "RolloutFinished":
      return { ...base, group: event.group, version: event.version, message: `${event.group}: rollout of ${event.version} finished` }
    case "RolloutBraked":
      return {
        ...base,
        group: event.group,
        version: event.version,
        reason: event.reason,
        message: `${event.group}: ${event.reason}; rollout paused`
      }
    case "Failed":
      return {
        ...base,
        group: event.group,
        version: event.version,
        machineId: event.machineId,
        ...(event.errorCode === undefined ? {} : { errorCode: event.errorCode }),
        rollback: event.rollback,
        message: `${event.machineId} failed to update to ${event.version}${
          event.errorCode === undefined ? "" : ` (error ${event.errorCode}${event.rollback ? ", rolled back" : ""})`
        }`
      }
    default:
      return undefined
  }
}

const validUrl = (url: string): boolean => {
  if (!URL.canParse(url)) return false
  const parsed = new URL(url)
  return (parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.host !== ""
}

interface Hook {
  readonly id: number
  readonly url: string
  readonly secret: string
  readonly kinds: ReadonlySet<string>
  readonly appId: string | undefined
}

interface Job {
  readonly hook: Hook
  readonly kind: WebhookKind
  readonly id: string
  readonly body: string
}

interface WebhookRow {
  readonly id: unknown
  readonly url: string
  readonly secret: string
  readonly kinds: unknown
  readonly appId: string | null
  readonly description: string
  readonly createdAt: unknown
  readonly updatedAt: unknown
}

const columns = `id, url, secret, kinds, app_id AS "appId", description, created_at AS "createdAt", updated_at AS "updatedAt"`

const asDate = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)))
const kindsOf = (value: unknown): ReadonlyArray<WebhookKind> =>
  (typeof value === "string" ? JSON.parse(value) : value) as ReadonlyArray<WebhookKind>

const toWebhook = (row: WebhookRow): Webhook =>
  new Webhook({
    id: Number(row.id),
    url: row.url,
    kinds: kindsOf(row.kinds),
    ...(row.appId === null ? {} : { appId: row.appId }),
    description: row.description,
    createdAt: asDate(row.createdAt),
    updatedAt: asDate(row.updatedAt)
  })

const toHook = (row: WebhookRow): Hook => ({
  id: Number(row.id),
  url: row.url,
  secret: row.secret,
  kinds: new Set(kindsOf(row.kinds)),
  appId: row.appId ?? undefined
})

const retryable = (status: number) => status === 408 || status === 429 || status >= 500

const foreignKeyViolation = (error: SqlError): boolean => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause === "object" && cause !== null && cause.code === "23503"
}

/** Builds the service; its delivery fibers and its following of changes run for the scope. */
export const make = (
  options: Options = {}
): Effect.Effect<WebhooksService, SqlError, SqlClient.SqlClient | Notifications | HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const notifications = yield* Notifications
    const http = HttpClient.withScope(yield* HttpClient.HttpClient)
    const capacity = Math.max(1, options.queueCapacity ?? 1000)
    const concurrency = Math.max(1, options.concurrency ?? 4)
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(10))
    const maxAttempts = Math.max(1, options.maxAttempts ?? 6)
    const baseDelay = Duration.toMillis(Duration.decode(options.baseDelay ?? Duration.seconds(1)))
    const pollInterval = Duration.decode(options.pollInterval ?? Duration.seconds(30))
    const observe = options.observe ?? (() => {})
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))

    // -- configuration

    const appExists = (appId: string) =>
      Effect.map(sql<{ readonly id: string }>`SELECT id FROM applications WHERE id = ${appId}`, (rows) => rows.length > 0)

    const checkApp = (appId: string | null | undefined) =>
      appId === null || appId === undefined
        ? Effect.void
        : Effect.flatMap(appExists(appId), (found) => (found ? Effect.void : Effect.fail(new WebhookAppNotFound({ appId }))))

    // An application deleted between the check and the write is reported the same way.
    const onMissingApp = (appId: string | null | undefined) => <A, E, R>(effect: Effect.Effect<A, E | SqlError, R>) =>
      Effect.catchIf(
        effect,
        (e): e is SqlError => (e as { _tag?: unknown })._tag === "SqlError" && foreignKeyViolation(e as SqlError),
        () => Effect.fail(new WebhookAppNotFound({ appId: appId ?? "" }))
      )

    let hooks: ReadonlyArray<Hook> = []
    const reload = Effect.map(sql<WebhookRow>`SELECT ${sql.literal(columns)} FROM webhooks ORDER BY id`, (rows) => {
      hooks = rows.map(toHook)
    })

    const create = Effect.fn("Webhooks.create")(function*(input: NewWebhook) {
      if (!validUrl(input.url)) return yield* new InvalidWebhookUrl({ url: input.url })
      yield* checkApp(input.appId)
      const at = yield* now
      const [row] = yield* sql<WebhookRow>`INSERT INTO webhooks (url, secret, kinds, app_id, description, created_at, updated_at)
        VALUES (${input.url}, ${input.secret}, ${JSON.stringify([...new Set(input.kinds)])}::jsonb, ${input.appId ?? null},
          ${input.description ?? ""}, ${at}, ${at})
        RETURNING ${sql.literal(columns)}`.pipe(onMissingApp(input.appId))
      yield* reload
      return toWebhook(row!)
    })

    const list = Effect.map(sql<WebhookRow>`SELECT ${sql.literal(columns)} FROM webhooks ORDER BY id`, (rows) => rows.map(toWebhook))

    const get = Effect.fn("Webhooks.get")(function*(id: number) {
      const [row] = yield* sql<WebhookRow>`SELECT ${sql.literal(columns)} FROM webhooks WHERE id = ${id}`
      if (row === undefined) return yield* new WebhookNotFound({ id })
      return toWebhook(row)
    })

    const update = Effect.fn("Webhooks.update")(function*(id: number, patch: WebhookPatch) {
      if (patch.url !== undefined && !validUrl(patch.url)) return yield* new InvalidWebhookUrl({ url: patch.url })
      yield* checkApp(patch.appId)
      const at = yield* now
      const [row] = yield* sql<WebhookRow>`UPDATE webhooks SET
          url = coalesce(${patch.url ?? null}, url),
          secret = coalesce(${patch.secret ?? null}, secret),
          kinds = coalesce(${patch.kinds === undefined ? null : JSON.stringify([...new Set(patch.kinds)])}::jsonb, kinds),
          app_id = ${patch.appId === undefined ? sql`app_id` : sql`${patch.appId}`},
          description = coalesce(${patch.description ?? null}, description),
          updated_at = ${at}
        WHERE id = ${id}
        RETURNING ${sql.literal(columns)}`.pipe(onMissingApp(patch.appId))
      if (row === undefined) return yield* new WebhookNotFound({ id })
      yield* reload
      return toWebhook(row)
    })

    const remove = Effect.fn("Webhooks.remove")(function*(id: number) {
      const [row] = yield* sql<WebhookRow>`DELETE FROM webhooks WHERE id = ${id} RETURNING ${sql.literal(columns)}`
      if (row === undefined) return yield* new WebhookNotFound({ id })
      yield* reload
      return toWebhook(row)
    })

    // Listening before the first read, so no change is missed.
    const changes = yield* notifications.subscribe(webhooksChannel)
    yield* reload
    const stale = yield* Queue.sliding<void>(1)
    yield* Queue.take(stale).pipe(
      Effect.zipRight(reload),
      Effect.catchAll((error) => Effect.logWarning(`webhooks: reading them again failed: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )
    yield* changes.pipe(
      Stream.runForEach(() => stale.offer(undefined)),
      Effect.catchAllCause((cause) => Effect.logWarning("webhooks: notifications stopped; following changes by polling only", cause)),
      Effect.forkScoped
    )
    yield* stale.offer(undefined).pipe(Effect.delay(pollInterval), Effect.forever, Effect.forkScoped)

    // -- delivery

    const queue = yield* Effect.acquireRelease(Queue.dropping<Job>(capacity), Queue.shutdown)
    let inFlight = 0

    type Attempt = { readonly _tag: "Delivered" } | { readonly _tag: "Retry"; readonly reason: string } | {
      readonly _tag: "Final"
      readonly reason: string
    }

    const attempt = (job: Job): Effect.Effect<Attempt> =>
      Effect.scoped(
        http.execute(
          HttpClientRequest.post(job.hook.url).pipe(
            HttpClientRequest.bodyText(job.body, "application/json"),
            HttpClientRequest.setHeaders({
              "user-agent": `effect-omaha-fleet-server/${packageVersion}`,
              [eventHeader]: job.kind,
              [deliveryHeader]: job.id,
              [signatureHeader]: sign(job.hook.secret, job.body)
            })
          )
        )
      ).pipe(
        Effect.map((response): Attempt =>
          response.status >= 200 && response.status <= 299
            ? { _tag: "Delivered" }
            : retryable(response.status)
            ? { _tag: "Retry", reason: `HTTP ${response.status}` }
            : { _tag: "Final", reason: `HTTP ${response.status}` }
        ),
        Effect.timeoutTo({
          duration: timeout,
          onSuccess: (a): Attempt => a,
          onTimeout: (): Attempt => ({ _tag: "Retry", reason: `no answer within ${Duration.format(timeout)}` })
        }),
        Effect.catchAll((error) => Effect.succeed<Attempt>({ _tag: "Retry", reason: error.message }))
      )

    const deliver = (job: Job) =>
      Effect.gen(function*() {
        const where = `webhook ${job.hook.id} (${job.hook.url})`
        for (let n = 1;; n++) {
          const outcome = yield* attempt(job)
          if (outcome._tag === "Delivered") {
            observe("delivered")
            if (n > 1) yield* Effect.logInfo(`${job.kind} delivered to ${where} at attempt ${n}`)
            return
          }
          if (outcome._tag === "Final" || n >= maxAttempts) {
            observe("dropped")
            return yield* Effect.logWarning(
              `${job.kind} delivery ${job.id} to ${where} dropped after ${n} attempt${n === 1 ? "" : "s"}: ${outcome.reason}`
            )
          }
          observe("retried")
          yield* Effect.sleep(Duration.millis(baseDelay * 2 ** (n - 1)))
        }
      })

    const permits = yield* Effect.makeSemaphore(concurrency)
    const scope = yield* Effect.scope
    yield* permits.take(1).pipe(
      Effect.zipRight(Queue.take(queue)),
      Effect.tap(() => Effect.sync(() => inFlight++)),
      Effect.flatMap((job) =>
        Effect.forkIn(
          deliver(job).pipe(Effect.ensuring(Effect.zipRight(Effect.sync(() => inFlight--), permits.release(1)))),
          scope
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    const listener: Listener = (event) =>
      Effect.gen(function*() {
        const kind = kindOf(event)
        if (kind === undefined) return
        for (const hook of hooks) {
          if (!hook.kinds.has(kind) || (hook.appId !== undefined && hook.appId !== event.appId)) continue
          const id = Crypto.randomUUID()
          const body = bodyOf(event, id)!
          const queued = yield* Queue.offer(queue, { hook, kind, id, body: JSON.stringify(body) })
          if (!queued) {
            observe("queueFull")
            yield* Effect.logWarning(`${kind} delivery to webhook ${hook.id} (${hook.url}) dropped: ${capacity} deliveries are waiting`)
          }
        }
      })

    return {
      create,
      list,
      get,
      update,
      remove,
      listener,
      // A waiting taker counts as a negative size.
      pending: Effect.map(Queue.size(queue), (size) => Math.max(0, size) + inFlight),
      reload
    } satisfies WebhooksService
  })

/** The service as a layer. */
export const layer = (
  options: Options = {}
): Layer.Layer<Webhooks, SqlError, SqlClient.SqlClient | Notifications | HttpClient.HttpClient> =>
  Layer.scoped(Webhooks, make(options))
