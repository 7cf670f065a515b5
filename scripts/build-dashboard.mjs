// Builds the fleet dashboard (src/dashboard/) into dist/dashboard/: one
// JavaScript and one CSS bundle with content-hashed names under assets/,
// the favicon, and index.html naming them. fleet-server serves this folder
// at `/`. The bundle must hold browser code only: a Node built-in or the
// Effect runtime reaching it fails the build.
import * as esbuild from "esbuild"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Zlib from "node:zlib"

const root = Path.resolve(import.meta.dirname, "..")
const source = Path.join(root, "src", "dashboard")
const outDir = Path.join(root, "dist", "dashboard")
const assets = Path.join(outDir, "assets")
const quiet = process.argv.includes("--quiet")

Fs.rmSync(outDir, { recursive: true, force: true })
Fs.mkdirSync(assets, { recursive: true })

const result = await esbuild.build({
  entryPoints: [Path.join(source, "main.tsx")],
  outdir: assets,
  entryNames: "[name]-[hash]",
  bundle: true,
  platform: "browser",
  format: "esm",
  target: ["chrome110", "firefox115", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
  define: { "process.env.NODE_ENV": "\"production\"" }
})

const forbidden = Object.keys(result.metafile.inputs).filter((input) =>
  input.startsWith("node:") || /node_modules\/(effect|@effect)\//.test(input)
)
if (forbidden.length > 0) {
  console.error(`the dashboard bundle must not include Node or Effect code; it pulled in:\n  ${forbidden.join("\n  ")}`)
  process.exit(1)
}

const outputs = Object.keys(result.metafile.outputs).map((file) => Path.basename(file))
const js = outputs.find((name) => name.endsWith(".js"))
const css = outputs.find((name) => name.endsWith(".css"))
if (js === undefined || css === undefined) {
  console.error(`the dashboard build made no ${js === undefined ? "JavaScript" : "CSS"} bundle`)
  process.exit(1)
}

const icon = Fs.readFileSync(Path.join(source, "favicon.svg"))
const favicon = `favicon-${Crypto.createHash("sha256").update(icon).digest("hex").slice(0, 8)}.svg`
Fs.writeFileSync(Path.join(assets, favicon), icon)

const template = Fs.readFileSync(Path.join(source, "index.html"), "utf8")
const html = template.replace("{{js}}", js).replace("{{css}}", css).replace("{{favicon}}", favicon)
Fs.writeFileSync(Path.join(outDir, "index.html"), html)

if (!quiet) {
  const sizes = [js, css].map((name) => {
    const bytes = Fs.readFileSync(Path.join(assets, name))
    return `${name} ${(bytes.length / 1024).toFixed(1)} KiB (${(Zlib.gzipSync(bytes).length / 1024).toFixed(1)} KiB gzip)`
  })
  console.log(`built the dashboard into dist/dashboard: ${sizes.join(", ")}`)
}
