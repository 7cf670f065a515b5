// Bundles each bin/<name>.ts into dist/bin/<name>.js: one file that starts
// fast (no barrel imports resolved at run time) and runs with plain `node`.
import * as esbuild from "esbuild"
import * as Fs from "node:fs"
import * as Path from "node:path"

const root = Path.resolve(import.meta.dirname, "..")
const binDir = Path.join(root, "bin")
const outDir = Path.join(root, "dist", "bin")
const entries = Fs.existsSync(binDir) ? Fs.readdirSync(binDir).filter((name) => name.endsWith(".ts")) : []

// Packages a command loads from node_modules at run time instead of from its
// bundle: PGlite is used as installed, beside its .wasm and .data files.
const external = {
  "fleet-server.ts": ["@electric-sql/pglite"]
}

Fs.mkdirSync(outDir, { recursive: true })
for (const name of entries) {
  const outfile = Path.join(outDir, name.replace(/\.ts$/, ".js"))
  await esbuild.build({
    entryPoints: [Path.join(binDir, name)],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    logLevel: "warning",
    external: external[name] ?? [],
    // Some dependencies call require(); an ESM bundle needs one made for it.
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from \"node:module\";const require = __createRequire(import.meta.url);"
    }
  })
  Fs.chmodSync(outfile, 0o755)
}
console.log(`bundled ${entries.length} command(s) into dist/bin`)
