/**
 * update-self taking its update from serve-package over Omaha, both as built
 * processes on loopback: the target is replaced, and serve-package's log shows
 * the events update-self reported (13/1, 14/1, 3/1), or 3/0 with the code.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Zlib from "node:zlib"
import { binary, listing, target, tempDir } from "../updater/support.js"
import { run, type Running, start, waitFor } from "./process.js"

const appId = "{0b6b8c8e-0f55-4a44-b0e7-3a5f2d4c7e01}"
const newBytes = binary(900_000, 41)
const oldBytes = binary(800_000, 42)
const dirs: Array<string> = []
const servers: Array<Running> = []

afterAll(async () => {
  for (const server of servers) {
    server.child.kill("SIGTERM")
    await server.exited
  }
  for (const dir of dirs) Fs.rmSync(dir, { recursive: true, force: true })
})

/** A serve-package process offering `served` (`newBytes` by default) as version 2.0.0 under `name`, and a target at 1.0.0 beside it. */
const setup = async (extra: ReadonlyArray<string> = [], served: Uint8Array = newBytes, name = "tool") => {
  const dir = tempDir()
  dirs.push(dir)
  const payload = Path.join(dir, "tool-2.0.0")
  Fs.writeFileSync(payload, served)
  const server = start("serve-package", [
    "--package-file",
    payload,
    "--package-version",
    "2.0.0",
    "--package-name",
    name,
    "--listen-address",
    "127.0.0.1:0",
    "--log-format",
    "json",
    ...extra
  ])
  servers.push(server)
  await waitFor(server, () => /^SERVER=\S+$/m.test(server.stdout()))
  const url = /^SERVER=(\S+)$/m.exec(server.stdout())![1]!
  const bin = Path.join(dir, "bin")
  Fs.mkdirSync(bin)
  const tool = target(bin, oldBytes)
  Fs.chmodSync(tool, 0o750)
  return { dir, bin, tool, url, server }
}

interface LoggedApp {
  readonly appid: string
  readonly events: ReadonlyArray<string>
}

// The events serve-package logged for our app, in order (its log is JSON lines here).
const eventsLogged = (server: Running): Array<string> =>
  server.stderr()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { message: string; annotations: { apps?: ReadonlyArray<LoggedApp> } })
    .filter((entry) => entry.message === "omaha")
    .flatMap((entry) => (entry.annotations.apps ?? []).filter((app) => app.appid === appId).flatMap((app) => app.events))

const omahaArgs = (tool: string, url: string, ...more: Array<string>) => [
  "--target",
  tool,
  "--omaha",
  url,
  "--app-id",
  appId,
  "--user-id",
  "e2e-user",
  ...more
]

describe("serve-package -> update-self --omaha", () => {
  it("replaces the target, and the server sees 13/1, 14/1 and 3/1", async () => {
    const { bin, server, tool, url } = await setup()
    const result = await run("update-self", omahaArgs(tool, url, "--current-version", "1.0.0"))
    expect(result.stderr.split("\n").filter((l) => l.startsWith("update-self:"))).toEqual([])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`updated ${tool} to 2.0.0 (${newBytes.length} bytes)\n`)
    expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    expect(Fs.statSync(tool).mode & 0o777).toBe(0o750)
    expect(listing(bin)).toEqual(["tool", "tool.backup"])
    expect(Fs.readFileSync(Path.join(bin, "tool.backup")).equals(oldBytes)).toBe(true)
    await waitFor(server, () => eventsLogged(server).length >= 4)
    expect(eventsLogged(server)).toEqual([
      "update complete: success, reboot",
      "update download started: success",
      "update download finished: success",
      "update complete: success"
    ])

    const again = await run("update-self", omahaArgs(tool, url, "--current-version", "2.0.0"))
    expect(again.status).toBe(0)
    expect(again.stdout).toBe(`${tool} is up to date (2.0.0)\n`)
  })

  it("--check '<target> --version' runs the new binary it installed", async () => {
    const script = Buffer.from(`#!/bin/sh\necho "tool 2.0.0"\n`)
    const { bin, server, tool, url } = await setup([], script)
    const result = await run("update-self", omahaArgs(tool, url, "--current-version", "1.0.0", "--check", `${tool} --version`))
    expect(result.stderr.split("\n").filter((l) => l.startsWith("update-self:"))).toEqual([])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`tool 2.0.0\nupdated ${tool} to 2.0.0 (${script.length} bytes)\n`)
    expect(listing(bin)).toEqual(["tool", "tool.backup"])
    await waitFor(server, () => eventsLogged(server).length >= 4)
    expect(eventsLogged(server).at(-1)).toBe("update complete: success")
  })

  it("installs a gzip payload served as update.gz decoded, and --check runs it", async () => {
    const script = Buffer.from(`#!/bin/sh\necho "tool 2.0.0"\n`)
    const { bin, server, tool, url } = await setup([], Zlib.gzipSync(script), "update.gz")
    const result = await run("update-self", omahaArgs(tool, url, "--current-version", "1.0.0", "--check", `${tool} --version`))
    expect(result.stderr.split("\n").filter((l) => l.startsWith("update-self:"))).toEqual([])
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`tool 2.0.0\nupdated ${tool} to 2.0.0 (${script.length} bytes)\n`)
    expect(Fs.readFileSync(tool).equals(script)).toBe(true)
    expect(Fs.statSync(tool).mode & 0o777).toBe(0o750)
    expect(listing(bin)).toEqual(["tool", "tool.backup"])
    await waitFor(server, () => eventsLogged(server).length >= 4)
    expect(eventsLogged(server).at(-1)).toBe("update complete: success")
  })

  it("checks serve-package's release signature, and reports a missing one as 3/0 code 22", async () => {
    const keys = tempDir()
    dirs.push(keys)
    const priv = Path.join(keys, "release.key")
    const pub = Path.join(keys, "release.pub")
    expect((await run("update-repo", ["keygen", "--private-key", priv, "--public-key", pub])).status).toBe(0)

    const signed = await setup(["--sign-key", priv])
    const ok = await run("update-self", omahaArgs(signed.tool, signed.url, "--current-version", "1.0.0", "--public-key", pub))
    expect(ok.status).toBe(0)
    expect(Fs.readFileSync(signed.tool).equals(newBytes)).toBe(true)

    const unsigned = await setup()
    const refused = await run("update-self", omahaArgs(unsigned.tool, unsigned.url, "--current-version", "1.0.0", "--public-key", pub))
    expect(refused.status).toBe(8)
    expect(refused.stderr).toContain("update-self: release 2.0.0 for ")
    expect(refused.stderr).toContain("is not signed, and a public key is configured")
    expect(Fs.readFileSync(unsigned.tool).equals(oldBytes)).toBe(true)
    expect(listing(unsigned.bin)).toEqual(["tool"])
    await waitFor(unsigned.server, () => eventsLogged(unsigned.server).length >= 2)
    expect(eventsLogged(unsigned.server)).toEqual([
      "update complete: success, reboot",
      "update complete: error, DownloadSignatureMissingInManifest (22)"
    ])
  })

  it("with --watch, updates when SIGUSR1 asks for a check, and exits 0 on SIGTERM", async () => {
    const { server, tool, url } = await setup()
    const watcher = start("update-self", omahaArgs(tool, url, "--current-version", "1.0.0", "--watch"))
    await waitFor(watcher, () => watcher.stderr().includes("watching"))
    expect(watcher.stdout()).toBe("")
    watcher.child.kill("SIGUSR1")
    await waitFor(watcher, () => watcher.stdout().includes("updated"))
    expect(watcher.stdout()).toBe(`updated ${tool} to 2.0.0 (${newBytes.length} bytes)\n`)
    expect(Fs.readFileSync(tool).equals(newBytes)).toBe(true)
    // The next check asks as 2.0.0 and finds nothing newer.
    watcher.child.kill("SIGUSR1")
    await waitFor(watcher, () => watcher.stdout().includes("is up to date"))
    expect(watcher.stdout().split("\n")[1]).toBe(`${tool} is up to date (2.0.0)`)
    watcher.child.kill("SIGTERM")
    expect(await watcher.exited).toBe(0)
    // Each check carried the 3/2 event; the update between them its three.
    expect(eventsLogged(server)).toEqual([
      "update complete: success, reboot",
      "update download started: success",
      "update download finished: success",
      "update complete: success",
      "update complete: success, reboot"
    ])
  })

  it("exits 2 with one line for an Omaha URL it cannot use", async () => {
    const dir = tempDir()
    dirs.push(dir)
    const tool = target(dir, oldBytes)
    const result = await run("update-self", omahaArgs(tool, "ftp://example.org/"))
    expect(result.status).toBe(2)
    expect(result.stderr).toBe(
      `update-self: invalid Omaha server URL "ftp://example.org/": the scheme must be http or https, not ftp\n`
    )
  })
})
