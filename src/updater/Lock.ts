/**
 * The update lock: one apply at a time per target, as a lock file next to
 * the target that names the process holding it. A lock left by a process
 * that no longer runs (killed, its pid reused, or its machine rebooted) is
 * taken over, so it never blocks updates for good (see `internal/PidLock`).
 */
import { Effect, Schema } from "effect"
import * as PidLock from "../internal/PidLock.js"
import { WriteFailed } from "./Download.js"

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

/** Holds the update lock at `path` for the current scope, or fails at once with {@link UpdateLocked}. */
export const acquire = (path: string) =>
  PidLock.acquire(path).pipe(
    Effect.catchTags({
      LockHeld: (held) => Effect.fail(new UpdateLocked({ path: held.path, pid: held.pid, host: held.host })),
      LockFailed: (failed) => Effect.fail(new WriteFailed({ path: failed.path, operation: failed.operation, reason: failed.reason }))
    })
  )
