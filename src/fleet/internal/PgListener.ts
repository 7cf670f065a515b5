/**
 * LISTEN on a PostgreSQL server: one dedicated connection (not from the pool,
 * whose connections come and go) carries every channel this process listens
 * on. When it drops (a server restart, a network cut, an idle connection
 * killed on the way), it is opened again and every channel listened on again;
 * notifications sent in between are lost, so each listener then receives an
 * empty payload meaning "something may have changed". A heartbeat finds a
 * connection that died silently.
 */
import { SqlError } from "@effect/sql/SqlError"
import { Deferred, Duration, Effect, Exit, Queue, type Scope, Stream } from "effect"
import * as Pg from "pg"
import { messageOf } from "./messages.js"
import { quoteIdentifier } from "./PgliteClient.js"

/** How often the connection is checked while nothing happens on it. */
const heartbeatInterval = Duration.seconds(30)
const heartbeatTimeout = Duration.seconds(10)

const retryDelay = (attempt: number): Duration.Duration => Duration.millis(Math.min(5_000, 100 * 2 ** attempt))

export const make = (config: Pg.ClientConfig) =>
  Effect.gen(function*() {
    const channels = new Map<string, Set<(payload: string) => void>>()
    const deliverAll = (payload: string) => channels.forEach((listeners) => listeners.forEach((deliver) => deliver(payload)))
    // Guards `channels` and `client` together: a channel added while the
    // connection opens is listened on by whichever of the two comes second.
    const lock = yield* Effect.makeSemaphore(1)
    let client: Pg.Client | undefined
    const wanted = yield* Deferred.make<void>()
    const firstAttempt = yield* Deferred.make<void>()

    const query = (on: Pg.Client, text: string) =>
      Effect.tryPromise({
        try: () => on.query(text),
        catch: (cause) => new SqlError({ cause, message: messageOf(cause) })
      })
    const end = (on: Pg.Client) =>
      Effect.promise(() => on.end().catch(() => undefined)).pipe(Effect.timeout(heartbeatTimeout), Effect.ignore)

    // Opens the connection and listens on every channel; yields why it was lost.
    const session = Effect.gen(function*() {
      const connection = new Pg.Client(config)
      const lost = yield* Deferred.make<string>()
      connection.on("error", (error) => Deferred.unsafeDone(lost, Exit.succeed(messageOf(error))))
      connection.on("end", () => Deferred.unsafeDone(lost, Exit.succeed("the connection was closed")))
      connection.on("notification", (message) => channels.get(message.channel)?.forEach((deliver) => deliver(message.payload ?? "")))
      yield* Effect.tryPromise({ try: () => connection.connect(), catch: messageOf }).pipe(
        Effect.tapError(() => end(connection))
      )
      yield* lock.withPermits(1)(Effect.gen(function*() {
        for (const channel of channels.keys()) yield* query(connection, `LISTEN ${quoteIdentifier(channel)}`)
        client = connection
      })).pipe(Effect.mapError((error) => error.message), Effect.tapError(() => end(connection)))
      const heartbeat = Effect.sleep(heartbeatInterval).pipe(
        Effect.zipRight(query(connection, "SELECT 1").pipe(Effect.timeout(heartbeatTimeout))),
        Effect.forever,
        Effect.catchAll((error) => Effect.succeed(`no answer to the heartbeat (${error.message})`))
      )
      return { connection, lost: Effect.raceFirst(Deferred.await(lost), heartbeat) }
    })

    const supervise = Effect.gen(function*() {
      yield* Deferred.await(wanted)
      let connectedBefore = false
      for (let attempt = 0;; attempt++) {
        const opened = yield* Effect.either(session)
        yield* Deferred.succeed(firstAttempt, undefined)
        if (opened._tag === "Right") {
          if (connectedBefore) {
            yield* Effect.logInfo("database notifications: connection restored")
            deliverAll("")
          }
          connectedBefore = true
          attempt = 0
          const reason = yield* opened.right.lost
          yield* lock.withPermits(1)(Effect.sync(() => (client = undefined)))
          yield* end(opened.right.connection)
          yield* Effect.logWarning(`database notifications: connection lost (${reason}); reconnecting`)
        } else if (attempt === 0 || attempt % 10 === 0) {
          yield* Effect.logWarning(`database notifications: cannot connect (${opened.left}); retrying`)
        }
        yield* Effect.sleep(retryDelay(attempt))
      }
    })

    yield* Effect.addFinalizer(() => Effect.suspend(() => client === undefined ? Effect.void : end(client)))
    yield* Effect.forkScoped(supervise)

    /** Listens on `channel` for the scope; the stream sees what is notified once this has returned. */
    const subscribe = (channel: string): Effect.Effect<Stream.Stream<string>, never, Scope.Scope> =>
      Effect.gen(function*() {
        const queue = yield* Effect.acquireRelease(Queue.unbounded<string>(), Queue.shutdown)
        const deliver = (payload: string) => {
          Queue.unsafeOffer(queue, payload)
        }
        yield* Effect.acquireRelease(
          lock.withPermits(1)(Effect.gen(function*() {
            const listeners = channels.get(channel)
            if (listeners !== undefined) return listeners.add(deliver)
            channels.set(channel, new Set([deliver]))
            // If this fails the connection is going: the next one listens, and says so with "".
            if (client !== undefined) yield* query(client, `LISTEN ${quoteIdentifier(channel)}`).pipe(Effect.ignore)
          })),
          () =>
            lock.withPermits(1)(Effect.gen(function*() {
              const listeners = channels.get(channel)
              listeners?.delete(deliver)
              if (listeners === undefined || listeners.size > 0) return
              channels.delete(channel)
              if (client !== undefined) yield* query(client, `UNLISTEN ${quoteIdentifier(channel)}`).pipe(Effect.ignore)
            }))
        )
        yield* Deferred.succeed(wanted, undefined)
        yield* Deferred.await(firstAttempt)
        return Stream.fromQueue(queue)
      })
    return { subscribe }
  })
