/**
 * Errors and help as a user meets them, for every command, from the built
 * bundles: a mistake in a command line is one line on stderr and status 2; a
 * fault at run time is one line with its documented status, naming the file
 * and what went wrong in words; `--help` piped is plain text with every
 * default.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { Platform } from "effect-omaha"
import { binary, choriaRelease, tempDir } from "../updater/support.js"
import { binPath, type Ran, run as runCommand, shellWord, type SpawnOptions } from "./process.js"

// Every run here should end at once; one that does not (a command serving, or waiting for input) is killed.
const run = (name: string, args: ReadonlyArray<string>, options: SpawnOptions = {}) =>
  runCommand(name, args, { timeoutMs: 10_000, ...options })

const dirs: Array<string> = []
const fresh = () => {
  const dir = tempDir("effect-omaha-cli-")
  dirs.push(dir)
  return dir
}
afterAll(() => dirs.forEach((d) => Fs.rmSync(d, { recursive: true, force: true })))

const work = fresh()
const tool = Path.join(work, "tool")
Fs.writeFileSync(tool, binary(4096, 1))
Fs.chmodSync(tool, 0o755)
const payload = Path.join(work, "update.gz")
Fs.writeFileSync(payload, binary(4096, 2))

/** Asserts the one line a failed run prints, its status, and that stdout stays empty. */
const expectOneLine = (ran: Ran, status: number, line: string) => {
  expect({ status: ran.status, stderr: ran.stderr, stdout: ran.stdout }).toEqual({ status, stderr: `${line}\n`, stdout: "" })
}

describe("usage errors: one line on stderr, status 2", () => {
  const repo = ["--repo", work, "--version", "2.0.0"]
  const cases: Array<readonly [command: string, args: Array<string>, line: string]> = [
    ["update-self", [], "update-self: missing --target FILE; see update-self --help"],
    ["update-self", ["--target", tool], "update-self: missing --repo URL|DIR; see update-self --help"],
    ["update-self", ["--target", tool, "--repo", work], "update-self: missing --release-version VERSION; see update-self --help"],
    ["update-self", ["--target", tool, "--omaha", "http://127.0.0.1:1/"], "update-self: missing --app-id ID; see update-self --help"],
    [
      "update-self",
      ["--target", tool, ...repo, "--check-timeout", "soon"],
      "update-self: --check-timeout: 'soon' is not an integer; see update-self --help"
    ],
    [
      "update-self",
      ["--target", tool, ...repo, "--idle-timeout", "0"],
      "update-self: --idle-timeout must be at least 1, not 0; see update-self --help"
    ],
    ["update-self", ["--target", tool, ...repo, "--bogus"], "update-self: unknown option --bogus; see update-self --help"],
    [
      "update-self",
      ["--tagret", tool, ...repo],
      "update-self: unknown option --tagret (did you mean --target?); see update-self --help"
    ],
    ["update-self", ["--target", tool, ...repo, "extra"], "update-self: unexpected argument 'extra'; see update-self --help"],
    [
      "update-self",
      ["--target", tool, ...repo, "--omaha", "http://127.0.0.1:1/", "--app-id", "x"],
      "update-self: --repo and --omaha cannot be used together; see update-self --help"
    ],
    ["update-self", ["--target", tool, "--target", tool, ...repo], "update-self: --target is given more than once; see update-self --help"],
    ["update-self", ["--target", tool, ...repo, "--check"], "update-self: --check needs a value; see update-self --help"],
    [
      "update-self",
      ["--target", tool, ...repo, "--log-level=loud"],
      "update-self: --log-level: 'loud' is not one of all, trace, debug, info, warning, error, fatal, none; see update-self --help"
    ],
    ["update-repo", [], "update-repo: missing --release-version VERSION; see update-repo --help"],
    ["update-repo", ["--version", "1.0.0"], "update-repo: missing <binary>; see update-repo --help"],
    [
      "update-repo",
      [tool, "--version", "1.0.0", "--compression", "zip"],
      "update-repo: --compression: 'zip' is not one of bz2, gzip, none; see update-repo --help"
    ],
    ["update-repo", ["keygen"], "update-repo: missing --private-key FILE; see update-repo keygen --help"],
    ["update-repo", ["keygen", "--private-key", "k"], "update-repo: missing --public-key FILE; see update-repo keygen --help"],
    ["serve-package", [], "serve-package: missing --package-file FILE; see serve-package --help"],
    [
      "serve-package",
      ["--package-file", payload, "--package-version", "1.0.0", "--log-format", "xml"],
      "serve-package: --log-format: 'xml' is not one of logfmt, json; see serve-package --help"
    ],
    [
      "serve-package",
      ["--package-file", payload, "--package-version", "1.0.0", "--shutdown-grace", "-1"],
      "serve-package: --shutdown-grace must be at least 0, not -1; see serve-package --help"
    ]
  ]
  for (const [command, args, line] of cases) {
    it(`${command} ${args.join(" ")}`, async () => {
      expectOneLine(await run(command, args), 2, line)
    })
  }

  it("--wizard with stdin not a terminal fails at once instead of waiting for answers", async () => {
    for (const [command, args] of [["update-self", ["--wizard"]], ["update-repo", ["keygen", "--wizard"]], ["serve-package", ["--wizard"]]] as const) {
      const ran = await run(command, args)
      const name = command === "update-repo" ? "update-repo keygen" : command
      expectOneLine(ran, 2, `${command}: --wizard asks its questions on a terminal, and stdin is not one; see ${name} --help`)
    }
  })

  it("--log-level is taken anywhere on the line, after the command's own flags too", async () => {
    const missing = Path.join(work, "absent")
    for (const args of [["--log-level", "debug", "--target", missing, ...repo], ["--target", missing, ...repo, "--log-level", "debug"]]) {
      expectOneLine(await run("update-self", args), 10, `update-self: target ${missing}: no such file`)
    }
    const key = Path.join(work, "absent.key")
    expectOneLine(
      await run("update-repo", ["keygen", "--private-key", Path.join(work, "no-dir", "k"), "--public-key", key, "--log-level=warning"]),
      7,
      `update-repo: cannot write the private key ${Path.join(work, "no-dir", "k")}: no such file`
    )
  })
})

/** The description lines under each `  --flag VALUE` line of a help text, by flag. */
const optionBlocks = (help: string): Map<string, Array<string>> => {
  const blocks = new Map<string, Array<string>>()
  let current: Array<string> | undefined
  for (const line of help.split("\n")) {
    const flag = /^ {2}(--[a-z-]+|<[a-z]+>)(?: \S.*)?$/.exec(line)
    if (flag !== null) {
      current = []
      blocks.set(flag[1]!, current)
    } else if (current !== undefined && line.startsWith("      ")) {
      current.push(line.trim())
    } else {
      current = undefined
    }
  }
  return blocks
}

describe("--help", () => {
  const helps: Array<readonly [args: Array<string>, defaults: Record<string, string>]> = [
    [["update-self"], {
      "--check-timeout": "30",
      "--max-size": "1024 (1 GiB)",
      "--connect-timeout": "30",
      "--idle-timeout": "90",
      "--timeout": "1800 (30 min)"
    }],
    [["update-repo"], {
      "--repo": "./repo",
      "--compression": "bz2",
      "--os": `this machine's, ${Platform.goOs()}`,
      "--arch": `this machine's, ${Platform.goArch()}`
    }],
    [["update-repo", "keygen"], {}],
    [["serve-package"], { "--listen-address": "localhost:8000", "--package-name": "update.gz", "--shutdown-grace": "30", "--log-format": "logfmt" }]
  ]
  for (const [[command, ...sub], defaults] of helps) {
    it(`${[command, ...sub].join(" ")} --help, piped: plain text, every flag described, every default shown`, async () => {
      const ran = await run(command!, [...sub, "--help"])
      expect(ran.status).toBe(0)
      expect(ran.stderr).toBe("")
      expect(ran.stdout).not.toContain("\u001b")
      expect(ran.stdout).not.toMatch(/A user-defined piece of text|A true or false value|An integer\./)
      expect(ran.stdout.split("\n").slice(0, 3)).toEqual([`${[command, ...sub].join(" ")} 0.1.0`, "", "USAGE"])
      const blocks = optionBlocks(ran.stdout)
      expect(blocks.size).toBeGreaterThan(3)
      for (const [flag, lines] of blocks) expect(lines.length, flag).toBeGreaterThan(0)
      for (const [flag, shown] of Object.entries(defaults)) expect(blocks.get(flag), flag).toContain(`default: ${shown}`)
      expect(ran.stdout).toContain("\nEXIT STATUS\n")
    })
  }

  it("styles the help on a terminal, and not with NO_COLOR or TERM=dumb", () => {
    const script = spawnSync("script", ["--version"], { encoding: "utf8" })
    if (script.error !== undefined) return expect.fail("the script command (util-linux) is needed to give the help a terminal")
    const onTerminal = (env: Record<string, string>) =>
      execFileSync("script", ["-qec", `${shellWord(process.execPath)} ${shellWord(binPath("update-self"))} --help`, "/dev/null"], {
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "", TERM: "xterm", ...env }
      })
    expect(onTerminal({ NO_COLOR: "1" })).not.toContain("\u001b")
    expect(onTerminal({ TERM: "dumb" })).not.toContain("\u001b")
    expect(onTerminal({})).toContain("\u001b[1mUSAGE\u001b[0m")
  })
})

describe("runtime errors: one line, the documented status, the file and the fault in words", () => {
  it("a key file or binary that is not there", async () => {
    const absent = Path.join(work, "absent")
    expectOneLine(
      await run("update-self", ["--target", tool, "--repo", work, "--version", "2.0.0", "--public-key", `${absent}.pub`]),
      8,
      `update-self: cannot read public key ${absent}.pub: no such file`
    )
    expectOneLine(
      await run("serve-package", ["--package-file", payload, "--package-version", "1.0.0", "--sign-key", `${absent}.key`]),
      2,
      `serve-package: cannot read private key ${absent}.key: no such file`
    )
    expectOneLine(
      await run("update-repo", [tool, "--version", "1.0.0", "--repo", Path.join(work, "repo"), "--sign-key", work]),
      6,
      `update-repo: cannot read private key ${work}: not a regular file (directory)`
    )
    expectOneLine(
      await run("update-repo", [absent, "--version", "1.0.0", "--repo", Path.join(work, "repo")]),
      4,
      `update-repo: cannot read binary ${absent}: no such file`
    )
  })

  it("a release.json that breaks the format: the field and the rule, on one line", async () => {
    const repo = Path.join(fresh(), "repo")
    choriaRelease(repo, { name: "tool", version: "2.0.0", bytes: binary(100, 3), release: { hash: "abc" } })
    choriaRelease(repo, { name: "tool", version: "2.0.1", bytes: binary(100, 3), release: { binary: "../tool" } })
    const where = (version: string) => Path.join(repo, version, "linux", "amd64", "release.json")
    const args = (version: string) => ["--target", tool, "--repo", repo, "--version", version, "--os", "linux", "--arch", "amd64"]
    expectOneLine(
      await run("update-self", args("2.0.0")),
      6,
      `update-self: release ${where("2.0.0")} is invalid: hash: expected 64 hex characters (a SHA-256 digest)`
    )
    expectOneLine(
      await run("update-self", args("2.0.1")),
      6,
      `update-self: release ${where("2.0.1")} is invalid: binary: expected a plain file name (letters, digits, '.', '_', '+', '-'; no '/' and no leading '.')`
    )
  })

  it("a redirect to anything but an http(s) URL is a download failure (5), not an unexpected error", async () => {
    const server = Http.createServer((request, response) => {
      if (request.url!.endsWith("release.json") && request.url!.startsWith("/payload/")) {
        response.end(JSON.stringify({ binary: "tool.gz", hash: "a".repeat(64) }))
      } else {
        response.writeHead(302, { location: request.url!.startsWith("/invalid/") ? "http://[" : "file:///etc/passwd" }).end()
      }
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const args = (path: string) => ["--target", tool, "--repo", `${base}/${path}`, "--version", "2.0.0", "--os", "linux", "--arch", "amd64"]
      expectOneLine(
        await run("update-self", args("release")),
        5,
        `update-self: repository ${base}/release/2.0.0/linux/amd64/release.json is unreachable: redirected to file:///etc/passwd, which is not an http or https URL`
      )
      expectOneLine(
        await run("update-self", args("invalid")),
        5,
        `update-self: repository ${base}/invalid/2.0.0/linux/amd64/release.json is unreachable: redirected to http://[, which is not an http or https URL`
      )
      const failed = await run("update-self", args("payload"))
      expect(failed.status).toBe(5)
      expect(failed.stderr.split("\n").filter((line) => line.startsWith("update-self:"))).toEqual([
        `update-self: download of ${base}/payload/2.0.0/linux/amd64/tool.gz failed: redirected to file:///etc/passwd, which is not an http or https URL`
      ])
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

// A read-only file system needs a mount of its own: root, and a kernel that lets it mount tmpfs.
const readOnly = (() => {
  if (process.getuid?.() !== 0) return undefined
  const dir = fresh()
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "ignore" })
  } catch {
    return undefined
  }
  Fs.writeFileSync(Path.join(dir, "tool"), binary(4096, 4))
  Fs.chmodSync(Path.join(dir, "tool"), 0o755)
  execFileSync("mount", ["-o", "remount,ro", dir])
  afterAll(() => {
    execFileSync("umount", [dir])
  })
  return dir
})()

describe.runIf(readOnly !== undefined)("a read-only file system is named as one, with the status for an unwritable place", () => {
  const ro = readOnly!
  it("update-self: the target's directory cannot be written (10)", async () => {
    expectOneLine(
      await run("update-self", ["--target", Path.join(ro, "tool"), "--repo", work, "--version", "2.0.0"]),
      10,
      `update-self: cannot create the lock ${Path.join(ro, "tool.lock")}: read-only file system (EROFS)`
    )
  })

  it("update-repo: neither a repository nor keys can be written there (7)", async () => {
    expectOneLine(
      await run("update-repo", [tool, "--version", "1.0.0", "--repo", Path.join(ro, "repo"), "--compression", "gzip"]),
      7,
      `update-repo: cannot create ${Path.join(ro, "repo")}: read-only file system (EROFS)`
    )
    expectOneLine(
      await run("update-repo", ["keygen", "--private-key", Path.join(ro, "k"), "--public-key", Path.join(work, "k.pub")]),
      7,
      `update-repo: cannot write the private key ${Path.join(ro, "k")}: read-only file system (EROFS)`
    )
  })
})
