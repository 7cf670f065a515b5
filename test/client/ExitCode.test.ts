import { describe, expect, it } from "@effect/vitest"
import { ExitCode, Request } from "effect-omaha"

describe("ExitCode", () => {
  it("names every code of the table, and HTTP codes", () => {
    expect(ExitCode.name(0)).toBe("Success")
    expect(ExitCode.name(34)).toBe("OmahaResponseInvalid")
    expect(ExitCode.name(44)).toBe("RollbackError")
    expect(ExitCode.name(100)).toBe("DownloadIncomplete")
    expect(ExitCode.name(ExitCode.ofHttpStatus(404))).toBe("OmahaRequestHTTPResponseBase+404")
    expect(ExitCode.name(77)).toBe("UnknownError")
    const codes = Object.values(ExitCode.Code)
    expect(codes.length).toBe(47)
    for (let code = 0; code <= 44; code++) expect(codes).toContain(code)
  })

  it("decodes and masks the flag bits", () => {
    expect(ExitCode.describe(268435466)).toBe("PayloadHashMismatchError (10) [TestOmahaUrl]")
    expect(ExitCode.decode(268435490)).toEqual({ code: 34, flags: ["TestOmahaUrl"] })
    const all = ExitCode.withFlags(9, ["DevMode", "Resumed", "TestImage", "TestOmahaUrl"])
    expect(all).toBe(0xf0000009)
    expect(ExitCode.describe(all)).toBe("DownloadTransferError (9) [DevMode, Resumed, TestImage, TestOmahaUrl]")
    // The same value printed as a signed 32-bit integer, as update_engine's %d does.
    expect(ExitCode.decode(all | 0)).toEqual(ExitCode.decode(all))
    expect(ExitCode.describe(ExitCode.withFlags(ExitCode.ofHttpStatus(503), ["Resumed"]))).toBe(
      "OmahaRequestHTTPResponseBase+503 (2503) [Resumed]"
    )
  })

  it("explains codes in words, flags and HTTP statuses included", () => {
    expect(ExitCode.explain(10)).toBe("the downloaded payload's hash is not the one the server announced")
    expect(ExitCode.explain(ExitCode.withFlags(44, ["TestOmahaUrl"]))).toBe(
      "the machine rolled back to its previous version; the machine was using a non-production update server"
    )
    expect(ExitCode.explain(ExitCode.ofHttpStatus(503))).toBe("the server answered HTTP 503")
    expect(ExitCode.explain(77)).toBe("a code update_engine does not define")
    for (const name of Object.keys(ExitCode.Code) as Array<ExitCode.CodeName>) {
      expect(ExitCode.meanings[name].length).toBeGreaterThan(10)
    }
  })

  it("builds the error event for a code, deferrals as result 9", () => {
    expect(ExitCode.errorEvent(10)).toStrictEqual(
      new Request.EventRequest({ eventType: 3, eventResult: 0, errorCode: 10 })
    )
    for (const code of [35, 36, 40]) expect(ExitCode.errorEvent(code).eventResult).toBe(9)
    expect(ExitCode.errorEvent(ExitCode.withFlags(40, ["TestOmahaUrl"])).eventResult).toBe(9)
    expect(ExitCode.errorEvent(44, { previousVersion: "1.0.0" })).toStrictEqual(
      new Request.EventRequest({ eventType: 3, eventResult: 0, errorCode: 44, previousVersion: "1.0.0" })
    )
  })

  it("describes any event for logs", () => {
    expect(ExitCode.describeEvent(ExitCode.errorEvent(268435466))).toBe(
      "update complete: error, PayloadHashMismatchError (10) [TestOmahaUrl]"
    )
    expect(ExitCode.describeEvent(new Request.EventRequest({ eventType: 13, eventResult: 1 }))).toBe(
      "update download started: success"
    )
    expect(ExitCode.describeEvent(new Request.EventRequest({ eventType: 99 }))).toBe("unknown (99)")
  })
})
