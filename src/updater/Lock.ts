/**
 * The update lock: one apply at a time per target, as a lock file created
 * exclusively next to the target. A lock left by a process that no longer
 * runs (killed, or its machine rebooted) is taken over, so it never blocks
 * updates for good.
 */
import { FileSystem } from "@effect/platform"
import { Clock, Effect, Schema } from "effect"
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

const Owner = Schema.parseJson(Schema.Struct({ pid: Schema.Int, host: Schema.String, since: Schema.Number }))
const decodeOwner = Schema.decodeUnknownOption(Owner)

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
 * host and time; a lock from this host whose pid is gone is stale and taken
 * over (by renaming it aside first, so two processes cannot both take it).
 */
export const acquire = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const host = Os.hostname()
    const content = JSON.stringify({ pid: process.pid, host, since: yield* Clock.currentTimeMillis })

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
        if (owner.value.host !== host || isAlive(owner.value.pid)) {
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
