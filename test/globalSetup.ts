/** Bundles bin/ before the tests, so end-to-end tests run the commands as they are in src/. */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export default function setup(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL("../scripts/bundle.mjs", import.meta.url))], {
    stdio: ["ignore", "ignore", "inherit"]
  })
}
