import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Release } from "effect-omaha"

const hash = "ab".repeat(32)
const decode = (value: unknown) =>
  Effect.runSync(Effect.either(Release.decodeReleaseFile(new TextEncoder().encode(JSON.stringify(value)), "r.json")))

describe("Release.decodeReleaseFile", () => {
  it("reads choria's release.json and ignores fields it does not know", () => {
    const result = decode({ binary: "tool-linux-amd64-1.0.0.bz2", hash, extra: { any: 1 } })
    expect(result._tag === "Right" && result.right).toStrictEqual(
      new Release.ReleaseFile({ binary: "tool-linux-amd64-1.0.0.bz2", hash })
    )
    const full = decode({ binary: "tool.bz2", hash, uri: "https://cdn.example/tool.bz2", signature: "c2ln" })
    expect(full._tag === "Right" && full.right.uri).toBe("https://cdn.example/tool.bz2")
  })

  it("refuses a binary that is not a plain file name", () => {
    for (const binary of ["../tool", "a/b.bz2", ".hidden", "/etc/passwd", "", "tool bz2", "a\\b"]) {
      const result = decode({ binary, hash })
      expect(result._tag === "Left" && result.left._tag, binary).toBe("ReleaseInvalid")
    }
  })

  it("refuses a uri on a scheme other than http or https, and a hash that is not SHA-256 hex", () => {
    for (const uri of ["file:///etc/passwd", "ftp://host/x", "relative/path", "javascript:alert(1)"]) {
      const result = decode({ binary: "t.bz2", hash, uri })
      expect(result._tag === "Left" && result.left.message, uri).toMatch(/^release r\.json is invalid: /)
    }
    for (const bad of ["ab".repeat(31), "zz".repeat(32), 42]) {
      expect(decode({ binary: "t.bz2", hash: bad })._tag).toBe("Left")
    }
  })

  it("refuses text that is not JSON, and a file over the size cap, with a one-line message", () => {
    const notJson = Effect.runSync(Effect.either(Release.decodeReleaseFile(new TextEncoder().encode("{\"binary\":"), "r.json")))
    expect(notJson._tag === "Left" && notJson.left.message.includes("\n")).toBe(false)
    const big = new TextEncoder().encode(JSON.stringify({ binary: "t", hash, pad: "x".repeat(Release.maxReleaseFileBytes) }))
    const result = Effect.runSync(Effect.either(Release.decodeReleaseFile(big, "r.json")))
    expect(result._tag === "Left" && result.left.reason).toBe(`larger than ${Release.maxReleaseFileBytes} bytes`)
  })

  it("says which field breaks which rule, on one plain line", () => {
    const message = (text: string) => {
      const result = Effect.runSync(Effect.either(Release.decodeReleaseFile(new TextEncoder().encode(text), "r.json")))
      return result._tag === "Left" ? result.left.message : "decoded"
    }
    expect(message(JSON.stringify({ binary: "t.bz2", hash: "abc" })))
      .toBe("release r.json is invalid: hash: expected 64 hex characters (a SHA-256 digest)")
    expect(message(JSON.stringify({ hash }))).toBe("release r.json is invalid: binary: missing")
    expect(message(JSON.stringify({ binary: "t.bz2", hash, uri: "ftp://host/t.bz2" })))
      .toBe("release r.json is invalid: uri: expected an http or https URL, not ftp:")
    expect(message(JSON.stringify({ binary: "t.bz2", hash, signature: 7 })))
      .toBe("release r.json is invalid: signature: expected string, actual 7")
    expect(message("[]")).toBe("release r.json is invalid: expected a JSON object")
    expect(message("<html>")).toMatch(/^release r\.json is invalid: not JSON \([^\n]*\)$/)
  })

  it("writes what it reads", () => {
    const file = new Release.ReleaseFile({ binary: "t.bz2", hash, signature: "c2ln" })
    const text = Release.encodeReleaseFile(file)
    const back = Effect.runSync(Release.decodeReleaseFile(new TextEncoder().encode(text), "r.json"))
    expect(back).toStrictEqual(file)
  })
})
