/**
 * A lock file that names the process holding it: pid, host, and on Linux the
 * process's start time and the kernel's boot id. It is created whole (written
 * aside, then hard-linked into place, which fails if the lock exists), so a
 * reader never sees half a lock. A lock whose holder no longer runs is taken
 * over: its pid is gone, its pid now belongs to a process that started at
 * another time (pids are reused), or it was written before the last boot. A
 * lock that cannot be read is respected while it is young (a writer that
 * creates the file first and fills it after may be at work) and taken over
 * once it is older than that.
 */
import { FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Clock, Effect, Option, Schema, type Scope } from "effect"
import * as Os from "node:os"
import * as Path from "node:path"
import { describeFileError } from "./fileError.js"

/** The lock is held by a process that still runs (or by one on another host, which cannot be checked). */
export class LockHeld extends Schema.TaggedError<LockHeld>()("LockHeld", {
  path: Schema.String,
  pid: Schema.Number,
  host: Schema.String
}) {
  override get message(): string {
    return `${this.path} is held by process ${this.pid} on ${this.host}`
  }
}

/** The lock file could not be created, read or taken over. */
export class LockFailed extends Schema.TaggedError<LockFailed>()("LockFailed", {
  path: Schema.String,
  /** What could not be done, as in "cannot <operation> <path>". */
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot ${this.operation} ${this.path}: ${this.reason}`
  }
}

const Owner = Schema.parseJson(Schema.Struct({
  pid: Schema.Int,
  host: Schema.String,
  /** The holder's start time in clock ticks after boot (`/proc/PID/stat`), where the system tells it. */
  started: Schema.optional(Schema.String),
  /** The kernel's boot id when the lock was taken, where the system tells it. */
  boot: Schema.optional(Schema.String)
}))
type Owner = typeof Owner.Type
const decodeOwner = Schema.decodeUnknownOption(Owner)

/**
 * When a process started, in clock ticks after boot: field 22 of
 * `/proc/PID/stat`, read after the command name's closing parenthesis since
 * the name may hold spaces and parentheses. None where there is no `/proc` or
 * no such process.
 */
export const processStartTime = (pid: number): Effect.Effect<Option.Option<string>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const stat = yield* fs.readFileString(`/proc/${pid}/stat`)
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // The fields from the third (state) on; the start time is the 22nd.
    const started = fields[22 - 3]
    return started !== undefined && /^\d+$/.test(started) ? Option.some(started) : Option.none()
  }).pipe(Effect.orElseSucceed(() => Option.none()))

const bootId = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const id = (yield* fs.readFileString("/proc/sys/kernel/random/boot_id")).trim()
  return id === "" ? Option.none() : Option.some(id)
}).pipe(Effect.orElseSucceed(() => Option.none<string>()))

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const reasonOf = (error: PlatformError | { readonly message: string }) =>
  isPlatformError(error) ? describeFileError(error) : error.message

/** How long an unreadable lock is respected before it counts as left by a crash. */
export const unreadableGrace = 10_000

/**
 * Holds the lock at `path` for the current scope, or fails at once with
 * {@link LockHeld} naming the holder. Closing the scope removes the lock (if
 * it is still this one).
 */
export const acquire = (path: string): Effect.Effect<void, LockHeld | LockFailed, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const host = Os.hostname()
    const started = yield* processStartTime(process.pid)
    const boot = yield* bootId
    const content = JSON.stringify({
      pid: process.pid,
      host,
      ...(Option.isSome(started) ? { started: started.value } : {}),
      ...(Option.isSome(boot) ? { boot: boot.value } : {})
    }) + "\n"
    const failed = (action: string) => (error: { readonly message: string }) =>
      new LockFailed({ path, operation: action, reason: reasonOf(error) })

    // Whether the process that wrote a lock on this host still runs.
    const holds = (owner: Owner) =>
      Effect.gen(function*() {
        if (owner.boot !== undefined && Option.isSome(boot) && owner.boot !== boot.value) return false
        if (!isAlive(owner.pid)) return false
        if (owner.started === undefined) return true
        const now = yield* processStartTime(owner.pid)
        return Option.isNone(now) || now.value === owner.started
      })

    const staging = `${path}.${process.pid}.new`
    const tryCreate = Effect.acquireUseRelease(
      fs.writeFileString(staging, content, { mode: 0o644 }).pipe(Effect.mapError(failed("create the lock"))),
      () =>
        fs.link(staging, path).pipe(
          Effect.as(true),
          Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.succeed(false)),
          Effect.mapError(failed("create the lock"))
        ),
      () => fs.remove(staging, { force: true }).pipe(Effect.ignore)
    )
    // Moves the stale lock aside; if what was moved is no longer what was seen
    // (someone else took over meanwhile), puts their fresh lock back.
    const takeOver = (seen: string) =>
      Effect.gen(function*() {
        const aside = `${path}.${process.pid}.stale`
        const moved = yield* fs.rename(path, aside).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        if (!moved) return
        const taken = yield* Effect.orElseSucceed(fs.readFileString(aside), () => "")
        if (taken !== seen) yield* fs.link(aside, path).pipe(Effect.ignore)
        yield* fs.remove(aside, { force: true }).pipe(Effect.ignore)
      })

    // A process killed while it took the lock leaves its staging or stale
    // copy beside it (`LOCK.<pid>.new`, `LOCK.<pid>.stale`); the holder
    // removes those of processes that no longer run.
    const clearLeftovers = Effect.gen(function*() {
      const prefix = `${Path.basename(path)}.`
      const names = yield* Effect.orElseSucceed(fs.readDirectory(Path.dirname(path)), () => [])
      for (const name of names) {
        const left = name.startsWith(prefix) ? /^(\d+)\.(?:new|stale)$/.exec(name.slice(prefix.length)) : null
        if (left === null) continue
        const pid = Number(left[1])
        if (pid !== process.pid && !isAlive(pid)) {
          yield* fs.remove(Path.join(Path.dirname(path), name), { force: true }).pipe(Effect.ignore)
        }
      }
    })

    for (let attempt = 0; attempt < 5; attempt++) {
      if (yield* tryCreate) {
        yield* clearLeftovers
        return yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            const now = yield* Effect.orElseSucceed(fs.readFileString(path), () => "")
            if (now === content) yield* fs.remove(path, { force: true })
          }).pipe(Effect.ignore)
        )
      }
      const seen = yield* fs.readFileString(path).pipe(
        Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "NotFound", () => Effect.succeed(undefined)),
        Effect.mapError(failed("read the lock"))
      )
      // Released between our attempt and our read: try again.
      if (seen === undefined) continue
      const owner = decodeOwner(seen)
      if (Option.isSome(owner)) {
        if (owner.value.host !== host || (yield* holds(owner.value))) {
          return yield* new LockHeld({ path, pid: owner.value.pid, host: owner.value.host })
        }
      } else {
        const info = yield* Effect.option(fs.stat(path))
        const modified = Option.flatMap(info, (i) => i.mtime)
        const age = Option.isSome(modified) ? (yield* Clock.currentTimeMillis) - modified.value.getTime() : Infinity
        if (age < unreadableGrace) return yield* new LockHeld({ path, pid: 0, host: "unknown" })
      }
      yield* takeOver(seen)
    }
    return yield* new LockFailed({ path, operation: "take over the stale lock", reason: "it keeps coming back" })
  })
