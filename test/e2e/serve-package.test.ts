/**
 * serve-package as update_engine meets it: the built command on 127.0.0.1,
 * the update_engine captures posted to it, every requirement update_engine
 * places on the answer (PROTOCOL.md §2) checked, and the payload downloaded
 * whole and resumed by ranges.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Xml } from "effect-omaha"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { readFixture } from "../fixtures.js"
import { post, send } from "../server/support.js"
import { run, type Running, start, waitFor } from "./process.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-serve-"))
const payload = Crypto.randomBytes(5 * 1024 * 1024 + 7)
const payloadPath = Path.join(dir, "flatcar_production_update.gz")
Fs.writeFileSync(payloadPath, payload)
const version = "3815.2.1"

// The capture's client asks with `ForcedUpdate`; real machines send their version.
const updateRequest = (clientVersion: string) =>
  readFixture("omaha/update-engine/update/request.xml").replace(`version="ForcedUpdate"`, `version="${clientVersion}"`)

let server: Running
let endpoint: string
let base: string

beforeAll(async () => {
  server = start("serve-package", [
    "--package-file",
    payloadPath,
    "--package-version",
    version,
    "--listen-address",
    "127.0.0.1:0"
  ])
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()))
  endpoint = /^SERVER=(\S+)$/m.exec(server.stdout())![1]!
  base = new URL("/", endpoint).href
})

afterAll(async () => {
  server.child.kill("SIGTERM")
  await server.exited
  Fs.rmSync(dir, { recursive: true, force: true })
})

const decodeResponse = (text: string) => Effect.runSync(Xml.decodeResponse(text))

describe("serve-package", () => {
  it("prints the update.conf line for its address", () => {
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/update\/$/)
    expect(server.stdout()).toContain("# Put this line in /etc/flatcar/update.conf")
    expect(server.stderr()).toContain(`version ${version}, 5.0 MiB, sha256 ${Crypto.createHash("sha256").update(payload).digest("base64")}`)
  })

  it("answers update_engine's update request as update_engine requires", async () => {
    const reply = await post(base, updateRequest("3815.2.0"))
    expect(reply.status).toBe(200)
    expect(reply.headers["content-type"]).toBe("text/xml; charset=utf-8")
    const response = decodeResponse(reply.text)
    expect(response.protocol).toBe("3.0")
    // update_engine reads the first app only.
    const app = response.apps[0]!
    expect(app.status).toBe("ok")
    expect(app.ping?.status).toBe("ok")
    expect(app.events.map((e) => e.status)).toEqual(["ok"])
    const check = app.updateCheck!
    expect(check.status).toBe("ok")
    // At least one non-empty codebase; update_engine appends "/" if missing, then the name.
    const codebase = check.urls[0]!.codebase
    expect(codebase.length).toBeGreaterThan(0)
    const manifest = check.manifests[0]!
    expect(manifest.version).toBe(version)
    const pkg = manifest.packages[0]!
    expect(pkg.name.length).toBeGreaterThan(0)
    expect(pkg.size).toBe(payload.length)
    expect(pkg.required).toBe(true)
    expect(pkg.hash).toBe(Crypto.createHash("sha1").update(payload).digest("base64"))
    expect(pkg.hashSha256).toBe(Crypto.createHash("sha256").update(payload).digest("base64"))
    const postinstall = manifest.actions.find((a) => a.event === "postinstall")!
    expect(postinstall.sha256).toBe(Crypto.createHash("sha256").update(payload).digest("base64"))
    expect(Buffer.from(postinstall.sha256!, "base64").length).toBe(32)
    expect(postinstall.disablePayloadBackoff).toBe(true)

    const url = (codebase.endsWith("/") ? codebase : codebase + "/") + pkg.name
    const download = await send(base, { path: new URL(url).pathname })
    expect(download.status).toBe(200)
    expect(download.body.equals(payload)).toBe(true)
    expect(download.headers["content-encoding"]).toBeUndefined()
  })

  it("lets a download resume the way update_engine does, with bytes=<offset>-", async () => {
    const path = "/packages/update.gz"
    const parts: Array<Buffer> = []
    let offset = 0
    for (const cut of [1_000_000, 3_333_333, payload.length]) {
      const reply = await send(base, { path, headers: offset === 0 ? {} : { range: `bytes=${offset}-` } })
      expect(reply.status).toBe(offset === 0 ? 200 : 206)
      // Keep only up to the cut, as if the connection had dropped there.
      const kept = reply.body.subarray(0, cut - offset)
      parts.push(kept)
      offset += kept.length
    }
    expect(Buffer.concat(parts).equals(payload)).toBe(true)
    const tail = await send(base, { path, headers: { range: "bytes=-100" } })
    expect(tail.body.equals(payload.subarray(payload.length - 100))).toBe(true)
  })

  it("answers noupdate to clients at the payload's version or newer", async () => {
    for (const clientVersion of [version, `${version}.0`, "3815.3.0", "9999.0.0"]) {
      const response = decodeResponse((await post(base, updateRequest(clientVersion))).text)
      expect(response.apps[0]!.updateCheck!.status, clientVersion).toBe("noupdate")
    }
    const forced = decodeResponse((await post(base, updateRequest("ForcedUpdate"))).text)
    expect(forced.apps[0]!.updateCheck!.status).toBe("ok")
  })

  it("acknowledges event-only requests", async () => {
    const reply = await post(base, readFixture("omaha/update-engine/no-update/request.xml"))
    expect(reply.status).toBe(200)
    const app = decodeResponse(reply.text).apps[0]!
    expect(app.updateCheck).toBeUndefined()
    expect(app.events.map((e) => e.status)).toEqual(["ok"])
  })

  it("logs one line per request with app, version, track, machine id, answer and events", async () => {
    await post(base, updateRequest("3815.2.0"))
    await waitFor(server, () => server.stderr().includes("update to 3815.2.1"))
    const line = server.stderr().split("\n").find((l) => l.includes("update to 3815.2.1"))!
    expect(line).toContain("message=omaha")
    expect(line).toContain("status=200")
    for (const part of ["3815.2.0", "dev-channel", "{8BDE4C4D-9083-4D61-B41C-3253212C0C37}", "update complete: success, reboot"]) {
      expect(line).toContain(part)
    }
    // Logs go to stderr only: stdout keeps just the update.conf lines.
    expect(server.stdout().trim().split("\n")).toEqual([
      "# Put this line in /etc/flatcar/update.conf on the machines to update:",
      `SERVER=${endpoint}`
    ])
  })
})

describe("serve-package failures", () => {
  it("exits 2 with one line for a version that is not semantic", async () => {
    const result = await run("serve-package", ["--package-file", payloadPath, "--package-version", "3815.2"])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe(`serve-package: "3815.2" is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.3)\n`)
  })

  it("exits 2 when a required flag is missing, saying which", async () => {
    const result = await run("serve-package", ["--package-file", payloadPath])
    expect(result.status).toBe(2)
    expect(result.stderr).toBe("serve-package: missing --package-version VERSION; see serve-package --help\n")
  })

  it("exits 3 for a missing payload", async () => {
    const result = await run("serve-package", ["--package-file", Path.join(dir, "absent.gz"), "--package-version", version])
    expect(result.status).toBe(3)
    expect(result.stderr).toBe(`serve-package: cannot serve ${Path.join(dir, "absent.gz")}: no such file\n`)
  })

  it("exits 4 when the port is taken", async () => {
    const blocker = Net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as Net.AddressInfo).port
    const result = await run("serve-package", [
      "--package-file",
      payloadPath,
      "--package-version",
      version,
      "--listen-address",
      `127.0.0.1:${port}`
    ])
    blocker.close()
    expect(result.status).toBe(4)
    expect(result.stderr).toContain(`serve-package: cannot listen on 127.0.0.1:${port}: the address is already in use`)
    expect(result.stderr.split("\n").filter((l) => l.startsWith("serve-package: cannot"))).toHaveLength(1)
  })

  it("finishes a download in flight at SIGTERM, and cuts a stalled one at the grace deadline", async () => {
    // Large enough that socket buffers cannot hold it; sparse, so it costs no disk.
    const big = Path.join(dir, "big.gz")
    const size = 64 * 1024 * 1024
    Fs.closeSync(Fs.openSync(big, "w"))
    Fs.truncateSync(big, size)
    const own = start("serve-package", [
      "--package-file",
      big,
      "--package-version",
      version,
      "--listen-address",
      "127.0.0.1:0",
      "--shutdown-grace",
      "2"
    ])
    await waitFor(own, () => own.stdout().includes("SERVER="))
    const url = new URL("/packages/update.gz", /^SERVER=(\S+)$/m.exec(own.stdout())![1]!)
    // Each download pauses after its first chunk; the test decides when it reads on.
    const download = () => {
      let res: Http.IncomingMessage | undefined
      let bytes = 0
      const started = new Promise<void>((ready) => {
        Http.get(url, { agent: false }, (response) => {
          res = response
          response.once("data", () => {
            response.pause()
            ready()
          })
          response.on("data", (c: Buffer) => (bytes += c.length))
        })
      })
      const finish = () =>
        new Promise<{ bytes: number; complete: boolean }>((resolve) => {
          res!.on("end", () => resolve({ bytes, complete: res!.complete }))
          res!.on("error", () => resolve({ bytes, complete: false }))
          res!.on("close", () => resolve({ bytes, complete: res!.complete }))
          res!.resume()
        })
      return { started, finish }
    }
    const reader = download()
    const staller = download()
    await Promise.all([reader.started, staller.started])
    const stoppedAt = Date.now()
    own.child.kill("SIGTERM")
    await waitFor(own, () => own.stderr().includes("stopping:"))
    const finished = await reader.finish()
    expect(finished).toEqual({ bytes: size, complete: true })
    expect(await own.exited).toBe(0)
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(1900)
    const cut = await staller.finish()
    expect(cut.complete).toBe(false)
    expect(cut.bytes).toBeLessThan(size)
    expect(own.stderr()).toContain("stopping: letting 2 download(s) finish, for up to 2 s")
    // Payloads from 64 MiB up report hashing progress (plain lines when not on a TTY).
    expect(own.stderr()).toContain("hashing update.gz: 100% (64.0 MiB of 64.0 MiB)")
  })

  it("keeps serving when its stderr is closed under it", async () => {
    const own = start("serve-package", ["--package-file", payloadPath, "--package-version", version, "--listen-address", "127.0.0.1:0"])
    await waitFor(own, () => own.stdout().includes("SERVER="))
    const ownBase = new URL("/", /^SERVER=(\S+)$/m.exec(own.stdout())![1]!).href
    own.child.stderr!.destroy()
    for (let i = 0; i < 3; i++) {
      expect((await post(ownBase, updateRequest("3815.2.0"))).status).toBe(200)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(own.child.exitCode).toBeNull()
    own.child.kill("SIGTERM")
    expect(await own.exited).toBe(0)
  })

  it("exits 0 after SIGTERM, once in-flight work is done", async () => {
    const own = start("serve-package", ["--package-file", payloadPath, "--package-version", version, "--listen-address", "127.0.0.1:0"])
    await waitFor(own, () => own.stdout().includes("SERVER="))
    own.child.kill("SIGTERM")
    expect(await own.exited).toBe(0)
  })
})

// The processes below `pid`, read from /proc: [pid, parent, state].
const processTable = (): Array<[number, number, string]> =>
  Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      const stat = Fs.readFileSync(`/proc/${name}/stat`, "utf8")
      const [state, parent] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return [[Number(name), Number(parent), state!] as [number, number, string]]
    } catch {
      return []
    }
  })
const descendants = (pid: number): Array<number> => {
  const table = processTable()
  const found: Array<number> = []
  const visit = (parent: number) => {
    for (const [child, p] of table) {
      if (p === parent) {
        found.push(child)
        visit(child)
      }
    }
  }
  visit(pid)
  return found
}
const running = (pid: number) => processTable().some(([p, , state]) => p === pid && state !== "Z")

describe("npm run serve-package", () => {
  it("hands SIGTERM on to the server: the port closes and no process is left", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url))
    const npm = ChildProcess.spawn("npm", [
      "run",
      "--silent",
      "serve-package",
      "--",
      "--package-file",
      payloadPath,
      "--package-version",
      version,
      "--listen-address",
      "127.0.0.1:0"
    ], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    npm.stdout.on("data", (c: Buffer) => (out += c.toString()))
    npm.stderr.resume()
    const exited = new Promise((resolve) => npm.on("exit", resolve))
    const started = Date.now()
    while (!/^SERVER=\S+$/m.test(out) && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 50))
    const port = Number(new URL(/^SERVER=(\S+)$/m.exec(out)![1]!).port)
    const tree = descendants(npm.pid!)
    expect(tree.length).toBeGreaterThan(0)
    try {
      npm.kill("SIGTERM")
      await exited
      const deadline = Date.now() + 10_000
      while (tree.some(running) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      expect(tree.filter(running)).toEqual([])
      const refused = await new Promise<boolean>((resolve) => {
        const socket = Net.connect(port, "127.0.0.1", () => {
          socket.destroy()
          resolve(false)
        })
        socket.on("error", () => resolve(true))
      })
      expect(refused).toBe(true)
    } finally {
      for (const pid of tree.filter(running)) process.kill(pid, "SIGKILL")
    }
  })
})
