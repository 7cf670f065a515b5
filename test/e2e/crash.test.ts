/**
 * Crash safety: update-self killed with SIGKILL at random moments while it
 * applies a 48 MiB release. After every kill the target must be the old or
 * the new binary, whole, and the next run must complete the update and leave
 * nothing but the target and its backup.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { binary, fileServer, listing, tempDir } from "../updater/support.js"
import { binPath as bundle, run } from "./process.js"

const updateSelf = bundle("update-self")
const size = 48 * 1024 * 1024
const kills = 20
const dir = tempDir("effect-omaha-crash-")
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

/** Starts update-self and SIGKILLs it after `delay` ms (or lets it finish first); resolves with how it ended. */
const runAndKill = (args: ReadonlyArray<string>, delay: number) =>
  new Promise<{ killed: boolean; status: number | null }>((resolve) => {
    const child = spawn(process.execPath, [updateSelf, ...args], { stdio: "ignore" })
    const timer = setTimeout(() => child.kill("SIGKILL"), delay)
    child.on("exit", (status, signal) => {
      clearTimeout(timer)
      resolve({ killed: signal === "SIGKILL", status })
    })
  })

/** Puts the old binary back at the target (by rename, as a package manager would) and drops the backup. */
const reset = (tool: string, oldBytes: Buffer) => {
  Fs.writeFileSync(`${tool}.reset`, oldBytes, { mode: 0o755 })
  Fs.renameSync(`${tool}.reset`, tool)
  Fs.rmSync(`${tool}.backup`, { force: true })
}

describe("crash safety", () => {
  it("SIGKILL at 20 random moments of a 48 MiB apply: the target is always old or new, whole; the next run completes", async () => {
    const oldBytes = binary(size, 31)
    const newBytes = binary(size, 32)
    // Whole-file comparisons: a torn or partial target differs from both.
    const which = (path: string) => {
      const now = Fs.readFileSync(path)
      return now.equals(oldBytes) ? "old" : now.equals(newBytes) ? "new" : `neither (${now.length} bytes)`
    }
    const source = Path.join(dir, "tool")
    Fs.writeFileSync(source, newBytes)
    const repo = Path.join(dir, "repo")
    const published = await run("update-repo", [source, "--version", "2.0.0", "--os", "linux", "--arch", "amd64", "--repo", repo, "--compression", "none"])
    expect(published.status).toBe(0)
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = Path.join(bin, "tool")
    reset(tool, oldBytes)

    const server = await fileServer(repo)
    const args = ["--target", tool, "--repo", server.url, "--version", "2.0.0", "--os", "linux", "--arch", "amd64"]
    try {
      // How long one whole apply takes here, to spread the kills over it.
      const timed = async () => {
        const started = performance.now()
        const ran = await run("update-self", args)
        expect(ran.status, ran.stderr).toBe(0)
        return performance.now() - started
      }
      const durations = [await timed()]
      reset(tool, oldBytes)
      const median = () => [...durations].sort((a, b) => a - b)[Math.floor(durations.length / 2)]!

      const outcomes = { old: 0, new: 0, finished: 0, resumed: 0 }
      for (let i = 0; i < kills; i++) {
        // Half the kills anywhere in the run, half near its end, where the backup, swap and syncs happen.
        const whole = median()
        const delay = i % 2 === 0
          ? Crypto.randomInt(50, Math.ceil(whole))
          : Crypto.randomInt(Math.floor(whole * 0.8), Math.ceil(whole * 1.15))
        const ended = await runAndKill(args, delay)
        if (!ended.killed) outcomes.finished++
        const now = which(tool)
        expect(["old", "new"], `kill ${i} after ${delay} ms`).toContain(now)
        outcomes[now as "old" | "new"]++
        expect(Fs.statSync(tool).mode & 0o777).toBe(0o755)

        const seenBefore = server.seen.length
        durations.push(await timed())
        if (server.seen.slice(seenBefore).some((s) => s.range !== undefined)) outcomes.resumed++
        expect(which(tool)).toBe("new")
        expect(listing(bin)).toEqual(["tool", "tool.backup"])
        expect(["old", "new"]).toContain(which(`${tool}.backup`))
        reset(tool, oldBytes)
      }
      console.log(`crash test: one apply ${Math.round(median())} ms (median); after ${kills} kills the target was old ${outcomes.old}, new ${outcomes.new} times (${outcomes.finished} runs finished before the kill); ${outcomes.resumed} next runs resumed with Range`)
      expect(outcomes.old + outcomes.new).toBe(kills)
    } finally {
      await server.close()
    }
  }, 240_000)
})
