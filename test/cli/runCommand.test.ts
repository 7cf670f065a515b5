import { ValidationError } from "@effect/cli"
import { HelpDoc } from "@effect/cli"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Data, Exit, FiberId, Option } from "effect"
import { UsageError } from "../../src/cli/internal/commandLine.js"
import { ExitStatus, outcome } from "../../src/cli/internal/runCommand.js"

class Missing extends Data.TaggedError("Missing")<{ readonly path: string }> {
  override get message() {
    return `no file at ${this.path}\nsecond line`
  }
}
class Busy extends Data.TaggedError("Busy")<{}> {}

const ending = {
  name: "tool",
  exitStatus: (e: Missing | Busy) => (e._tag === "Missing" ? 3 : 4),
  interrupted: 130
}

describe("runCommand outcome", () => {
  it("exits 0 on success", () => {
    expect(outcome(ending, Exit.void)).toEqual({ status: ExitStatus.Ok, message: Option.none() })
  })

  it("prints one line and the documented status for a typed failure", () => {
    expect(outcome(ending, Exit.fail(new Missing({ path: "/x" })))).toEqual({
      status: 3,
      message: Option.some("tool: no file at /x")
    })
    expect(outcome(ending, Exit.fail(new Busy())).status).toBe(4)
  })

  it("exits 2 with the one line of a usage error", () => {
    const usage = new UsageError({ command: "tool sub", reason: "missing --x FILE" })
    expect(outcome(ending, Exit.fail(usage))).toEqual({
      status: ExitStatus.Usage,
      message: Option.some("tool: missing --x FILE; see tool sub --help")
    })
  })

  it("exits 2 with one line for a report of @effect/cli that reaches it unparsed", () => {
    const report = ValidationError.missingValue(
      HelpDoc.sequence(HelpDoc.p("Expected to find option: '--x'"), HelpDoc.p("Expected to find option: '--y'"))
    )
    expect(outcome(ending, Exit.fail(report))).toEqual({
      status: ExitStatus.Usage,
      message: Option.some("tool: Expected to find option: '--x'")
    })
  })

  it("exits with the command's status when stopped by a signal", () => {
    expect(outcome(ending, Exit.failCause(Cause.interrupt(FiberId.none)))).toEqual({
      status: 130,
      message: Option.none()
    })
  })

  it("exits 1 with one line for a defect", () => {
    expect(outcome(ending, Exit.die(new Error("boom\nat somewhere")))).toEqual({
      status: ExitStatus.Unexpected,
      message: Option.some("tool: unexpected error: boom")
    })
  })
})
