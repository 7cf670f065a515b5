/**
 * Field schemas shared by the request and response classes: how one XML
 * attribute value, one repeated element or one wrapped list maps to a typed
 * field. The encoded side of every schema here is exactly what appears on the
 * wire (strings under their wire names), which is what lets `Xml.ts` derive
 * the whole document layout from the classes.
 */
import { Arbitrary, Option, ParseResult, Schema } from "effect"

/** What a wire decoder or encoder returns for a value its schema refuses. */
export const invalid: unique symbol = Symbol.for("effect-omaha/wire/invalid")

/**
 * The plain functions behind a wire value schema: the same checks and results
 * as the schema, without building parse issues, for the codec's fast path.
 */
export interface ValueCodec {
  readonly decode: (s: string) => unknown
  readonly encode: (value: unknown) => string | typeof invalid
}

/** How a field travels, as the fast path needs to know it (see `internal/fast.ts`). */
export type Wire =
  | { readonly _tag: "Value"; readonly codec: ValueCodec }
  | { readonly _tag: "Elements" }
  | { readonly _tag: "Wrapped"; readonly element: string }

/** The annotation that marks the building blocks of this module with their {@link Wire}. */
export const WireId: unique symbol = Symbol.for("effect-omaha/wire/Wire")

const value = (codec: ValueCodec) => ({ [WireId]: { _tag: "Value", codec } satisfies Wire })

// Characters XML 1.0 can carry at all (literally or as a character reference).
const invalidXmlChar = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u

/** True when every character of `s` may appear in an XML 1.0 document. */
export const isXmlText = (s: string): boolean => !invalidXmlChar.test(s)

/** Any string an XML 1.0 document can carry: the type of every text attribute. */
export const XmlText = Schema.String.pipe(
  Schema.filter(isXmlText, {
    message: () => "contains a character that XML 1.0 cannot represent",
    arbitrary: () => (fc) =>
      fc.oneof(
        fc.string(),
        fc.string({ unit: "binary" }).map((s) => s.replace(new RegExp(invalidXmlChar.source, "gu"), ""))
      )
  })
).annotations(value({
  decode: (s) => (isXmlText(s) ? s : invalid),
  encode: (a) => (typeof a === "string" && isXmlText(a) ? a : invalid)
}))

const integer = /^[+-]?\d{1,16}$/

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

// Numbers and booleans are read with the white space around them removed, as
// Go's encoding/xml (and so go-omaha) reads them: `size=" 5 "` is 5.
const trimSpace = (s: string): string =>
  s.length > 0 && (isSpace(s.charCodeAt(0)) || isSpace(s.charCodeAt(s.length - 1))) ? s.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, "") : s

const decodeInteger = (raw: string): number | typeof invalid => {
  const s = trimSpace(raw)
  const n = integer.test(s) ? Number(s) : Number.NaN
  return Number.isSafeInteger(n) ? n : invalid
}

/** An integer attribute: decimal digits on the wire (white space around them ignored), a safe integer in code. */
export const Int = Schema.transformOrFail(Schema.String, Schema.Int, {
  strict: true,
  decode: (s, _, ast) => {
    const n = decodeInteger(s)
    return n !== invalid
      ? ParseResult.succeed(n)
      : ParseResult.fail(new ParseResult.Type(ast, s, `expected an integer, got ${JSON.stringify(s)}`))
  },
  encode: (n) => ParseResult.succeed(String(n))
}).annotations(value({
  decode: decodeInteger,
  encode: (a) => (Number.isSafeInteger(a) ? String(a) : invalid)
}))

/** A non-negative integer attribute (sizes, counts). */
export const NonNegativeInt = Schema.compose(Int, Schema.NonNegativeInt, { strict: false }).annotations(value({
  decode: (s) => {
    const n = decodeInteger(s)
    return n !== invalid && n >= 0 ? n : invalid
  },
  encode: (a) => (Number.isSafeInteger(a) && (a as number) >= 0 ? String(a) : invalid)
}))

const truthy = new Set(["true", "True", "TRUE", "t", "T", "1"])
const falsy = new Set(["false", "False", "FALSE", "f", "F", "0"])

const decodeBoolean = (raw: string): boolean | typeof invalid => {
  const s = trimSpace(raw)
  return truthy.has(s) ? true : falsy.has(s) ? false : invalid
}

const lenientBoolean = (written: readonly [string, string]) =>
  Schema.transformOrFail(Schema.String, Schema.Boolean, {
    strict: true,
    decode: (s, _, ast) => {
      const b = decodeBoolean(s)
      return b !== invalid
        ? ParseResult.succeed(b)
        : ParseResult.fail(new ParseResult.Type(ast, s, `expected a boolean, got ${JSON.stringify(s)}`))
    },
    encode: (b) => ParseResult.succeed(b ? written[0] : written[1])
  }).annotations(value({
    decode: decodeBoolean,
    encode: (a) => (typeof a === "boolean" ? (a ? written[0] : written[1]) : invalid)
  }))

/** A boolean attribute: read leniently (`true`, `True`, `1`, `0`, ..., white space around ignored), written `true` / `false`. */
export const Bool = lenientBoolean(["true", "false"])

/** A boolean attribute that the protocol writes as `1` / `0` (`ismachine`, the `<hw>` flags). */
export const Flag = lenientBoolean(["1", "0"])

/** An attribute that may be absent; absent stays absent in both directions. */
export const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

// Generated documents keep each list short: three levels of nested lists
// with fast-check's default lengths make documents of megabytes.
const listOf = <A, I, R>(item: Schema.Schema<A, I, R>) => {
  const type = Schema.typeSchema(item)
  return Schema.Array(type).annotations({
    arbitrary: () => (fc) => fc.array(Arbitrary.make(type), { maxLength: 3 })
  })
}

/**
 * A list of child elements named `element`: a required array in code, absent
 * from the wire when empty, and empty by default in constructors.
 */
export const elements = <A, I, R>(item: Schema.Schema<A, I, R>) =>
  Schema.optionalToRequired(Schema.Array(item), listOf(item), {
    decode: Option.getOrElse(() => []),
    encode: (items) => (items.length === 0 ? Option.none() : Option.some(items))
  }).pipe(Schema.withConstructorDefault(() => [])).annotations({ [WireId]: { _tag: "Elements" } satisfies Wire })

/**
 * A list wrapped in a container element (`<urls><url/>...</urls>`): a required
 * array in code; the container is written only when the list is not empty.
 */
export const wrapped = <A, I, R>(element: string, item: Schema.Schema<A, I, R>) => {
  type Container<T> = { readonly [name: string]: ReadonlyArray<T> }
  const container = Schema.Struct({ [element]: optional(Schema.Array(item)) }) as unknown as Schema.Schema<
    Container<A>,
    Container<I>,
    R
  >
  return Schema.optionalToRequired(container, listOf(item), {
    decode: Option.match({ onNone: () => [], onSome: (c) => c[element] ?? [] }),
    encode: (items) => (items.length === 0 ? Option.none() : Option.some({ [element]: items }))
  }).pipe(Schema.withConstructorDefault(() => [])).annotations({ [WireId]: { _tag: "Wrapped", element } satisfies Wire })
}

/** The encoded key under which an element's character data travels. */
export const textKey = "#text"
