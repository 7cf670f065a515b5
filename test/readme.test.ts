import { describe, expect, it } from "@effect/vitest"
import { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Effect, HashMap, Layer, Logger, Option } from "effect"
import { AppClient, Platform, Xml } from "effect-omaha"
import { post, send } from "./server/support.js"
import { binary, choriaRelease, listing, tempDir, target } from "./updater/support.js"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { answerApps, clientLayer, startServer } from "./client/server.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const readme = Fs.readFileSync(Path.join(root, "README.md"), "utf8")

/** Writes the README's example named `name` to a module and imports it. */
const loadExample = async (name: string): Promise<Record<string, unknown>> => {
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\n<!-- end example -->`).exec(readme)
  if (match === null) throw new Error(`README has no example named ${name}`)
  const dir = Path.join(root, "test", ".generated")
  Fs.mkdirSync(dir, { recursive: true })
  const file = Path.join(dir, `readme-${name}.ts`)
  Fs.writeFileSync(file, match[1]!)
  return import(file)
}

/** The shell commands of the README's `sh` blocks: continuation lines joined, comments left out. */
const shellCommands = (): Array<string> =>
  [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((block) => block[1]!.replace(/\\\n\s*/g, " ").split("\n"))
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))

/** fleet-server's admin commands that take a verb (`group list`). */
const adminNouns = ["app", "channel", "floor", "blocklist", "group", "package", "instance", "rollout"]

/** The package's own commands and their bundles (package.json's `bin`). */
const bins = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")).bin as Record<string, string>

describe("README", () => {
  it("runs the package's commands the way a clone can, `node dist/bin/<command>.js`, each of whose --help exits 0", () => {
    const invocations = new Set<string>()
    for (const line of shellCommands()) {
      const words = line.split(/\s+/)
      words.forEach((word, i) => {
        // `npm run serve-package -- ...` is the package's script, which a clone runs too.
        if (word in bins && !(words[i - 1] === "run" && words[i - 2] === "npm")) {
          expect.fail(`${line}: ${word} is not on PATH in a clone; write node ${bins[word]}`)
        }
        const name = Object.keys(bins).find((bin) => bins[bin] === word)
        if (name === undefined) return
        expect(words[i - 1], line).toBe("node")
        const sub = words[i + 1] === "keygen" || words[i + 1] === "serve" || words[i + 1] === "apply"
          ? [words[i + 1]]
          : words[i + 1] === "token" || adminNouns.includes(words[i + 1]!)
          ? [words[i + 1], words[i + 2]]
          : []
        invocations.add([name, ...sub].join(" "))
      })
    }
    expect([...invocations].sort()).toEqual([
      "fleet-server apply",
      "fleet-server group list",
      "fleet-server instance list",
      "fleet-server package add",
      "fleet-server package list",
      "fleet-server rollout pause",
      "fleet-server rollout resume",
      "fleet-server rollout status",
      "fleet-server serve",
      "fleet-server token create",
      "serve-package",
      "update-repo",
      "update-repo keygen",
      "update-self"
    ])
    for (const invocation of invocations) {
      const [name, ...sub] = invocation.split(" ")
      const ran = ChildProcess.spawnSync(process.execPath, [bins[name!]!, ...sub, "--help"], { cwd: root, encoding: "utf8" })
      expect(ran.status, `${invocation} --help: ${ran.stderr}`).toBe(0)
      expect(ran.stdout.split("\n")[0]).toBe(`${invocation} 0.1.0`)
    }
  })

  it("documents the two set-up commands", () => {
    expect(readme).toContain("```sh\nbash .ci/run\n```")
    expect(readme).toContain(
      "```sh\nnpm ci && npm run serve-package -- --package-file fixtures/sample/update.gz --package-version 9999.0.0\n```"
    )
  })

  it.effect("the protocol example encodes a request and decodes a response", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("protocol"))
      const result = yield* (example["program"] as Effect.Effect<{ xml: string; status: string; pollInterval: number }>)
      expect(result.status).toBe("noupdate")
      expect(result.pollInterval).toBe(3600)
      expect(result.xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>\n<request protocol="3.0">\n <os platform=`))
        .toBe(true)
      expect(result.xml).toContain(
        ` <app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="3815.2.0" track="stable">\n  <updatecheck/>\n </app>\n`
      )
    }))

  it.live("the server example answers its app and refuses others", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("server"))
      const server = (example["server"] as (port: number) => Layer.Layer<HttpServer.HttpServer>)(0)
      const context = yield* Layer.build(server)
      const bound = (yield* Effect.provide(HttpServer.HttpServer, context)).address
      if (bound._tag !== "TcpAddress") throw new Error("expected a TCP address")
      const reply = yield* Effect.promise(() =>
        post(
          `http://127.0.0.1:${bound.port}/`,
          `<request protocol="3.0"><app appid="{e96281a6-d1af-4bde-9a0a-97b76e56dc57}" version="1.0.0"><updatecheck/></app>` +
            `<app appid="{other}" version="1.0.0"><updatecheck/></app></request>`
        )
      )
      expect(reply.status).toBe(200)
      const response = yield* Xml.decodeResponse(reply.text)
      expect(response.apps.map((a) => [a.status, a.updateCheck?.status])).toEqual([
        ["ok", "noupdate"],
        ["error-unknownApplication", undefined]
      ])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.live("the payloads example serves stored payloads by hash and name, and nothing else", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("payloads"))
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-readme-payloads-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const bytes = Crypto.randomBytes(100_000)
      const hash = Crypto.createHash("sha256").update(bytes).digest("hex")
      Fs.writeFileSync(Path.join(dir, hash), bytes)
      const known = new Map([[hash, { name: "update.gz", size: bytes.length }]])
      const server = (example["server"] as (
        dir: string,
        known: ReadonlyMap<string, { name: string; size: number }>,
        port: number
      ) => Layer.Layer<HttpServer.HttpServer>)(dir, known, 0)
      const bound = (yield* Effect.provide(HttpServer.HttpServer, yield* Layer.build(server))).address
      if (bound._tag !== "TcpAddress") throw new Error("expected a TCP address")
      const base = `http://127.0.0.1:${bound.port}/`
      const got = yield* Effect.promise(() => send(base, { path: `/packages/${hash}/update.gz` }))
      expect([got.status, got.headers["etag"], got.body.equals(bytes)]).toEqual([200, `"${hash}"`, true])
      const other = yield* Effect.promise(() => send(base, { path: `/packages/${hash}/other.gz` }))
      expect(other.status).toBe(404)
    }).pipe(Effect.scoped))

  it.live("the fleet example serves the API and update checks from a data directory", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("fleet"))
      const dir = tempDir()
      const fleet = (example["fleet"] as (dir: string, port: number) => Layer.Layer<HttpServer.HttpServer>)(dir, 0)
      const bound = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(fleet)
        const address = (yield* Effect.provide(HttpServer.HttpServer, context)).address
        if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
        const base = `http://127.0.0.1:${address.port}/`
        const health = yield* Effect.promise(() => fetch(new URL("health", base)))
        expect(yield* Effect.promise(() => health.json())).toEqual({ status: "ok" })
        const apps = yield* Effect.promise(() => fetch(new URL("api/apps", base)))
        expect(apps.status).toBe(401)
        const check = yield* Effect.promise(() =>
          post(base, `<request protocol="3.0"><app appid="{unknown}" version="1.0.0"><updatecheck/></app></request>`)
        )
        expect(check.text).toContain(`status="error-unknownApplication"`)
        return address.port
      }))
      expect(bound).toBeGreaterThan(0)
      expect(Fs.existsSync(Path.join(dir, "pgdata"))).toBe(true)
      Fs.rmSync(dir, { recursive: true })
    }), 120_000)

  it.live("the client example: go-omaha's client example against a trivial server", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("client"))
      // What the server logged about each request: per app, its version, the answer and the events.
      const requests: Array<{ readonly version: string; readonly answer: string; readonly events: Array<string> }> = []
      const logger = Logger.make(({ annotations }) => {
        const apps = HashMap.get(annotations, "apps")
        if (Option.isSome(apps)) requests.push(...(apps.value as typeof requests))
      })
      const result = yield* (example["program"] as Effect.Effect<ReadonlyArray<string>>).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      expect(result).toEqual(["updated to 1.0.1", "no update"])
      const checks = requests.filter((request) => request.answer !== "ok")
      expect(checks).toEqual([
        { ...checks[0], version: "1.0.0", answer: "update to 1.0.1", events: ["update complete: success, reboot"] },
        {
          ...checks[1],
          version: "1.0.1",
          answer: "noupdate: 1.0.1 is not older than 1.0.1",
          events: ["update complete: success, reboot"]
        }
      ])
      // The download, install and restart events, each in its own request, in order.
      expect(requests.filter((request) => request.answer === "ok").map((request) => request.events)).toEqual([
        ["update download finished: success"],
        ["update complete: success"],
        ["update complete: success, reboot"]
      ])
    }))

  it.scopedLive("the schedule example: SIGUSR1 asks for a check at once, and the handler goes with the layer", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("schedule"))
      const server = yield* startServer((received) => answerApps(received.request))
      const listeners = process.listenerCount("SIGUSR1")
      const app = AppClient.layer({ appId: "app", version: "1.0.0" }).pipe(Layer.provide(clientLayer(server.url)))
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build((example["checks"] as Layer.Layer<never, never, AppClient.AppClient>).pipe(Layer.provide(app)))
        expect(process.listenerCount("SIGUSR1")).toBe(listeners + 1)
        process.emit("SIGUSR1")
        yield* Effect.promise(() => server.receivedCount(1))
      }))
      expect(process.listenerCount("SIGUSR1")).toBe(listeners)
      expect(server.received.length).toBe(1)
      expect(server.received[0]!.request).toMatchObject({ installSource: "ondemandupdate" })
      expect(server.received[0]!.request!.apps[0]!.updateCheck).toBeDefined()
    }))

  it.live("the updater example installs a release from a repository directory", () =>
    Effect.gen(function*() {
      const example = yield* Effect.promise(() => loadExample("updater"))
      const dir = tempDir()
      const bytes = binary(100_000, 5)
      choriaRelease(Path.join(dir, "repo"), { name: "tool", version: "2.0.0", os: Platform.goOs(), arch: Platform.goArch(), bytes })
      Fs.mkdirSync(Path.join(dir, "bin"))
      const tool = target(Path.join(dir, "bin"), binary(1000, 6))
      const update = example["update"] as (target: string, repo: string) => Effect.Effect<{ _tag: string }>
      const result = yield* update(tool, Path.join(dir, "repo"))
      expect(result._tag).toBe("Updated")
      expect(Fs.readFileSync(tool).equals(bytes)).toBe(true)
      expect(listing(Path.join(dir, "bin"))).toEqual(["tool", "tool.backup"])
      Fs.rmSync(dir, { recursive: true })
    }))
})
