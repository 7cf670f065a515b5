/** Bundling a test's entry point as scripts/bundle.mjs bundles the commands, to run it with plain node. */
import * as esbuild from "esbuild"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const generated = fileURLToPath(new URL("../.generated/", import.meta.url))

/** Bundles `entry` into test/.generated/<name>.js (inside the package, so its dependencies resolve); yields the path. */
export const bundleEntry = async (entry: string, name: string): Promise<string> => {
  const outfile = Path.join(generated, `${name}.js`)
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    banner: { js: "import { createRequire as __createRequire } from \"node:module\";const require = __createRequire(import.meta.url);" }
  })
  return outfile
}
