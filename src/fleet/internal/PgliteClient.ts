/**
 * An `@effect/sql` client over PGlite (PostgreSQL compiled to WASM, running in
 * this process). Statements compile with the PostgreSQL compiler of
 * `@effect/sql-pg`, so they are the same text as on a server.
 *
 * PGlite is a single session: statements take turns through one permit, and a
 * transaction holds the permit from BEGIN to COMMIT, so no other fiber's
 * statement lands inside it. A fiber must therefore never wait, inside a
 * transaction, for a statement run by a fiber outside it: on PGlite that
 * waits forever.
 */
import type * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import type { PGlite, Results } from "@electric-sql/pglite"
import { Effect, Queue, type Scope, Stream } from "effect"
import { messageOf } from "./messages.js"

type TransformRows = (<A extends object>(row: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** A failed statement: the message is PostgreSQL's, and the cause carries its SQLSTATE as `code`. */
const toSqlError = (cause: unknown) => new SqlError({ cause, message: messageOf(cause) })

// A statement without parameters may hold several commands: PGlite runs it
// with the simple query protocol, as node-postgres does. Then, as there, one
// result is its rows and several are a list of row lists.
const rowsOf = (results: ReadonlyArray<Results>): ReadonlyArray<any> =>
  results.length === 1 ? results[0]!.rows : results.length === 0 ? [] : results.map((result) => result.rows)

class PgliteConnection implements Connection {
  constructor(readonly pg: PGlite) {}

  // PGlite cannot cancel a statement: an interrupted fiber waits for it to end,
  // so the permit is never handed on while the session is still busy.
  private run<A>(f: () => Promise<A>): Effect.Effect<A, SqlError> {
    return Effect.uninterruptible(Effect.tryPromise({ try: f, catch: toSqlError }))
  }

  private rows(sql: string, params: ReadonlyArray<unknown>, rowMode: "object" | "array") {
    return params.length === 0
      ? this.run(() => this.pg.exec(sql, { rowMode })).pipe(Effect.map(rowsOf))
      : this.run(() => this.pg.query(sql, params as Array<unknown>, { rowMode })).pipe(Effect.map((r) => r.rows))
  }

  execute(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    const rows = this.rows(sql, params, "object")
    return transformRows ? Effect.map(rows, transformRows) : rows
  }
  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return params.length === 0
      ? this.run<unknown>(() => this.pg.exec(sql))
      : this.run<unknown>(() => this.pg.query(sql, params as Array<unknown>))
  }
  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return this.rows(sql, params, "array") as Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError>
  }
  executeUnprepared(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    return this.execute(sql, params, transformRows)
  }
  executeStream(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    return Stream.fromIterableEffect(this.execute(sql, params, transformRows))
  }
}

/**
 * The client. `semaphore` (one permit) is the session: whoever holds it may
 * run statements; the layer closing PGlite takes it too.
 */
export const make = (
  pg: PGlite,
  semaphore: Effect.Semaphore
): Effect.Effect<SqlClient.SqlClient, never, Reactivity.Reactivity> => {
  const connection = new PgliteConnection(pg)
  // The permit is held for the acquirer's scope: one statement, or a whole transaction.
  const acquirer: Connection.Acquirer = Effect.uninterruptibleMask((restore) =>
    restore(semaphore.take(1)).pipe(
      Effect.zipRight(Effect.addFinalizer(() => semaphore.release(1))),
      Effect.as(connection)
    )
  )
  return SqlClient.make({
    acquirer,
    compiler: PgClient.makeCompiler(),
    spanAttributes: [["db.system.name", "postgresql"], ["db.namespace", "pglite"]]
  })
}

/** A channel name as a quoted identifier, exactly as `pg_notify` takes it. */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll("\"", "\"\"")}"`

/**
 * LISTEN on PGlite: notifications arrive with the results of whichever
 * statement committed them. LISTEN and UNLISTEN go through `sql`, so they take
 * their turn like any statement.
 */
export const makeListener = (pg: PGlite, sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const channels = new Map<string, Set<(payload: string) => void>>()
    const stop = pg.onNotification((channel, payload) => channels.get(channel)?.forEach((deliver) => deliver(payload)))
    yield* Effect.addFinalizer(() => Effect.sync(stop))
    const bookkeeping = yield* Effect.makeSemaphore(1)

    const subscribe = (channel: string): Effect.Effect<Stream.Stream<string>, SqlError, Scope.Scope> =>
      Effect.gen(function*() {
        const queue = yield* Effect.acquireRelease(Queue.unbounded<string>(), Queue.shutdown)
        const deliver = (payload: string) => {
          Queue.unsafeOffer(queue, payload)
        }
        yield* Effect.acquireRelease(
          bookkeeping.withPermits(1)(Effect.gen(function*() {
            const listeners = channels.get(channel)
            if (listeners !== undefined) return listeners.add(deliver)
            yield* sql.unsafe(`LISTEN ${quoteIdentifier(channel)}`)
            channels.set(channel, new Set([deliver]))
          })),
          () =>
            bookkeeping.withPermits(1)(Effect.gen(function*() {
              const listeners = channels.get(channel)
              listeners?.delete(deliver)
              if (listeners === undefined || listeners.size > 0) return
              channels.delete(channel)
              yield* sql.unsafe(`UNLISTEN ${quoteIdentifier(channel)}`).pipe(Effect.ignore)
            }))
        )
        return Stream.fromQueue(queue)
      })
    return { subscribe }
  })
