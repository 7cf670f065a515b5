import { describe, expect, it } from "@effect/vitest"
import { Platform, Request } from "effect-omaha"

describe("Platform", () => {
  it("names systems and CPUs as Omaha does", () => {
    expect(["win32", "darwin", "linux"].map((p) => Platform.omahaPlatform(p as NodeJS.Platform))).toEqual([
      "win",
      "mac",
      "linux"
    ])
    expect(["x64", "ia32", "arm", "arm64"].map((a) => Platform.omahaArch(a))).toEqual(["x64", "x86", "arm", "arm64"])
  })

  it("names systems and CPUs as Go does", () => {
    expect(["win32", "darwin", "linux", "freebsd"].map((p) => Platform.goOs(p as NodeJS.Platform))).toEqual([
      "windows",
      "darwin",
      "linux",
      "freebsd"
    ])
    expect(["x64", "ia32", "arm", "arm64"].map((a) => Platform.goArch(a))).toEqual(["amd64", "386", "arm", "arm64"])
  })

  it("reads the architecture from a Flatcar board", () => {
    expect(Platform.archFromBoard("amd64-usr")).toBe("amd64")
    expect(Platform.archFromBoard("arm64-usr")).toBe("arm64")
    expect(Platform.archFromBoard("amd64-generic")).toBe("amd64")
    expect(Platform.archFromBoard("pinebook")).toBeUndefined()
  })

  it("gives a new request the local os", () => {
    expect(Request.make().os).toStrictEqual(
      new Request.Os({ platform: Platform.omahaPlatform(), arch: Platform.omahaArch() })
    )
    expect(Request.make().protocol).toBe("3.0")
  })
})
