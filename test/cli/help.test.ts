import { describe, expect, it } from "@effect/vitest"
import { styleFor } from "../../src/cli/internal/help.js"

describe("help style", () => {
  it("styles only a terminal, and never with NO_COLOR set or TERM=dumb", () => {
    const terminal = { isTTY: true, columns: 120, noColor: "", term: "xterm-256color" }
    expect(styleFor(terminal)).toEqual({ color: true, width: 100 })
    expect(styleFor({ ...terminal, noColor: "1" }).color).toBe(false)
    expect(styleFor({ ...terminal, term: "dumb" }).color).toBe(false)
    expect(styleFor({ ...terminal, isTTY: false })).toEqual({ color: false, width: 80 })
    expect(styleFor({ ...terminal, columns: 60 }).width).toBe(60)
  })
})
