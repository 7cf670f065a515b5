import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Codes } from "effect-omaha"

describe("Codes", () => {
  it("names every event type and result of the protocol, and unknown codes", () => {
    expect(Codes.eventTypeName(Codes.EventType.UpdateDownloadStarted)).toBe("update download started")
    expect(Codes.eventTypeName(3)).toBe("update complete")
    expect(Codes.eventTypeName(103)).toBe("setup update failure")
    expect(Codes.eventTypeName(77)).toBe("unknown (77)")
    expect(Codes.eventResultName(Codes.EventResult.SuccessReboot)).toBe("success, reboot")
    expect(Codes.eventResultName(9)).toBe("update deferred")
    expect(Codes.eventResultName(-1)).toBe("unknown (-1)")
    for (const code of Object.values(Codes.EventType)) expect(Codes.eventTypeName(code)).not.toMatch(/^unknown \(/)
    for (const code of Object.values(Codes.EventResult)) expect(Codes.eventResultName(code)).not.toMatch(/^unknown \(/)
  })

  it("knows the status tables of the protocol", () => {
    expect(Codes.AppStatus.literals).toEqual([
      "ok",
      "restricted",
      "error-unknownApplication",
      "error-invalidAppId",
      "error-invalidVersion",
      "error-internal"
    ])
    expect(Codes.UpdateStatus.literals).toContain("error-hwnotsupported")
    expect(Schema.is(Codes.UpdateStatus)("error-unknown")).toBe(false)
    expect(Codes.describeStatus("error-hwnotsupported")).toBe("hardware not supported")
    expect(Codes.isErrorStatus("error-internal")).toBe(true)
    expect(Codes.isErrorStatus("noupdate")).toBe(false)
  })
})
