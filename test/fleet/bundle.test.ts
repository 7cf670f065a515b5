import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { migrations } from "../../src/fleet/migrations/index.js"
import { bundleEntry } from "./bundleEntry.js"

const root = fileURLToPath(new URL("../..", import.meta.url))

describe("Database in a bundled command", () => {
  // A bundle is not where PGlite's WASM and file bundle are: the layer must find them in the package.
  it("opens PGlite from an esbuild bundle, as the commands are shipped", async () => {
    const dir = Path.join(root, "test", ".generated", "bundle")
    Fs.mkdirSync(dir, { recursive: true })
    const entry = Path.join(dir, "entry.ts")
    Fs.writeFileSync(entry, [
      `import { SqlClient } from "@effect/sql"`,
      `import { Effect } from "effect"`,
      `import * as Database from "../../../src/fleet/Database.js"`,
      `const count = Effect.flatMap(SqlClient.SqlClient, (sql) => sql\`SELECT count(*) AS n FROM fleet_migrations\`)`,
      `Effect.runPromise(Effect.provide(count, Database.layerPgliteMemory)).then((rows) => console.log(JSON.stringify(rows)))`
    ].join("\n"))
    const outfile = await bundleEntry(entry, "bundle/command")
    const ran = ChildProcess.spawnSync(process.execPath, [outfile], { encoding: "utf8" })
    expect(ran.stderr).toBe("")
    expect(ran.stdout).toBe(`[{"n":${Object.keys(migrations).length}}]\n`)
    expect(ran.status).toBe(0)
  }, 120_000)
})
