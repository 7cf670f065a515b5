/**
 * The XML wire format of Omaha requests and responses: schemas from a
 * document string to the protocol classes and back, and Effect functions
 * over them. Decoding is hardened for input from the network: size, depth
 * and element limits, no DTDs or entity declarations, strict well-formedness,
 * and one typed error that says what is wrong and where.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import { XMLParser } from "fast-xml-parser"
import { Request } from "./Request.js"
import { Response } from "./Response.js"
import { isXmlCodePoint, position, scan } from "./internal/scan.js"
import { attributeNames, compile, type Shape } from "./internal/shape.js"
import { textKey } from "./internal/wire.js"

/** A document that could not be decoded or encoded; the message says what and where. */
export class XmlError extends Schema.TaggedError<XmlError>()("XmlError", {
  message: Schema.String,
  line: Schema.optionalWith(Schema.Number, { exact: true }),
  column: Schema.optionalWith(Schema.Number, { exact: true }),
  path: Schema.optionalWith(Schema.String, { exact: true })
}) {}

/** Limits applied before a document is parsed. */
export interface Limits {
  /** Largest document in bytes (UTF-8). */
  readonly maxBytes: number
  /** Deepest element nesting. */
  readonly maxDepth: number
  /** Most elements in one document. */
  readonly maxElements: number
}

/** The limits used when none are given: 1 MiB, 32 levels, 10,000 elements. */
export const defaultLimits: Limits = { maxBytes: 1024 * 1024, maxDepth: 32, maxElements: 10_000 }

/** The XML declaration every encoded document starts with. */
export const declaration = `<?xml version="1.0" encoding="UTF-8"?>`

// -----------------------------------------------------------------------------
// Layout
// -----------------------------------------------------------------------------

interface Document {
  readonly root: string
  readonly shape: Shape
}

const requestDocument: Document = { root: "request", shape: compile(Request.ast) }
const responseDocument: Document = { root: "response", shape: compile(Response.ast) }
const knownAttributes = attributeNames(responseDocument.shape, attributeNames(requestDocument.shape))

// Names the parser refuses outright as object keys; unknown elements with
// these names are renamed so that they are ignored like any other.
const reservedNames = new Set(["__proto__", "constructor", "prototype"])

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: (name: string) => !knownAttributes.has(name),
  attributeNamePrefix: "",
  allowBooleanAttributes: false,
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: "#cdata",
  removeNSPrefix: false,
  jPath: false,
  // The scan enforces the caller's depth limit; this is only a backstop.
  maxNestedTags: 1024,
  transformTagName: (name: string) => (reservedNames.has(name) ? `unknown:${name}` : name)
})

// -----------------------------------------------------------------------------
// Decoding: text -> encoded object
// -----------------------------------------------------------------------------

const predefined: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }
const references = /&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));/g

// The scan has already refused malformed markup, references and characters XML cannot carry.
const replaceReference = (_: string, name: string | undefined, dec: string | undefined, hex: string | undefined) => {
  if (name !== undefined) return predefined[name]!
  const cp = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex!, 16)
  return isXmlCodePoint(cp) ? String.fromCodePoint(cp) : ""
}

const decodeReferences = (s: string): string => (s.includes("&") ? s.replace(references, replaceReference) : s)

// Attribute-value normalisation (XML 1.0 §3.3.3): literal white space becomes
// a space before references are expanded, so `&#10;` survives as a newline.
const decodeAttribute = (s: string): string => decodeReferences(/[\t\n\r]/.test(s) ? s.replace(/[\t\n\r]/g, " ") : s)

type ParsedNode = Record<string, unknown>

const tagOf = (node: ParsedNode): string | undefined => {
  for (const key in node) {
    if (key !== ":@") return key
  }
  return undefined
}

const toEncoded = (shape: Shape, children: ReadonlyArray<ParsedNode>, attrs: unknown): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (attrs !== undefined) {
    const given = attrs as Record<string, string>
    for (const name of shape.attributes) {
      const value = given[name]
      if (typeof value === "string") out[name] = decodeAttribute(value)
    }
  }
  let text: string | undefined
  for (const node of children) {
    const tag = tagOf(node)
    if (tag === undefined) continue
    if (tag === "#text") {
      if (shape.text) text = (text ?? "") + decodeReferences(node[tag] as string)
    } else if (tag === "#cdata") {
      if (shape.text) {
        for (const part of node[tag] as ReadonlyArray<ParsedNode>) text = (text ?? "") + String(part["#text"] ?? "")
      }
    } else {
      const child = shape.childByName.get(tag)
      if (child === undefined) continue
      const value = toEncoded(child.shape, node[tag] as ReadonlyArray<ParsedNode>, node[":@"])
      if (child.many) {
        const list = out[child.name] as Array<unknown> | undefined
        if (list === undefined) out[child.name] = [value]
        else list.push(value)
      } else if (out[child.name] === undefined) {
        out[child.name] = value
      }
    }
  }
  if (text !== undefined) out[textKey] = text
  return out
}

const refuse = (xml: string, offset: number, reason: string): XmlError => {
  const { column, line } = position(xml, offset)
  return new XmlError({ message: `malformed XML at line ${line}, column ${column}: ${reason}`, line, column })
}

const utf8 = new TextDecoder("utf-8", { fatal: true })

const asText = (input: string | Uint8Array): Either.Either<string, XmlError> => {
  if (typeof input === "string") return Either.right(input)
  try {
    return Either.right(utf8.decode(input))
  } catch {
    return Either.left(new XmlError({ message: "malformed XML: the document is not valid UTF-8" }))
  }
}

const parseDocument = (
  document: Document,
  input: string | Uint8Array,
  limits: Limits
): Either.Either<Record<string, unknown>, XmlError> => {
  // A string's UTF-8 size is at least its length, so only short ones need measuring.
  const size = typeof input === "string"
    ? (input.length > limits.maxBytes ? input.length : Buffer.byteLength(input, "utf8"))
    : input.byteLength
  if (size > limits.maxBytes) {
    return Either.left(
      new XmlError({ message: `XML document too large: at least ${size} bytes, the limit is ${limits.maxBytes}` })
    )
  }
  const decoded = asText(input)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const xml = decoded.right.charCodeAt(0) === 0xfeff ? decoded.right.slice(1) : decoded.right
  const scanned = scan(xml, limits)
  if (scanned._tag === "Refused") return Either.left(refuse(xml, scanned.offset, scanned.reason))
  if (scanned.root !== document.root) {
    return Either.left(
      new XmlError({ message: `wrong document: expected a <${document.root}> element, found <${scanned.root}>`, line: 1 })
    )
  }
  let tree: ReadonlyArray<ParsedNode>
  try {
    tree = parser.parse(xml) as ReadonlyArray<ParsedNode>
  } catch (e) {
    return Either.left(new XmlError({ message: `malformed XML: ${e instanceof Error ? e.message : String(e)}` }))
  }
  const root = tree.find((node) => tagOf(node) === document.root)
  if (root === undefined) {
    return Either.left(new XmlError({ message: `wrong document: no <${document.root}> element` }))
  }
  return Either.right(toEncoded(document.shape, root[document.root] as ReadonlyArray<ParsedNode>, root[":@"]))
}

// -----------------------------------------------------------------------------
// Encoding: encoded object -> text
// -----------------------------------------------------------------------------

const attributeEscapes: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  "\"": "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;"
}
const attributeSpecials = /[&<>"\t\n\r]/g

const escapeAttribute = (s: string): string => {
  attributeSpecials.lastIndex = 0
  return attributeSpecials.test(s) ? s.replace(attributeSpecials, (c) => attributeEscapes[c]!) : s
}

// Character data goes out as CDATA; "]]>" and carriage returns (which XML
// parsers turn into newlines) are written outside the CDATA sections.
const writeText = (s: string): string =>
  "<![CDATA[" + s.replace(/]]>|\r/g, (m) => (m === "\r" ? "]]>&#13;<![CDATA[" : "]]]]><![CDATA[>")) + "]]>"

const writeElement = (name: string, shape: Shape, value: Record<string, unknown>, indent: string): string => {
  let out = indent + "<" + name
  for (const attr of shape.attributes) {
    const v = value[attr]
    if (v !== undefined) out += " " + attr + "=\"" + escapeAttribute(v as string) + "\""
  }
  const text = shape.text ? (value[textKey] as string | undefined) : undefined
  let body = ""
  const inner = indent + " "
  for (const child of shape.children) {
    const v = value[child.name]
    if (v === undefined) continue
    if (child.many) {
      for (const item of v as ReadonlyArray<Record<string, unknown>>) {
        body += writeElement(child.name, child.shape, item, inner)
      }
    } else {
      body += writeElement(child.name, child.shape, v as Record<string, unknown>, inner)
    }
  }
  if (text === undefined && body === "") return out + "/>\n"
  return out + ">" + (text === undefined ? "" : writeText(text)) + (body === "" ? "" : "\n" + body + indent) + "</" + name + ">\n"
}

const writeDocument = (document: Document, encoded: Record<string, unknown>): string =>
  declaration + "\n" + writeElement(document.root, document.shape, encoded, "")

// -----------------------------------------------------------------------------
// Schemas and Effect functions
// -----------------------------------------------------------------------------

const fromXml = <A, I extends Record<string, unknown>>(
  document: Document,
  schema: Schema.Schema<A, I>
): Schema.Schema<A, string> =>
  Schema.transformOrFail(Schema.String, schema, {
    strict: true,
    decode: (xml, _, ast) =>
      Either.match(parseDocument(document, xml, defaultLimits), {
        onLeft: (e) => ParseResult.fail(new ParseResult.Type(ast, xml, e.message)),
        onRight: (encoded) => ParseResult.succeed(encoded as I)
      }),
    encode: (encoded) => ParseResult.succeed(writeDocument(document, encoded))
  })

/** A request document (text) to a {@link Request} and back. */
export const RequestFromXml: Schema.Schema<Request, string> = fromXml(requestDocument, Request)

/** A response document (text) to a {@link Response} and back. */
export const ResponseFromXml: Schema.Schema<Response, string> = fromXml(responseDocument, Response)

const describePath = (root: string, path: ReadonlyArray<PropertyKey>): string =>
  [root, ...path.map((key) => (typeof key === "number" ? `[${key + 1}]` : String(key)))].join("/").replace(/\/\[/g, "[")

const fromParseError = (root: string) => (error: ParseResult.ParseError): XmlError => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  if (issue === undefined) return new XmlError({ message: `invalid <${root}> document: ${error.message}` })
  const path = describePath(root, issue.path)
  return new XmlError({ message: `invalid <${root}> document at ${path}: ${issue.message}`, path })
}

const decodeWith = <A, I>(document: Document, schema: Schema.Schema<A, I>) => {
  // The Either variant: same checks as Schema.decodeUnknown, without a fiber per document.
  const decode = Schema.decodeUnknownEither(schema)
  const onError = fromParseError(document.root)
  return (input: string | Uint8Array, limits: Limits = defaultLimits): Effect.Effect<A, XmlError> =>
    Effect.suspend(() =>
      Either.flatMap(parseDocument(document, input, limits), (encoded) => Either.mapLeft(decode(encoded), onError))
    )
}

const encodeWith = <A, I>(document: Document, schema: Schema.Schema<A, I>) => {
  const encode = Schema.encode(schema)
  const onError = fromParseError(document.root)
  return (value: A): Effect.Effect<string, XmlError> =>
    Effect.map(Effect.mapError(encode(value), onError), (encoded) => writeDocument(document, encoded as Record<string, unknown>))
}

/** Decodes a request document (text or UTF-8 bytes) within `limits`. */
export const decodeRequest = decodeWith(requestDocument, Request)

/** Encodes a request as a document starting with the XML declaration. */
export const encodeRequest = encodeWith(requestDocument, Request)

/** Decodes a response document (text or UTF-8 bytes) within `limits`. */
export const decodeResponse = decodeWith(responseDocument, Response)

/** Encodes a response as a document starting with the XML declaration. */
export const encodeResponse = encodeWith(responseDocument, Response)
