// The fast path builds protocol instances without their constructors: an
// instance is the class's prototype and the decoded fields. That is right
// only while a constructor would add, drop or check nothing; these tests
// fail as soon as a protocol class gains a constructor, a field initialiser,
// a method or a transformation that the trusted construction would skip.
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Equal, FastCheck, Schema, SchemaAST, Utils } from "effect"
import * as RequestModule from "../../../src/protocol/Request.js"
import * as ResponseModule from "../../../src/protocol/Response.js"
import * as Fast from "../../../src/protocol/internal/fast.js"
import { invalid, optional, XmlText } from "../../../src/protocol/internal/wire.js"

type AnyClass = Schema.Schema.AnyNoContext & (new(props: any, options?: boolean) => object) & { readonly fields: Schema.Struct.Fields }

const isClass = (u: unknown): u is AnyClass =>
  typeof u === "function" && Schema.isSchema(u) && "fields" in u && typeof (u as { prototype?: unknown }).prototype === "object"

const classes = [...Object.entries(RequestModule), ...Object.entries(ResponseModule)].flatMap(([name, u]) =>
  isClass(u) ? [[name, u] as const] : []
)

// Own keys in order, prototype and values: what a caller of an instance can see.
const sameInstance = (a: object, b: object) => {
  expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b))
  expect(Reflect.ownKeys(a)).toEqual(Reflect.ownKeys(b))
  expect(a).toStrictEqual(b)
  expect(Utils.structuralRegion(() => Equal.equals(a, b))).toBe(true)
}

describe("trusted construction of protocol instances", () => {
  it("covers every class of the Request and Response modules", () => {
    expect(classes.map(([name]) => name).sort()).toEqual([
      "Ack", "Action", "AppRequest", "AppResponse", "DataRequest", "DataResponse", "DayStart", "EventRequest",
      "Hardware", "Manifest", "Metadata", "Os", "Package", "PingRequest", "Request", "Response", "UpdateRequest",
      "UpdateResponse", "Url"
    ])
  })

  for (const [name, Class] of classes) {
    describe(name, () => {
      it("has no constructor, field initialiser, method or accessor of its own", () => {
        expect(Object.getOwnPropertyNames(Class.prototype)).toEqual(["constructor"])
        expect(Object.getOwnPropertySymbols(Class.prototype)).toEqual([])
        expect(/\bconstructor\s*\(/.test(Function.prototype.toString.call(Class))).toBe(false)
      })

      it("is a plain class over a struct, which the fast path compiles", () => {
        const ast = Class.ast
        expect(SchemaAST.isTransformation(ast) && SchemaAST.isDeclaration(ast.to)).toBe(true)
        expect(Fast.compile(ast)).toBeDefined()
      })

      it("builds, for generated fields, exactly what its checking constructor builds", () => {
        const fast = Fast.compile(Class.ast)!
        const encode = Schema.encodeSync(Class)
        FastCheck.assert(
          FastCheck.property(Arbitrary.make(Class), (value) => {
            const props = { ...(value as Record<string, unknown>) }
            const checked = new Class(props)
            // Twice: the first decode goes through the constructor, the later ones do not.
            fast.decode(encode(value))
            const trusted = fast.decode(encode(value))
            expect(trusted).not.toBe(invalid)
            sameInstance(trusted as object, checked)
          }),
          { numRuns: 200 }
        )
        // A field initialiser would have turned trusted construction off (and kept it correct, but slow).
        expect(fast.trusted()).toBe(true)
      })
    })
  }

  it("keeps using the constructor for a class whose constructor adds a field", () => {
    class Initialised extends Schema.Class<Initialised>("test/Initialised")({ a: optional(XmlText) }) {
      readonly extra = 1
    }
    const fast = Fast.compile(Initialised.ast)!
    for (let i = 0; i < 3; i++) {
      const decoded = fast.decode({ a: "x" }) as Initialised
      sameInstance(decoded, new Initialised({ a: "x" }))
      expect(decoded.extra).toBe(1)
    }
    expect(fast.trusted()).toBe(false)
  })
})
