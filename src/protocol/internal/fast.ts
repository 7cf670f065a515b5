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
import { escapeAttribute, writeText } from "./document.js"
import { invalid, textKey, type ValueCodec, type Wire, WireId } from "./wire.js"

/**
 * Instances whose written elements may be kept and written again (by element
 * name and indentation): protocol instances do not change, so an instance
 * written once reads the same every time. Put an empty map for an instance
 * to have its writings kept.
 */
export type Reuse = WeakMap<object, Map<string, string>>

/** A class's fast decoder and encoder; each returns `invalid` where the schema must decide. */
export interface Fast {
  readonly decode: (encoded: unknown) => unknown
  readonly encode: (value: unknown) => unknown
  /**
   * Whether instances are built without the class's constructor: undefined
   * until the first one is built, then false for good if the constructor
   * turned out to add or change fields.
   */
  readonly trusted: () => boolean | undefined
  /** The element `name` for an instance, as `writeDocument` writes its encoded object at `indent`. */
  readonly write: (value: unknown, name: string, indent: string, reuse: Reuse | undefined) => string | typeof invalid
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
  // Prototypes of values the declaration took for instances: a value with
  // one of them is an instance too, without asking again.
  const instanceProtos = new Set<object | null>()
  const isInstance = (u: unknown): boolean => {
    if (typeof u === "object" && u !== null && instanceProtos.has(Object.getPrototypeOf(u))) return true
    const result = check(u, parseOptions, declaration)
    const yes = Either.isEither(result) && Either.isRight(result) && result.right === u
    if (yes && instanceProtos.size < 8) instanceProtos.add(Object.getPrototypeOf(u))
    return yes
  }
  const construct_ = (props: Record<string, unknown>, encoded: unknown): unknown => {
    const result = construct(props, parseOptions, ast, encoded)
    return Either.isEither(result) && Either.isRight(result) ? result.right : invalid
  }
  // Trusted construction: an instance is its prototype and the decoded
  // fields, and the class's constructor is skipped. Only after the first
  // instance built by the constructor shows that the constructor adds,
  // drops, reorders or changes nothing (no constructor of its own, no field
  // initialiser); otherwise the constructor keeps building every instance.
  let proto: object | undefined
  let trusted: boolean | undefined
  const make = (props: Record<string, unknown>, encoded: unknown): unknown => {
    if (trusted === true) return Object.assign(Object.create(proto!), props)
    const built = construct_(props, encoded)
    if (trusted === undefined && built !== invalid) {
      trusted = sameFields(built as object, props)
      proto = Object.getPrototypeOf(built)
    }
    return built
  }

  const decode = (encoded: unknown): unknown => {
    if (!isRecord(encoded)) return invalid
    // Trusted, the fields go straight into the instance.
    const props: Record<string, unknown> = trusted === true ? Object.create(proto!) : {}
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
    return trusted === true ? props : make(props, encoded)
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

  // What `writeElement` of document.ts writes for `encode(value)`, straight
  // from the instance: attributes in wire order, then text, then children.
  const attributes = fields.encoded.filter((f) => f.kind._tag === "Value" && f.wire !== textKey)
  const text = fields.encoded.find((f) => f.kind._tag === "Value" && f.wire === textKey)
  const children = fields.encoded.filter((f) => f.kind._tag !== "Value")
  const write = (value: unknown, name: string, indent: string, reuse: Reuse | undefined): string | typeof invalid => {
    let written: Map<string, string> | undefined
    if (reuse !== undefined && typeof value === "object" && value !== null) {
      written = reuse.get(value)
      const hit = written?.get(name + indent)
      if (hit !== undefined) return hit
    }
    if (!isInstance(value)) return invalid
    const instance = value as Record<string, unknown>
    let out = indent + "<" + name
    for (const field of attributes) {
      if (!Object.hasOwn(instance, field.key)) {
        if (field.optional) continue
        return invalid
      }
      const s = (field.kind as Extract<Kind, { _tag: "Value" }>).codec.encode(instance[field.key])
      if (s === invalid) return invalid
      out += " " + field.wire + "=\"" + escapeAttribute(s) + "\""
    }
    let body = ""
    const inner = indent + " "
    for (const field of children) {
      const { kind } = field
      if (!Object.hasOwn(instance, field.key)) {
        if (field.optional && kind._tag !== "List") continue
        return invalid
      }
      const v = instance[field.key]
      if (kind._tag === "Child") {
        const child = kind.fast.write(v, field.wire, inner, reuse)
        if (child === invalid) return invalid
        body += child
      } else if (kind._tag === "List") {
        if (!Array.isArray(v)) return invalid
        if (v.length === 0) continue
        const itemIndent = kind.element === undefined ? inner : inner + " "
        const itemName = kind.element ?? field.wire
        let items = ""
        for (const item of v) {
          const written = kind.item.write(item, itemName, itemIndent, reuse)
          if (written === invalid) return invalid
          items += written
        }
        body += kind.element === undefined ? items : inner + "<" + field.wire + ">\n" + items + inner + "</" + field.wire + ">\n"
      }
    }
    let content: string | undefined
    if (text !== undefined && Object.hasOwn(instance, text.key)) {
      const s = (text.kind as Extract<Kind, { _tag: "Value" }>).codec.encode(instance[text.key])
      if (s === invalid) return invalid
      content = s
    } else if (text !== undefined && !text.optional) {
      return invalid
    }
    out = content === undefined && body === ""
      ? out + "/>\n"
      : out + ">" + (content === undefined ? "" : writeText(content)) + (body === "" ? "" : "\n" + body + indent) + "</" + name + ">\n"
    written?.set(name + indent, out)
    return out
  }

  const fast: Fast = { decode, encode, write, trusted: () => trusted }
  memo.set(ast, fast)
  return fast
}

// True when `built` has exactly the own keys of `props`, in order, with the same values.
const sameFields = (built: object, props: Record<string, unknown>): boolean => {
  const keys = Reflect.ownKeys(built)
  const expected = Reflect.ownKeys(props)
  if (keys.length !== expected.length) return false
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (key !== expected[i] || (built as Record<PropertyKey, unknown>)[key] !== props[key as string]) return false
  }
  return true
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
