/**
 * Applying a release to a binary: decide whether to update, download and
 * verify into a temp file beside the target, keep the old binary as
 * `<target>.backup`, swap the new one in with a rename, and roll back if the
 * health check fails. Every step is a scoped resource whose release undoes it
 * on failure or interruption, and every change of the target is a rename, so
 * the target path always holds the old binary or the new one, whole.
 */
import { Command, CommandExecutor, FileSystem } from "@effect/platform"
import { Duration, Effect, Exit, Match, Option, Ref, Schema, Stream } from "effect"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { Code } from "../client/ExitCode.js"
import { describeFileError } from "../internal/fileError.js"
import { PackageHashMismatch, PackageSizeMismatch } from "../protocol/Package.js"
import * as Platform from "../protocol/Platform.js"
import * as Version from "../protocol/Version.js"
import * as Compression from "./Compression.js"
import * as Download from "./Download.js"
import * as Lock from "./Lock.js"
import { type Release, ReleaseInvalid } from "./Release.js"
import * as Repository from "./Repository.js"
import * as Signature from "./Signature.js"

/** The release is older than the installed version and downgrades are not allowed. */
export class DowngradeRefused extends Schema.TaggedError<DowngradeRefused>()("DowngradeRefused", {
  current: Schema.String,
  offered: Schema.String
}) {
  override get message(): string {
    return `refusing to downgrade from ${this.current} to ${this.offered} (allow it with --allow-downgrade)`
  }
}

/** The target binary is missing or is not a regular file. */
export class TargetUnavailable extends Schema.TaggedError<TargetUnavailable>()("TargetUnavailable", {
  target: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `target ${this.target}: ${this.reason}`
  }
}

/**
 * The new binary failed its health check after the swap. `rolledBack` says
 * whether the previous binary was put back; when false, the target still
 * holds the new binary and `rollbackReason` says why restoring failed.
 */
export class RollbackError extends Schema.TaggedError<RollbackError>()("RollbackError", {
  target: Schema.String,
  version: Schema.String,
  reason: Schema.String,
  rolledBack: Schema.Boolean,
  rollbackReason: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.rolledBack
      ? `${this.version} failed its health check (${this.reason}); rolled back to the previous binary`
      : `${this.version} failed its health check (${this.reason}) and the rollback failed too (${this.rollbackReason}); ${this.target} holds the new binary`
  }
}

/** What an apply was doing, for messages. */
export const Step = Schema.Literal("checking", "downloading", "installing", "health check")

/** What an apply was doing. */
export type Step = typeof Step.Type

const stepWords: Record<Step, string> = {
  checking: "checking for an update",
  downloading: "downloading",
  installing: "installing",
  "health check": "running the health check"
}

/** The apply did not finish within its time limit; it stopped there and put the previous binary back. */
export class UpdateTimedOut extends Schema.TaggedError<UpdateTimedOut>()("UpdateTimedOut", {
  target: Schema.String,
  timeoutMillis: Schema.Number,
  step: Step
}) {
  override get message(): string {
    return `the update of ${this.target} did not finish within ${this.timeoutMillis / 1000} s (it was ${
      stepWords[this.step]
    }); stopped, and the previous binary is in place`
  }
}

/** Every way an apply can fail. */
export type ApplyError =
  | Repository.ResolveError
  | ReleaseInvalid
  | Version.InvalidVersion
  | Download.DownloadFailed
  | Download.WriteFailed
  | Compression.CorruptPayload
  | Compression.PayloadTooLarge
  | PackageHashMismatch
  | PackageSizeMismatch
  | Signature.SignatureMissing
  | Signature.SignatureInvalid
  | Lock.UpdateLocked
  | DowngradeRefused
  | TargetUnavailable
  | RollbackError
  | UpdateTimedOut

/** The update_engine exit code an Omaha source reports for each failure (event 3/0). */
export const updateEngineCode: (error: ApplyError) => number = Match.type<ApplyError>().pipe(
  Match.tagsExhaustive({
    ReleaseNotFound: (e) => (e.status === undefined ? Code.DownloadStateInitializationError : 2000 + e.status),
    RepositoryUnreachable: (e) => (e.status === undefined ? Code.OmahaRequestError : 2000 + e.status),
    ReleaseInvalid: () => Code.OmahaResponseInvalid,
    InvalidVersion: () => Code.OmahaResponseInvalid,
    DownloadFailed: () => Code.DownloadTransferError,
    WriteFailed: () => Code.DownloadWriteError,
    CorruptPayload: () => Code.DownloadPayloadVerificationError,
    PayloadTooLarge: () => Code.PayloadSizeMismatchError,
    PackageHashMismatch: () => Code.PayloadHashMismatchError,
    PackageSizeMismatch: () => Code.PayloadSizeMismatchError,
    SignatureMissing: () => Code.DownloadSignatureMissingInManifest,
    SignatureInvalid: () => Code.DownloadPayloadPubKeyVerificationError,
    UpdateLocked: () => Code.Error,
    DowngradeRefused: () => Code.OmahaUpdateIgnoredPerPolicy,
    TargetUnavailable: () => Code.FilesystemCopierError,
    RollbackError: () => Code.RollbackError,
    UpdateTimedOut: (e) =>
      e.step === "downloading"
        ? Code.DownloadTransferError
        : e.step === "health check"
        ? Code.RollbackError
        : Code.Error
  })
)

/** A health check: a shell command run after the swap, which must exit 0 within the timeout. */
export interface HealthCheck {
  readonly command: string
  readonly timeout: Duration.DurationInput
}

/** What to apply, and how. */
export interface Options {
  /** The binary to replace. */
  readonly target: string
  /** The version to install (required by repository sources). */
  readonly version?: string | undefined
  /** The installed version; without it, a target whose hash matches the release counts as up to date. */
  readonly currentVersion?: string | undefined
  /** Why this update runs, passed to the source (Omaha's `installsource`). */
  readonly installSource?: string | undefined
  /** The platform the release must be built for; the local one by default. */
  readonly os?: string | undefined
  readonly arch?: string | undefined
  /** With a key, a release without a valid signature is refused. */
  readonly publicKey?: Crypto.KeyObject | undefined
  readonly allowDowngrade?: boolean | undefined
  readonly check?: HealthCheck | undefined
  /** The decoded-size cap when the release announces no size (1 GiB by default). */
  readonly maxBytes?: number | undefined
  readonly onProgress?: ((progress: Download.Progress) => Effect.Effect<void>) | undefined
  /** Told while the download waits for data, and before it tries again (see `Download.Waiting`). */
  readonly onWait?: ((waiting: Download.Waiting) => Effect.Effect<void>) | undefined
  /** How often a download that receives nothing says so; `Download.defaultNoticeEvery` by default. */
  readonly noticeEvery?: Duration.DurationInput | undefined
  /**
   * The longest the whole apply may take, from the source's check to the end
   * of the health check. Past it the apply stops as if interrupted (the
   * previous binary stays or is put back) and fails with {@link UpdateTimedOut}.
   * No limit by default.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/** How an apply ended. */
export type Outcome =
  | { readonly _tag: "UpToDate"; readonly version: string | undefined }
  | { readonly _tag: "Updated"; readonly release: Release; readonly size: number }

/** The files an apply keeps beside a target, by role. */
export const files = (target: string) => {
  const dir = Path.dirname(target)
  const name = Path.basename(target)
  return {
    dir,
    name,
    backup: `${target}.backup`,
    lock: `${target}.lock`,
    staged: Path.join(dir, `.${name}.new`),
    backupStaged: Path.join(dir, `.${name}.backup.new`),
    restore: Path.join(dir, `.${name}.restore`),
    part: (sha256: string) => Path.join(dir, Download.partName(name, sha256))
  }
}

/** The cap on a decoded binary when the release does not announce its size. */
export const defaultMaxBytes = 1024 * 1024 * 1024

const compareVersions = (current: string, offered: string) =>
  Effect.gen(function*() {
    const a = yield* Version.parse(current)
    const b = yield* Version.parse(offered)
    return Version.compare(a, b)
  })

/**
 * Applies the release the `Repository` offers to `options.target`. Same
 * version: nothing to do. An older one: refused unless allowed. The source
 * hears of each step through its reporter, and of a failure with the
 * update_engine code of {@link updateEngineCode}.
 */
export const apply = Effect.fn("Apply.apply")(function*(options: Options) {
  const source = yield* Repository.Repository
  const found = yield* Ref.make(Option.none<Release>())
  // Without a source to ask, the versions alone may settle it.
  if (options.version !== undefined && options.currentVersion !== undefined) {
    const order = yield* compareVersions(options.currentVersion, options.version)
    if (order === 0) return { _tag: "UpToDate", version: options.currentVersion } as Outcome
    if (order > 0 && options.allowDowngrade !== true) {
      return yield* new DowngradeRefused({ current: options.currentVersion, offered: options.version })
    }
  }
  const step = yield* Ref.make<Step>("checking")
  const applied = Effect.scoped(run(options, source, found, step))
  const timeout = options.timeout
  // Past the limit the apply is interrupted, so every step's release undoes it, then fails with the step it was at.
  const bounded: Effect.Effect<Outcome, ApplyError, Requirements> = timeout === undefined ? applied : applied.pipe(
    Effect.timeout(timeout),
    Effect.catchTag("TimeoutException", () =>
      Effect.flatMap(Ref.get(step), (at) =>
        Effect.fail(
          new UpdateTimedOut({ target: Path.resolve(options.target), timeoutMillis: Duration.toMillis(timeout), step: at })
        )))
  )
  return yield* bounded.pipe(
    Effect.tapError((error) => Effect.flatMap(Ref.get(found), (release) => source.report.failed(release, updateEngineCode(error))))
  )
})

const run = (options: Options, source: Repository.Source, found: Ref.Ref<Option.Option<Release>>, step: Ref.Ref<Step>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const target = Path.resolve(options.target)
    const paths = files(target)
    const info = yield* fs.stat(target).pipe(
      Effect.mapError((e) =>
        new TargetUnavailable({ target, reason: describeFileError(e) })
      )
    )
    if (info.type !== "File") return yield* new TargetUnavailable({ target, reason: "not a regular file" })

    yield* Lock.acquire(paths.lock)
    // Holding the lock, anything of ours beside the target is a leftover of a killed run.
    yield* removeLeftovers(paths, Option.none())

    const offered = yield* source.resolve({
      version: options.version,
      currentVersion: options.currentVersion,
      installSource: options.installSource
    })
    if (Option.isNone(offered)) return { _tag: "UpToDate", version: options.currentVersion } as Outcome
    const release = offered.value
    yield* Ref.set(found, offered)
    yield* removeLeftovers(paths, Option.some(release.sha256))

    const os = options.os ?? Platform.goOs()
    const arch = options.arch ?? Platform.goArch()
    if (release.os !== os || release.arch !== arch) {
      return yield* new ReleaseInvalid({
        location: release.location,
        reason: `built for ${release.os}/${release.arch}, not ${os}/${arch}`
      })
    }
    if (options.currentVersion !== undefined) {
      const order = yield* compareVersions(options.currentVersion, release.version)
      if (order === 0) return { _tag: "UpToDate", version: release.version } as Outcome
      if (order > 0 && options.allowDowngrade !== true) {
        return yield* new DowngradeRefused({ current: options.currentVersion, offered: release.version })
      }
    }
    if (options.publicKey !== undefined) yield* Signature.verify(options.publicKey, release)
    if (options.currentVersion === undefined) {
      const installed = yield* hashFile(target)
      if (installed === release.sha256.toLowerCase()) return { _tag: "UpToDate", version: release.version } as Outcome
    }

    yield* source.report.downloadStarted(release)
    yield* Ref.set(step, "downloading")
    const written = yield* stage(paths, release, info, source, options)
    yield* source.report.downloadFinished(release)

    yield* Ref.set(step, "installing")
    yield* keepBackup(target, paths)
    const swapped = yield* swap(target, paths)
    yield* Ref.set(step, "health check")
    if (options.check !== undefined) yield* healthCheck(options.check, target, release, swapped)
    yield* source.report.updated(release)
    return { _tag: "Updated", release, size: written.size } as Outcome
  })

/** SHA-256 hex of a file, or "" when it cannot be read (which never matches a release). */
const hashFile = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const hash = Crypto.createHash("sha256")
    yield* Stream.runForEach(fs.stream(path, { chunkSize: 1024 * 1024 }), (bytes) => Effect.sync(() => hash.update(bytes)))
    return hash.digest("hex")
  }).pipe(Effect.orElseSucceed(() => ""))

/** Removes what killed runs leave beside a target; partial downloads only when they are not for `keep`. */
const removeLeftovers = (paths: ReturnType<typeof files>, keep: Option.Option<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* Effect.orElseSucceed(fs.readDirectory(paths.dir), () => [] as Array<string>)
    const keepPart = Option.map(keep, (sha) => Path.basename(paths.part(sha)))
    const prefix = `.${paths.name}.`
    for (const name of names) {
      const isPart = name.startsWith(prefix) && /\.[0-9a-f]{64}\.part$/.test(name)
      const isOurs = [paths.staged, paths.backupStaged, paths.restore].some((p) => Path.basename(p) === name)
      if (isOurs || (isPart && Option.isSome(keep) && Option.getOrUndefined(keepPart) !== name)) {
        yield* fs.remove(Path.join(paths.dir, name), { force: true }).pipe(Effect.ignore)
      }
    }
  })

/** Syncs a directory, so the renames in it survive a power cut. */
const syncDirectory = (dir: string) =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const handle = yield* fs.open(dir, { flag: "r" })
    yield* handle.sync
  })).pipe(Effect.mapError(Download.writeFailed(dir, "sync directory")))

/**
 * Step 1: the new binary, downloaded and verified into `.<name>.new` (0600,
 * then given the target's mode, and its owner when running as root, and
 * synced). No descriptor of it is left open: a file still open for writing
 * cannot be executed (ETXTBSY), and the health check runs it. Removed again
 * unless the apply succeeds.
 */
const stage = (
  paths: ReturnType<typeof files>,
  release: Release,
  old: FileSystem.File.Info,
  source: Repository.Source,
  options: Options
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* Effect.addFinalizer((exit) =>
      Exit.isFailure(exit) ? fs.remove(paths.staged, { force: true }).pipe(Effect.ignore) : Effect.void
    )
    const written = yield* Download.toFile({
      release,
      fetch: (offset) => source.fetch(release, offset),
      outputPath: paths.staged,
      partPath: paths.part(release.sha256),
      maxBytes: options.maxBytes ?? defaultMaxBytes,
      onProgress: options.onProgress,
      onWait: options.onWait,
      noticeEvery: options.noticeEvery
    })
    // The owner first: chown clears set-user-ID bits, which the mode then restores.
    if (process.getuid?.() === 0 && Option.isSome(old.uid) && Option.isSome(old.gid)) {
      yield* fs.chown(paths.staged, old.uid.value, old.gid.value).pipe(
        Effect.mapError(Download.writeFailed(paths.staged, "set the owner of"))
      )
    }
    yield* fs.chmod(paths.staged, old.mode & 0o7777).pipe(Effect.mapError(Download.writeFailed(paths.staged, "set the mode of")))
    yield* syncFile(paths.staged)
    return written
  })

/** Syncs a file through a descriptor of its own, closed again at once. */
const syncFile = (path: string) =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const handle = yield* fs.open(path, { flag: "r" })
    yield* handle.sync
  })).pipe(Effect.mapError(Download.writeFailed(path, "sync")))

/** Links `from` to `to` (same inode, no copy), falling back to a copy where links are not allowed. */
const linkOrCopy = (from: string, to: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.link(from, to).pipe(
      Effect.catchIf((e) => e._tag === "SystemError" && e.reason !== "AlreadyExists" && e.reason !== "NotFound", () =>
        Effect.scoped(Effect.gen(function*() {
          yield* fs.copyFile(from, to)
          const copy = yield* fs.open(to, { flag: "r+" })
          yield* copy.sync
        })))
    )
  }).pipe(Effect.mapError(Download.writeFailed(to, "create")))

/**
 * Step 2: `<target>.backup` becomes the current binary (a hard link moved into
 * place by rename, so an older backup is replaced whole). Kept after any
 * outcome: it always equals the binary the last apply replaced or kept.
 */
const keepBackup = (target: string, paths: ReturnType<typeof files>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* Effect.acquireRelease(
      linkOrCopy(target, paths.backupStaged),
      () => fs.remove(paths.backupStaged, { force: true }).pipe(Effect.ignore)
    )
    yield* fs.rename(paths.backupStaged, paths.backup).pipe(Effect.mapError(Download.writeFailed(paths.backup, "create")))
  })

/** Puts the backup back at the target: linked aside, then renamed over it, so the target never goes missing. */
const restore = (target: string, paths: ReturnType<typeof files>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.remove(paths.restore, { force: true }).pipe(Effect.ignore)
    yield* linkOrCopy(paths.backup, paths.restore)
    yield* fs.rename(paths.restore, target).pipe(Effect.mapError(Download.writeFailed(target, "restore")))
    yield* syncDirectory(paths.dir)
  })

/** What the swap step leaves for the health check: whether a rollback already ran. */
interface Swapped {
  readonly rolledBack: Ref.Ref<boolean>
  readonly rollback: Effect.Effect<void, Download.WriteFailed, FileSystem.FileSystem>
}

/**
 * Step 3: the staged binary renamed over the target and the directory synced.
 * If the apply fails or is interrupted after this, the release restores the
 * backup (unless the health check's explicit rollback already did).
 */
const swap = (target: string, paths: ReturnType<typeof files>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const rolledBack = yield* Ref.make(false)
    const rollback = Effect.zipRight(restore(target, paths), Ref.set(rolledBack, true))
    return yield* Effect.acquireRelease(
      fs.rename(paths.staged, target).pipe(
        Effect.mapError(Download.writeFailed(target, "replace")),
        Effect.zipRight(syncDirectory(paths.dir)),
        Effect.as<Swapped>({ rolledBack, rollback })
      ),
      (swapped, exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Effect.flatMap(Ref.get(swapped.rolledBack), (done) =>
            done
              ? Effect.void
              : swapped.rollback.pipe(
                Effect.catchAll((e) => Effect.logError(`rollback of ${target} failed: ${e.message}`)),
                Effect.provideService(FileSystem.FileSystem, fs)
              ))
    )
  })

/** Step 4: the health check; on failure the backup is restored and a {@link RollbackError} says how that went. */
const healthCheck = (check: HealthCheck, target: string, release: Release, swapped: Swapped) =>
  Effect.gen(function*() {
    const command = Command.make("sh", "-c", check.command).pipe(
      Command.env({ UPDATE_SELF_TARGET: target, UPDATE_SELF_VERSION: release.version }),
      Command.stdout("inherit"),
      Command.stderr("inherit")
    )
    const verdict = yield* Command.exitCode(command).pipe(
      Effect.map((code) => (code === 0 ? Option.none() : Option.some(`${check.command} exited with status ${code}`))),
      Effect.catchAll((e) => Effect.succeed(Option.some(`${check.command} could not run: ${e.message}`))),
      Effect.scoped,
      Effect.timeoutTo({
        duration: check.timeout,
        onTimeout: () => Option.some(`${check.command} did not finish within ${Duration.format(check.timeout)}`),
        onSuccess: (x) => x
      })
    )
    if (Option.isNone(verdict)) return
    const rolled = yield* Effect.either(swapped.rollback)
    return yield* new RollbackError({
      target,
      version: release.version,
      reason: verdict.value,
      rolledBack: rolled._tag === "Right",
      ...(rolled._tag === "Left" ? { rollbackReason: rolled.left.message } : {})
    })
  })

/** The services an apply needs besides the `Repository`. */
export type Requirements = FileSystem.FileSystem | CommandExecutor.CommandExecutor
