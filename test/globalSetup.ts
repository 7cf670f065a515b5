/**
 * Before the tests: bundles bin/ and builds the dashboard, so end-to-end and
 * browser tests run the commands and the page as they are in src/, and gives
 * the run a temporary directory of its own (TMPDIR, so `os.tmpdir()` in the
 * test workers and in every command they start). After the tests the
 * directory is removed, and the run fails if a test left anything in it:
 * every test cleans up after itself.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export default function setup(): () => void {
  for (const script of ["../scripts/bundle.mjs", "../scripts/build-dashboard.mjs"]) {
    execFileSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), "--quiet"], {
      stdio: ["ignore", "ignore", "inherit"]
    })
  }
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-tests-"))
  // As reachable as the system's own: some tests run commands as another user.
  Fs.chmodSync(dir, 0o1777)
  process.env["TMPDIR"] = dir
  return () => {
    const left = Fs.readdirSync(dir)
    Fs.rmSync(dir, { recursive: true, force: true })
    if (left.length > 0) throw new Error(`the tests left ${left.length} entries in the temporary directory: ${left.join(", ")}`)
  }
}
