import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { Version } from "effect-omaha"

const v = (text: string) => Option.getOrThrow(Version.parseOption(text))
const cmp = (a: string, b: string) => Version.compare(v(a), v(b))

describe("Version", () => {
  it("treats missing dotted components as zero", () => {
    expect(cmp("1.2", "1.2.0.0")).toBe(0)
    expect(Version.equals(v("1.2"), v("1.2.0.0"))).toBe(true)
    expect(cmp("1.3.23.0", "1.3.23")).toBe(0)
    expect(cmp("1.3.23.1", "1.3.23")).toBe(1)
    expect(cmp("2512.3.0", "2605.12.4")).toBe(-1)
  })

  it("compares numerically, not as text, without a size limit", () => {
    expect(cmp("1.10.0", "1.9.0")).toBe(1)
    expect(cmp("010.0", "9.0")).toBe(1)
    expect(cmp("123456789012345678901234567890.0", "123456789012345678901234567891.0")).toBe(-1)
  })

  it("orders pre-releases as semantic versioning does", () => {
    const ordered = [
      "1.0.0-alpha",
      "1.0.0-alpha.1",
      "1.0.0-alpha.beta",
      "1.0.0-beta",
      "1.0.0-beta.2",
      "1.0.0-beta.11",
      "1.0.0-rc.1",
      "1.0.0"
    ]
    for (let i = 0; i + 1 < ordered.length; i++) {
      expect(cmp(ordered[i]!, ordered[i + 1]!), `${ordered[i]} < ${ordered[i + 1]}`).toBe(-1)
      expect(cmp(ordered[i + 1]!, ordered[i]!)).toBe(1)
    }
    expect(cmp("1.0.0+build.5", "1.0.0")).toBe(0)
  })

  it("parses semantic versions strictly and dotted versions leniently", () => {
    expect(Option.isSome(Version.parseSemverOption("1.2.3-rc.1+sha.5"))).toBe(true)
    for (const bad of ["1.2", "1.2.3.4", "01.2.3", "v1.2.3", "1.2.3-", "", "ForcedUpdate"]) {
      expect(Option.isNone(Version.parseSemverOption(bad)), bad).toBe(true)
    }
    for (const good of ["1", "1.2", "1.3.23.0", "v2.0.0-rc.1", "2021.01.05"]) {
      expect(Option.isSome(Version.parseOption(good)), good).toBe(true)
    }
    for (const bad of ["", "ForcedUpdate", "1..2", "1.2.", "a.b", "1.2 "]) {
      expect(Option.isNone(Version.parseOption(bad)), bad).toBe(true)
    }
  })

  it.effect("fails with a typed error that says what a version looks like", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Version.parseSemver("1.2"))
      expect(error._tag).toBe("InvalidVersion")
      expect(error.message).toBe(`"1.2" is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.3)`)
      const other = yield* Effect.flip(Version.parse("latest"))
      expect(other.message).toBe(`"latest" is not a version (e.g. 1.2.3 or 1.3.23.0)`)
    }))

  it("compares text, with none for non-versions", () => {
    expect(Version.compareText("1.2", "1.2.0")).toEqual(Option.some(0))
    expect(Version.compareText("ForcedUpdate", "1.0.0")).toEqual(Option.none())
  })
})
