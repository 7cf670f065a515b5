/**
 * Builds bin/ and the dashboard before the tests, so end-to-end and browser
 * tests run the commands and the page as they are in src/.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  for (const script of ["../scripts/bundle.mjs", "../scripts/build-dashboard.mjs"]) {
    execFileSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), "--quiet"], {
      stdio: ["ignore", "ignore", "inherit"]
    })
  }
}
