/**
 * serve-package against bare node:http, measured in one run on loopback with
 * wrk as the load generator:
 * - update checks per second: update_engine's request posted to both, the
 *   bare server answering with the very bytes serve-package answers with;
 *   a third server, node:http running one Effect fiber per request (what
 *   serve-package's update endpoint runs on) answering those same bytes,
 *   shows how much of the gap is the cost of Effect itself;
 * - payload MB/s: GET of the same file, the bare server streaming it with
 *   1 MiB reads;
 * - serve-package's peak RSS while 8 clients download a 1 GiB payload.
 * Targets: update checks >= 0.5 of bare, payload >= 0.8, RSS < 150 MB.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { printTable } from "./measure.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const seconds = Number(process.env["BENCH_SECONDS"] ?? 10)
const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-bench-"))

interface Proc {
  readonly child: ChildProcess.ChildProcess
  readonly firstLine: Promise<string>
}

const spawn = (args: ReadonlyArray<string>, pattern: RegExp): Proc => {
  const child = ChildProcess.spawn(process.execPath, args, { stdio: ["ignore", "pipe", "ignore"] })
  let out = ""
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString()
      const m = pattern.exec(out)
      if (m !== null) resolve(m[1]!)
    })
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)))
  })
  return { child, firstLine }
}

const servePackage = (payload: string) =>
  spawn(
    [Path.join(root, "dist/bin/serve-package.js"), "--package-file", payload, "--package-version", "3815.2.1", "--listen-address", "127.0.0.1:0"],
    /^SERVER=(\S+)$/m
  )

const stop = async (proc: Proc) => {
  proc.child.kill("SIGTERM")
  await new Promise((resolve) => proc.child.once("exit", resolve))
}

const sparseFile = (name: string, size: number) => {
  const path = Path.join(dir, name)
  Fs.closeSync(Fs.openSync(path, "w"))
  Fs.truncateSync(path, size)
  return path
}

const wrk = (args: ReadonlyArray<string>): string =>
  ChildProcess.execFileSync("wrk", ["--latency", ...args], { encoding: "utf8" })

const field = (output: string, name: "Requests/sec" | "Transfer/sec"): number => {
  const m = new RegExp(`${name.replace("/", "\\/")}:\\s+([\\d.]+)(\\w*)`).exec(output)
  if (m === null) throw new Error(`wrk printed no ${name}:\n${output}`)
  const scale: Record<string, number> = { "": 1, B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }
  return Number(m[1]) * (scale[m[2] ?? ""] ?? 1)
}

const post = async (url: string, body: string) => {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "text/xml" }, body })
  return { status: res.status, text: await res.text() }
}

const peakRss = (pid: number): number => {
  const status = Fs.readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024
}

const main = async () => {
  console.log(`Node ${process.version}, ${Os.cpus().length} CPUs, wrk ${seconds} s per run, loopback\n`)
  const request = Fs.readFileSync(Path.join(root, "fixtures/omaha/update-engine/update/request.xml"), "utf8")
    .replace(`version="ForcedUpdate"`, `version="3815.2.0"`)
  const requestFile = Path.join(dir, "request.xml")
  Fs.writeFileSync(requestFile, request)
  const lua = Path.join(dir, "post.lua")
  Fs.writeFileSync(
    lua,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml"\nlocal f = io.open("${requestFile}", "r")\nwrk.body = f:read("*a")\nf:close()\n`
  )

  // Update checks and payload throughput, on a 256 MiB payload.
  const payload = sparseFile("update.gz", 256 * 1024 * 1024)
  const ours = servePackage(payload)
  const endpoint = await ours.firstLine
  const answer = await post(endpoint, request)
  if (answer.status !== 200 || !answer.text.includes(`status="ok"`)) throw new Error(`unexpected answer: ${answer.text}`)
  const responseFile = Path.join(dir, "response.xml")
  Fs.writeFileSync(responseFile, answer.text)
  const bare = spawn([Path.join(root, "test/bench/bare-server.mjs"), payload, responseFile], /^(http\S+)$/m)
  const bareBase = await bare.firstLine
  const fiber = spawn([Path.join(root, "test/bench/fiber-server.mjs"), responseFile], /^(http\S+)$/m)
  const fiberBase = await fiber.firstLine
  const oursBase = new URL("/", endpoint).href

  const checks = (base: string) =>
    field(wrk(["-t1", "-c16", `-d${seconds}s`, "-s", lua, new URL("/v1/update/", base).href]), "Requests/sec")
  const download = (base: string) =>
    field(wrk(["-t1", "-c4", `-d${seconds}s`, new URL("/packages/update.gz", base).href]), "Transfer/sec")

  // Alternate the two servers so drift on the machine hits both alike.
  const bareChecks1 = checks(bareBase)
  const ourChecks1 = checks(oursBase)
  const bareChecks2 = checks(bareBase)
  const ourChecks2 = checks(oursBase)
  const fiberChecks = Math.max(checks(fiberBase), checks(fiberBase))
  await stop(fiber)
  const bareBytes = download(bareBase)
  const ourBytes = download(oursBase)
  await stop(bare)
  await stop(ours)

  // Memory: 8 concurrent downloads of a 1 GiB payload.
  const gib = sparseFile("big.gz", 1024 * 1024 * 1024)
  const big = servePackage(gib)
  const bigUrl = new URL("/packages/update.gz", await big.firstLine).href
  const before = peakRss(big.child.pid!)
  const started = Date.now()
  await Promise.all(
    Array.from({ length: 8 }, () =>
      new Promise<void>((resolve, reject) =>
        ChildProcess.execFile("curl", ["-sf", "-o", "/dev/null", bigUrl], (error) => (error ? reject(error) : resolve()))
      ))
  )
  const elapsed = (Date.now() - started) / 1000
  const peak = peakRss(big.child.pid!)
  await stop(big)

  const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0)
  const ourChecks = Math.max(ourChecks1, ourChecks2)
  const bareChecks = Math.max(bareChecks1, bareChecks2)
  printTable(["measure", "serve-package", "bare node:http", "ratio", "target"], [
    [
      "update checks/s (best of 2)",
      ourChecks.toFixed(0),
      bareChecks.toFixed(0),
      (ourChecks / bareChecks).toFixed(2),
      ">= 0.50"
    ],
    ["update checks/s (runs)", `${ourChecks1.toFixed(0)} ${ourChecks2.toFixed(0)}`, `${bareChecks1.toFixed(0)} ${bareChecks2.toFixed(0)}`, "", ""],
    [
      "  node:http + Effect fiber, fixed body",
      fiberChecks.toFixed(0),
      bareChecks.toFixed(0),
      (fiberChecks / bareChecks).toFixed(2),
      "(ceiling with Effect per request)"
    ],
    ["payload MiB/s", mb(ourBytes), mb(bareBytes), (ourBytes / bareBytes).toFixed(2), ">= 0.80"],
    [
      "peak RSS, 8 x 1 GiB downloads",
      `${mb(peak)} MiB`,
      "",
      "",
      "< 150 MB"
    ]
  ])
  console.log(
    `\n8 x 1 GiB downloaded in ${elapsed.toFixed(1)} s (${mb((8 * 1024 ** 3) / elapsed)} MiB/s); RSS before the downloads ${mb(before)} MiB`
  )
  Fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  console.error(error)
  Fs.rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
