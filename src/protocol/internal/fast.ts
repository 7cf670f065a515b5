/**
 * The fast path of the XML codec: for each protocol class, a decoder from its
 * encoded object (what `document.ts` reads from a document) straight to the
 * class instance, and an encoder back, compiled once from the class's schema
 * AST. It knows the building blocks of `wire.ts` by their annotation, code
 * tables by their string literals, and nested classes; a class with anything
 * else gets no fast path. Both functions give up (return `invalid`) wherever
 * the schema could disagree or fail, so the schema runs then and stays the
 * only source of results and errors: a fast result is always the one the
 * schema would give.
 */
import { Either, SchemaAST } from "effect"
import { identity } from "effect/Function"
import { invalid, type ValueCodec, type Wire, WireId } from "./wire.js"

/** A class's fast decoder and encoder; both return `invalid` where the schema must decide. */
export interface Fast {
  readonly decode: (encoded: unknown) => unknown
  readonly encode: (value: unknown) => unknown
}

type Kind =
  | { readonly _tag: "Value"; readonly codec: ValueCodec }
  | { readonly _tag: "Child"; readonly fast: Fast }
  | { readonly _tag: "List"; readonly item: Fast; readonly element: string | undefined }

interface Field {
  /** The name in code. */
  readonly key: string
  /** The name in the encoded object. */
  readonly wire: string
  /** Optional in code (then absent stays absent). */
  readonly optional: boolean
  readonly kind: Kind
}

const literalCodec = (literals: ReadonlySet<string>): ValueCodec => ({
  decode: (s) => (literals.has(s) ? s : invalid),
  encode: (a) => (typeof a === "string" && literals.has(a) ? a : invalid)
})

// A field value that travels as one string: a wire.ts value or a code table.
const valueCodec = (ast: SchemaAST.AST): ValueCodec | undefined => {
  const wire = ast.annotations[WireId] as Wire | undefined
  if (wire !== undefined) return wire._tag === "Value" ? wire.codec : undefined
  const types = SchemaAST.isUnion(ast) ? ast.types : [ast]
  const literals = new Set<string>()
  for (const t of types) {
    if (!SchemaAST.isLiteral(t) || typeof t.literal !== "string") return undefined
    literals.add(t.literal)
  }
  return literalCodec(literals)
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

// The item class of `ReadonlyArray<Item>` (the encoded side of a list).
const itemOf = (ast: SchemaAST.AST, memo: Memo): Fast | undefined =>
  SchemaAST.isTupleType(ast) && ast.elements.length === 0 && ast.rest.length === 1
    ? compileClass(ast.rest[0]!.type, memo)
    : undefined

const listKind = (wire: Wire, encoded: SchemaAST.PropertySignature, memo: Memo): Kind | undefined => {
  if (!encoded.isOptional) return undefined
  if (wire._tag === "Elements") {
    const item = itemOf(encoded.type, memo)
    return item && { _tag: "List", item, element: undefined }
  }
  if (wire._tag !== "Wrapped") return undefined
  const container = encoded.type
  if (!SchemaAST.isTypeLiteral(container) || container.indexSignatures.length > 0) return undefined
  const [inner, ...others] = container.propertySignatures
  if (inner === undefined || others.length > 0 || inner.name !== wire.element || !inner.isOptional) return undefined
  const item = itemOf(inner.type, memo)
  return item && { _tag: "List", item, element: wire.element }
}

const fieldKind = (encoded: SchemaAST.PropertySignature, memo: Memo): Kind | undefined => {
  const codec = valueCodec(encoded.type)
  if (codec !== undefined) return { _tag: "Value", codec }
  const fast = compileClass(encoded.type, memo)
  return fast && { _tag: "Child", fast }
}

// The fields of a class's struct: type-side order (the order of decoded
// objects) and encoded-side order (the order of encoded ones).
const fieldsOf = (
  struct: SchemaAST.AST,
  memo: Memo
): { readonly decoded: ReadonlyArray<Field>; readonly encoded: ReadonlyArray<Field> } | undefined => {
  let from: SchemaAST.TypeLiteral
  let to: SchemaAST.TypeLiteral
  let renames: ReadonlyArray<SchemaAST.PropertySignatureTransformation> = []
  if (SchemaAST.isTypeLiteral(struct)) {
    from = to = struct
  } else if (
    SchemaAST.isTransformation(struct) && SchemaAST.isTypeLiteral(struct.from) && SchemaAST.isTypeLiteral(struct.to) &&
    SchemaAST.isTypeLiteralTransformation(struct.transformation)
  ) {
    from = struct.from
    to = struct.to
    renames = struct.transformation.propertySignatureTransformations
  } else {
    return undefined
  }
  if (from.indexSignatures.length > 0 || to.indexSignatures.length > 0) return undefined
  const decoded: Array<Field> = []
  for (const ps of to.propertySignatures) {
    const rename = renames.find((t) => t.to === ps.name)
    const wire = rename === undefined ? ps.name : rename.from
    const encoded = from.propertySignatures.find((e) => e.name === wire)
    if (typeof ps.name !== "string" || typeof wire !== "string" || encoded === undefined) return undefined
    const list = ps.annotations[WireId] as Wire | undefined
    let kind: Kind | undefined
    if (rename === undefined || (rename.decode === identity && rename.encode === identity)) {
      if (list !== undefined || encoded.isOptional !== ps.isOptional) return undefined
      kind = fieldKind(encoded, memo)
    } else if (list !== undefined && !ps.isOptional) {
      kind = listKind(list, encoded, memo)
    }
    if (kind === undefined) return undefined
    decoded.push({ key: ps.name, wire, optional: ps.isOptional, kind })
  }
  const position = (f: Field) => from.propertySignatures.findIndex((e) => e.name === f.wire)
  return { decoded, encoded: [...decoded].sort((a, b) => position(a) - position(b)) }
}

type Memo = Map<SchemaAST.AST, Fast | undefined>

const parseOptions: SchemaAST.ParseOptions = {}

// A Schema.Class: its struct, transformed into a declaration by `new Class(props, true)`.
const compileClass = (ast: SchemaAST.AST, memo: Memo): Fast | undefined => {
  if (memo.has(ast)) return memo.get(ast)
  memo.set(ast, undefined)
  if (
    !SchemaAST.isTransformation(ast) || !SchemaAST.isDeclaration(ast.to) ||
    !SchemaAST.isFinalTransformation(ast.transformation)
  ) return undefined
  const fields = fieldsOf(ast.from, memo)
  if (fields === undefined) return undefined
  const { decode: construct } = ast.transformation
  const declaration = ast.to
  // The declaration's own encoder answers an instance with itself.
  const check = declaration.encodeUnknown(...declaration.typeParameters)
  const isInstance = (u: unknown): boolean => {
    const result = check(u, parseOptions, declaration)
    return Either.isEither(result) && Either.isRight(result) && result.right === u
  }
  const make = (props: Record<string, unknown>, encoded: unknown): unknown => {
    const result = construct(props, parseOptions, ast, encoded)
    return Either.isEither(result) && Either.isRight(result) ? result.right : invalid
  }

  const decode = (encoded: unknown): unknown => {
    if (!isRecord(encoded)) return invalid
    const props: Record<string, unknown> = {}
    for (const field of fields.decoded) {
      const { kind, wire } = field
      if (!Object.hasOwn(encoded, wire)) {
        if (kind._tag === "List") props[field.key] = []
        else if (!field.optional) return invalid
        continue
      }
      const v = encoded[wire]
      let out: unknown
      switch (kind._tag) {
        case "Value": {
          out = typeof v === "string" ? kind.codec.decode(v) : invalid
          break
        }
        case "Child": {
          out = kind.fast.decode(v)
          break
        }
        case "List": {
          out = decodeList(kind, v)
          break
        }
      }
      if (out === invalid) return invalid
      props[field.key] = out
    }
    return make(props, encoded)
  }

  const encode = (value: unknown): unknown => {
    if (!isInstance(value)) return invalid
    const instance = value as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const field of fields.encoded) {
      const { kind, wire } = field
      if (!Object.hasOwn(instance, field.key)) {
        if (field.optional && kind._tag !== "List") continue
        return invalid
      }
      const v = instance[field.key]
      let encoded: unknown
      switch (kind._tag) {
        case "Value": {
          encoded = kind.codec.encode(v)
          break
        }
        case "Child": {
          encoded = kind.fast.encode(v)
          break
        }
        case "List": {
          if (!Array.isArray(v)) return invalid
          if (v.length === 0) continue
          encoded = mapItems(v, kind.item.encode)
          if (encoded !== invalid && kind.element !== undefined) encoded = { [kind.element]: encoded }
          break
        }
      }
      if (encoded === invalid) return invalid
      out[wire] = encoded
    }
    return out
  }

  const fast: Fast = { decode, encode }
  memo.set(ast, fast)
  return fast
}

// Each item through `f`, or invalid as soon as one gives up.
const mapItems = (items: ReadonlyArray<unknown>, f: (item: unknown) => unknown): unknown => {
  const out: Array<unknown> = new Array(items.length)
  for (let i = 0; i < items.length; i++) {
    const v = f(items[i])
    if (v === invalid) return invalid
    out[i] = v
  }
  return out
}

const decodeItems = (item: Fast, items: unknown): unknown => (Array.isArray(items) ? mapItems(items, item.decode) : invalid)

const decodeList = (kind: Extract<Kind, { _tag: "List" }>, v: unknown): unknown => {
  if (kind.element === undefined) return decodeItems(kind.item, v)
  if (!isRecord(v)) return invalid
  return Object.hasOwn(v, kind.element) ? decodeItems(kind.item, v[kind.element]) : []
}

/** The fast path of a class, or undefined when its schema uses something this module does not know. */
export const compile = (ast: SchemaAST.AST): Fast | undefined => compileClass(ast, new Map())
