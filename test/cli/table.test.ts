import { describe, expect, it } from "@effect/vitest"
import * as Table from "../../src/cli/internal/table.js"

describe("table", () => {
  it("pads columns to their widest cell, aligns counts right and leaves no trailing spaces", () => {
    const text = Table.render(
      ["name", "track", { header: "machines", align: "right" }, "paused"],
      [["production", "stable", "1200", ""], ["beta", "beta", "7", "yes"]]
    )
    expect(text).toBe(
      [
        "NAME        TRACK   MACHINES  PAUSED",
        "production  stable      1200",
        "beta        beta           7  yes",
        ""
      ].join("\n")
    )
    // Columns split on runs of two spaces, as `awk -F '  +'` would.
    expect(text.split("\n")[2]!.split(/ {2,}/)).toEqual(["beta", "beta", "7", "yes"])
  })

  it("says so when there are no rows, and writes absent values as -", () => {
    expect(Table.render(["name"], [])).toBe("(none)\n")
    expect(Table.render(["name"], [], "no groups")).toBe("no groups\n")
    expect([undefined, null, "", 0, false, "x"].map(Table.cell)).toEqual(["-", "-", "-", "0", "false", "x"])
  })

  it("lines up the values of facts", () => {
    expect(Table.facts([["id", "{e9}"], ["description", ""], ["name", "Flatcar"]])).toBe(
      "id:           {e9}\ndescription:\nname:         Flatcar\n"
    )
  })
})
