/** Running the built commands as processes, for end-to-end tests. */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** The clone the tests run from. */
export const root = fileURLToPath(new URL("../..", import.meta.url))

/** The path of a bundled command. */
export const binPath = (name: string): string => fileURLToPath(new URL(`../../dist/bin/${name}.js`, import.meta.url))

/** One word for `sh -c`, whatever it holds (a clone's path may have spaces). */
export const shellWord = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/**
 * Makes `dir` look like the clone to commands run in it as the README writes
 * them (`node dist/bin/...`, `fixtures/...`): links to the clone's `dist` and
 * `fixtures`, so the README's text runs unchanged wherever the clone is.
 */
export const linkClone = (dir: string): void => {
  for (const name of ["dist", "fixtures"]) Fs.symlinkSync(Path.join(root, name), Path.join(dir, name))
}

/** A running command: its output so far, and a way to wait for it to end. */
export interface Running {
  readonly child: ChildProcess.ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

/** How a command runs: as another user, with another environment, or from a copy of its bundle. */
export interface SpawnOptions {
  readonly uid?: number
  readonly gid?: number
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
  /** The bundle to run instead of `dist/bin/<name>.js` (a copy another user can read). */
  readonly script?: string
  /** For {@link run}: kill the command (SIGKILL) if it has not ended after this long; its status is then null. */
  readonly timeoutMs?: number
}

/** How a command run ended. */
export interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Starts a bundled command with node. */
export const start = (name: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): Running => {
  const { script, timeoutMs: _, ...spawnOptions } = options
  const child = ChildProcess.spawn(process.execPath, [script ?? binPath(name), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...spawnOptions
  })
  let out = ""
  let err = ""
  child.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")))
  child.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, stdout: () => out, stderr: () => err, exited }
}

/** Waits until `predicate` holds for the running command's output, failing after `timeoutMs`. */
export const waitFor = async (running: Running, predicate: () => boolean, timeoutMs = 15_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (running.child.exitCode !== null) {
      throw new Error(`the command exited with ${running.child.exitCode}: ${running.stderr()}`)
    }
    if (Date.now() > deadline) throw new Error(`timed out; stderr so far: ${running.stderr()}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Runs a bundled command to its end (asynchronously: a test's server shares this process). */
export const run = async (name: string, args: ReadonlyArray<string>, options: SpawnOptions = {}): Promise<Ran> => {
  const running = start(name, args, options)
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => running.child.kill("SIGKILL"), options.timeoutMs)
  // "close" rather than "exit": the output is complete only once the pipes are.
  const status = await new Promise<number | null>((resolve, reject) => {
    running.child.on("error", reject)
    running.child.on("close", (code) => resolve(code))
  }).finally(() => clearTimeout(timer))
  return { status, stdout: running.stdout(), stderr: running.stderr() }
}
