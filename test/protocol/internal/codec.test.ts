import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, Equal, FastCheck, Schema, Utils } from "effect"
import { Request, Response, Xml } from "effect-omaha"
import * as Codec from "../../../src/protocol/internal/codec.js"
import * as Document from "../../../src/protocol/internal/document.js"
import * as Fast from "../../../src/protocol/internal/fast.js"
import { invalid } from "../../../src/protocol/internal/wire.js"
import { readFixture, xmlFixtures } from "../../fixtures.js"

const runs = 1_000

// The first place where two values differ in anything a caller could see:
// prototypes, own keys and their order, -0, array lengths; undefined when none.
const difference = (a: unknown, b: unknown, at = "$"): string | undefined => {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return Object.is(a, b) ? undefined : `${at}: ${String(a)} <> ${String(b)}`
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${at}: different prototypes`
  const keysA = Reflect.ownKeys(a)
  const keysB = Reflect.ownKeys(b)
  if (keysA.join() !== keysB.join()) return `${at}: keys ${keysA.join()} <> ${keysB.join()}`
  for (const key of keysA) {
    const d = difference((a as Record<PropertyKey, unknown>)[key], (b as Record<PropertyKey, unknown>)[key], `${at}.${String(key)}`)
    if (d !== undefined) return d
  }
  return undefined
}

const expectSame = (fast: unknown, bySchema: unknown) => {
  expect(difference(fast, bySchema)).toBeUndefined()
  expect(fast).toStrictEqual(bySchema)
  expect(Utils.structuralRegion(() => Equal.equals(fast, bySchema))).toBe(true)
}

interface Kind<A> {
  readonly name: string
  readonly schema: Schema.Schema<A, any>
  readonly document: Document.Document
  readonly codec: Codec.Codec<A>
  readonly fast: Fast.Fast
}

const kind = <A>(name: string, schema: Schema.Schema<A, any>, document: Document.Document, codec: Codec.Codec<A>): Kind<A> => {
  const fast = Fast.compile(schema.ast)
  if (fast === undefined) throw new Error(`${name}: no fast path`)
  return { name, schema, document, codec, fast }
}

const kinds = [
  kind("request", Request.Request, Document.requestDocument, Codec.request),
  kind("response", Response.Response, Document.responseDocument, Codec.response)
] as ReadonlyArray<Kind<unknown>>

// Every place in an encoded object (attributes, text, elements, lists), as key paths.
const placesOf = (value: unknown, at: ReadonlyArray<string | number> = []): Array<ReadonlyArray<string | number>> => {
  if (typeof value !== "object" || value === null) return []
  const places: Array<ReadonlyArray<string | number>> = []
  for (const [key, v] of Object.entries(value)) {
    const here = [...at, Array.isArray(value) ? Number(key) : key]
    places.push(here, ...placesOf(v, here))
  }
  return places
}

// A deep copy of a plain encoded object with the value at `place` replaced (or deleted).
const replaceAt = (value: unknown, place: ReadonlyArray<string | number>, next: unknown, remove: boolean): unknown => {
  if (place.length === 0) return next
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) }
  const [key, ...rest] = place
  if (rest.length === 0 && remove) {
    if (Array.isArray(copy)) copy.splice(key as number, 1)
    else delete copy[key!]
  } else {
    copy[key!] = replaceAt(copy[key!], rest, next, remove)
  }
  return copy
}

// Values a field can be given instead of its own: some valid for some fields.
const attributeValues = ["x", "", " 1", "1.5", "-1", "0", "1", "2", "true", "True", "maybe", "ok", "noupdate", "error-hash", "99999999999999999999", "&amp;"]
const junk = [...attributeValues, "a\u0000", "\uFFFE", 1, -0, true, null, undefined, {}, [], [{}], { x: "1" }]

const mutation = (values: ReadonlyArray<unknown>) =>
  FastCheck.record({ pick: FastCheck.nat(), value: FastCheck.constantFrom(...values), remove: FastCheck.boolean() })

const mutate = (encoded: unknown, m: { pick: number; value: unknown; remove: boolean }, attributesOnly: boolean) => {
  const places = placesOf(encoded).filter((place) => {
    if (!attributesOnly) return true
    let v: any = encoded
    for (const key of place) v = v[key]
    return typeof v === "string"
  })
  if (places.length === 0) return encoded
  return replaceAt(encoded, places[m.pick % places.length]!, m.value, m.remove)
}

for (const k of kinds) {
  const arbitrary = Arbitrary.make(k.schema)
  const encodeBySchema = Schema.encodeSync(k.schema)
  const decodeBySchema = Schema.decodeUnknownEither(k.schema)

  describe(`${k.name}: the fast path gives the schema's results`, () => {
    it("decodes the encoded object of every generated value, as the schema does", () => {
      let checked = 0
      FastCheck.assert(
        FastCheck.property(arbitrary, (value) => {
          const encoded = encodeBySchema(value)
          const fast = k.fast.decode(encoded)
          expect(fast).not.toBe(invalid)
          expectSame(fast, Either.getOrThrow(decodeBySchema(encoded)))
          checked++
        }),
        { numRuns: runs }
      )
      expect(checked).toBe(runs)
    })

    it("gives up exactly where the schema fails, on encoded objects with a wrong value or a missing key", () => {
      let failures = 0
      FastCheck.assert(
        FastCheck.property(arbitrary, mutation(junk), (value, m) => {
          const encoded = mutate(encodeBySchema(value), m, false)
          const fast = k.fast.decode(encoded)
          const bySchema = decodeBySchema(encoded)
          if (Either.isLeft(bySchema)) {
            failures++
            expect(fast).toBe(invalid)
          } else {
            expect(fast).not.toBe(invalid)
            expectSame(fast, bySchema.right)
          }
        }),
        { numRuns: runs }
      )
      // The mutations must reach the schema's errors often enough to mean something.
      expect(failures).toBeGreaterThan(runs / 10)
    })

    it("decodes documents with a wrong attribute value to the schema's value, warnings or error", () => {
      // Refused, or read with a value given up: the outcomes the mutations are for.
      let failures = 0
      FastCheck.assert(
        FastCheck.property(arbitrary, mutation(attributeValues), (value, m) => {
          const encoded = mutate(encodeBySchema(value), m, true) as Record<string, unknown>
          const xml = Document.writeDocument(k.document, encoded)
          const fast = k.codec.read(xml, Xml.defaultLimits)
          const bySchema = k.codec.readBySchema(xml, Xml.defaultLimits)
          expect(fast._tag).toBe(bySchema._tag)
          if (Either.isLeft(bySchema)) {
            failures++
            expect(fast).toStrictEqual(bySchema)
          } else {
            if (bySchema.right.warnings.length > 0) failures++
            expect(Either.getOrThrow(fast).warnings).toStrictEqual(bySchema.right.warnings)
            expectSame(Either.getOrThrow(fast).value, bySchema.right.value)
          }
        }),
        { numRuns: runs }
      )
      expect(failures).toBeGreaterThan(runs / 10)
    })

    it("encodes every generated value to the schema's encoded object and document", () => {
      FastCheck.assert(
        FastCheck.property(arbitrary, (value) => {
          const fast = k.fast.encode(value)
          expect(fast).not.toBe(invalid)
          expect(difference(fast, encodeBySchema(value))).toBeUndefined()
          expect(k.codec.encode(value)).toStrictEqual(k.codec.encodeBySchema(value))
        }),
        { numRuns: runs }
      )
    })

    it("encodes values built without validation to the schema's document or error", () => {
      // The same mutations applied to the decoded side: rebuilt as instances
      // (or left as plain objects) without the constructor's checks.
      const rebuild = (encoded: unknown, like: unknown): unknown => {
        if (Array.isArray(like) && Array.isArray(encoded)) return encoded.map((v, i) => rebuild(v, like[i] ?? like[0]))
        if (typeof like !== "object" || like === null || typeof encoded !== "object" || encoded === null) return encoded
        const out = Object.create(Object.getPrototypeOf(like))
        for (const [key, v] of Object.entries(encoded)) out[key] = rebuild(v, (like as Record<string, unknown>)[key])
        return out
      }
      let failures = 0
      FastCheck.assert(
        FastCheck.property(arbitrary, mutation(junk), FastCheck.boolean(), (value, m, asInstance) => {
          const plain = JSON.parse(JSON.stringify(value, (_, v) => (v === undefined ? "\u0000undefined" : v)), (_, v) =>
            v === "\u0000undefined" ? undefined : v)
          const mutated = mutate(plain, m, false)
          const candidate = asInstance ? rebuild(mutated, value) : mutated
          const bySchema = k.codec.encodeBySchema(candidate)
          if (Either.isLeft(bySchema)) failures++
          expect(k.codec.encode(candidate)).toStrictEqual(bySchema)
        }),
        { numRuns: runs }
      )
      expect(failures).toBeGreaterThan(runs / 10)
    })
  })
}

describe("fixtures take the fast path", () => {
  const good = xmlFixtures("omaha").filter((name) => !name.startsWith("omaha/malformed/"))
  for (const name of good) {
    it(`${name}: fast and schema agree in both directions`, () => {
      const k = kinds.find((k) => name.includes(k.name))!
      const xml = readFixture(name)
      const encoded = Either.getOrThrow(Document.parseDocument(k.document, xml, Xml.defaultLimits))
      const fast = k.fast.decode(encoded)
      expect(fast).not.toBe(invalid)
      const bySchema = Either.getOrThrow(k.codec.decodeBySchema(xml, Xml.defaultLimits))
      expectSame(fast, bySchema)
      expect(k.fast.encode(bySchema)).not.toBe(invalid)
      expect(k.codec.encode(bySchema)).toStrictEqual(k.codec.encodeBySchema(bySchema))
    })
  }

  it("sorts fixtures by document kind", () => {
    expect(good.every((name) => kinds.some((k) => name.includes(k.name)))).toBe(true)
  })
})
