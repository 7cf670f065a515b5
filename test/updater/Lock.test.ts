import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Lock } from "effect-omaha"
import { tempDir } from "./support.js"

// A pid that surely ran and is gone: a child that has exited.
const deadPid = (): number => spawnSync("true").pid!

describe("Lock", () => {
  it.live("holds the lock for its scope and refuses a second holder while a live process has it", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const path = Path.join(dir, "tool.lock")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Lock.acquire(path)
        expect(JSON.parse(Fs.readFileSync(path, "utf8"))).toMatchObject({ pid: process.pid, host: Os.hostname() })
        const second = yield* Effect.either(Effect.scoped(Lock.acquire(path)))
        expect(second._tag === "Left" && second.left).toMatchObject({ _tag: "UpdateLocked", pid: process.pid })
      }))
      expect(Fs.existsSync(path)).toBe(false)
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("clears the staging and stale copies of processes killed while taking the lock, and keeps a live one's", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const path = Path.join(dir, "tool.lock")
      const dead = deadPid()
      const live = spawn("sleep", ["30"])
      try {
        for (const name of [`tool.lock.${dead}.new`, `tool.lock.${dead}.stale`, `tool.lock.${live.pid}.new`, "tool.lock.notes"]) {
          Fs.writeFileSync(Path.join(dir, name), "{}")
        }
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Lock.acquire(path)
          expect(Fs.readdirSync(dir).sort()).toEqual(["tool.lock", `tool.lock.${live.pid}.new`, "tool.lock.notes"].sort())
        }))
      } finally {
        live.kill("SIGKILL")
      }
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("takes over a lock left by a process that no longer runs", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const path = Path.join(dir, "tool.lock")
      Fs.writeFileSync(path, JSON.stringify({ pid: deadPid(), host: Os.hostname(), since: 0 }))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Lock.acquire(path)
        expect(JSON.parse(Fs.readFileSync(path, "utf8")).pid).toBe(process.pid)
      }))
      expect(Fs.readdirSync(dir)).toEqual([])
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("respects a lock from another host, and a fresh unreadable lock; takes over an old unreadable one", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const path = Path.join(dir, "tool.lock")
      Fs.writeFileSync(path, JSON.stringify({ pid: deadPid(), host: "elsewhere", since: 0 }))
      const other = yield* Effect.either(Effect.scoped(Lock.acquire(path)))
      expect(other._tag === "Left" && other.left.message).toMatch(/^another update holds .*tool\.lock \(pid \d+ on elsewhere\)$/)
      Fs.writeFileSync(path, "")
      const fresh = yield* Effect.either(Effect.scoped(Lock.acquire(path)))
      expect(fresh._tag === "Left" && fresh.left._tag).toBe("UpdateLocked")
      const old = new Date(Date.now() - 60_000)
      Fs.utimesSync(path, old, old)
      yield* Effect.scoped(Lock.acquire(path))
      expect(Fs.readdirSync(dir)).toEqual([])
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  // The start time of a process in clock ticks after boot, as /proc/PID/stat says (field 22).
  const startTime = (pid: number): string => {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!
  }

  it.live.skipIf(!Fs.existsSync("/proc/self/stat"))("records the holder's start time and boot id", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const path = Path.join(dir, "tool.lock")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Lock.acquire(path)
        expect(JSON.parse(Fs.readFileSync(path, "utf8"))).toMatchObject({
          pid: process.pid,
          started: startTime(process.pid),
          boot: Fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
        })
      }))
      Fs.rmSync(dir, { recursive: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live.skipIf(!Fs.existsSync("/proc/self/stat"))(
    "takes over a lock whose live pid started at another time (a reused pid), not one of this very process",
    () =>
      Effect.gen(function*() {
        const dir = tempDir()
        const path = Path.join(dir, "tool.lock")
        const host = Os.hostname()
        // This very process, with its real start time: the lock is held.
        Fs.writeFileSync(path, JSON.stringify({ pid: process.pid, host, since: 0, started: startTime(process.pid) }))
        const held = yield* Effect.either(Effect.scoped(Lock.acquire(path)))
        expect(held._tag === "Left" && held.left).toMatchObject({ _tag: "UpdateLocked", pid: process.pid })
        // The same live pids, recorded with another start time: processes that ended, whose pids were reused.
        const other = spawn("sleep", ["30"], { stdio: "ignore" })
        try {
          for (const pid of [process.pid, other.pid!]) {
            Fs.writeFileSync(path, JSON.stringify({ pid, host, since: 0, started: String(Number(startTime(pid)) + 1) }))
            yield* Effect.scoped(Effect.gen(function*() {
              yield* Lock.acquire(path)
              expect(JSON.parse(Fs.readFileSync(path, "utf8")).pid).toBe(process.pid)
            }))
          }
        } finally {
          other.kill()
        }
        // A lock taken in another boot is stale even when its pid runs now.
        Fs.writeFileSync(path, JSON.stringify({ pid: process.pid, host, since: 0, boot: "00000000-0000-0000-0000-000000000000" }))
        yield* Effect.scoped(Lock.acquire(path))
        expect(Fs.readdirSync(dir)).toEqual([])
        Fs.rmSync(dir, { recursive: true })
      }).pipe(Effect.provide(NodeContext.layer))
  )
})
