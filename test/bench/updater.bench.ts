/**
 * The self-updater's cost: time and peak RSS of `update-self` (the built
 * bundle) applying a 64 MiB bz2 release from a loopback server, next to
 * `curl | bzip2 -dc | sha256sum` on the same release in the same run.
 * The payload is real machine code (the start of the node binary, repeated
 * as needed), published with `update-repo` (bzip2 -9, as choria does).
 * It runs update-self twice: with the system bzip2, and with no bzip2 on its
 * PATH, where it decodes with its built-in decoder.
 * Set BENCH_MIB for another size: the peak RSS should not follow it.
 */
import { execFileSync, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { fileServer, sha256, tempDir } from "../updater/support.js"
import { printTable } from "./measure.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const mib = Number(process.env["BENCH_MIB"] ?? 64)
const size = mib * 1024 * 1024
const rssLimitMB = 150

/** Peak RSS (VmHWM) in bytes of every process in a tree, polled until the root exits. */
const watch = (pid: number) => {
  const peaks = new Map<number, { name: string; peak: number }>()
  const descendants = (): Array<number> => {
    const parents = new Map<number, number>()
    for (const entry of Fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
        parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]))
      } catch {
        // The process ended while we looked.
      }
    }
    const tree = [pid]
    for (let i = 0; i < tree.length; i++) {
      for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child)
    }
    return tree
  }
  const poll = () => {
    for (const p of descendants()) {
      try {
        const status = Fs.readFileSync(`/proc/${p}/status`, "utf8")
        const peak = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
        const name = /Name:\s+(\S+)/.exec(status)?.[1] ?? "?"
        if (peak > (peaks.get(p)?.peak ?? 0)) peaks.set(p, { name, peak })
      } catch {
        // Gone already.
      }
    }
  }
  const timer = setInterval(poll, 10)
  return {
    stop: () => {
      clearInterval(timer)
      return [...peaks.values()]
    }
  }
}

/** Runs a command, timing it and watching its process tree's memory. */
const measure = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  new Promise<{ seconds: number; peaks: Array<{ name: string; peak: number }>; stdout: string; status: number | null }>(
    (resolve, reject) => {
      const started = performance.now()
      const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"], env })
      const watcher = watch(child.pid!)
      let stdout = ""
      child.stdout.on("data", (b) => (stdout += b))
      child.on("error", reject)
      child.on("close", (status) => resolve({ seconds: (performance.now() - started) / 1000, peaks: watcher.stop(), stdout, status }))
    }
  )

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`

const main = async () => {
  const dir = tempDir("effect-omaha-bench-")
  try {
    const node = Fs.readFileSync(process.execPath)
    const bytes = Buffer.alloc(size)
    for (let at = 0; at < size; at += node.length) node.copy(bytes, at, 0, Math.min(node.length, size - at))
    const binaryPath = Path.join(dir, "tool")
    Fs.writeFileSync(binaryPath, bytes)
    const repo = Path.join(dir, "repo")
    console.log(`publishing a ${mib} MiB release (bzip2 -9)...`)
    execFileSync(process.execPath, [Path.join(root, "dist/bin/update-repo.js"), binaryPath, "--version", "2.0.0", "--os", "linux", "--arch", "amd64", "--repo", repo], { stdio: "inherit" })
    const payload = Path.join(repo, "2.0.0/linux/amd64/tool-linux-amd64-2.0.0.bz2")
    const target = Path.join(dir, "bin", "tool")
    Fs.mkdirSync(Path.dirname(target))
    const server = await fileServer(repo)
    try {
      const pipeline = await measure("sh", ["-c", `curl -s ${server.url}/2.0.0/linux/amd64/tool-linux-amd64-2.0.0.bz2 | bzip2 -dc | sha256sum`])
      const expected = sha256(bytes)
      if (!pipeline.stdout.startsWith(expected)) throw new Error(`the pipeline computed ${pipeline.stdout}`)
      const apply = async (env: NodeJS.ProcessEnv) => {
        Fs.writeFileSync(target, "old binary", { mode: 0o755 })
        Fs.rmSync(`${target}.backup`, { force: true })
        const ran = await measure(process.execPath, [
          Path.join(root, "dist/bin/update-self.js"),
          "--target", target, "--repo", server.url, "--version", "2.0.0", "--os", "linux", "--arch", "amd64"
        ], env)
        if (ran.status !== 0 || sha256(Fs.readFileSync(target)) !== expected) throw new Error("update-self did not install the release")
        return ran
      }
      const applied = await apply(process.env)
      // Without bzip2 on its PATH, update-self decodes with its built-in decoder.
      const builtin = await apply({ ...process.env, PATH: Path.join(dir, "empty") })
      const total = (peaks: Array<{ peak: number }>) => peaks.reduce((n, p) => n + p.peak, 0)
      const largest = (peaks: Array<{ name: string; peak: number }>) =>
        peaks.filter((p) => p.name !== "sh").map((p) => `${p.name} ${mb(p.peak)}`).join(", ")
      const selfPeak = applied.peaks.find((p) => p.name.startsWith("node"))?.peak ?? 0
      console.log(`\nNode ${process.version}; ${mib} MiB binary, ${mb(Fs.statSync(payload).size)} bz2, loopback HTTP\n`)
      printTable(["run", "time", "peak RSS (sum of processes)", "per process"], [
        ["curl | bzip2 -dc | sha256sum", `${pipeline.seconds.toFixed(2)} s`, mb(total(pipeline.peaks)), largest(pipeline.peaks)],
        ["update-self, system bzip2", `${applied.seconds.toFixed(2)} s`, mb(total(applied.peaks)), largest(applied.peaks)],
        ["update-self, built-in decoder", `${builtin.seconds.toFixed(2)} s`, mb(total(builtin.peaks)), largest(builtin.peaks)]
      ])
      const builtinPeak = builtin.peaks.find((p) => p.name.startsWith("node"))?.peak ?? 0
      console.log(`\nupdate-self / pipeline time: ${(applied.seconds / pipeline.seconds).toFixed(2)}x with bzip2, ${(builtin.seconds / pipeline.seconds).toFixed(2)}x built-in`)
      console.log(`update-self peak RSS: ${mb(selfPeak)} with bzip2, ${mb(builtinPeak)} built-in (limit ${rssLimitMB} MB)`)
      for (const peak of [selfPeak, builtinPeak]) {
        if (peak >= rssLimitMB * 1e6) {
          console.error(`update-self peaked at ${mb(peak)}, over ${rssLimitMB} MB`)
          process.exitCode = 1
        }
      }
    } finally {
      await server.close()
    }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

await main()
