import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { Progress } from "effect-omaha"

const MiB = 1024 * 1024

describe("Progress", () => {
  it.effect("prints a plain line per tenth when the output is not a terminal", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const progress = Progress.make("downloading 2.0.0", { write: (t) => lines.push(t), isTTY: false })
      for (let received = 0; received <= 10 * MiB; received += MiB / 4) {
        yield* progress.onProgress({ received, total: 10 * MiB })
      }
      yield* progress.done
      expect(lines.length).toBe(11)
      expect(lines[0]).toBe("downloading 2.0.0 0.0/10.0 MiB 0%\n")
      expect(lines.at(-1)).toBe("downloading 2.0.0 10.0/10.0 MiB 100%\n")
      // Without a total, a line every 5 seconds.
      const unknown: Array<string> = []
      const open = Progress.make("d", { write: (t) => unknown.push(t), isTTY: false })
      yield* open.onProgress({ received: MiB, total: undefined })
      yield* open.onProgress({ received: 2 * MiB, total: undefined })
      yield* TestClock.adjust("5 seconds")
      yield* open.onProgress({ received: 3 * MiB, total: undefined })
      expect(unknown).toEqual(["d 1.0 MiB\n", "d 3.0 MiB\n"])
    }))

  it.effect("redraws one bar in place on a terminal and ends its line when done", () =>
    Effect.gen(function*() {
      const out: Array<string> = []
      const progress = Progress.make("dl", { write: (t) => out.push(t), isTTY: true, columns: 60 })
      yield* progress.onProgress({ received: 0, total: 4 * MiB })
      yield* TestClock.adjust("1 second")
      yield* progress.onProgress({ received: 2 * MiB, total: 4 * MiB })
      yield* progress.onProgress({ received: 4 * MiB, total: 4 * MiB })
      yield* progress.done
      expect(out.every((t) => t.startsWith("\r[") || t === "\n")).toBe(true)
      expect(out.at(-2)).toMatch(/^\r\[#+\] dl 4\.0\/4\.0 MiB 100%$/)
      expect(out.at(-1)).toBe("\n")
      expect(out.length).toBe(4)
    }))

  it.effect("puts a notice on a line of its own, ending a bar drawn before it", () =>
    Effect.gen(function*() {
      const out: Array<string> = []
      const progress = Progress.make("dl", { write: (t) => out.push(t), isTTY: true, columns: 60 })
      yield* progress.notice("waiting for data from u (attempt 1 of 4, 10 s without data)")
      yield* progress.onProgress({ received: MiB, total: 4 * MiB })
      yield* progress.notice("retrying")
      yield* progress.onProgress({ received: 2 * MiB, total: 4 * MiB })
      yield* progress.done
      expect(out).toEqual([
        "waiting for data from u (attempt 1 of 4, 10 s without data)\n",
        expect.stringMatching(/^\r\[#+ +\] dl 1\.0\/4\.0 MiB 25%$/),
        "\nretrying\n",
        expect.stringMatching(/^\r\[#+ +\] dl 2\.0\/4\.0 MiB 50%$/),
        "\n"
      ])
    }))
})
