import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Platform } from "effect-omaha"
import { binary, choriaRelease, listing, tempDir, target } from "./updater/support.js"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")

/** Writes the README's example named `name` to a module and imports it. */
const loadExample = async (name: string): Promise<Record<string, unknown>> => {
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\n<!-- end example -->`).exec(readme)
  if (match === null) throw new Error(`README has no example named ${name}`)
  const dir = Path.join(root, "test", ".generated")
  Fs.mkdirSync(dir, { recursive: true })
  const file = Path.join(dir, `readme-${name}.ts`)
  Fs.writeFileSync(file, match[1]!)
  return import(file)
}

describe("README", () => {
  it("documents the two set-up commands", () => {
    expect(readme).toContain("npm ci && npm test")
    expect(readme).toMatch(/```sh\nnpm ci && npm (run \S+|test)/)
  })

  it.effect("the protocol example encodes a request and decodes a response", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("protocol"))
      const result = yield* (example["program"] as Effect.Effect<{ xml: string; status: string; pollInterval: number }>)
      expect(result.status).toBe("noupdate")
      expect(result.pollInterval).toBe(3600)
      expect(result.xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0">\n <os platform=`))
        .toBe(true)
      expect(result.xml).toContain(
        ` <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3815.2.0" track="stable">\n  <updatecheck/>\n </app>\n`
      )
    }))

  it.live("the updater example installs a release from a repository directory", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("updater"))
      const dir = tempDir()
      const bytes = binary(100_000, 5)
      choriaRelease(Path.join(dir, "repo"), { name: "tool", version: "2.0.0", os: Platform.goOs(), arch: Platform.goArch(), bytes })
      Fs.mkdirSync(Path.join(dir, "bin"))
      const tool = target(Path.join(dir, "bin"), binary(1000, 6))
      const update = example["update"] as (target: string, repo: string) => Effect.Effect<{ _tag: string }>
      const result = yield* update(tool, Path.join(dir, "repo"))
      expect(result._tag).toBe("Updated")
      expect(Fs.readFileSync(tool).equals(bytes)).toBe(true)
      expect(listing(Path.join(dir, "bin"))).toEqual(["tool", "tool.backup"])
      Fs.rmSync(dir, { recursive: true })
    }))
})
