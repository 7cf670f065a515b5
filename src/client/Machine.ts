/**
 * The identity of a machine-wide client on Linux, as update_engine sends it:
 * the systemd machine id (`/etc/machine-id`, 32 hex digits, no braces) is the
 * user id, and the kernel's boot id in braces (`{...}`) is the session id, so
 * a server sees one user per machine and one session per boot. Unlike
 * go-omaha, a missing or malformed file is a typed error, never an empty id.
 */
import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { describeFileError } from "../internal/fileError.js"

/** Where the two ids are read from; tests point these at temp files. */
export interface Paths {
  readonly machineId: string
  readonly bootId: string
}

/** The files systemd and the kernel provide. */
export const defaultPaths: Paths = {
  machineId: "/etc/machine-id",
  bootId: "/proc/sys/kernel/random/boot_id"
}

/** Which id a file holds, for messages. */
export const IdKind = Schema.Literal("machine id", "boot id")

/** Which id a file holds. */
export type IdKind = typeof IdKind.Type

/** An id file that does not exist. */
export class IdFileMissing extends Schema.TaggedError<IdFileMissing>()("IdFileMissing", {
  kind: IdKind,
  path: Schema.String
}) {
  override get message(): string {
    return `cannot read the ${this.kind}: ${this.path} does not exist`
  }
}

/** An id file that exists but cannot be read (permissions, I/O). */
export class IdFileUnreadable extends Schema.TaggedError<IdFileUnreadable>()("IdFileUnreadable", {
  kind: IdKind,
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read the ${this.kind} from ${this.path}: ${this.reason}`
  }
}

/** An id file whose content is not an id of the expected form. */
export class IdFileMalformed extends Schema.TaggedError<IdFileMalformed>()("IdFileMalformed", {
  kind: IdKind,
  path: Schema.String,
  /** The start of what the file holds (at most 64 characters). */
  content: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `malformed ${this.kind} in ${this.path}: expected ${this.expected}, found ${JSON.stringify(this.content)}`
  }
}

/** Any failure to read the machine's identity. */
export type IdentityError = IdFileMissing | IdFileUnreadable | IdFileMalformed

/** The ids a machine client sends. */
export interface Identity {
  /** The machine id, 32 lowercase hex digits: the request's `userid` and the app's `machineid`. */
  readonly userId: string
  /** The boot id in braces, `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`: `sessionid` and `bootid`. */
  readonly sessionId: string
}

const machineIdPattern = /^[0-9a-fA-F]{32}$/
const uuidPattern = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/

const readId = (kind: IdKind, path: string, pattern: RegExp, expected: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? new IdFileMissing({ kind, path })
          : new IdFileUnreadable({ kind, path, reason: describeFileError(error) })
      )
    )
    const id = text.trim()
    if (!pattern.test(id)) {
      return yield* new IdFileMalformed({ kind, path, content: id.slice(0, 64), expected })
    }
    // systemd writes lowercase; a hand-made file may not, and servers compare ids as strings.
    return id.toLowerCase()
  })

/** Reads the machine id and the boot id (see the module header). */
export const readIdentity = (paths: Paths = defaultPaths): Effect.Effect<Identity, IdentityError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const machineId = yield* readId("machine id", paths.machineId, machineIdPattern, "32 hexadecimal digits")
    const bootId = yield* readId("boot id", paths.bootId, uuidPattern, "a UUID (8-4-4-4-12 hexadecimal digits)")
    return { userId: machineId, sessionId: `{${bootId}}` }
  })
