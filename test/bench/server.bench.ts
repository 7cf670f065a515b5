/**
 * serve-package against bare node:http, measured in one run on loopback with
 * wrk as the load generator:
 * - update checks per second, for update_engine's request without an update
 *   (its version is the payload's) and with one offered (a lower version; the
 *   answer carries the URL, manifest and postinstall action), 32
 *   connections, three alternating runs each; the bare server answers with
 *   the very bytes serve-package answers with. A third server, node:http
 *   running one Effect fiber per request and answering the same bytes, shows
 *   the cost of Effect itself;
 * - the in-process µs per update check by stage (test/bench/stages.ts);
 * - payload MB/s: GET of the same file, the bare server streaming it with
 *   1 MiB reads;
 * - serve-package's peak RSS while 8 clients download a 1 GiB payload.
 * Targets: update checks >= 0.45 of bare without an update and >= 0.40 with
 * one (the median of three runs), payload >= 0.8, RSS < 150 MB.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { printTable } from "./measure.js"
import { measureStages, packageVersion, updateEngineRequest } from "./stages.js"

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
    [Path.join(root, "dist/bin/serve-package.js"), "--package-file", payload, "--package-version", packageVersion, "--listen-address", "127.0.0.1:0"],
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

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  console.log(`Node ${process.version}, ${Os.cpus().length} CPUs, wrk ${seconds} s per run, 32 connections, loopback; load average ${Os.loadavg().map((l) => l.toFixed(1)).join(" ")}\n`)
  const scenarios = [
    { name: "no update", request: updateEngineRequest(packageVersion), expect: `status="noupdate"`, target: 0.45 },
    { name: "update offered", request: updateEngineRequest("3815.2.0"), expect: `<updatecheck status="ok">`, target: 0.4 }
  ].map((scenario, i) => {
    const requestFile = Path.join(dir, `request-${i}.xml`)
    Fs.writeFileSync(requestFile, scenario.request)
    const lua = Path.join(dir, `post-${i}.lua`)
    Fs.writeFileSync(
      lua,
      `wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml"\nlocal f = io.open("${requestFile}", "r")\nwrk.body = f:read("*a")\nf:close()\n`
    )
    return { ...scenario, lua, responseFile: Path.join(dir, `response-${i}.xml`) }
  })

  // Update checks and payload throughput, on a 256 MiB payload.
  const payload = sparseFile("update.gz", 256 * 1024 * 1024)
  const ours = servePackage(payload)
  const endpoint = await ours.firstLine
  const oursBase = new URL("/", endpoint).href
  for (const scenario of scenarios) {
    const answer = await post(endpoint, scenario.request)
    if (answer.status !== 200 || !answer.text.includes(scenario.expect)) throw new Error(`unexpected answer: ${answer.text}`)
    Fs.writeFileSync(scenario.responseFile, answer.text)
  }

  const checks = (base: string, lua: string) =>
    field(wrk(["-t1", "-c32", `-d${seconds}s`, "-s", lua, new URL("/v1/update/", base).href]), "Requests/sec")
  const download = (base: string) =>
    field(wrk(["-t1", "-c4", `-d${seconds}s`, new URL("/packages/update.gz", base).href]), "Transfer/sec")

  const rows: Array<Array<string>> = []
  let bareBase = ""
  let bare: Proc | undefined
  for (const scenario of scenarios) {
    const baseline = spawn([Path.join(root, "test/bench/bare-server.mjs"), payload, scenario.responseFile], /^(http\S+)$/m)
    const baselineBase = await baseline.firstLine
    // Three runs, alternating the servers so that drift on the machine hits both alike.
    const runs: Array<{ ours: number; bare: number }> = []
    for (let run = 0; run < 3; run++) runs.push({ bare: checks(baselineBase, scenario.lua), ours: checks(oursBase, scenario.lua) })
    const ratios = runs.map((r) => r.ours / r.bare)
    rows.push([
      `update checks/s, ${scenario.name} (median of 3)`,
      median(runs.map((r) => r.ours)).toFixed(0),
      median(runs.map((r) => r.bare)).toFixed(0),
      median(ratios).toFixed(2),
      `>= ${scenario.target.toFixed(2)}`
    ])
    rows.push([
      "  runs",
      runs.map((r) => r.ours.toFixed(0)).join(" "),
      runs.map((r) => r.bare.toFixed(0)).join(" "),
      ratios.map((r) => r.toFixed(2)).join(" "),
      ""
    ])
    if (scenario === scenarios[0]) {
      const fiber = spawn([Path.join(root, "test/bench/fiber-server.mjs"), scenario.responseFile], /^(http\S+)$/m)
      const fiberBase = await fiber.firstLine
      const fiberChecks = checks(fiberBase, scenario.lua)
      await stop(fiber)
      rows.push([
        "  node:http + Effect fiber, fixed body",
        fiberChecks.toFixed(0),
        median(runs.map((r) => r.bare)).toFixed(0),
        (fiberChecks / median(runs.map((r) => r.bare))).toFixed(2),
        "(ceiling with Effect per request)"
      ])
      bare = baseline
      bareBase = baselineBase
    } else {
      await stop(baseline)
    }
  }
  const bareBytes = download(bareBase)
  const ourBytes = download(oursBase)
  await stop(bare!)
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
  rows.push(
    ["payload MiB/s", mb(ourBytes), mb(bareBytes), (ourBytes / bareBytes).toFixed(2), ">= 0.80"],
    ["peak RSS, 8 x 1 GiB downloads", `${mb(peak)} MiB`, "", "", "< 150 MB"]
  )
  printTable(["measure", "serve-package", "bare node:http", "ratio", "target"], rows)
  console.log(
    `\n8 x 1 GiB downloaded in ${elapsed.toFixed(1)} s (${mb((8 * 1024 ** 3) / elapsed)} MiB/s); RSS before the downloads ${mb(before)} MiB`
  )

  // Where an update check's time goes, in this process (µs per request).
  const stageRows: Array<Array<string>> = []
  const byScenario = [await measureStages(false), await measureStages(true)]
  for (const stage of Object.keys(byScenario[0]!)) {
    stageRows.push([stage, ...byScenario.map((stages) => stages[stage]!.toFixed(1))])
  }
  console.log("\nin-process µs per update check, by stage (medians of 5 rounds)\n")
  printTable(["stage", "no update", "update offered"], stageRows)
  Fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  console.error(error)
  Fs.rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
