/** Runs the built command bundles as real processes, for the end-to-end tests. */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** The path of a built command bundle. */
export const bundle = (name: string) => Path.join(root, "dist", "bin", `${name}.js`)

/** How a command run ended. */
export interface Ran {
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a bundled command with node (asynchronously: a test's server shares this process). */
export const run = (
  name: string,
  args: ReadonlyArray<string>,
  options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}
) =>
  new Promise<Ran>((resolve, reject) => {
    const child = spawn(process.execPath, [bundle(name), ...args], { stdio: ["ignore", "pipe", "pipe"], ...options })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b) => (stdout += b))
    child.stderr.on("data", (b) => (stderr += b))
    child.on("error", reject)
    child.on("close", (status) => resolve({ status, stdout, stderr }))
  })
