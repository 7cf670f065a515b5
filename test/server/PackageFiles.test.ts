import { FileSystem, HttpRouter, HttpServer } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import { NodeContext, NodeHttpServer } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { PackageFiles, Updater } from "effect-omaha"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { eventually, openDescriptors, pipelinedThenClosed, raw, send, startServer } from "./support.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-omaha-files-"))
const payload = Crypto.randomBytes(3 * 1024 * 1024 + 123)
const payloadPath = Path.join(dir, "payload.bin")
Fs.writeFileSync(payloadPath, payload)
Fs.writeFileSync(Path.join(dir, "secret.txt"), "not for you")
const emptyPath = Path.join(dir, "empty.bin")
Fs.writeFileSync(emptyPath, "")
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const withFiles = <A>(f: (base: string, files: PackageFiles.PackageFiles) => Effect.Effect<A, unknown>) =>
  Effect.gen(function*() {
    const files = yield* PackageFiles.make([
      { name: "update.gz", path: payloadPath },
      { name: "empty.gz", path: emptyPath }
    ])
    const { base } = yield* startServer({ packages: files }, Updater.layerNoUpdate)
    return yield* f(base, files)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const call = <A>(promise: () => Promise<A>) => Effect.promise(promise)
const get = (base: string, headers: Record<string, string> = {}, method = "GET", path = "/packages/update.gz") =>
  call(() => send(base, { method, path, headers }))

describe("parseRange", () => {
  it("reads single, open-ended and suffix ranges", () => {
    expect(PackageFiles.parseRange(undefined, 100)).toEqual({ _tag: "Whole" })
    expect(PackageFiles.parseRange("bytes=0-9", 100)).toEqual({ _tag: "Part", start: 0, end: 9 })
    expect(PackageFiles.parseRange("bytes=90-", 100)).toEqual({ _tag: "Part", start: 90, end: 99 })
    expect(PackageFiles.parseRange("bytes=90-1000", 100)).toEqual({ _tag: "Part", start: 90, end: 99 })
    expect(PackageFiles.parseRange("bytes=-10", 100)).toEqual({ _tag: "Part", start: 90, end: 99 })
    expect(PackageFiles.parseRange("bytes=-1000", 100)).toEqual({ _tag: "Part", start: 0, end: 99 })
  })

  it("refuses ranges past the end and ignores what it cannot serve as one range", () => {
    expect(PackageFiles.parseRange("bytes=100-", 100)).toEqual({ _tag: "Unsatisfiable" })
    expect(PackageFiles.parseRange("bytes=-0", 100)).toEqual({ _tag: "Unsatisfiable" })
    expect(PackageFiles.parseRange("bytes=0-", 0)).toEqual({ _tag: "Unsatisfiable" })
    for (const ignored of ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=-", "bytes=a-b", "0-1"]) {
      expect(PackageFiles.parseRange(ignored, 100), ignored).toEqual({ _tag: "Whole" })
    }
  })
})

describe("PackageFiles", () => {
  it.live("serves the whole file with its validators and no content encoding", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const reply = yield* get(base, { "accept-encoding": "gzip, br" })
        expect(reply.status).toBe(200)
        expect(reply.body.equals(payload)).toBe(true)
        expect(reply.headers["content-length"]).toBe(String(payload.length))
        expect(reply.headers["content-encoding"]).toBeUndefined()
        expect(reply.headers["accept-ranges"]).toBe("bytes")
        expect(reply.headers["content-type"]).toBe("application/octet-stream")
        expect(reply.headers["etag"]).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/)
        expect(new Date(reply.headers["last-modified"]!).getTime()).toBe(
          Math.floor(Fs.statSync(payloadPath).mtimeMs / 1000) * 1000
        )
        const head = yield* get(base, {}, "HEAD")
        expect(head.status).toBe(200)
        expect(head.body.length).toBe(0)
        expect(head.headers["content-length"]).toBe(String(payload.length))
        expect(head.headers["etag"]).toBe(reply.headers["etag"])
      })
    ))

  it.live("serves byte ranges with 206 and refuses unsatisfiable ones with 416", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const size = payload.length
        const cases: Array<[string, number, number]> = [
          ["bytes=0-0", 0, 0],
          ["bytes=1000-2047", 1000, 2047],
          [`bytes=${size - 10}-`, size - 10, size - 1],
          ["bytes=-5", size - 5, size - 1],
          ["bytes=1048570-", 1048570, size - 1]
        ]
        for (const [range, start, end] of cases) {
          const reply = yield* get(base, { range })
          expect(reply.status, range).toBe(206)
          expect(reply.headers["content-range"], range).toBe(`bytes ${start}-${end}/${size}`)
          expect(reply.headers["content-length"], range).toBe(String(end - start + 1))
          expect(reply.body.equals(payload.subarray(start, end + 1)), range).toBe(true)
        }
        const past = yield* get(base, { range: `bytes=${size}-` })
        expect(past.status).toBe(416)
        expect(past.headers["content-range"]).toBe(`bytes */${size}`)
        const several = yield* get(base, { range: "bytes=0-1,3-4" })
        expect(several.status).toBe(200)
        expect(several.body.length).toBe(size)
      })
    ))

  it.live("delivers every byte to many concurrent readers of irregular pace (buffers are reused per download)", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const slowRead = (index: number) =>
          new Promise<Buffer>((resolve, reject) => {
            Http.get(new URL("/packages/update.gz", base), { agent: false }, (res) => {
              const chunks: Array<Buffer> = []
              let n = 0
              res.on("data", (c: Buffer) => {
                chunks.push(c)
                // Every few chunks, some readers stop for a moment, so
                // the server sees backpressure at different points.
                if (index % 3 !== 0 && ++n % (2 + index) === 0) {
                  res.pause()
                  setTimeout(() => res.resume(), 3 + (index % 5))
                }
              })
              res.on("end", () => resolve(Buffer.concat(chunks)))
              res.on("error", reject)
            }).on("error", reject)
          })
        const bodies = yield* call(() => Promise.all(Array.from({ length: 12 }, (_, i) => slowRead(i))))
        for (const [i, body] of bodies.entries()) expect(body.equals(payload), `reader ${i}`).toBe(true)
      })
    ))

  it.live("puts exactly Content-Length bytes on the wire for a range, keeping the connection usable", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const request = "GET /packages/update.gz HTTP/1.1\r\nHost: x\r\nRange: bytes=10-14\r\n\r\n"
        const wire = yield* call(() => raw(base, request + request))
        const text = wire.toString("latin1")
        const responses = text.split("HTTP/1.1 206 ").slice(1)
        expect(responses.length).toBe(2)
        const expected = payload.subarray(10, 15).toString("latin1")
        for (const response of responses) {
          const [, body] = response.split("\r\n\r\n", 2)
          expect(body!.startsWith(expected)).toBe(true)
        }
        const afterLast = text.slice(text.lastIndexOf("\r\n\r\n") + 4)
        expect(afterLast).toBe(expected)
      })
    ))

  it.live("answers pipelined requests in order, each whole", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const request = (extra: string) => `GET /packages/update.gz HTTP/1.1\r\nHost: x\r\n${extra}\r\n`
        const wire = yield* call(() =>
          raw(base, request("") + request("Range: bytes=5-9\r\n") + request("") + "HEAD /packages/update.gz HTTP/1.1\r\nHost: x\r\n\r\n")
        )
        const answers: Array<[string, Buffer]> = []
        let rest = wire
        while (rest.length > 0) {
          const end = rest.indexOf("\r\n\r\n")
          const head = rest.subarray(0, end).toString("latin1")
          // The fourth is the HEAD: its Content-Length has no body behind it.
          const length = answers.length === 3 ? 0 : Number(/content-length: (\d+)/i.exec(head)![1])
          answers.push([head.split("\r\n", 1)[0]!, rest.subarray(end + 4, end + 4 + length)])
          rest = rest.subarray(end + 4 + length)
        }
        expect(answers.map(([status]) => status)).toEqual([
          "HTTP/1.1 200 OK",
          "HTTP/1.1 206 Partial Content",
          "HTTP/1.1 200 OK",
          "HTTP/1.1 200 OK"
        ])
        expect(answers[0]![1].equals(payload)).toBe(true)
        expect(answers[1]![1].equals(payload.subarray(5, 10))).toBe(true)
        expect(answers[2]![1].equals(payload)).toBe(true)
        expect(answers[3]![1].length).toBe(0)
      })
    ))

  it.live("honours If-Range and If-None-Match", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const { headers } = yield* get(base, {}, "HEAD")
        const etag = headers["etag"]!
        expect((yield* get(base, { range: "bytes=0-9", "if-range": etag })).status).toBe(206)
        expect((yield* get(base, { range: "bytes=0-9", "if-range": headers["last-modified"]! })).status).toBe(206)
        const stale = yield* get(base, { range: "bytes=0-9", "if-range": "\"other\"" })
        expect(stale.status).toBe(200)
        expect(stale.body.length).toBe(payload.length)
        expect((yield* get(base, { "if-none-match": etag })).status).toBe(304)
        expect((yield* get(base, { "if-none-match": "\"other\"" })).status).toBe(200)
      })
    ))

  it.live("serves registered names only: 404 for anything else, 405 for other methods", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const probes = [
          "/packages/secret.txt",
          "/packages/../secret.txt",
          "/packages/%2e%2e%2fsecret.txt",
          "/packages/..%2fpayload.bin",
          "/packages/payload.bin",
          "/packages/update.gz/",
          "/packages/update.gz%00",
          "/packages/%E0%A4%A",
          "/packages/",
          "/update.gz",
          payloadPath
        ]
        for (const path of probes) {
          const reply = yield* call(() => send(base, { path }))
          expect(reply.status, path).toBe(404)
          expect(reply.body.includes(Buffer.from("not for you")), path).toBe(false)
        }
        const traversal = yield* call(() => raw(base, "GET /packages/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"))
        expect(traversal.toString("latin1")).toMatch(/^HTTP\/1\.1 404 /)
        for (const method of ["POST", "PUT", "DELETE"]) {
          const reply = yield* get(base, {}, method)
          expect(reply.status, method).toBe(405)
          expect(reply.headers["allow"]).toBe("GET, HEAD")
        }
        const query = yield* call(() => send(base, { path: "/packages/update.gz?x=1" }))
        expect(query.status).toBe(200)
      })
    ))

  it.live("serves an empty file, whose every range is unsatisfiable", () =>
    withFiles((base) =>
      Effect.gen(function*() {
        const whole = yield* get(base, {}, "GET", "/packages/empty.gz")
        expect([whole.status, whole.body.length, whole.headers["content-length"]]).toEqual([200, 0, "0"])
        expect((yield* get(base, { range: "bytes=0-" }, "GET", "/packages/empty.gz")).status).toBe(416)
      })
    ))

  it.live("refuses to serve a payload that changed on disk since it was registered", () =>
    Effect.gen(function*() {
      const path = Path.join(dir, "changing.bin")
      Fs.writeFileSync(path, "version one")
      const files = yield* PackageFiles.make([{ name: "c.gz", path }])
      const { base } = yield* startServer({ packages: files }, Updater.layerNoUpdate)
      expect((yield* call(() => send(base, { path: "/packages/c.gz" }))).text).toBe("version one")
      Fs.writeFileSync(path, "version two, longer")
      const reply = yield* call(() => send(base, { path: "/packages/c.gz" }))
      expect(reply.status).toBe(503)
      expect(reply.text).toMatch(/changed on disk/)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  it.effect("refuses bad names and unreadable files when registering", () =>
    Effect.gen(function*() {
      for (const name of ["", ".hidden", "a/b", "..", "a\\b", "x\ny"]) {
        const error = yield* Effect.flip(PackageFiles.make([{ name, path: payloadPath }]))
        expect(error._tag, name).toBe("InvalidPackageName")
      }
      const missing = yield* Effect.flip(PackageFiles.make([{ name: "u.gz", path: Path.join(dir, "nope") }]))
      expect(missing._tag).toBe("PackageFileUnavailable")
      expect(missing.message).toMatch(/^cannot serve .*nope: /)
      const directory = yield* Effect.flip(PackageFiles.make([{ name: "u.gz", path: dir }]))
      expect(directory.message).toMatch(/not a regular file \(directory\)/)
    }).pipe(Effect.provide(NodeContext.layer)))
})

// The body a client got, and whether it arrived whole; "no end" when the
// connection neither completed nor closed within a few seconds.
const download = (url: URL) =>
  new Promise<{ status: number; bytes: number; complete: boolean } | "no end">((resolve) => {
    const timer = setTimeout(() => resolve("no end"), 4_000)
    Http.get(url, { agent: false }, (res) => {
      let bytes = 0
      res.on("data", (c: Buffer) => (bytes += c.length))
      res.on("close", () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, bytes, complete: res.complete })
      })
      res.on("error", () => {})
    }).on("error", () => {})
  })

describe("PackageFiles resources", () => {
  it.live("releases the file and buffers of pipelined requests whose connection closes early", () =>
    withFiles((base, files) =>
      Effect.gen(function*() {
        yield* call(() =>
          pipelinedThenClosed(base, { path: "/packages/update.gz", connections: 20, requests: 5, readBytes: 64 * 1024 })
        )
        expect(yield* call(() => eventually(() => openDescriptors("self", payloadPath) === 0))).toBe(true)
        expect(yield* files.inFlight).toBe(0)
        // Still serving, every byte.
        expect((yield* get(base)).body.equals(payload)).toBe(true)
      })
    ))

  it.live("does the same as an HttpApp in an @effect/platform router", () =>
    Effect.gen(function*() {
      const files = yield* PackageFiles.make([{ name: "update.gz", path: payloadPath }])
      const router = HttpRouter.empty.pipe(HttpRouter.get("/packages/*", files.app))
      const context = yield* Layer.build(
        HttpServer.serve(router).pipe(
          Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), { host: "127.0.0.1", port: 0 }))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.die("expected a TCP address")
      const base = `http://127.0.0.1:${address.port}`
      const ranged = yield* get(base, { range: "bytes=10-19" })
      expect([ranged.status, ranged.body.equals(payload.subarray(10, 20))]).toEqual([206, true])
      yield* call(() =>
        pipelinedThenClosed(base, { path: "/packages/update.gz", connections: 20, requests: 5, readBytes: 64 * 1024 })
      )
      expect(yield* call(() => eventually(() => openDescriptors("self", payloadPath) === 0))).toBe(true)
      expect(yield* files.inFlight).toBe(0)
      expect((yield* get(base)).body.equals(payload)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))

  // A file system whose opens can be made to fail with EMFILE, and whose
  // files can fail a read after some good ones.
  const faults = { openFails: false, goodReads: Infinity }
  const systemError = (method: string, pathOrDescriptor: string | number, description: string) =>
    new SystemError({ reason: "Unknown", module: "FileSystem", method, syscall: method, pathOrDescriptor, description })
  const failingReads = (file: FileSystem.File): FileSystem.File => {
    let reads = 0
    return {
      [FileSystem.FileTypeId]: FileSystem.FileTypeId,
      fd: file.fd,
      stat: file.stat,
      sync: file.sync,
      seek: (offset, from) => file.seek(offset, from),
      read: (buffer) =>
        reads++ < faults.goodReads ? file.read(buffer) : Effect.fail(systemError("read", file.fd, "EIO: i/o error, read")),
      readAlloc: (size) => file.readAlloc(size),
      truncate: (length) => file.truncate(length),
      write: (buffer) => file.write(buffer),
      writeAll: (buffer) => file.writeAll(buffer)
    }
  }
  const faultyFileSystem = Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => ({
      ...fs,
      open: (path, options) =>
        faults.openFails
          ? Effect.fail(systemError("open", path, `EMFILE: too many open files, open '${path}'`))
          : Effect.map(fs.open(path, options), failingReads)
    }))
  ).pipe(Layer.provide(NodeContext.layer))

  const withFaults = <A>(f: (base: string, logs: Array<{ level: string; message: unknown }>) => Effect.Effect<A, unknown>) =>
    Effect.gen(function*() {
      faults.openFails = false
      faults.goodReads = Infinity
      const files = yield* PackageFiles.make([{ name: "update.gz", path: payloadPath }])
      const { base, logs } = yield* startServer({ packages: files }, Updater.layerNoUpdate)
      return yield* f(base, logs.lines)
    }).pipe(Effect.scoped, Effect.provide(faultyFileSystem))

  it.live("answers 503 with Retry-After, and logs it, when the payload cannot be opened (EMFILE)", () =>
    withFaults((base, logs) =>
      Effect.gen(function*() {
        faults.openFails = true
        const reply = yield* get(base)
        expect(reply.status).toBe(503)
        expect(reply.headers["retry-after"]).toBeDefined()
        expect(reply.text).toMatch(/cannot be read right now/)
        expect(logs.some((l) => l.level === "ERROR" && String(l.message).includes("too many open files (EMFILE)"))).toBe(
          true
        )
        faults.openFails = false
        expect((yield* get(base)).body.equals(payload)).toBe(true)
      })
    ))

  it.live("cuts the connection, and logs it, when a read fails part way through the body", () =>
    withFaults((base, logs) =>
      Effect.gen(function*() {
        faults.goodReads = 1
        const got = yield* call(() => download(new URL("/packages/update.gz", base)))
        expect(got).not.toBe("no end")
        if (got === "no end") return
        expect(got.status).toBe(200)
        expect(got.complete).toBe(false)
        expect(got.bytes).toBeLessThan(payload.length)
        expect(
          logs.some((l) => l.level === "ERROR" && /failed while it was served: .*EIO/.test(String(l.message)))
        ).toBe(true)
        // The file is closed just after the connection is cut.
        expect(yield* call(() => eventually(() => openDescriptors("self", payloadPath) === 0))).toBe(true)
      })
    ))
})

describe("PackageFiles.fromResolver", () => {
  const blob = (content: Buffer) => {
    const hex = Crypto.createHash("sha256").update(content).digest("hex")
    const path = Path.join(dir, `blob-${hex}`)
    Fs.writeFileSync(path, content)
    return { hex, path, size: content.length }
  }
  const first = blob(Crypto.randomBytes(2 * 1024 * 1024 + 5))
  const secondBytes = Buffer.from("a small payload\n")
  const second = blob(secondBytes)

  // A lookup table behind a service, as a database would be.
  class Table extends Context.Tag("test/Table")<Table, ReadonlyMap<string, PackageFiles.Payload>>() {}
  const table = new Map<string, PackageFiles.Payload>([
    [`${first.hex}/update.gz`, { path: first.path, size: first.size, etag: first.hex }],
    [`${second.hex}/tool`, { path: second.path, size: second.size }],
    ["flat.bin", { path: second.path, size: second.size }]
  ])

  const withResolved = <A>(
    f: (base: string, asked: Array<string>, logs: Array<{ level: string; message: unknown }>) => Effect.Effect<A, unknown>,
    entries: ReadonlyMap<string, PackageFiles.Payload> = table
  ) =>
    Effect.gen(function*() {
      const asked: Array<string> = []
      const files = yield* PackageFiles.fromResolver((path) =>
        Effect.gen(function*() {
          asked.push(path)
          if (path === "broken/db") return yield* Effect.fail("the database is down")
          return Option.fromNullable((yield* Table).get(path))
        })
      ).pipe(Effect.provideService(Table, entries))
      const { base, logs } = yield* startServer({ packages: files }, Updater.layerNoUpdate)
      return yield* f(base, asked, logs.lines)
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

  it.live("serves what the resolver finds, with ranges, validators and no content encoding", () =>
    withResolved((base, asked) =>
      Effect.gen(function*() {
        const path = `/packages/${first.hex}/update.gz`
        const whole = yield* get(base, { "accept-encoding": "gzip, br" }, "GET", path)
        expect(whole.status).toBe(200)
        expect(whole.body.equals(Fs.readFileSync(first.path))).toBe(true)
        expect(whole.headers["content-encoding"]).toBeUndefined()
        expect(whole.headers["etag"]).toBe(`"${first.hex}"`)
        expect(whole.headers["content-length"]).toBe(String(first.size))
        const head = yield* get(base, {}, "HEAD", path)
        expect([head.status, head.body.length, head.headers["etag"]]).toEqual([200, 0, `"${first.hex}"`])
        const part = yield* get(base, { range: "bytes=100-199", "if-range": `"${first.hex}"` }, "GET", path)
        expect(part.status).toBe(206)
        expect(part.headers["content-range"]).toBe(`bytes 100-199/${first.size}`)
        expect(part.body.equals(Fs.readFileSync(first.path).subarray(100, 200))).toBe(true)
        expect((yield* get(base, { range: "bytes=0-9", "if-range": "\"stale\"" }, "GET", path)).status).toBe(200)
        expect((yield* get(base, { "if-none-match": `"${first.hex}"` }, "GET", path)).status).toBe(304)
        expect((yield* get(base, { range: `bytes=${first.size}-` }, "GET", path)).status).toBe(416)

        const other = yield* get(base, {}, "GET", `/packages/${second.hex}/tool`)
        expect([other.status, other.text]).toEqual([200, secondBytes.toString()])
        // Without a tag from the resolver, one from the size and modification time.
        expect(other.headers["etag"]).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/)
        expect((yield* get(base, {}, "GET", "/packages/flat.bin")).text).toBe(secondBytes.toString())
        // Percent-encoding is decoded before the lookup.
        expect((yield* get(base, {}, "GET", `/packages/${first.hex}%2Fupdate.gz`)).status).toBe(200)

        expect((yield* get(base, {}, "GET", `/packages/${second.hex}/update.gz`)).status).toBe(404)
        expect((yield* get(base, {}, "DELETE", path)).status).toBe(405)
        expect(asked).toContain(`${first.hex}/update.gz`)
        expect(asked).toContain(`${second.hex}/update.gz`)
      })
    ))

  it.live("refuses hostile paths with 404 without asking the resolver", () =>
    withResolved((base, asked) =>
      Effect.gen(function*() {
        const hex = first.hex
        const probes = [
          "/packages/",
          "/packages/..",
          `/packages/../${hex}/update.gz`,
          `/packages/${hex}/../update.gz`,
          `/packages/${hex}/..%2Fupdate.gz`,
          `/packages/%2e%2e%2f${hex}/update.gz`,
          `/packages/${hex}//update.gz`,
          `/packages//${hex}/update.gz`,
          `/packages/${hex}/`,
          `/packages/${hex}/update.gz/`,
          `/packages/${hex}/update.gz/more`,
          `/packages/.git/config`,
          `/packages/${hex}/.update.gz`,
          `/packages/${hex}%5Cupdate.gz`,
          `/packages/${hex}/update.gz%00`,
          `/packages/${hex}/update%0A.gz`,
          `/packages/${hex}/update%7F.gz`,
          "/packages/%E0%A4%A"
        ]
        for (const path of probes) {
          const reply = yield* call(() => raw(base, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
          expect(reply.toString("latin1"), path).toMatch(/^HTTP\/1\.1 404 /)
        }
        expect(asked).toEqual([])
      })
    ))

  it.live("refuses with 503 a file whose size is not the one resolved, and a lookup that fails", () =>
    withResolved(
      (base, _, logs) =>
        Effect.gen(function*() {
          const changed = yield* get(base, {}, "GET", `/packages/${first.hex}/update.gz`)
          expect(changed.status).toBe(503)
          expect(changed.text).toMatch(/changed on disk/)
          expect(logs.some((l) => l.level === "ERROR" && String(l.message).includes(first.path))).toBe(true)
          const failed = yield* get(base, {}, "GET", "/packages/broken/db")
          expect(failed.status).toBe(503)
          expect(logs.some((l) => l.level === "ERROR" && String(l.message).includes("cannot look up payload broken/db"))).toBe(
            true
          )
          expect((yield* get(base, {}, "GET", `/packages/${second.hex}/tool`)).status).toBe(200)
        }),
      new Map([
        [`${first.hex}/update.gz`, { path: first.path, size: first.size + 1 }],
        [`${second.hex}/tool`, { path: second.path, size: second.size }]
      ])
    ))
})
