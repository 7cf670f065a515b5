/**
 * The updater end to end with real processes on loopback: the built bundles
 * of update-repo and update-self, a static file server, and the files on disk.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { binary, bzip2, choriaRelease, fileServer, listing, sha256, target, tempDir } from "../updater/support.js"
import { binPath as bundle, type Ran, run, type SpawnOptions } from "./process.js"

const platform = ["--os", "linux", "--arch", "amd64"]
const oldBytes = binary(1_200_000, 11)
const newBytes = binary(1_300_000, 12)
const dirs: Array<string> = []
const fresh = () => {
  const dir = tempDir()
  dirs.push(dir)
  return dir
}
afterAll(() => dirs.forEach((d) => Fs.rmSync(d, { recursive: true, force: true })))

beforeAll(() => {
  if (!Fs.existsSync(bundle("update-self")) || !Fs.existsSync(bundle("update-repo"))) {
    throw new Error("the bundles are missing: run npm run build first")
  }
})

/** A real executable: a shell script that prints its version. */
const versionScript = (version: string) => Buffer.from(`#!/bin/sh\necho "tool ${version}"\n`)

/** The one line a failed run prints on stderr (progress lines aside). */
const errorLine = (ran: Ran) => ran.stderr.split("\n").filter((l) => l.startsWith("update-self:") || l.startsWith("update-repo:"))

describe("update-repo -> HTTP server -> update-self", () => {
  it("publishes, serves and replaces the target: mode kept, backup kept, nothing else beside it", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    Fs.writeFileSync(Path.join(dir, "tool"), newBytes)
    const published = await run("update-repo", [Path.join(dir, "tool"), "--version", "1.1.0", ...platform, "--repo", repo])
    expect(published.status).toBe(0)
    expect(published.stdout).toMatch(/^published .*tool-linux-amd64-1\.1\.0\.bz2 \(1300000 bytes, sha256 [0-9a-f]{64}\)\n$/)
    expect(listing(Path.join(repo, "1.1.0", "linux", "amd64"))).toEqual(["release.json", "tool-linux-amd64-1.1.0.bz2"])
    const again = await run("update-repo", [Path.join(dir, "tool"), "--version", "1.1.0", ...platform, "--repo", repo])
    expect(again.status).toBe(3)
    expect(errorLine(again)).toEqual([expect.stringMatching(/already exists; refusing to overwrite it \(use --force\)$/)])
    expect((await run("update-repo", [Path.join(dir, "tool"), "--version", "1.1.0", ...platform, "--repo", repo, "--force"])).status)
      .toBe(0)

    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes, 0o750)
    const server = await fileServer(repo)
    try {
      const ran = await run("update-self", ["--target", tool, "--repo", server.url, "--version", "1.1.0", "--current-version", "1.0.0", ...platform])
      expect(ran.stdout).toBe(`updated ${tool} to 1.1.0 (1300000 bytes)\n`)
      expect(ran.status).toBe(0)
      expect(sha256(Fs.readFileSync(tool))).toBe(sha256(newBytes))
      expect(Fs.statSync(tool).mode & 0o7777).toBe(0o750)
      expect(Fs.readFileSync(`${tool}.backup`).equals(oldBytes)).toBe(true)
      expect(listing(bin)).toEqual(["tool", "tool.backup"])
      const noop = await run("update-self", ["--target", tool, "--repo", server.url, "--version", "1.1.0", "--current-version", "1.1.0"])
      expect(noop).toMatchObject({ status: 0, stdout: `${tool} is up to date (1.1.0)\n` })
    } finally {
      await server.close()
    }
  })

  it("signs with a key from keygen and refuses unsigned or wrongly signed releases with that key", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    const keys = { private: Path.join(dir, "release.key"), public: Path.join(dir, "release.pub") }
    const made = await run("update-repo", ["keygen", "--private-key", keys.private, "--public-key", keys.public])
    expect(made.status).toBe(0)
    expect(Fs.statSync(keys.private).mode & 0o777).toBe(0o600)
    Fs.writeFileSync(Path.join(dir, "tool"), newBytes)
    const args = (version: string, ...more: Array<string>) => [Path.join(dir, "tool"), "--version", version, ...platform, "--repo", repo, ...more]
    expect((await run("update-repo", args("2.0.0", "--sign-key", keys.private, "--compression", "gzip"))).stdout).toMatch(/, signed\)\n$/)
    expect((await run("update-repo", args("2.0.1"))).status).toBe(0)
    // A signature copied from another release is a replay.
    const signed = JSON.parse(Fs.readFileSync(Path.join(repo, "2.0.0/linux/amd64/release.json"), "utf8"))
    choriaRelease(repo, { name: "tool", version: "2.0.2", bytes: newBytes, release: { signature: signed.signature } })

    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    const server = await fileServer(repo)
    try {
      const self = (version: string) => run("update-self", ["--target", tool, "--repo", server.url, "--version", version, "--public-key", keys.public, ...platform])
      const unsigned = await self("2.0.1")
      expect(unsigned.status).toBe(8)
      expect(errorLine(unsigned)).toEqual(["update-self: release 2.0.1 for linux/amd64 is not signed, and a public key is configured"])
      const replayed = await self("2.0.2")
      expect(replayed.status).toBe(8)
      expect(errorLine(replayed)[0]).toMatch(/signature does not verify/)
      expect(listing(bin)).toEqual(["tool"])
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect((await self("2.0.0")).status).toBe(0)
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    } finally {
      await server.close()
    }
  })

  it("keygen refuses one file for both keys with one line and status 2, and the private key stays", async () => {
    const dir = fresh()
    const key = Path.join(dir, "release.key")
    const same = await run("update-repo", ["keygen", "--private-key", key, "--public-key", key])
    expect(same).toMatchObject({ status: 2, stdout: "" })
    expect(same.stderr).toBe(`update-repo: the private and the public key cannot both be written to ${key}; give two different paths\n`)
    expect(listing(dir)).toEqual([])
    expect((await run("update-repo", ["keygen", "--private-key", key, "--public-key", Path.join(dir, "release.pub")])).status).toBe(0)
    const before = Fs.readFileSync(key, "utf8")
    const spelled = await run("update-repo", ["keygen", "--private-key", key, "--public-key", `${dir}/./release.key`, "--force"])
    expect(spelled.status).toBe(2)
    expect(errorLine(spelled)).toEqual([expect.stringMatching(/are the same file; give the private and the public key two different files$/)])
    expect(Fs.readFileSync(key, "utf8")).toBe(before)
    expect(before).toMatch(/^-----BEGIN PRIVATE KEY-----/)
  })

  it("applies a repository laid out exactly as choria's update-repo lays it out (system bzip2, hex hash, no signature)", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    const made = choriaRelease(repo, { name: "choria", version: "0.28.0", bytes: newBytes })
    expect(made.file).toBe("choria-linux-amd64-0.28.0.bz2")
    expect(JSON.parse(Fs.readFileSync(Path.join(made.dir, "release.json"), "utf8"))).toEqual({
      binary: "choria-linux-amd64-0.28.0.bz2",
      hash: sha256(newBytes)
    })
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    const server = await fileServer(repo)
    try {
      const ran = await run("update-self", ["--target", tool, "--repo", `${server.url}/`, "--version", "0.28.0", ...platform])
      expect(ran.status).toBe(0)
      expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    } finally {
      await server.close()
    }
    // The same repository copied to a directory, for a site without a network path to it.
    Fs.writeFileSync(tool, oldBytes)
    const local = await run("update-self", ["--target", tool, "--repo", repo, "--version", "0.28.0", ...platform])
    expect(local.status).toBe(0)
    expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
  })

  it("--check '<target> --version' runs the new binary, from an HTTP repository and from a directory", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    Fs.writeFileSync(Path.join(dir, "tool"), versionScript("2.0.0"), { mode: 0o755 })
    expect((await run("update-repo", [Path.join(dir, "tool"), "--version", "2.0.0", ...platform, "--repo", repo])).status).toBe(0)
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, versionScript("1.0.0"), 0o755)
    const server = await fileServer(repo)
    try {
      for (const source of [server.url, repo]) {
        Fs.writeFileSync(tool, versionScript("1.0.0"))
        const ran = await run("update-self", ["--target", tool, "--repo", source, "--version", "2.0.0", ...platform, "--check", `${tool} --version`])
        expect(errorLine(ran)).toEqual([])
        expect(ran.status).toBe(0)
        // The check's output (the new binary's) comes before update-self's own line.
        expect(ran.stdout).toBe(`tool 2.0.0\nupdated ${tool} to 2.0.0 (${versionScript("2.0.0").length} bytes)\n`)
        expect(Fs.readFileSync(tool).equals(versionScript("2.0.0"))).toBe(true)
        expect(listing(bin)).toEqual(["tool", "tool.backup"])
      }
    } finally {
      await server.close()
    }
  })

  it("lists its exit statuses in --help", async () => {
    const help = await run("update-self", ["--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("EXIT STATUS")
    expect(help.stdout).toMatch(/11 {2}health check failed; the previous binary was restored/)
    expect((await run("update-repo", ["--help"])).stdout).toMatch(/3 {2}the release or key file exists/)
  })
})

describe("update-self faults: one line, a documented status, the target byte-identical and no temp files", () => {
  const corrupt = (() => {
    const b = bzip2(newBytes)
    b.fill(0x42, 4000, 4300)
    return b
  })()
  const bz = bzip2(newBytes)
  const cases: Array<{
    name: string
    release?: Parameters<typeof choriaRelease>[1]
    args?: Array<string>
    version?: string
    faults?: Parameters<typeof fileServer>[1]
    status: number
    line: RegExp
    asNobody?: boolean
    kept?: Array<string>
  }> = [
    {
      name: "hash mismatch",
      release: { name: "tool", version: "2.0.0", bytes: binary(10, 9), payload: bz },
      status: 7,
      line: /sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}$/
    },
    {
      name: "truncated bz2",
      release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz.subarray(0, bz.length - 2000) },
      status: 7,
      line: /bz2 data is corrupt: Compressed file ends unexpectedly$/
    },
    {
      name: "corrupt bz2",
      release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: corrupt },
      status: 7,
      line: /bz2 data is corrupt: Data integrity error when decompressing\.$/
    },
    {
      name: "decompression bomb",
      release: { name: "tool", version: "2.0.0", bytes: newBytes, payload: bzip2(Buffer.alloc(40 * 1024 * 1024)) },
      args: ["--max-size", "4"],
      status: 7,
      line: /decoded payload is larger than 4194304 bytes; refused$/
    },
    { name: "404 for the version", version: "9.0.0", status: 4, line: /no release at .*9\.0\.0.*HTTP status 404$/ },
    {
      name: "the server dying mid-download",
      faults: { dieAfter: 200_000 },
      status: 5,
      line: /download of .* failed: /
    },
    { name: "a downgrade", args: ["--current-version", "3.0.0"], status: 9, line: /refusing to downgrade from 3\.0\.0 to 2\.0\.0/ },
    {
      name: "a failed --check",
      args: ["--check", "exit 1"],
      status: 11,
      line: /failed its health check \(exit 1 exited with status 1\); rolled back to the previous binary$/,
      kept: ["tool", "tool.backup"]
    },
    {
      name: "an unwritable directory",
      status: 10,
      line: /cannot create the lock .*tool\.lock: /,
      asNobody: true
    }
  ]
  for (const c of cases) {
    it(c.name, async () => {
      const dir = fresh()
      const repo = Path.join(dir, "repo")
      choriaRelease(repo, c.release ?? { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz })
      const bin = Path.join(dir, "bin")
      Fs.mkdirSync(bin)
      const tool = target(bin, oldBytes, 0o755)
      // Unwritable for whoever runs update-self: root ignores modes, so the run drops to nobody,
      // with a copy of the bundle in the test's own directory (the checkout may be out of its reach).
      const nobody: SpawnOptions = c.asNobody === true && process.getuid?.() === 0
        ? { uid: 65534, gid: 65534, cwd: dir, script: Path.join(dir, "update-self.js") }
        : {}
      if (c.asNobody) {
        if (nobody.script !== undefined) Fs.copyFileSync(bundle("update-self"), nobody.script)
        Fs.chmodSync(dir, 0o755)
        Fs.chmodSync(bin, 0o555)
      }
      const server = await fileServer(repo, c.faults)
      try {
        const ran = await run("update-self", ["--target", tool, "--repo", server.url, "--version", c.version ?? "2.0.0", ...platform, ...(c.args ?? [])], nobody)
        expect(ran.status).toBe(c.status)
        const lines = errorLine(ran)
        expect(lines.length).toBe(1)
        expect(lines[0]).toMatch(c.line)
        expect(ran.stderr).not.toMatch(/\n\s+at /)
        expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
        expect(Fs.statSync(tool).mode & 0o777).toBe(0o755)
        expect(listing(bin)).toEqual(c.kept ?? ["tool"])
      } finally {
        Fs.chmodSync(bin, 0o755)
        await server.close()
      }
    })
  }

  it("a missing or wrong signature with a key configured", async () => {
    const dir = fresh()
    const keys = { private: Path.join(dir, "k"), public: Path.join(dir, "k.pub") }
    expect((await run("update-repo", ["keygen", "--private-key", keys.private, "--public-key", keys.public])).status).toBe(0)
    const repo = Path.join(dir, "repo")
    choriaRelease(repo, { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz })
    choriaRelease(repo, { name: "tool", version: "2.0.1", bytes: newBytes, payload: bz, release: { signature: Buffer.alloc(64, 7).toString("base64") } })
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    for (const [version, line] of [["2.0.0", /is not signed/], ["2.0.1", /signature does not verify/]] as const) {
      const ran = await run("update-self", ["--target", tool, "--repo", repo, "--version", version, "--public-key", keys.public, ...platform])
      expect(ran.status).toBe(8)
      expect(errorLine(ran)[0]).toMatch(line)
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect(listing(bin)).toEqual(["tool"])
    }
    const badKey = await run("update-self", ["--target", tool, "--repo", repo, "--version", "2.0.0", "--public-key", keys.private + ".absent"])
    expect(badKey.status).toBe(8)
    expect(errorLine(badKey)).toEqual([`update-self: cannot read public key ${keys.private}.absent: no such file`])
  })

  it("a server that stalls: says what it waits for, then stops at --timeout with status 5 and the target untouched", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    choriaRelease(repo, { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz })
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    const server = await fileServer(repo, { stallAfter: 100_000 })
    try {
      const started = Date.now()
      const ran = await run("update-self", [
        "--target", tool, "--repo", server.url, "--version", "2.0.0", ...platform, "--idle-timeout", "3", "--timeout", "8"
      ])
      const elapsed = Date.now() - started
      const url = `${server.url}/2.0.0/linux/amd64/tool-linux-amd64-2.0.0.bz2`
      expect(ran.status).toBe(5)
      const lines = ran.stderr.split("\n")
      // A line a second (a third of the idle timeout) while nothing comes, and one before each retry.
      expect(lines).toContain(`waiting for data from ${url} (attempt 1 of 4, 1 s without data)`)
      expect(lines).toContain(`waiting for data from ${url} (attempt 1 of 4, 2 s without data)`)
      expect(lines).toContain(`download of ${url} failed: no data for 3s; retrying in 0.25 s (attempt 2 of 4)`)
      expect(lines).toContain(`download of ${url} failed: no data for 3s; retrying in 0.5 s (attempt 3 of 4)`)
      expect(errorLine(ran)).toEqual([
        `update-self: the update of ${tool} did not finish within 8 s (it was downloading); stopped, and the previous binary is in place`
      ])
      expect(elapsed).toBeGreaterThanOrEqual(8000)
      expect(elapsed).toBeLessThan(14_000)
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect(listing(bin)).toEqual(["tool"])
    } finally {
      await server.close()
    }
  })

  it("an Omaha server that is down: says so before each retry, and --timeout bounds the run", async () => {
    const dir = fresh()
    const tool = target(dir, oldBytes)
    // A port nothing listens on: bound, then let go.
    const probe = Http.createServer()
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise((resolve) => probe.close(resolve))
    const started = Date.now()
    const ran = await run("update-self", [
      "--target", tool, "--omaha", `http://127.0.0.1:${port}/`, "--app-id", "{0b6b8c8e-0f55-4a44-b0e7-3a5f2d4c7e01}",
      "--user-id", "e2e", "--timeout", "5"
    ])
    const elapsed = Date.now() - started
    expect(ran.status).toBe(5)
    expect(ran.stderr.split("\n").slice(0, 3)).toEqual([
      "Omaha server unreachable, retrying in 1 s (attempt 2 of 7)",
      "Omaha server unreachable, retrying in 2 s (attempt 3 of 7)",
      "Omaha server unreachable, retrying in 4 s (attempt 4 of 7)"
    ])
    expect(errorLine(ran)).toEqual([
      `update-self: the update of ${tool} did not finish within 5 s (it was checking for an update); stopped, and the previous binary is in place`
    ])
    expect(elapsed).toBeLessThan(10_000)
    expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
    expect(listing(dir)).toEqual(["tool"])
  })

  it("SIGTERM mid-download: exit 130, the target untouched and nothing left beside it", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    choriaRelease(repo, { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz })
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    const server = await fileServer(repo, { chunkDelay: 100 })
    try {
      const child = spawn(process.execPath, [bundle("update-self"), "--target", tool, "--repo", server.url, "--version", "2.0.0", ...platform], { stdio: "ignore" })
      // Stop it once the download has started (its partial file exists).
      for (let i = 0; i < 100 && !listing(bin).some((n) => n.endsWith(".part")); i++) await new Promise((r) => setTimeout(r, 50))
      expect(listing(bin).some((n) => n.endsWith(".part"))).toBe(true)
      child.kill("SIGTERM")
      const status = await new Promise<number | null>((resolve) => child.on("exit", resolve))
      expect(status).toBe(130)
      expect(Fs.readFileSync(tool).equals(oldBytes)).toBe(true)
      expect(listing(bin)).toEqual(["tool"])
    } finally {
      await server.close()
    }
  })

  it("a bz2 release where the bzip2 command is missing: decoded by the built-in decoder", async () => {
    const dir = fresh()
    const repo = Path.join(dir, "repo")
    choriaRelease(repo, { name: "tool", version: "2.0.0", bytes: newBytes, payload: bz })
    const corruptRepo = Path.join(dir, "corrupt")
    choriaRelease(corruptRepo, { name: "tool", version: "2.0.0", bytes: newBytes, payload: corrupt })
    const bin = Path.join(dir, "bin")
    Fs.mkdirSync(bin)
    const tool = target(bin, oldBytes)
    const env = { ...process.env, PATH: Path.join(dir, "no-such-dir") }
    const bad = await run("update-self", ["--target", tool, "--repo", corruptRepo, "--version", "2.0.0", ...platform], { env })
    expect(bad.status).toBe(7)
    expect(errorLine(bad)[0]).toMatch(/bz2 data is corrupt: (block CRC mismatch|bad Huffman code( length)?|bad selector)$/)
    expect(listing(bin)).toEqual(["tool"])
    const ran = await run("update-self", ["--target", tool, "--repo", repo, "--version", "2.0.0", ...platform], { env })
    expect(ran.status).toBe(0)
    expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    expect(listing(bin)).toEqual(["tool", "tool.backup"])
  })

  it("usage errors exit 2", async () => {
    const ran = await run("update-self", ["--repo", "x"])
    expect(ran.status).toBe(2)
  })
})
