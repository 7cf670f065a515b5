import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { execFileSync } from "node:child_process"
import * as Zlib from "node:zlib"
import { Compression } from "effect-omaha"
import { binary, bzip2, sha256 } from "./support.js"

const data = binary(300_000, 1)
const bz = bzip2(data)

class Dropped extends Schema.TaggedError<Dropped>()("Dropped", {}) {}

const decoded = (input: Stream.Stream<Uint8Array, Dropped>, name: string, maxBytes = 1 << 30) =>
  Compression.decode(input, { location: "payload", name, maxBytes }).pipe(
    Stream.runCollect,
    Effect.map((chunks) => Buffer.concat(Chunk.toArray(chunks))),
    Effect.either
  )

// Chunks as a network delivers them: small and uneven.
const chunked = (bytes: Uint8Array, size = 7_001) =>
  Stream.fromIterable(Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size)))

describe("Compression", () => {
  it("tells compression by name and by magic bytes", () => {
    expect(Compression.fromName("tool-linux-amd64-1.0.bz2")).toBe("bz2")
    expect(Compression.fromName("update.gz")).toBe("gzip")
    expect(Compression.fromName("tool")).toBeUndefined()
    expect(Compression.sniff(bz)).toBe("bz2")
    expect(Compression.sniff(Zlib.gzipSync(data))).toBe("gzip")
    expect(Compression.sniff(Buffer.from("\x7fELF"))).toBe("none")
    expect(Compression.sniff(Buffer.from("BZh0"))).toBe("none")
  })

  it.live("decodes bzip2, gzip and plain payloads arriving in small chunks", () =>
    Effect.gen(function*() {
      for (const [bytes, name] of [[bz, "t.bz2"], [Zlib.gzipSync(data), "t.gz"], [data, "t"], [bz, "t"]] as const) {
        const result = yield* decoded(chunked(bytes), name)
        expect(result._tag === "Right" && sha256(result.right), name).toBe(sha256(data))
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("fails truncated and corrupt bzip2 with CorruptPayload", () =>
    Effect.gen(function*() {
      const truncated = yield* decoded(chunked(bz.subarray(0, bz.length - 100)), "t.bz2")
      expect(truncated._tag === "Left" && truncated.left).toMatchObject({ _tag: "CorruptPayload", compression: "bz2" })
      const corrupt = Buffer.from(bz)
      corrupt.fill(0x55, 2000, 2100)
      const bad = yield* decoded(chunked(corrupt), "t.bz2")
      expect(bad._tag === "Left" && bad.left._tag).toBe("CorruptPayload")
      const gz = Zlib.gzipSync(data)
      const badGzip = yield* decoded(chunked(gz.subarray(0, gz.length - 50)), "t.gz")
      expect(badGzip._tag === "Left" && badGzip.left).toMatchObject({ _tag: "CorruptPayload", compression: "gzip" })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("refuses a payload whose name and magic bytes disagree", () =>
    Effect.gen(function*() {
      const result = yield* decoded(chunked(data), "t.bz2")
      expect(result._tag === "Left" && result.left.message).toBe("payload: bz2 data is corrupt: named t.bz2 but not bz2 data")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("stops a decompression bomb at the cap", () =>
    Effect.gen(function*() {
      const bomb = bzip2(Buffer.alloc(64 * 1024 * 1024))
      expect(bomb.length).toBeLessThan(100_000)
      const result = yield* decoded(chunked(bomb), "t.bz2", 4 * 1024 * 1024)
      expect(result._tag === "Left" && result.left).toMatchObject({ _tag: "PayloadTooLarge", limit: 4 * 1024 * 1024 })
      const gzipBomb = yield* decoded(chunked(Zlib.gzipSync(Buffer.alloc(16 * 1024 * 1024))), "t.gz", 1024 * 1024)
      expect(gzipBomb._tag === "Left" && gzipBomb.left._tag).toBe("PayloadTooLarge")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("fails with the input's own error when the input breaks off, not with a decoder error", () =>
    Effect.gen(function*() {
      const input = Stream.concat(chunked(bz.subarray(0, 20_000)), Stream.fail(new Dropped()))
      const result = yield* decoded(input, "t.bz2")
      expect(result._tag === "Left" && result.left).toBeInstanceOf(Dropped)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("encodes what it decodes", () =>
    Effect.gen(function*() {
      for (const kind of ["bz2", "gzip", "none"] as const) {
        const encoded = yield* Compression.encode(chunked(data), kind).pipe(Stream.runCollect)
        const bytes = Buffer.concat(Chunk.toArray(encoded))
        expect(Compression.sniff(bytes)).toBe(kind)
        const back = yield* decoded(Stream.make(bytes), `t${Compression.suffix[kind]}`)
        expect(back._tag === "Right" && back.right.equals(data)).toBe(true)
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  describe("the built-in bzip2 decoder (used where the bzip2 command is missing)", () => {
    const builtin = (bytes: Uint8Array, maxBytes = 1 << 30) =>
      Compression.bunzip2(chunked(bytes), (reason) => new Compression.CorruptPayload({ location: "p", compression: "bz2", reason })).pipe(
        Compression.capBytes(maxBytes, () => new Compression.PayloadTooLarge({ location: "p", limit: maxBytes })),
        Stream.runCollect,
        Effect.map((chunks) => Buffer.concat(Chunk.toArray(chunks))),
        Effect.either
      )

    it.effect("decodes what the system bzip2 writes: many blocks, long runs, empty input, concatenated streams", () =>
      Effect.gen(function*() {
        const runs = Buffer.concat([Buffer.alloc(70_000, 7), Buffer.from("xyzzy"), Buffer.alloc(3, 1), Buffer.alloc(255 + 4, 2)])
        for (
          const [name, plain, level] of [
            ["binary, 4 blocks", binary(350_000, 3), 1],
            ["runs", runs, 9],
            ["empty", Buffer.alloc(0), 9]
          ] as const
        ) {
          const compressed = execFileSync("bzip2", [`-${level}`, "-c"], { input: plain })
          const result = yield* builtin(compressed)
          expect(result._tag === "Right" && result.right.equals(plain), name).toBe(true)
        }
        const two = Buffer.concat([bzip2(Buffer.from("one ")), bzip2(Buffer.from("two"))])
        const joined = yield* builtin(two)
        expect(joined._tag === "Right" && joined.right.toString()).toBe("one two")
      }))

    it.effect("reports truncated, corrupt and foreign data, and stops a bomb at the cap", () =>
      Effect.gen(function*() {
        const reasons: Array<string> = []
        const corrupt = Buffer.from(bz)
        corrupt.fill(0x55, 2000, 2100)
        for (const input of [bz.subarray(0, bz.length - 100), corrupt, Buffer.from("BZh9 but not really"), Buffer.concat([bz, Buffer.from("junk")])]) {
          const result = yield* builtin(input)
          reasons.push(result._tag === "Left" ? result.left.message : "decoded")
        }
        expect(reasons).toEqual([
          "p: bz2 data is corrupt: truncated",
          // Where the damage lands decides which check catches it first.
          expect.stringMatching(/^p: bz2 data is corrupt: (block CRC mismatch|bad Huffman code( length)?|bad selector)$/),
          "p: bz2 data is corrupt: bad block header",
          "p: bz2 data is corrupt: trailing data after the end of the stream"
        ])
        const bomb = yield* builtin(bzip2(Buffer.alloc(64 * 1024 * 1024)), 4 * 1024 * 1024)
        expect(bomb._tag === "Left" && bomb.left._tag).toBe("PayloadTooLarge")
      }))
  })
})
