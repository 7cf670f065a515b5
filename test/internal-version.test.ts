import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import { packageVersion } from "../src/internal/version.js"

describe("packageVersion", () => {
  it("is the version in package.json", () => {
    const manifest = JSON.parse(Fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    expect(packageVersion).toBe(manifest.version)
  })
})
