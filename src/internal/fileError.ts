/**
 * File-system failures in a few words for the one-line messages commands
 * print (`no such file`, `read-only file system (EROFS)`, ...). @effect/platform
 * folds many errnos into one reason (`EROFS` and `ENOSPC` are both
 * `Unknown`), so the words come from the errno itself where there is one;
 * beyond the everyday two (no such file, permission denied) the errno follows
 * in parentheses, for searching.
 */
import type { PlatformError } from "@effect/platform/Error"

const errnoWords: Partial<Record<string, string>> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EEXIST: "already exists",
  EISDIR: "is a directory",
  ERR_FS_EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "name too long",
  EBUSY: "busy",
  ETXTBSY: "text file busy",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
  EIO: "input/output error",
  EFBIG: "file too large",
  EXDEV: "on another file system",
  EINVAL: "invalid argument"
}

const reasonWords: Partial<Record<string, string>> = {
  NotFound: "no such file",
  PermissionDenied: "permission denied",
  AlreadyExists: "already exists",
  BadResource: "not a usable file",
  Busy: "busy",
  TimedOut: "timed out",
  UnexpectedEof: "ended unexpectedly",
  WriteZero: "nothing could be written"
}

// Node's messages read `EROFS: read-only file system, open '/x'`.
const nodeMessage = /^([A-Z][A-Z0-9_]+): (.*?)(?:, \w+ '.*')?$/

/** The errno code (`EROFS`) behind a platform error, when it has one. */
const errnoOf = (error: PlatformError): string | undefined => {
  if (error._tag !== "SystemError") return undefined
  const code = (error.cause as { readonly code?: unknown } | undefined)?.code
  if (typeof code === "string") return code
  return nodeMessage.exec(error.description ?? "")?.[1]
}

/** Errnos said in words alone. */
const everyday = new Set(["ENOENT", "EACCES"])

/** A file-system failure in a few words, without the module, method or path (the caller names the file). */
export const describeFileError = (error: PlatformError): string => {
  if (error._tag === "BadArgument") return error.description ?? error.message
  const code = errnoOf(error)
  const words = (code === undefined ? undefined : errnoWords[code]) ?? nodeMessage.exec(error.description ?? "")?.[2]
  if (words === undefined || code === undefined) return reasonWords[error.reason] ?? error.description ?? error.message
  return everyday.has(code) ? words : `${words} (${code.replace(/^ERR_FS_/, "")})`
}
