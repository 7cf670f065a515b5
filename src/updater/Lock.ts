/**
 * The update lock: one apply at a time per target, as a lock file created
 * exclusively next to the target. A lock left by a process that no longer
 * runs (killed, or its machine rebooted) is taken over, so it never blocks
 * updates for good. Pids are reused, so on Linux the lock also records the
 * holder's start time and the boot id: a live pid that started at another
 * time, or a lock from another boot, is some other process's and stale.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Effect, Option, Schema } from "effect"
import * as Os from "node:os"
import { WriteFailed, writeFailed } from "./Download.js"

/** Another update of the same target is running. */
export class UpdateLocked extends Schema.TaggedError<UpdateLocked>()("UpdateLocked", {
  path: Schema.String,
  pid: Schema.Number,
  host: Schema.String
}) {
  override get message(): string {
    return `another update holds ${this.path} (pid ${this.pid} on ${this.host})`
  }
}

const Owner = Schema.parseJson(Schema.Struct({
  pid: Schema.Int,
  host: Schema.String,
  since: Schema.Number,
  /** The holder's start time in clock ticks after boot (`/proc/PID/stat`), where the system tells it. */
  started: Schema.optional(Schema.String),
  /** The kernel's boot id when the lock was taken, where the system tells it. */
  boot: Schema.optional(Schema.String)
}))
const decodeOwner = Schema.decodeUnknownOption(Owner)

/**
 * When a process started, in clock ticks after boot: field 22 of
 * `/proc/PID/stat` (read after the command name's closing parenthesis, since
 * the name may hold spaces and parentheses). None where there is no `/proc`
 * or no such process.
 */
export const processStartTime = (pid: number): Effect.Effect<Option.Option<string>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const stat = yield* fs.readFileString(`/proc/${pid}/stat`)
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // Fields from the third (state) on; the start time is the 22nd.
    const started = fields[22 - 3]
    return started !== undefined && /^\d+$/.test(started) ? Option.some(started) : Option.none()
  }).pipe(Effect.orElseSucceed(() => Option.none()))

const bootId = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const id = (yield* fs.readFileString("/proc/sys/kernel/random/boot_id")).trim()
  return id === "" ? Option.none() : Option.some(id)
}).pipe(Effect.orElseSucceed(() => Option.none<string>()))

/** A lock file whose content is unreadable is being written, or was cut short by a crash: wait this long. */
const unreadableGrace = 10_000

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Holds the lock at `path` for the current scope. The lock file records pid,
 * host, time and (on Linux) the process's start time and the boot id; a lock
 * from this host is stale and taken over when it comes from another boot, its
 * pid is gone, or its pid now belongs to a process that started at another
 * time. Taking over renames the stale lock aside first, so two processes
 * cannot both take it.
 */
export const acquire = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const host = Os.hostname()
    const started = yield* processStartTime(process.pid)
    const boot = yield* bootId
    const content = JSON.stringify({
      pid: process.pid,
      host,
      since: yield* Clock.currentTimeMillis,
      ...(Option.isSome(started) ? { started: started.value } : {}),
      ...(Option.isSome(boot) ? { boot: boot.value } : {})
    })
    // Whether the process that wrote a lock on this host still runs.
    const holds = (owner: typeof Owner.Type) =>
      Effect.gen(function*() {
        if (owner.boot !== undefined && Option.isSome(boot) && owner.boot !== boot.value) return false
        if (!isAlive(owner.pid)) return false
        if (owner.started === undefined) return true
        const now = yield* processStartTime(owner.pid)
        return Option.isNone(now) || now.value === owner.started
      })

    const tryCreate = fs.writeFileString(path, content, { flag: "wx", mode: 0o644 }).pipe(
      Effect.as(true),
      Effect.catchIf((e) => e._tag === "SystemError" && e.reason === "AlreadyExists", () => Effect.succeed(false)),
      Effect.mapError(writeFailed(path, "create the lock"))
    )
    const takeOver = (seen: string) =>
      Effect.gen(function*() {
        const aside = `${path}.${process.pid}.stale`
        const moved = yield* fs.rename(path, aside).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
        if (!moved) return
        const taken = yield* Effect.orElseSucceed(fs.readFileString(aside), () => "")
        // Someone else took over between our read and our rename: give their fresh lock back.
        if (taken !== seen) yield* fs.link(aside, path).pipe(Effect.ignore)
        yield* fs.remove(aside, { force: true }).pipe(Effect.ignore)
      })

    for (let attempt = 0; attempt < 5; attempt++) {
      if (yield* tryCreate) {
        return yield* Effect.addFinalizer(() => fs.remove(path, { force: true }).pipe(Effect.ignore))
      }
      const seen = yield* Effect.orElseSucceed(fs.readFileString(path), () => "")
      const owner = decodeOwner(seen)
      if (owner._tag === "Some") {
        if (owner.value.host !== host || (yield* holds(owner.value))) {
          return yield* new UpdateLocked({ path, pid: owner.value.pid, host: owner.value.host })
        }
      } else {
        const info = yield* Effect.option(fs.stat(path))
        const modified = info._tag === "Some" ? info.value.mtime : undefined
        const age = modified?._tag === "Some" ? (yield* Clock.currentTimeMillis) - modified.value.getTime() : Infinity
        if (age < unreadableGrace) return yield* new UpdateLocked({ path, pid: 0, host: "unknown" })
      }
      yield* takeOver(seen)
    }
    return yield* new WriteFailed({ path, operation: "take over the stale lock", reason: "it keeps coming back" })
  })
