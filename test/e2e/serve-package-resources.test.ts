/**
 * What serve-package holds while it serves: open payload files and memory,
 * read from /proc while clients give up on pipelined downloads and while 200
 * download at once; and what its stop message counts. Bounds, not speeds.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventually, openDescriptors, pipelinedThenClosed } from "../server/support.js"
import { type Running, start, waitFor } from "./process.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-resources-"))
const size = 10 * 1024 * 1024
const payload = Crypto.randomBytes(size)
const payloadPath = Path.join(dir, "update.gz")
Fs.writeFileSync(payloadPath, payload)
const mb = 1024 * 1024

const serve = async (): Promise<{ server: Running; base: string }> => {
  const server = start("serve-package", [
    "--package-file",
    payloadPath,
    "--package-version",
    "3815.2.1",
    "--listen-address",
    "127.0.0.1:0"
  ])
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()))
  return { server, base: new URL("/", /^SERVER=(\S+)$/m.exec(server.stdout())![1]!).href }
}

const status = (pid: number, field: "VmRSS" | "VmHWM"): number =>
  Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(Fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024

// One GET over its own connection; resolves with the body's length and
// whether it equals the payload (compared only when `compare`).
const whole = (base: string, compare: boolean) =>
  new Promise<{ bytes: number; equal: boolean }>((resolve, reject) => {
    const url = new URL(base)
    const socket = Net.connect(Number(url.port), url.hostname, () =>
      socket.write(`GET /packages/update.gz HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`))
    const chunks: Array<Buffer> = []
    let total = 0
    socket.on("data", (c: Buffer) => {
      total += c.length
      if (compare) chunks.push(c)
    })
    socket.on("close", () => {
      const all = Buffer.concat(chunks)
      const body = all.subarray(all.indexOf("\r\n\r\n") + 4)
      resolve({ bytes: total, equal: compare && body.equals(payload) })
    })
    socket.on("error", reject)
  })

let server: Running
let base: string

beforeAll(async () => {
  ;({ server, base } = await serve())
})

afterAll(async () => {
  if (server.child.exitCode === null) {
    server.child.kill("SIGTERM")
    await server.exited
  }
  Fs.rmSync(dir, { recursive: true, force: true })
})

describe("serve-package resources", () => {
  it("keeps no file or memory for 100 connections x 5 pipelined downloads closed early", async () => {
    const pid = server.child.pid!
    const before = status(pid, "VmRSS")
    await pipelinedThenClosed(base, { path: "/packages/update.gz", connections: 100, requests: 5, readBytes: 64 * 1024 })
    await eventually(() => openDescriptors(pid, payloadPath) === 0)
    expect(openDescriptors(pid, payloadPath)).toBe(0)
    expect(status(pid, "VmRSS") - before).toBeLessThan(50 * mb)
  })

  it("stays under 250 MB serving 200 downloads of 10 MiB at once", async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => whole(base, i < 3)))
    for (const [i, r] of results.entries()) {
      expect(r.bytes, `download ${i}`).toBeGreaterThan(size)
      if (i < 3) expect(r.equal, `download ${i}`).toBe(true)
    }
    expect(status(server.child.pid!, "VmHWM")).toBeLessThan(250 * mb)
    expect(await eventually(() => openDescriptors(server.child.pid!, payloadPath) === 0)).toBe(true)
  })

  it("counts only downloads really in progress when it stops", async () => {
    const own = await serve()
    await pipelinedThenClosed(own.base, { path: "/packages/update.gz", connections: 10, requests: 5, readBytes: 64 * 1024 })
    // One download that stays in progress: its client reads nothing after the first bytes.
    const url = new URL(own.base)
    const socket = Net.connect(Number(url.port), url.hostname, () =>
      socket.write(`GET /packages/update.gz HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`))
    socket.on("error", () => {})
    await new Promise<void>((resolve) => socket.once("data", () => resolve()))
    socket.pause()
    own.server.child.kill("SIGTERM")
    await waitFor(own.server, () => own.server.stderr().includes("stopping:"))
    expect(own.server.stderr()).toContain("stopping: letting 1 download(s) finish")
    socket.destroy()
    expect(await own.server.exited).toBe(0)
  })
})
