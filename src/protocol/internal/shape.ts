/**
 * The document layout of a protocol class, derived once from the encoded side
 * of its schema: string-valued keys are attributes, struct-valued keys are
 * child elements (arrays for repeated ones), and `#text` is character data.
 * Both directions of the XML codec walk these shapes, so a wire name lives in
 * exactly one place: the class field that carries it.
 */
import { SchemaAST } from "effect"
import { textKey } from "./wire.js"

/** One element's layout: its attributes, child elements and whether it carries text. */
export interface Shape {
  readonly attributes: ReadonlyArray<string>
  /** {@link attributes} as a set, for lookups. */
  readonly attributeSet: ReadonlySet<string>
  /** The attributes the element cannot go without. */
  readonly required: ReadonlySet<string>
  readonly children: ReadonlyArray<Child>
  readonly childByName: ReadonlyMap<string, Child>
  readonly text: boolean
}

/** A child element of a shape: its name, whether it repeats, and its own shape. */
export interface Child {
  readonly name: string
  readonly many: boolean
  readonly shape: Shape
}

const withoutUndefined = (ast: SchemaAST.AST): SchemaAST.AST => {
  if (!SchemaAST.isUnion(ast)) return ast
  const types = ast.types.filter((t) => !SchemaAST.isUndefinedKeyword(t))
  return types.length === 1 ? types[0]! : ast
}

/** The shape of the element whose encoded schema is `ast` (a class or struct). */
export const compile = (ast: SchemaAST.AST): Shape => {
  const literal = withoutUndefined(SchemaAST.encodedAST(ast))
  if (!SchemaAST.isTypeLiteral(literal)) {
    throw new TypeError(`an XML element must encode to a struct, not ${literal._tag}`)
  }
  const attributes: Array<string> = []
  const required = new Set<string>()
  const children: Array<Child> = []
  let text = false
  for (const ps of literal.propertySignatures) {
    const name = String(ps.name)
    const type = withoutUndefined(ps.type)
    if (name === textKey) {
      text = true
    } else if (SchemaAST.isTypeLiteral(type)) {
      children.push({ name, many: false, shape: compile(type) })
    } else if (SchemaAST.isTupleType(type) && type.rest.length === 1) {
      children.push({ name, many: true, shape: compile(type.rest[0]!.type) })
    } else {
      attributes.push(name)
      if (!ps.isOptional) required.add(name)
    }
  }
  return { attributes, attributeSet: new Set(attributes), required, children, childByName: new Map(children.map((c) => [c.name, c])), text }
}

/** Every attribute name used anywhere below `shape`. */
export const attributeNames = (shape: Shape, into: Set<string> = new Set()): Set<string> => {
  for (const a of shape.attributes) into.add(a)
  for (const c of shape.children) attributeNames(c.shape, into)
  return into
}
