/**
 * Test support for the updater: temp directories, binaries, choria-style
 * repositories made with the system bzip2, and a loopback file server whose
 * faults (cut connections, a death mid-download, ignored ranges) are set per test.
 */
import { execFileSync } from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/** A fresh temp directory (removed by `cleanup`). */
export const tempDir = (prefix = "effect-omaha-updater-"): string => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix))

/** Deterministic pseudo-random bytes that compress somewhat, like a binary. */
export const binary = (size: number, seed: number): Buffer => {
  const out = Buffer.alloc(Math.ceil(size / 4) * 4)
  const random = Crypto.createHash("sha256").update(`seed ${seed}`).digest()
  let state = random.readUInt32LE(0) | 1
  for (let i = 0; i < size; i += 4) {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    // Every other word is small, so bzip2 has something to squeeze, as in machine code.
    out.writeUInt32LE(((i >> 2) & 1 ? state & 0xff : state) >>> 0, i)
  }
  return out.subarray(0, size)
}

/** SHA-256 hex of bytes. */
export const sha256 = (bytes: Uint8Array): string => Crypto.createHash("sha256").update(bytes).digest("hex")

/** bzip2-compresses bytes with the system command, as choria's update-repo does. */
export const bzip2 = (bytes: Uint8Array): Buffer => execFileSync("bzip2", ["-9", "-c"], { input: bytes, maxBuffer: 1 << 30 })

/**
 * Writes a release the way choria's update-repo lays it out:
 * `<repo>/<version>/<os>/<arch>/<name>-<os>-<arch>-<version>.bz2` and a
 * release.json with the hex hash of the uncompressed binary.
 */
export const choriaRelease = (
  repo: string,
  options: {
    readonly name: string
    readonly version: string
    readonly os?: string
    readonly arch?: string
    readonly bytes: Uint8Array
    readonly payload?: Uint8Array
    readonly release?: Record<string, unknown>
  }
) => {
  const os = options.os ?? "linux"
  const arch = options.arch ?? "amd64"
  const dir = Path.join(repo, options.version, os, arch)
  Fs.mkdirSync(dir, { recursive: true })
  const file = `${options.name}-${os}-${arch}-${options.version}.bz2`
  Fs.writeFileSync(Path.join(dir, file), options.payload ?? bzip2(options.bytes))
  Fs.writeFileSync(
    Path.join(dir, "release.json"),
    JSON.stringify({ binary: file, hash: sha256(options.bytes), ...options.release })
  )
  return { dir, file, path: Path.join(dir, file) }
}

/** A target binary with a mode, in its own directory. */
export const target = (dir: string, bytes: Uint8Array, mode = 0o751): string => {
  const path = Path.join(dir, "tool")
  Fs.writeFileSync(path, bytes)
  Fs.chmodSync(path, mode)
  return path
}

/** The names in a directory, sorted. */
export const listing = (dir: string): Array<string> => Fs.readdirSync(dir).sort()

/** Faults the file server can inject. */
export interface Faults {
  /** Close the connection after this many body bytes of the first payload response only. */
  cutOnceAfter?: number
  /** After this many body bytes of a payload, destroy the connection and stop the server for good. */
  dieAfter?: number
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean
  /** Delay between body chunks in ms (slows downloads for kill tests). */
  chunkDelay?: number
  /** After this many body bytes of a payload, send nothing more and keep the connection open. */
  stallAfter?: number
}

/** A request the server saw. */
export interface Seen {
  readonly url: string
  readonly range: string | undefined
}

/** A loopback static file server over `root`, with Range support and injectable faults. */
export const fileServer = async (root: string, faults: Faults = {}) => {
  const seen: Array<Seen> = []
  let cut = false
  const server = Http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? "/").split("?")[0]!)
    seen.push({ url, range: req.headers.range })
    const path = Path.join(root, Path.normalize(url))
    if (!path.startsWith(root) || !Fs.existsSync(path) || !Fs.statSync(path).isFile()) {
      res.writeHead(404).end("not found")
      return
    }
    const size = Fs.statSync(path).size
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "")
    const start = range !== null && !faults.ignoreRange ? Number(range[1]) : 0
    if (start > 0) {
      res.writeHead(206, { "content-length": size - start, "content-range": `bytes ${start}-${size - 1}/${size}` })
    } else {
      res.writeHead(200, { "content-length": size })
    }
    const isPayload = !url.endsWith(".json")
    const stallAt = isPayload && faults.stallAfter !== undefined ? faults.stallAfter : Infinity
    const limit = isPayload && faults.dieAfter !== undefined
      ? faults.dieAfter
      : isPayload && faults.cutOnceAfter !== undefined && !cut
      ? faults.cutOnceAfter
      : Infinity
    const data = Fs.readFileSync(path).subarray(start)
    let sent = 0
    const step = 64 * 1024
    const pump = () => {
      if (sent >= data.length) return void res.end()
      if (sent >= stallAt) return
      if (sent >= limit) {
        cut = true
        res.socket?.destroy()
        if (faults.dieAfter !== undefined) {
          server.close()
          server.closeAllConnections()
        }
        return
      }
      const n = Math.min(step, data.length - sent, limit - sent, stallAt - sent)
      const ok = res.write(data.subarray(sent, sent + n))
      sent += n
      const next = () => (faults.chunkDelay ? setTimeout(pump, faults.chunkDelay) : setImmediate(pump))
      if (ok) next()
      else res.once("drain", next)
    }
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
        if (!server.listening) resolve()
      })
  }
}
